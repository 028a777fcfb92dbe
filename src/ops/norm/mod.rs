//! Row normalisations: softmax and log-softmax over the last dimension, LayerNorm, and GroupNorm with
//! an optional fused SiLU (a UNet resnet block always follows GroupNorm with SiLU, so fusing saves a
//! full read and write of the activation).
//!
//! Semantics are PyTorch's: biased variance, `eps` inside the square root, affine parameters per
//! element of the last dimension (LayerNorm) or per channel (GroupNorm).

pub mod cpu;

use super::{check_u32_len, host_op_f32, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::tensor::{same_device, DType, Device, Tensor};
use std::sync::LazyLock;

pub(super) const SRC: &str = include_str!("../../../shaders/norm.wgsl");

/// Softmax rows up to this long get one invocation each rather than a workgroup: a 256-wide
/// reduction over a few classes would leave nearly every invocation idle.
const SHORT_ROW: usize = 32;

/// LayerNorm rows up to this long get one invocation each when there are at least 64 of them.
const SHORT_NORM_ROW: usize = 1024;

const FLAG_WEIGHT: u32 = 1;
const FLAG_BIAS: u32 = 2;
const FLAG_SILU: u32 = 4;
const FLAG_LOG: u32 = 8;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    rows: u32,
    n: u32,
    flags: u32,
    eps: f32,
    spatial: u32,
    channels_per_group: u32,
    groups: u32,
    _pad: u32,
}
params_layout!(Params {
    rows,
    n,
    flags,
    eps,
    spatial,
    channels_per_group,
    groups,
    _pad
});

/// The constants `shaders/norm.wgsl` shares with this driver, prepended to it.
pub(super) static DEFINES: LazyLock<String> =
    LazyLock::new(|| wgsl_consts![FLAG_WEIGHT, FLAG_BIAS, FLAG_SILU, FLAG_LOG, WGN = WG]);

fn spec(entry: &'static str, bindings: &'static [Access]) -> KernelSpec<'static> {
    KernelSpec {
        family: "norm",
        source: SRC,
        entry,
        defines: &DEFINES,
        bindings,
    }
}

fn check_input(op: &'static str, x: &Tensor) -> Result<()> {
    x.expect_dtype(op, DType::F32)?;
    check_u32_len(op, x)?;
    check_rank(op, x.shape())
}

fn check_rank(op: &'static str, shape: &[usize]) -> Result<()> {
    if shape.is_empty() {
        return Err(Error::shape(op, "needs at least one dimension"));
    }
    Ok(())
}

fn check_eps(op: &'static str, eps: f32) -> Result<()> {
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(Error::Invalid(format!(
            "{op}: eps must be finite and non-negative, got {eps}"
        )));
    }
    Ok(())
}

/// An optional affine parameter must be an f32 vector of `len` elements.
fn check_affine(op: &'static str, what: &str, t: Option<&Tensor>, len: usize) -> Result<u32> {
    let Some(t) = t else { return Ok(0) };
    t.expect_dtype(op, DType::F32)?;
    check_affine_shape(op, what, Some(t.shape()), len)
}

fn check_affine_shape(
    op: &'static str,
    what: &str,
    shape: Option<&[usize]>,
    len: usize,
) -> Result<u32> {
    let Some(shape) = shape else { return Ok(0) };
    if shape != [len] {
        return Err(Error::shape(
            op,
            format!("{what} has shape {shape:?}, expected [{len}]"),
        ));
    }
    Ok(1)
}

/// How GroupNorm splits `[N, C, *spatial]`: (N, C, spatial size, channels per group), checked.
fn group_layout(
    op: &'static str,
    shape: &[usize],
    groups: usize,
) -> Result<(usize, usize, usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::shape(
            op,
            format!("expects [N, C, *spatial], got {shape:?}"),
        ));
    }
    let (n, c) = (shape[0], shape[1]);
    if groups == 0 || c % groups != 0 {
        return Err(Error::shape(
            op,
            format!("{c} channels cannot be split into {groups} groups"),
        ));
    }
    Ok((n, c, shape[2..].iter().product(), c / groups))
}

/// The device of `x` and its optional affine parameters (all on one).
fn on_device<'a>(
    op: &'static str,
    x: &'a Tensor,
    weight: Option<&'a Tensor>,
    bias: Option<&'a Tensor>,
) -> Result<&'a Device> {
    let ts: Vec<&Tensor> = [Some(x), weight, bias].into_iter().flatten().collect();
    same_device(op, &ts)
}

/// A norm on the CPU backend: `f(x, weight, bias)` over `x` and the affine parameters given.
fn host_norm<F>(
    op: &'static str,
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    f: F,
) -> Result<Tensor>
where
    F: FnOnce(&[f32], Option<&[f32]>, Option<&[f32]>) -> Result<Vec<f32>> + Send + 'static,
{
    let ins: Vec<&Tensor> = [Some(x), weight, bias].into_iter().flatten().collect();
    let (has_w, has_b) = (weight.is_some(), bias.is_some());
    host_op_f32(op, x.device(), x.shape(), &ins, move |i| {
        let w = has_w.then(|| i[1]);
        let b = has_b.then(|| i[1 + usize::from(has_w)]);
        f(i[0], w, b)
    })
}

fn row_softmax(x: &Tensor, log: bool) -> Result<Tensor> {
    let op = if log { "log_softmax" } else { "softmax" };
    check_input(op, x)?;
    if let Device::Cpu(_) = x.device() {
        let shape = x.shape().to_vec();
        return host_op_f32(op, x.device(), x.shape(), &[x], move |i| {
            if log {
                cpu::log_softmax(i[0], &shape)
            } else {
                cpu::softmax(i[0], &shape)
            }
        });
    }
    let out = Tensor::empty(x.gpu()?, x.shape(), DType::F32)?;
    if x.is_empty() {
        return Ok(out);
    }
    let n = *x.shape().last().expect("rank checked");
    let rows = x.len() / n;
    let p = Params {
        rows: rows as u32,
        n: n as u32,
        flags: if log { FLAG_LOG } else { 0 },
        eps: 0.0,
        spatial: 1,
        channels_per_group: 1,
        groups: 1,
        _pad: 0,
    };
    let (entry, grid) = if n <= SHORT_ROW {
        ("softmax_short", Gpu::grid_1d(rows as u64, WG))
    } else {
        ("softmax", Gpu::grid_1d(rows as u64, 1))
    };
    x.gpu()?.dispatch(
        &spec(entry, &[Access::Read, Access::ReadWrite]),
        &p,
        &[x.buffer()?, out.buffer()?],
        grid,
    )?;
    Ok(out)
}

/// Softmax over the last dimension (max-subtracted, so any finite logits are safe).
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    row_softmax(x, false)
}

/// `x − logsumexp(x)` over the last dimension.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    row_softmax(x, true)
}

/// Shared driver of LayerNorm and GroupNorm: `rows` contiguous rows of `n` elements each.
fn normalise(
    entry: &'static str,
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    mut p: Params,
) -> Result<Tensor> {
    let out = Tensor::empty(x.gpu()?, x.shape(), DType::F32)?;
    if x.is_empty() {
        return Ok(out);
    }
    // An absent parameter binds `x` in its place; the kernel never reads it (flag off).
    let w = weight.unwrap_or(x);
    let b = bias.unwrap_or(x);
    p.flags |= if weight.is_some() { FLAG_WEIGHT } else { 0 };
    p.flags |= if bias.is_some() { FLAG_BIAS } else { 0 };
    // Many short LayerNorm rows: a row per invocation beats a workgroup per row (see the shader).
    let (entry, grid) = if entry == "layer_norm" && p.n as usize <= SHORT_NORM_ROW && p.rows >= 64 {
        ("layer_norm_short", Gpu::grid_1d(p.rows as u64, WG))
    } else {
        (entry, Gpu::grid_1d(p.rows as u64, 1))
    };
    x.gpu()?.dispatch(
        &spec(
            entry,
            &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
        ),
        &p,
        &[x.buffer()?, w.buffer()?, b.buffer()?, out.buffer()?],
        grid,
    )?;
    Ok(out)
}

/// LayerNorm over the last dimension `D`; `weight` and `bias`, when given, have shape `[D]`.
pub fn layer_norm(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<Tensor> {
    const OP: &str = "layer_norm";
    check_input(OP, x)?;
    check_eps(OP, eps)?;
    let n = *x.shape().last().expect("rank checked");
    check_affine(OP, "weight", weight, n)?;
    check_affine(OP, "bias", bias, n)?;
    if let Device::Cpu(_) = on_device(OP, x, weight, bias)? {
        let shape = x.shape().to_vec();
        return host_norm(OP, x, weight, bias, move |x, w, b| {
            cpu::layer_norm(x, &shape, w, b, eps)
        });
    }
    let rows = x.len().checked_div(n).unwrap_or(0);
    let p = Params {
        rows: rows as u32,
        n: n as u32,
        flags: 0,
        eps,
        spatial: 1,
        channels_per_group: 1,
        groups: 1,
        _pad: 0,
    };
    normalise("layer_norm", x, weight, bias, p)
}

fn group_norm_impl(
    op: &'static str,
    x: &Tensor,
    groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
    silu: bool,
) -> Result<Tensor> {
    check_input(op, x)?;
    check_eps(op, eps)?;
    let (n, c, spatial, channels_per_group) = group_layout(op, x.shape(), groups)?;
    check_affine(op, "weight", weight, c)?;
    check_affine(op, "bias", bias, c)?;
    if let Device::Cpu(_) = on_device(op, x, weight, bias)? {
        let shape = x.shape().to_vec();
        return host_norm(op, x, weight, bias, move |x, w, b| {
            cpu::group_norm(x, &shape, groups, w, b, eps, silu)
        });
    }
    let p = Params {
        rows: (n * groups) as u32,
        n: (channels_per_group * spatial) as u32,
        flags: if silu { FLAG_SILU } else { 0 },
        eps,
        spatial: spatial as u32,
        channels_per_group: channels_per_group as u32,
        groups: groups as u32,
        _pad: 0,
    };
    normalise("group_norm", x, weight, bias, p)
}

/// PyTorch `GroupNorm(groups, C, eps)` on `[N, C, *spatial]`; `weight`/`bias` have shape `[C]`.
pub fn group_norm(
    x: &Tensor,
    groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<Tensor> {
    group_norm_impl("group_norm", x, groups, weight, bias, eps, false)
}

/// `silu(group_norm(x))` in one pass, as a UNet resnet block applies it.
pub fn group_norm_silu(
    x: &Tensor,
    groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<Tensor> {
    group_norm_impl("group_norm_silu", x, groups, weight, bias, eps, true)
}
