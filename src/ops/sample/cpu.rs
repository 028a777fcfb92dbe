//! Categorical sampling on host memory, for the CPU backend: `shaders/sample.wgsl`'s Gumbel-max with
//! the same options, checks and typed errors as the GPU driver.
//!
//! Semantics, as the kernel's: the score of class k is `logit_k/τ + m·g_k` with
//! `g = −log(−log(max(u, u_min)))` (the shaders' `−log u`, see [`crate::ops::random::cpu::neg_log`]),
//! noise skipped outright where the row's mask `m` is 0; probability inputs take `log p` and skip
//! classes with `p ≤ 0` (or NaN); NaN scores never win; ties go to the lowest index; a row with no
//! valid class yields 0; a keep value of 0 writes class 0. With Philox noise, element `row·K + k` of
//! the key gives the uniform, so the CPU picks the GPU's class wherever two scores are not within
//! the GPU's `log` rounding of a tie.

use super::{check_draw, check_u_min, mask_div};
use crate::error::Result;
use crate::ops::check_host_len;
use crate::ops::noise::cpu::check_u32_count;
pub use crate::ops::noise::cpu::Noise;
use crate::ops::random::cpu::gumbel_from_uniform;
use crate::rng::to_uniform;

/// How to draw, as [`super::Categorical`] with host data: `mask` and `keep` are `(values, shape)`,
/// each shape a prefix of the rows' shape.
#[derive(Clone, Copy, Debug)]
pub struct Categorical<'a> {
    pub noise: Noise<'a>,
    /// Divides the logits (must be > 0).
    pub temperature: f32,
    /// Uniforms are clipped to `[u_min, 1]`.
    pub u_min: f32,
    /// Per-row noise weight (ignored, as on the GPU, when there is no noise).
    pub mask: Option<(&'a [f32], &'a [usize])>,
    /// Per-row keep value: 0 writes class 0.
    pub keep: Option<(&'a [f32], &'a [usize])>,
}

impl<'a> Categorical<'a> {
    /// moco's defaults, as [`super::Categorical::new`]: `τ = 1`, `u_min = 1e-6`, no mask.
    pub fn new(noise: Noise<'a>) -> Self {
        Categorical {
            noise,
            temperature: 1.0,
            u_min: 1e-6,
            mask: None,
            keep: None,
        }
    }
    pub fn temperature(mut self, t: f32) -> Self {
        self.temperature = t;
        self
    }
    pub fn u_min(mut self, u: f32) -> Self {
        self.u_min = u;
        self
    }
    pub fn mask(mut self, values: &'a [f32], shape: &'a [usize]) -> Self {
        self.mask = Some((values, shape));
        self
    }
    pub fn keep(mut self, values: &'a [f32], shape: &'a [usize]) -> Self {
        self.keep = Some((values, shape));
        self
    }
}

/// One class index per row of `logits` (shape `[.., K]`): the result has the leading shape `[..]`.
pub fn gumbel_max(logits: &[f32], shape: &[usize], opts: &Categorical<'_>) -> Result<Vec<u32>> {
    draw("gumbel_max", logits, shape, opts, false)
}

/// As [`gumbel_max`] for (unnormalised) probabilities: logits `log p`, classes with `p ≤ 0` never
/// drawn, a row with no positive entry yields class 0.
pub fn sample_probs(probs: &[f32], shape: &[usize], opts: &Categorical<'_>) -> Result<Vec<u32>> {
    draw("sample_probs", probs, shape, opts, true)
}

/// The sampler's Gumbel noise for given uniforms: `−log(−log(max(u, u_min)))`, elementwise.
pub fn gumbel_noise(u: &[f32], u_min: f32) -> Result<Vec<f32>> {
    const OP: &str = "gumbel_noise";
    check_u32_count(OP, &[u.len()])?;
    check_u_min(OP, u_min)?;
    Ok(u.iter()
        .map(|&v| gumbel_from_uniform(v.max(u_min)))
        .collect())
}

/// Deterministic argmax over the last axis (first index on ties).
pub fn argmax(logits: &[f32], shape: &[usize]) -> Result<Vec<u32>> {
    gumbel_max(logits, shape, &Categorical::new(Noise::None))
}

/// A per-row mask's values and rows per value, checked against the rows' shape `lead`.
fn per_row<'a>(
    op: &'static str,
    what: &str,
    m: Option<(&'a [f32], &'a [usize])>,
    lead: &[usize],
) -> Result<Option<(&'a [f32], usize)>> {
    let Some((values, shape)) = m else {
        return Ok(None);
    };
    let div = mask_div(op, what, shape, lead)?;
    check_host_len(op, what, values, shape)?;
    Ok(Some((values, div as usize)))
}

fn draw(
    op: &'static str,
    x: &[f32],
    shape: &[usize],
    opts: &Categorical<'_>,
    probs: bool,
) -> Result<Vec<u32>> {
    // The driver's checks, in its order (the length check is the host data's own).
    check_u32_count(op, shape)?;
    check_host_len(op, "input", x, shape)?;
    let (k, lead) = check_draw(op, shape, opts.temperature, opts.u_min)?;
    let rows: usize = lead.iter().product();
    let injected = opts.noise.injected(op, shape, "the logits")?;
    let mask = if matches!(opts.noise, Noise::None) {
        None
    } else {
        per_row(op, "mask", opts.mask, lead)?
    };
    let keep = per_row(op, "keep mask", opts.keep, lead)?;
    let key = match opts.noise {
        Noise::Philox(key) => Some(key),
        _ => None,
    };
    // The uniform of element e (only read where the row's noise weight is non-zero).
    let uniform = |e: usize| match (injected, key) {
        (Some(u), _) => u[e],
        (None, Some(key)) => to_uniform(key.words(e as u32)[0]),
        (None, None) => unreachable!("a row without noise has weight 0"),
    };
    let mut out = Vec::with_capacity(rows);
    for r in 0..rows {
        let m = match (&opts.noise, mask) {
            (Noise::None, _) => 0.0,
            (_, Some((values, div))) => values[r / div],
            _ => 1.0,
        };
        let mut best = 0.0f32;
        let mut arg = 0u32;
        let mut found = false;
        for c in 0..k {
            let e = r * k + c;
            let mut v = x[e];
            if probs {
                // `!(v > 0)` as the kernel: NaN is skipped too.
                if v.is_nan() || v <= 0.0 {
                    continue;
                }
                v = v.ln();
            }
            let mut s = v / opts.temperature;
            // Skipping the noise where m = 0 keeps an injected u = 1 (g = +inf) from making 0·inf.
            if m != 0.0 {
                s += m * gumbel_from_uniform(uniform(e).max(opts.u_min));
            }
            // NaN scores never win; strictly greater keeps the lowest index on ties.
            if !s.is_nan() && (!found || s > best) {
                best = s;
                arg = c as u32;
                found = true;
            }
        }
        let kept = keep.is_none_or(|(values, div)| values[r / div] != 0.0);
        out.push(if kept { arg } else { 0 });
    }
    Ok(out)
}
