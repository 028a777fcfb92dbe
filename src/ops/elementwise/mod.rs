//! Elementwise and broadcasting ops: activations, arithmetic with numpy broadcasting, FiLM.

pub mod cpu;

use super::{broadcast_shape, broadcast_strides, check_u32_len, host_op_f32, pad_shape, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::tensor::{same_device, DType, Device, Tensor};
use std::sync::LazyLock;

pub(super) const SRC: &str = include_str!("../../../shaders/elementwise.wgsl");

/// Activations (and `exp`). GELU is the exact erf form (PyTorch's default); `GeluTanh` the tanh form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    Identity = 0,
    Silu = 1,
    Gelu = 2,
    GeluTanh = 3,
    Relu = 4,
    Tanh = 5,
    Sigmoid = 6,
    Exp = 7,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    /// `alpha·a + beta·b`
    Axpby = 4,
    Max = 5,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    n: u32,
    op: u32,
    rank: u32,
    _pad0: u32,
    alpha: f32,
    beta: f32,
    _pad1: [u32; 2],
    shape: [u32; 8],
    sa: [u32; 8],
    sb: [u32; 8],
    sc: [u32; 8],
}
params_layout!(Params {
    n,
    op,
    rank,
    _pad0,
    alpha,
    beta,
    _pad1,
    shape,
    sa,
    sb,
    sc
});

fn params(out: &[usize], op: u32, alpha: f32, beta: f32) -> Params {
    Params {
        n: out.iter().product::<usize>() as u32,
        op,
        rank: out.len() as u32,
        _pad0: 0,
        alpha,
        beta,
        _pad1: [0; 2],
        shape: pad_shape(out),
        sa: [0; 8],
        sb: [0; 8],
        sc: [0; 8],
    }
}

/// The constants `shaders/elementwise.wgsl` shares with this driver, prepended to it.
pub(super) static DEFINES: LazyLock<String> = LazyLock::new(|| {
    wgsl_consts![
        OP_AFFINE = Unary::Identity as u32,
        OP_SILU = Unary::Silu as u32,
        OP_GELU = Unary::Gelu as u32,
        OP_GELU_TANH = Unary::GeluTanh as u32,
        OP_RELU = Unary::Relu as u32,
        OP_TANH = Unary::Tanh as u32,
        OP_SIGMOID = Unary::Sigmoid as u32,
        OP_EXP = Unary::Exp as u32,
        OP_ADD = Binary::Add as u32,
        OP_SUB = Binary::Sub as u32,
        OP_MUL = Binary::Mul as u32,
        OP_DIV = Binary::Div as u32,
        OP_AXPBY = Binary::Axpby as u32,
        OP_MAX = Binary::Max as u32,
    ]
});

fn spec(entry: &'static str, bindings: &'static [Access]) -> KernelSpec<'static> {
    KernelSpec {
        family: "elementwise",
        source: SRC,
        entry,
        defines: &DEFINES,
        bindings,
    }
}

fn f32s(op: &'static str, ts: &[&Tensor]) -> Result<()> {
    for t in ts {
        t.expect_dtype(op, DType::F32)?;
        check_u32_len(op, t)?;
    }
    Ok(())
}

/// `f(alpha·x + beta)`.
pub fn unary_affine(x: &Tensor, op: Unary, alpha: f32, beta: f32) -> Result<Tensor> {
    f32s("unary", &[x])?;
    if let Device::Cpu(_) = x.device() {
        return host_op_f32("unary", x.device(), x.shape(), &[x], move |i| {
            Ok(cpu::unary_affine(i[0], op, alpha, beta))
        });
    }
    let out = Tensor::empty(x.gpu()?, x.shape(), DType::F32)?;
    let p = params(x.shape(), op as u32, alpha, beta);
    x.gpu()?.dispatch(
        &spec("unary", &[Access::Read, Access::ReadWrite]),
        &p,
        &[x.buffer()?, out.buffer()?],
        Gpu::grid_1d(x.len() as u64, WG),
    )?;
    Ok(out)
}

pub fn unary(x: &Tensor, op: Unary) -> Result<Tensor> {
    unary_affine(x, op, 1.0, 0.0)
}

pub fn silu(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Silu)
}
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Gelu)
}
pub fn relu(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Relu)
}
/// `alpha·x + beta`.
pub fn affine(x: &Tensor, alpha: f32, beta: f32) -> Result<Tensor> {
    unary_affine(x, Unary::Identity, alpha, beta)
}

fn binary_op(a: &Tensor, b: &Tensor, op: Binary, alpha: f32, beta: f32) -> Result<Tensor> {
    f32s("binary", &[a, b])?;
    let shape = broadcast_shape("binary", a.shape(), b.shape())?;
    if let Device::Cpu(_) = same_device("binary", &[a, b])? {
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        return host_op_f32("binary", a.device(), &shape, &[a, b], move |i| {
            cpu::binary(i[0], &sa, i[1], &sb, op, alpha, beta).map(|(v, _)| v)
        });
    }
    let out = Tensor::empty(a.gpu()?, &shape, DType::F32)?;
    check_u32_len("binary", &out)?;
    let mut p = params(&shape, op as u32, alpha, beta);
    p.sa = broadcast_strides(a.shape(), &shape);
    p.sb = broadcast_strides(b.shape(), &shape);
    a.gpu()?.dispatch(
        &spec("binary", &[Access::Read, Access::Read, Access::ReadWrite]),
        &p,
        &[a.buffer()?, b.buffer()?, out.buffer()?],
        Gpu::grid_1d(out.len() as u64, WG),
    )?;
    Ok(out)
}

pub fn binary(a: &Tensor, b: &Tensor, op: Binary) -> Result<Tensor> {
    if op == Binary::Axpby {
        return Err(Error::Invalid("use axpby() for Binary::Axpby".into()));
    }
    binary_op(a, b, op, 1.0, 1.0)
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary_op(a, b, Binary::Add, 1.0, 1.0)
}
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary_op(a, b, Binary::Sub, 1.0, 1.0)
}
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary_op(a, b, Binary::Mul, 1.0, 1.0)
}
pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary_op(a, b, Binary::Div, 1.0, 1.0)
}
/// `alpha·a + beta·b` with broadcasting.
pub fn axpby(alpha: f32, a: &Tensor, beta: f32, b: &Tensor) -> Result<Tensor> {
    binary_op(a, b, Binary::Axpby, alpha, beta)
}

/// `scale` and `shift` of a FiLM must broadcast to `h` itself.
fn check_film(h: &[usize], scale: &[usize], shift: &[usize]) -> Result<()> {
    let s1 = broadcast_shape("film", h, scale)?;
    let s2 = broadcast_shape("film", h, shift)?;
    if s1 != h || s2 != h {
        return Err(Error::shape(
            "film",
            format!("scale {scale:?} and shift {shift:?} must broadcast to h {h:?}"),
        ));
    }
    Ok(())
}

/// FiLM `(1 + scale)·h + shift`, then `act` (use `Unary::Identity` for none). `scale` and `shift`
/// broadcast against `h` (e.g. `[N, C, 1, 1]` against `[N, C, H, W]`); the output has `h`'s shape.
pub fn film(h: &Tensor, scale: &Tensor, shift: &Tensor, act: Unary) -> Result<Tensor> {
    f32s("film", &[h, scale, shift])?;
    check_film(h.shape(), scale.shape(), shift.shape())?;
    if let Device::Cpu(_) = same_device("film", &[h, scale, shift])? {
        let shapes = [h.shape(), scale.shape(), shift.shape()].map(<[usize]>::to_vec);
        return host_op_f32(
            "film",
            h.device(),
            h.shape(),
            &[h, scale, shift],
            move |i| {
                let [hs, ss, ts] = &shapes;
                cpu::film(i[0], hs, i[1], ss, i[2], ts, act)
            },
        );
    }
    let out = Tensor::empty(h.gpu()?, h.shape(), DType::F32)?;
    let mut p = params(h.shape(), act as u32, 1.0, 0.0);
    p.sa = broadcast_strides(h.shape(), h.shape());
    p.sb = broadcast_strides(scale.shape(), h.shape());
    p.sc = broadcast_strides(shift.shape(), h.shape());
    h.gpu()?.dispatch(
        &spec(
            "film",
            &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
        ),
        &p,
        &[h.buffer()?, scale.buffer()?, shift.buffer()?, out.buffer()?],
        Gpu::grid_1d(h.len() as u64, WG),
    )?;
    Ok(out)
}
