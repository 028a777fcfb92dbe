//! Multi-head scaled dot-product attention over `[B, L, H·D]` projections, with an optional additive
//! key mask (padded graph nodes, padded sequence positions).
//!
//! The kernel is flash-style (see `shaders/attention.wgsl`): memory stays O(L·H·D) whatever the
//! sequence length, because scores live only in registers, a key block at a time.

pub mod cpu;
mod wide;

use super::check_u32_len;
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, KernelSpec, MAX_GROUPS_PER_DIM};
use crate::tensor::{same_device, DType, Device, Tensor};
use std::sync::LazyLock;

pub(super) const SRC: &str = include_str!("../../../shaders/attention.wgsl");

/// The largest head dimension of the fused GPU kernel: the key and value tiles for D = 128 fill
/// WebGPU's guaranteed 16 KiB of workgroup memory. Wider heads materialise the scores (`wide.rs`).
pub const MAX_HEAD_DIM: usize = 128;

/// Query rows per workgroup; matches `BQ` in the shader.
const ROWS_PER_GROUP: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    batch: u32,
    lq: u32,
    lk: u32,
    heads: u32,
    d: u32,
    hd: u32,
    has_mask: u32,
    scale: f32,
}
params_layout!(Params {
    batch,
    lq,
    lk,
    heads,
    d,
    hd,
    has_mask,
    scale
});

/// The kernel variant for head dimension `d`: register arrays sized to the next of 32, 64, 128.
/// `BQ`, the query rows of one workgroup, comes from [`ROWS_PER_GROUP`], which the dispatch uses.
pub(super) fn defines(d: usize) -> &'static str {
    static VARIANTS: LazyLock<[String; 3]> = LazyLock::new(|| {
        [32u32, 64, 128].map(|dmax| {
            let bq = ROWS_PER_GROUP as u32;
            format!("const DMAX: u32 = {dmax}u;\n{}", wgsl_consts![BQ = bq])
        })
    });
    match d {
        0..=32 => &VARIANTS[0],
        33..=64 => &VARIANTS[1],
        _ => &VARIANTS[2],
    }
}

/// `softmax(q·kᵀ·scale + mask)·v` per head. `q` is `[B, Lq, H·D]`, `k` and `v` are `[B, Lk, H·D]`,
/// the result is `[B, Lq, H·D]`; `scale` defaults to `1/√D`. Up to [`MAX_HEAD_DIM`] the GPU runs the
/// fused kernel; wider heads, three ops over the materialised scores.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: Option<f32>,
) -> Result<Tensor> {
    run("attention", q, k, v, heads, scale, None)
}

/// [`attention`] with an additive key mask `[B, Lk]`: 0 keeps a key, −∞ (or anything below −1e30)
/// removes it, other values are added to its scores. A query whose keys are all removed gets a zero
/// output (PyTorch would give NaN).
pub fn attention_masked(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: Option<f32>,
    mask: &Tensor,
) -> Result<Tensor> {
    run("attention_masked", q, k, v, heads, scale, Some(mask))
}

/// The checked shapes of one attention call: batch, query and key lengths, width H·D, head dimension
/// and the scale (1/√D unless given).
pub(super) struct Layout {
    pub b: usize,
    pub lq: usize,
    pub lk: usize,
    pub hd: usize,
    pub d: usize,
    pub scale: f32,
}

impl Layout {
    pub fn new(
        op: &'static str,
        q: &[usize],
        k: &[usize],
        v: &[usize],
        heads: usize,
        scale: Option<f32>,
        mask: Option<&[usize]>,
    ) -> Result<Layout> {
        if q.len() != 3 || k.len() != 3 || k != v {
            return Err(Error::shape(
                op,
                format!("expects q [B, Lq, H·D] and k, v [B, Lk, H·D], got {q:?}, {k:?}, {v:?}"),
            ));
        }
        let (b, lq, hd) = (q[0], q[1], q[2]);
        let lk = k[1];
        if k[0] != b || k[2] != hd {
            return Err(Error::shape(
                op,
                format!("q {q:?} and k {k:?} differ in batch or width"),
            ));
        }
        if heads == 0 || hd % heads != 0 {
            return Err(Error::shape(
                op,
                format!("width {hd} cannot be split into {heads} heads"),
            ));
        }
        let d = hd / heads;
        if let Some(m) = mask {
            if m != [b, lk] {
                return Err(Error::shape(
                    op,
                    format!("mask has shape {m:?}, expected [{b}, {lk}]"),
                ));
            }
        }
        let scale = scale.unwrap_or(1.0 / (d.max(1) as f32).sqrt());
        if !scale.is_finite() {
            return Err(Error::Invalid(format!("{op}: scale {scale} is not finite")));
        }
        Ok(Layout {
            b,
            lq,
            lk,
            hd,
            d,
            scale,
        })
    }
}

fn run(
    op: &'static str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: Option<f32>,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    for t in [q, k, v].into_iter().chain(mask) {
        t.expect_dtype(op, DType::F32)?;
        check_u32_len(op, t)?;
    }
    let Layout {
        b,
        lq,
        lk,
        hd,
        d,
        scale,
    } = Layout::new(
        op,
        q.shape(),
        k.shape(),
        v.shape(),
        heads,
        scale,
        mask.map(|m| m.shape()),
    )?;
    let all: Vec<&Tensor> = [q, k, v].into_iter().chain(mask).collect();
    if let Device::Cpu(_) = same_device(op, &all)? {
        let shapes: Vec<Vec<usize>> = all.iter().map(|t| t.shape().to_vec()).collect();
        return super::host_op_f32(op, q.device(), q.shape(), &all, move |i| {
            let mask = shapes.get(3).map(|s| (i[3], &s[..]));
            cpu::attention(
                (i[0], &shapes[0]),
                (i[1], &shapes[1]),
                (i[2], &shapes[2]),
                heads,
                Some(scale),
                mask,
            )
        });
    }
    if d > MAX_HEAD_DIM {
        return wide::attention_composed(q, k, v, heads, scale, mask);
    }
    if b * heads > MAX_GROUPS_PER_DIM as usize {
        return Err(Error::Invalid(format!(
            "{op}: batch × heads = {} exceeds {MAX_GROUPS_PER_DIM}",
            b * heads
        )));
    }
    let out = Tensor::empty(q.gpu()?, q.shape(), DType::F32)?;
    if out.is_empty() {
        return Ok(out);
    }
    let p = Params {
        batch: b as u32,
        lq: lq as u32,
        lk: lk as u32,
        heads: heads as u32,
        d: d as u32,
        hd: hd as u32,
        has_mask: mask.is_some() as u32,
        scale,
    };
    // Without a mask, `q` stands in for it; the kernel never reads it.
    let m = mask.unwrap_or(q);
    let spec = KernelSpec {
        family: "attention",
        source: SRC,
        entry: "attention",
        defines: defines(d),
        bindings: &[
            Access::Read,
            Access::Read,
            Access::Read,
            Access::Read,
            Access::ReadWrite,
        ],
    };
    q.gpu()?.dispatch(
        &spec,
        &p,
        &[
            q.buffer()?,
            k.buffer()?,
            v.buffer()?,
            m.buffer()?,
            out.buffer()?,
        ],
        [lq.div_ceil(ROWS_PER_GROUP) as u32, (b * heads) as u32, 1],
    )?;
    Ok(out)
}
