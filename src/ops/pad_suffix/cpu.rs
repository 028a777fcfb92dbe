//! [`super::redraw`] on host memory, for the CPU backend: the same rule, draws (Philox elements) and
//! checks as `shaders/pad_suffix.wgsl`.

use super::{check, PadSuffix};
use crate::error::Result;
use crate::ops::check_host_len;
use crate::ops::random::cpu::gumbel_from_uniform;

/// The draw with every pad a suffix of its row: host `scores [B, L, K]`, `x_t` and `drawn [B, L]`.
pub fn redraw(
    scores: &[f32],
    shape: &[usize],
    x_t: &[u32],
    drawn: &[u32],
    o: &PadSuffix,
) -> Result<Vec<u32>> {
    let (b, l) = (
        shape.first().copied().unwrap_or(0),
        shape.get(1).copied().unwrap_or(0),
    );
    check(shape, &[b, l], &[b, l], o)?;
    let k = shape[2];
    check_host_len(super::OP, "scores", scores, shape)?;
    check_host_len(super::OP, "x_t", x_t, &[b, l])?;
    check_host_len(super::OP, "the draw", drawn, &[b, l])?;
    let decided = |v: u32| o.mask.is_some_and(|m| v != m);
    let is_letter = |v: u32| v != o.pad && Some(v) != o.mask;
    let mut out = drawn.to_vec();
    for row in 0..b {
        let base = row * l;
        // The last position decided with a letter: no pad may come before it.
        let last_letter = (0..l)
            .rev()
            .find(|&p| decided(x_t[base + p]) && is_letter(x_t[base + p]));
        let mut pad_seen = false;
        for p in 0..l {
            let r = base + p;
            if decided(x_t[r]) {
                out[r] = x_t[r];
                pad_seen |= x_t[r] == o.pad;
                continue;
            }
            let letter_after = last_letter.is_some_and(|j| j > p);
            // A pad seen first wins, should both hold (a row that already breaks the rule).
            let fits = |c: u32| {
                if Some(c) == o.mask {
                    o.mask_competes
                } else if pad_seen {
                    c == o.pad
                } else {
                    !(letter_after && c == o.pad)
                }
            };
            let tok = drawn[r];
            if Some(tok) != o.mask && !fits(tok) {
                let mut best: Option<(f32, u32)> = None;
                for c in (0..k as u32).filter(|&c| fits(c)) {
                    let e = r * k + c as usize;
                    let mut s = scores[e] / o.temperature;
                    if let Some(key) = o.noise {
                        s += gumbel_from_uniform(key.uniform(e as u32).max(o.u_min));
                    }
                    // NaN never wins; strictly greater keeps the lowest class on ties.
                    if !s.is_nan() && best.is_none_or(|(bs, _)| s > bs) {
                        best = Some((s, c));
                    }
                }
                if let Some((_, c)) = best {
                    out[r] = c;
                }
            }
            pad_seen |= out[r] == o.pad;
        }
    }
    Ok(out)
}
