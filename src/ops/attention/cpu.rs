//! Attention on host memory, for the CPU backend: `softmax(q·kᵀ·scale + mask)·v` per head with the
//! GPU kernel's conventions — an additive key mask `[B, Lk]` where a non-finite value or anything
//! below −1e30 excludes the key, and a query whose keys are all excluded gives zeros — and the same
//! shape checks and typed errors. Both products run on the GEMM; the softmax is f32, as on the GPU.

use super::Layout;
use multiversion::multiversion;

use crate::cpu::gemm::{gemm_into, Strided};
use crate::cpu::math;
use crate::error::Result;
use crate::ops::check_host_len;

/// Whether an additive mask value excludes its key.
fn excluded(m: f32) -> bool {
    !m.is_finite() || m < -1.0e30
}

/// Each `lk`-wide row of `p` becomes softmax(row + mask), in f32; a row whose keys are all excluded
/// becomes zeros, as the kernel writes. The exponentials run over the whole block at once, not row
/// by row: rows as short as a word's 12 keys or a 7×7 image's 49 left much of each row's loop in its
/// scalar remainder.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx512bw+fma", "x86_64+avx2+fma"))]
fn softmax_rows(p: &mut [f32], lk: usize, mask: Option<&[f32]>) {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    let lk = lk.max(1);
    for row in p.chunks_exact_mut(lk) {
        if let Some(m) = mask {
            for (s, &mv) in row.iter_mut().zip(m) {
                *s = if excluded(mv) {
                    f32::NEG_INFINITY
                } else {
                    *s + mv
                };
            }
        }
        let max = math::lane_max(row);
        // A row with every key excluded stays −∞, its exponentials 0 (−∞ − −∞ would be NaN).
        let max = if max == f32::NEG_INFINITY { 0.0 } else { max };
        row.iter_mut().for_each(|s| *s -= max);
    }
    p.iter_mut().for_each(|s| *s = math::exp_with::<FMA>(*s));
    for row in p.chunks_exact_mut(lk) {
        // A kept key contributes e⁰ = 1, so a sum of 0 means every key was excluded.
        let z = math::lane_sum(row);
        let inv = if z > 0.0 { 1.0 / z } else { 0.0 };
        row.iter_mut().for_each(|s| *s *= inv);
    }
}

/// `q` is `[B, Lq, H·D]`, `k` and `v` `[B, Lk, H·D]` (shapes given separately), `mask` `[B, Lk]`;
/// the result has `q`'s shape.
pub fn attention(
    q: (&[f32], &[usize]),
    k: (&[f32], &[usize]),
    v: (&[f32], &[usize]),
    heads: usize,
    scale: Option<f32>,
    mask: Option<(&[f32], &[usize])>,
) -> Result<Vec<f32>> {
    let op = if mask.is_some() {
        "attention_masked"
    } else {
        "attention"
    };
    let Layout {
        b,
        lq,
        lk,
        hd,
        d,
        scale,
    } = Layout::new(op, q.1, k.1, v.1, heads, scale, mask.map(|m| m.1))?;
    for (what, (data, shape)) in [("q", q), ("k", k), ("v", v)]
        .into_iter()
        .chain(mask.map(|m| ("mask", m)))
    {
        check_host_len(op, what, data, shape)?;
    }
    let (q, k, v) = (q.0, k.0, v.0);
    let mut out = vec![0f32; b * lq * hd];
    if d == 0 || lq == 0 {
        return Ok(out);
    }
    // Per (batch, head): S = scale·Q Kᵀ and O = softmax(S + mask) V as two GEMMs reading the heads'
    // columns in place (row stride H·D), the softmax in f32 between them; O is copied into its
    // head's columns. Batch entries are independent: large batches split across the pool's
    // threads (each (batch, head) product alone is too small for the GEMM to thread).
    let unit = lq * hd;
    crate::cpu::parallel::for_each_chunk(&mut out, unit, |first, chunk| {
        let mut p = vec![0f32; lq * lk];
        let mut o = vec![0f32; lq * d];
        for (j, ob) in chunk.chunks_exact_mut(unit).enumerate() {
            let bi = first + j;
            for h in 0..heads {
                let (qo, ko) = (bi * lq * hd + h * d, bi * lk * hd + h * d);
                // Q (lq×d) and Kᵀ (d×lk) read in place from the heads' columns (row stride H·D).
                let qm = Strided::rows_strided(&q[qo..], lq, d, hd);
                let km = Strided::rows_strided(&k[ko..], lk, d, hd);
                gemm_into(&mut p, qm, km.t(), scale, None);
                softmax_rows(&mut p, lk, mask.map(|(m, _)| &m[bi * lk..][..lk]));
                let vm = Strided::rows_strided(&v[ko..], lk, d, hd);
                gemm_into(&mut o, Strided::rows(&p, lq, lk), vm, 1.0, None);
                for (dst, src) in ob[h * d..].chunks_mut(hd).zip(o.chunks_exact(d)) {
                    dst[..d].copy_from_slice(src);
                }
            }
        }
    });
    Ok(out)
}
