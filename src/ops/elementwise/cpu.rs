//! The elementwise ops on host memory, for the CPU backend: the same activations (GELU through the
//! shaders' erf approximation), numpy broadcasting with the same shape checks and typed errors, and
//! FiLM.

use super::{check_film, Binary, Unary};
use crate::error::Result;
use crate::ops::check_host_len;
use crate::ops::matmul::{cpu::activate, Act};
use crate::ops::{broadcast_shape, broadcast_strides, MAX_RANK};

/// One activation, as the shaders compute it.
pub fn apply(op: Unary, x: f32) -> f32 {
    match op {
        Unary::Identity => x,
        Unary::Silu => activate(Act::Silu, x),
        Unary::Gelu => activate(Act::Gelu, x),
        Unary::GeluTanh => 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh()),
        Unary::Relu => x.max(0.0),
        Unary::Tanh => x.tanh(),
        Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Unary::Exp => x.exp(),
    }
}

/// `f(alpha·x + beta)`.
pub fn unary_affine(x: &[f32], op: Unary, alpha: f32, beta: f32) -> Vec<f32> {
    x.iter().map(|&v| apply(op, alpha * v + beta)).collect()
}

/// Element offsets, per broadcast input, of every output element of `shape` in order.
fn for_each_offset(shape: &[usize], inputs: &[&[usize]], mut f: impl FnMut(&[usize])) {
    let strides: Vec<[u32; MAX_RANK]> =
        inputs.iter().map(|s| broadcast_strides(s, shape)).collect();
    let n: usize = shape.iter().product();
    let mut coord = [0usize; MAX_RANK];
    let mut offs = vec![0usize; inputs.len()];
    for _ in 0..n {
        f(&offs);
        // Advance the coordinate like an odometer, moving each input's offset with it.
        for d in (0..shape.len()).rev() {
            coord[d] += 1;
            for (o, s) in offs.iter_mut().zip(&strides) {
                *o += s[d] as usize;
            }
            if coord[d] < shape[d] {
                break;
            }
            for (o, s) in offs.iter_mut().zip(&strides) {
                *o -= s[d] as usize * shape[d];
            }
            coord[d] = 0;
        }
    }
}

/// `a ∘ b` with numpy broadcasting (`alpha·a + beta·b` for [`Binary::Axpby`]); returns the output
/// and its shape.
pub fn binary(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    op: Binary,
    alpha: f32,
    beta: f32,
) -> Result<(Vec<f32>, Vec<usize>)> {
    check_host_len("binary", "a", a, a_shape)?;
    check_host_len("binary", "b", b, b_shape)?;
    let shape = broadcast_shape("binary", a_shape, b_shape)?;
    let mut out = Vec::with_capacity(shape.iter().product());
    for_each_offset(&shape, &[a_shape, b_shape], |o| {
        let (x, y) = (a[o[0]], b[o[1]]);
        out.push(match op {
            Binary::Add => x + y,
            Binary::Sub => x - y,
            Binary::Mul => x * y,
            Binary::Div => x / y,
            Binary::Axpby => alpha * x + beta * y,
            Binary::Max => x.max(y),
        });
    });
    Ok((out, shape))
}

/// FiLM `act((1 + scale)·h + shift)`; `scale` and `shift` broadcast to `h`'s shape.
pub fn film(
    h: &[f32],
    h_shape: &[usize],
    scale: &[f32],
    scale_shape: &[usize],
    shift: &[f32],
    shift_shape: &[usize],
    act: Unary,
) -> Result<Vec<f32>> {
    check_host_len("film", "h", h, h_shape)?;
    check_host_len("film", "scale", scale, scale_shape)?;
    check_host_len("film", "shift", shift, shift_shape)?;
    check_film(h_shape, scale_shape, shift_shape)?;
    let mut out = Vec::with_capacity(h.len());
    for_each_offset(h_shape, &[h_shape, scale_shape, shift_shape], |o| {
        out.push(apply(act, (1.0 + scale[o[1]]) * h[o[0]] + shift[o[2]]));
    });
    Ok(out)
}
