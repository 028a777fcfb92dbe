//! Attention with heads wider than the fused kernel holds ([`super::MAX_HEAD_DIM`]) on the GPU:
//! the scores materialised, as three ops — `S = scale·Q Kᵀ` (batched over batch × heads),
//! `softmax(S + mask)` and `S V`. The published DDPM UNets use one head as wide as the block (up to
//! 512 channels at 16 × 16), where S is small; a VAE decoder's one head over 64 × 64 latents makes
//! S 67 MB per image, so where S would not fit one storage binding the queries are split into
//! chunks (per batch entry, then rows) that do.

use crate::error::{Error, Result};
use crate::ops::elementwise as ew;
use crate::ops::layout::permute;
use crate::ops::layout::{concat, slice};
use crate::ops::matmul::{matmul, Matmul};
use crate::ops::norm::softmax;
use crate::tensor::Tensor;

/// `[B, L, H·D]` → `[B, H, L, D]` (a copy unless there is one head).
fn heads_first(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, l, hd) = (x.dim(0), x.dim(1), x.dim(2));
    let x = x.reshape(&[b, l, heads, hd / heads])?;
    if heads == 1 {
        return x.reshape(&[b, 1, l, hd]);
    }
    permute(&x, &[0, 2, 1, 3])
}

/// The checked call of [`super::attention`] / [`super::attention_masked`] (shapes already
/// validated by `Layout`), for any head width. A query whose keys are all masked gets NaN here, not
/// the fused kernel's zeros.
pub(super) fn attention_composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f32,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, lq, lk) = (q.dim(0), q.dim(1), k.dim(1));
    let limit = q.gpu()?.max_binding();
    let row = (heads * lk * 4) as u64;
    if (b * lq) as u64 * row <= limit {
        return composed(q, k, v, heads, scale, mask);
    }
    // Query rows per chunk so that one batch entry's scores fit.
    let rows = (limit / row.max(1)) as usize;
    if rows == 0 {
        return Err(Error::Invalid(format!(
            "attention: one query's scores over {lk} keys in {heads} heads need {row} bytes, more \
             than the device's {limit} per buffer"
        )));
    }
    let mut per_batch = Vec::with_capacity(b);
    for i in 0..b {
        let one = |t: &Tensor| slice(t, 0, i, 1);
        let (kb, vb) = (one(k)?, one(v)?);
        let mb = mask.map(one).transpose()?;
        let mut parts = Vec::new();
        let mut start = 0;
        while start < lq {
            let len = rows.min(lq - start);
            let qc = slice(&one(q)?, 1, start, len)?;
            parts.push(composed(&qc, &kb, &vb, heads, scale, mb.as_ref())?);
            start += len;
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        per_batch.push(concat(&refs, 1)?);
    }
    let refs: Vec<&Tensor> = per_batch.iter().collect();
    concat(&refs, 0)
}

/// One composed pass (its scores fit a binding).
fn composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f32,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, lq, hd) = (q.dim(0), q.dim(1), q.dim(2));
    let lk = k.dim(1);
    let (qh, kh, vh) = (
        heads_first(q, heads)?,
        heads_first(k, heads)?,
        heads_first(v, heads)?,
    );
    let s = matmul(
        &qh,
        &kh,
        &Matmul {
            trans_b: true,
            alpha: scale,
            ..Default::default()
        },
    )?;
    let s = match mask {
        Some(m) => ew::add(&s, &m.reshape(&[b, 1, 1, lk])?)?,
        None => s,
    };
    let o = matmul(&softmax(&s)?, &vh, &Matmul::default())?;
    if heads == 1 {
        return o.reshape(&[b, lq, hd]);
    }
    permute(&o, &[0, 2, 1, 3])?.reshape(&[b, lq, hd])
}
