//! Attention on host memory, for the CPU backend: `softmax(q·kᵀ·scale + mask)·v` per head with the
//! GPU kernel's conventions — an additive key mask `[B, Lk]` where a non-finite value or anything
//! below −1e30 excludes the key, and a query whose keys are all excluded gives zeros — and the same
//! shape checks and typed errors. Scores and sums accumulate in f64.

use super::Layout;
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
    let mut scores = vec![0f64; lk];
    let mut acc = vec![0f64; d];
    for bi in 0..b {
        for h in 0..heads {
            for i in 0..lq {
                let qi = &q[(bi * lq + i) * hd + h * d..][..d];
                let mut max = f64::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    let m = mask.map_or(0.0, |m| m.0[bi * lk + j]);
                    *s = if excluded(m) {
                        f64::NEG_INFINITY
                    } else {
                        let kj = &k[(bi * lk + j) * hd + h * d..][..d];
                        let dot: f64 = qi
                            .iter()
                            .zip(kj)
                            .map(|(&a, &c)| f64::from(a) * f64::from(c))
                            .sum();
                        dot * f64::from(scale) + f64::from(m)
                    };
                    max = max.max(*s);
                }
                if max == f64::NEG_INFINITY {
                    continue; // every key excluded: zeros, as the kernel writes
                }
                acc.iter_mut().for_each(|a| *a = 0.0);
                let mut z = 0.0;
                for (j, &s) in scores.iter().enumerate() {
                    let w = (s - max).exp();
                    if w == 0.0 {
                        continue;
                    }
                    z += w;
                    let vj = &v[(bi * lk + j) * hd + h * d..][..d];
                    for (a, &x) in acc.iter_mut().zip(vj) {
                        *a += w * f64::from(x);
                    }
                }
                let o = &mut out[(bi * lq + i) * hd + h * d..][..d];
                for (x, a) in o.iter_mut().zip(&acc) {
                    *x = (a / z) as f32;
                }
            }
        }
    }
    Ok(out)
}
