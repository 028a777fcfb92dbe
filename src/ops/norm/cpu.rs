//! The row normalisations on host memory, for the CPU backend: the same semantics as the GPU kernels
//! (PyTorch's: biased variance, `eps` inside the square root, affine per last-dimension element or
//! per channel) and the same shape checks and typed errors. Statistics accumulate in f64, so the
//! CPU result is at least as close to the exact one as the GPU's.

use super::{check_affine_shape, check_eps, check_rank, group_layout};
use multiversion::multiversion;

use crate::cpu::math;
use crate::error::Result;
use crate::ops::check_host_len;
use crate::ops::matmul::{cpu::activate, Act};

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn row_softmax(op: &'static str, x: &[f32], shape: &[usize], log: bool) -> Result<Vec<f32>> {
    check_rank(op, shape)?;
    check_host_len(op, "input", x, shape)?;
    let n = shape[shape.len() - 1];
    let mut out = x.to_vec();
    if n == 0 {
        return Ok(out);
    }
    for row in out.chunks_exact_mut(n) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if log {
            let sum: f64 = row.iter().map(|&v| f64::from(math::exp(v - max))).sum();
            let lse = sum.ln() as f32;
            row.iter_mut().for_each(|v| *v = *v - max - lse);
        } else {
            // One exp per element: keep them, then scale by the (f64-summed) total.
            row.iter_mut().for_each(|v| *v = math::exp(*v - max));
            let inv = (1.0 / row.iter().map(|&v| f64::from(v)).sum::<f64>()) as f32;
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
    Ok(out)
}

/// Softmax over the last dimension (max-subtracted).
pub fn softmax(x: &[f32], shape: &[usize]) -> Result<Vec<f32>> {
    row_softmax("softmax", x, shape, false)
}

/// `log(softmax(x))` over the last dimension, computed as `x − max − log Σ exp(x − max)`.
pub fn log_softmax(x: &[f32], shape: &[usize]) -> Result<Vec<f32>> {
    row_softmax("log_softmax", x, shape, true)
}

/// Mean and `1/√(var + eps)` of `v` (biased variance), accumulated in f64 over eight lanes (so
/// the loops vectorise; the order of the sum differs from a plain left-to-right one only in f64
/// rounding).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn moments(v: &[f32], eps: f32) -> (f64, f64) {
    let c = v.len().max(1) as f64;
    let mean = lane_sum_f64(v, f64::from) / c;
    let var = lane_sum_f64(v, |x| (f64::from(x) - mean).powi(2)) / c;
    (mean, 1.0 / (var + f64::from(eps)).sqrt())
}

/// Σ f(x) over `v` in eight f64 lanes. Generic and always inlined, so `f` is inlined into a loop
/// that vectorises in its caller's target features (through `&dyn Fn` the inlining depended on how
/// the crate happened to be split into codegen units: once lost, it was a call per element and a
/// 14 % share of a toy2d-mlp step).
#[inline(always)]
fn lane_sum_f64(v: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let mut chunks = v.chunks_exact(8);
    for ch in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(ch) {
            *a += f(x);
        }
    }
    acc.iter().sum::<f64>() + chunks.remainder().iter().map(|&x| f(x)).sum::<f64>()
}

/// LayerNorm over the last dimension `D`; `weight` and `bias`, when given, hold `D` values.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
pub fn layer_norm(
    x: &[f32],
    shape: &[usize],
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
) -> Result<Vec<f32>> {
    const OP: &str = "layer_norm";
    check_rank(OP, shape)?;
    check_host_len(OP, "input", x, shape)?;
    check_eps(OP, eps)?;
    let d = shape[shape.len() - 1];
    check_affine_shape(
        OP,
        "weight",
        weight.map(|w| [w.len()]).as_ref().map(|s| &s[..]),
        d,
    )?;
    check_affine_shape(
        OP,
        "bias",
        bias.map(|b| [b.len()]).as_ref().map(|s| &s[..]),
        d,
    )?;
    let mut out = x.to_vec();
    if d == 0 {
        return Ok(out);
    }
    for row in out.chunks_exact_mut(d) {
        let (mean, inv) = moments(row, eps);
        // (x − mean) in f32 loses nothing that matters (the moments are f64); one pass per part,
        // each a loop that vectorises.
        let (m, inv) = (mean as f32, inv as f32);
        row.iter_mut().for_each(|v| *v = (*v - m) * inv);
        if let Some(w) = weight {
            row.iter_mut().zip(w).for_each(|(v, &w)| *v *= w);
        }
        if let Some(b) = bias {
            row.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
        }
    }
    Ok(out)
}

/// PyTorch `GroupNorm(groups, C, eps)` on `[N, C, *spatial]`, then SiLU when `silu` (a UNet resnet
/// block's `SiLU(GroupNorm(x))`); `weight` and `bias`, when given, hold `C` values.
pub fn group_norm(
    x: &[f32],
    shape: &[usize],
    groups: usize,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
    silu: bool,
) -> Result<Vec<f32>> {
    let op = if silu {
        "group_norm_silu"
    } else {
        "group_norm"
    };
    check_rank(op, shape)?;
    check_host_len(op, "input", x, shape)?;
    check_eps(op, eps)?;
    let (_, c, spatial, per_group) = group_layout(op, shape, groups)?;
    check_affine_shape(
        op,
        "weight",
        weight.map(|w| [w.len()]).as_ref().map(|s| &s[..]),
        c,
    )?;
    check_affine_shape(
        op,
        "bias",
        bias.map(|b| [b.len()]).as_ref().map(|s| &s[..]),
        c,
    )?;
    let block = per_group * spatial;
    if block == 0 {
        return Ok(x.to_vec());
    }
    let mut out: Vec<f32> = crate::cpu::alloc::zeroed(x.len(), &|| format!("{op} output"))?;
    // Groups are independent: threads take whole groups.
    crate::cpu::parallel::for_each_chunk(&mut out, block, |first, chunk| {
        for (j, g) in chunk.chunks_exact_mut(block).enumerate() {
            let gi = first + j;
            let xs = &x[gi * block..][..block];
            let (mean, inv) = moments(xs, eps);
            let first_channel = (gi % groups) * per_group;
            let affine = (weight.map(|w| &w[first_channel..][..per_group]), {
                bias.map(|b| &b[first_channel..][..per_group])
            });
            normalize_group(g, xs, spatial, (mean, inv), affine, silu);
        }
    });
    Ok(out)
}

/// One group's output: per channel, y = (x − mean)·(inv·w) + b over its spatial run, then SiLU.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn normalize_group(
    g: &mut [f32],
    xs: &[f32],
    spatial: usize,
    (mean, inv): (f64, f64),
    (weight, bias): (Option<&[f32]>, Option<&[f32]>),
    silu: bool,
) {
    let m = mean as f32;
    let runs = g
        .chunks_exact_mut(spatial.max(1))
        .zip(xs.chunks_exact(spatial.max(1)));
    for (i, (run, xr)) in runs.enumerate() {
        let scale = (inv * f64::from(weight.map_or(1.0, |w| w[i]))) as f32;
        let shift = bias.map_or(0.0, |b| b[i]);
        run.iter_mut()
            .zip(xr)
            .for_each(|(v, &x)| *v = (x - m) * scale + shift);
        if silu {
            run.iter_mut().for_each(|v| *v = activate(Act::Silu, *v));
        }
    }
}
