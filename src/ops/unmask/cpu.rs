//! [`super::confident`] on host memory, for the CPU backend: the same draws (Philox elements), the
//! same choice of positions and the same checks as `shaders/unmask.wgsl`.

use super::{check, Unmask};
use crate::error::Result;
use crate::ops::check_host_len;
use crate::ops::random::cpu::gumbel_from_uniform;

/// x_{t−1} ids `[B, L]` from host `logits [B, L, K]`, `x_t [B, L]` and `reveal [B]`.
pub fn confident(
    logits: &[f32],
    shape: &[usize],
    x_t: &[u32],
    reveal: &[f32],
    o: &Unmask,
) -> Result<Vec<u32>> {
    let (b, l) = (
        shape.first().copied().unwrap_or(0),
        shape.get(1).copied().unwrap_or(0),
    );
    check(shape, &[b, l], &[b], o)?;
    let k = shape[2];
    check_host_len(super::OP, "logits", logits, shape)?;
    check_host_len(super::OP, "x_t", x_t, &[b, l])?;
    check_host_len(super::OP, "reveal", reveal, &[b])?;
    let mask = o.mask_token;
    let mut out = x_t.to_vec();
    // Per masked position of a row: its confidence (`None`: nothing can be drawn there).
    let mut conf: Vec<Option<f32>> = vec![None; l];
    let mut chosen = vec![false; l];
    for (row, &chance) in reveal.iter().enumerate() {
        let mut count = 0usize;
        for pos in 0..l {
            let r = row * l + pos;
            conf[pos] = None;
            chosen[pos] = false;
            if x_t[r] != mask {
                continue;
            }
            let z = |c: usize| logits[r * k + c] / o.temperature;
            let valid = |c: &usize| *c != mask as usize && !z(*c).is_nan();
            let mut best: Option<(f32, usize)> = None;
            for c in (0..k).filter(valid) {
                let u = o.gumbel.uniform((r * k + c) as u32).max(o.u_min);
                let s = z(c) + gumbel_from_uniform(u);
                if best.is_none_or(|(bs, _)| s > bs) {
                    best = Some((s, c));
                }
            }
            if let Some((_, arg)) = best {
                let m = (0..k)
                    .filter(valid)
                    .map(z)
                    .fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = (0..k).filter(valid).map(|c| (z(c) - m).exp()).sum();
                out[r] = arg as u32;
                let mut lp = (z(arg) - m - sum.ln()).min(0.0);
                if o.choice_noise > 0.0 {
                    let u = o.choice.uniform(r as u32).max(o.u_min);
                    lp += o.choice_noise * gumbel_from_uniform(u);
                }
                // A NaN confidence (infinite logits) is never chosen, as on the GPU.
                conf[pos] = (!lp.is_nan()).then_some(lp);
            } else {
                out[r] = mask;
            }
            if o.reveal.uniform(r as u32) < chance {
                count += 1;
            }
        }
        for _ in 0..count {
            let pick = (0..l)
                .filter(|&p| !chosen[p])
                .filter_map(|p| conf[p].map(|c| (p, c)))
                .fold(None, |acc: Option<(usize, f32)>, (p, c)| match acc {
                    Some((_, bc)) if c <= bc => acc,
                    _ => Some((p, c)),
                });
            let Some((p, _)) = pick else { break };
            chosen[p] = true;
        }
        for (pos, &picked) in chosen.iter().enumerate() {
            let r = row * l + pos;
            if x_t[r] == mask && !picked {
                out[r] = mask;
            }
        }
    }
    Ok(out)
}
