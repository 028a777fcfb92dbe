//! Attention on host memory, for the CPU backend: `softmax(q·kᵀ·scale + mask)·v` per head with the
//! GPU kernel's conventions — an additive key mask `[B, Lk]` where a non-finite value or anything
//! below −1e30 excludes the key, and a query whose keys are all excluded gives zeros — and the same
//! shape checks and typed errors. Both products run on the GEMM; the softmax is f32, as on the GPU.

use super::Layout;
use crate::cpu::math;
use crate::error::Result;
use crate::ops::check_host_len;

/// Whether an additive mask value excludes its key.
fn excluded(m: f32) -> bool {
    !m.is_finite() || m < -1.0e30
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
    // Per (batch, head): S = scale·Q Kᵀ and O = softmax(S + mask) V as two strided GEMMs on the
    // heads' columns in place (row stride H·D), the softmax in f32 between them.
    let mut p = vec![0f32; lq * lk];
    for bi in 0..b {
        for h in 0..heads {
            let (qo, ko) = (bi * lq * hd + h * d, bi * lk * hd + h * d);
            if lk > 0 {
                // SAFETY: `Layout::new` checked q is [B, Lq, H·D] and k, v are [B, Lk, H·D], and
                // `check_host_len` that the slices hold them, so Q (lq×d, row stride hd from qo),
                // Kᵀ (d×lk, column stride hd from ko) and V (lk×d from ko) lie inside q, k, v; S is
                // lq×lk row-major in `p`.
                unsafe {
                    matrixmultiply::sgemm(
                        lq,
                        d,
                        lk,
                        scale,
                        q[qo..].as_ptr(),
                        hd as isize,
                        1,
                        k[ko..].as_ptr(),
                        1,
                        hd as isize,
                        0.0,
                        p.as_mut_ptr(),
                        lk as isize,
                        1,
                    );
                }
            }
            for row in p.chunks_exact_mut(lk.max(1)).take(lq) {
                if let Some((m, _)) = mask {
                    for (s, &mv) in row.iter_mut().zip(&m[bi * lk..][..lk]) {
                        *s = if excluded(mv) {
                            f32::NEG_INFINITY
                        } else {
                            *s + mv
                        };
                    }
                }
                let max = row.iter().fold(f32::NEG_INFINITY, |a, &s| a.max(s));
                if max == f32::NEG_INFINITY {
                    row.fill(0.0); // every key excluded: zeros, as the kernel writes
                    continue;
                }
                let mut z = 0.0f32;
                for s in row.iter_mut() {
                    *s = math::exp(*s - max);
                    z += *s;
                }
                let inv = 1.0 / z;
                row.iter_mut().for_each(|s| *s *= inv);
            }
            if lk > 0 {
                // SAFETY: as above; O (lq×d, row stride hd from qo) lies inside `out`, which has
                // q's shape, and P is lq×lk row-major.
                unsafe {
                    matrixmultiply::sgemm(
                        lq,
                        lk,
                        d,
                        1.0,
                        p.as_ptr(),
                        lk as isize,
                        1,
                        v[ko..].as_ptr(),
                        hd as isize,
                        1,
                        0.0,
                        out[qo..].as_mut_ptr(),
                        hd as isize,
                        1,
                    );
                }
            }
        }
    }
    Ok(out)
}
