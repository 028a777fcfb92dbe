//! Per-row losses over the last axis of logits (`shaders/loss.wgsl`): the KL divergence and the
//! cross-entropy that discrete-diffusion training objectives and ELBOs sum.

mod cpu;

use super::{check_u32_len, class_rows, launch};
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, KernelSpec};
use crate::tensor::{DType, Tensor};
use std::sync::LazyLock;

pub(super) const SRC: &str = include_str!("../../../shaders/loss.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    rows: u32,
    k: u32,
    flags: u32,
    _pad: u32,
}
params_layout!(Params {
    rows,
    k,
    flags,
    _pad
});

/// The cross-entropy against ids instead of the KL divergence.
const F_NLL: u32 = 8;

pub(super) static DEFINES: LazyLock<String> = LazyLock::new(|| wgsl_consts![F_NLL]);

pub(super) fn spec() -> KernelSpec<'static> {
    KernelSpec {
        family: "loss",
        source: SRC,
        entry: "row_loss",
        defines: &DEFINES,
        bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
    }
}

/// Per-row `KL(softmax(a) ‖ softmax(b))` over the last axis of two f32 logit tensors `[.., K]` of one
/// shape (normalised log probabilities pass through unchanged): f32 `[..]`. Classes where
/// `softmax(a)` underflows to 0 contribute nothing.
pub fn row_kl(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    const OP: &str = "loss::row_kl";
    let (k, lead, rows) = class_rows(OP, a)?;
    b.expect_dtype(OP, DType::F32)?;
    if a.shape() != b.shape() {
        return Err(Error::shape(
            OP,
            format!("{:?} and {:?} must have one shape", a.shape(), b.shape()),
        ));
    }
    row_loss(OP, Some(a), b, None, k, lead, rows, 0)
}

/// Per-row cross-entropy `−log softmax(logits)[id]` for f32 logits `[.., K]` and u32 ids `[..]`
/// (ids at or above K are read as K − 1; upload ids with [`Tensor::from_indices`] to refuse them).
pub fn row_nll(logits: &Tensor, ids: &Tensor) -> Result<Tensor> {
    const OP: &str = "loss::row_nll";
    let (k, lead, rows) = class_rows(OP, logits)?;
    ids.expect_dtype(OP, DType::U32)?;
    if ids.shape() != lead {
        return Err(Error::shape(
            OP,
            format!(
                "ids {:?} must be the logits' shape {:?} without the class axis",
                ids.shape(),
                logits.shape()
            ),
        ));
    }
    row_loss(OP, None, logits, Some(ids), k, lead, rows, F_NLL)
}

/// `a` and `b` are logits `[.., K]`; the cross-entropy reads only `b` and `ids`, the KL only `a` and
/// `b`.
#[allow(clippy::too_many_arguments)]
fn row_loss(
    op: &'static str,
    a: Option<&Tensor>,
    b: &Tensor,
    ids: Option<&Tensor>,
    k: usize,
    lead: &[usize],
    rows: usize,
    flags: u32,
) -> Result<Tensor> {
    let out = Tensor::empty(b.device(), lead, DType::F32)?;
    if rows == 0 {
        return Ok(out);
    }
    check_u32_len(op, b)?;
    let p = Params {
        rows: rows as u32,
        k: k as u32,
        flags,
        _pad: 0,
    };
    launch(
        op,
        &spec(),
        &p,
        &[a, Some(b), ids],
        &[&out],
        rows as u64,
        move |i, o| cpu::row_loss(&p, i[0], i[1], i[2], o[0]),
    )?;
    Ok(out)
}
