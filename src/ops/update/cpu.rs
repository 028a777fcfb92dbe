//! The fused Gaussian reverse steps on host memory, for the CPU backend: `shaders/update.wgsl`'s
//! per-element evaluation in f32 and in its order of operations, from the same kernel parameters the
//! GPU driver builds and checks (`ddpm_params`, `ddim_params`, `plan`), so both backends accept the
//! same steps, refuse the same ones with the same typed errors and compute the same `x_{t−1}`, x̂0 and
//! ε̂. Philox noise is the GPU's draw for element `i` of the key (see
//! [`crate::ops::random::cpu::normal_from_words`]).

use super::{
    ddim_params, ddpm_params, plan, CfgOrder, DdimStepParams, DdpmStepParams, Extras, Guidance,
    NoiseKind, Params, Prediction, F_CFG, F_CLIP, F_EPS_FORM, F_EPS_FROM_CLIPPED, F_NOISE_INJECTED,
    F_NOISE_PHILOX, F_UNCOND_FIRST,
};
use crate::error::Result;
use crate::ops::check_host_len;
use crate::ops::noise::cpu::check_u32_count;
pub use crate::ops::noise::cpu::Noise;
use crate::ops::random::cpu::normal_from_words;
use crate::rng::philox4x32_10;

/// The model output for a step, as [`super::ModelOutput`] with host data and its shape.
#[derive(Clone, Copy, Debug)]
pub enum ModelOutput<'a> {
    /// Same shape as `x_t`.
    Plain(&'a [f32], &'a [usize]),
    /// Both guidance halves stacked on the first axis: shape `[2N, ..]` for `x_t` of `[N, ..]`.
    Guided {
        out: &'a [f32],
        shape: &'a [usize],
        guidance: Guidance,
        order: CfgOrder,
    },
}

/// The results of a step, each with `x_t`'s shape, as [`super::StepOutput`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutput {
    pub x_prev: Vec<f32>,
    pub x0: Option<Vec<f32>>,
    pub eps: Option<Vec<f32>>,
}

/// A DDPM ancestral step over the whole of `x_t` (shape `shape`, with a first axis).
pub fn ddpm_step(
    x_t: &[f32],
    shape: &[usize],
    model: ModelOutput<'_>,
    s: &DdpmStepParams,
    noise: Noise<'_>,
    extras: Extras,
) -> Result<StepOutput> {
    let p = ddpm_params(s);
    run(
        "ddpm_step",
        x_t,
        shape,
        model,
        s.prediction,
        s.clip,
        p,
        noise,
        extras,
        None,
    )
}

/// A DDIM step over the whole of `x_t`: `x_prev = √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε̂ + σ z`.
pub fn ddim_step(
    x_t: &[f32],
    shape: &[usize],
    model: ModelOutput<'_>,
    s: &DdimStepParams,
    noise: Noise<'_>,
    extras: Extras,
) -> Result<StepOutput> {
    let p = ddim_params(s)?;
    run(
        "ddim_step",
        x_t,
        shape,
        model,
        s.prediction,
        s.clip,
        p,
        noise,
        extras,
        None,
    )
}

/// `solver_step` of `shaders/update.wgsl`: the DDIM form plus the weighted history `hist` (`p.nhist`
/// tensors of x_t's size, stacked), from the parameters the driver built and checked.
#[allow(clippy::too_many_arguments)]
pub(super) fn solver_step(
    x_t: &[f32],
    shape: &[usize],
    model: ModelOutput<'_>,
    pred: Prediction,
    clip: Option<f32>,
    p: Params,
    noise: Noise<'_>,
    extras: Extras,
    hist: &[f32],
) -> Result<StepOutput> {
    check_host_len(
        "solver_step",
        "history",
        hist,
        &[p.nhist as usize, x_t.len()],
    )?;
    run(
        "solver_step",
        x_t,
        shape,
        model,
        pred,
        clip,
        p,
        noise,
        extras,
        Some(hist),
    )
}

/// Σ_j c_hj·hist_j for element `i`, in the shader's order.
fn history(p: &Params, h: &[f32], i: usize, n: usize) -> f32 {
    let mut acc = 0.0f32;
    if p.nhist > 0 {
        acc += p.c_h0 * h[i];
    }
    if p.nhist > 1 {
        acc += p.c_h1 * h[n + i];
    }
    if p.nhist > 2 {
        acc += p.c_h2 * h[2 * n + i];
    }
    acc
}

#[allow(clippy::too_many_arguments)]
fn run(
    op: &'static str,
    x: &[f32],
    shape: &[usize],
    model: ModelOutput<'_>,
    pred: Prediction,
    clip: Option<f32>,
    p: Params,
    noise: Noise<'_>,
    extras: Extras,
    hist: Option<&[f32]>,
) -> Result<StepOutput> {
    // The driver's checks, in its order; the length checks are the host data's own.
    check_u32_count(op, shape)?;
    check_host_len(op, "x_t", x, shape)?;
    let (m, m_shape, guided) = match model {
        ModelOutput::Plain(m, s) => (m, s, None),
        ModelOutput::Guided {
            out,
            shape,
            guidance,
            order,
        } => (out, shape, Some((guidance, order))),
    };
    check_host_len(op, "model output", m, m_shape)?;
    let kind = match noise {
        Noise::None => NoiseKind::None,
        Noise::Philox(key) => NoiseKind::Philox(key),
        Noise::Injected(..) => NoiseKind::Injected,
    };
    let p = plan(op, shape, m_shape, guided, pred, clip, p, kind)?;
    let z = noise.injected(op, shape, "x_t")?;
    let n = x.len();
    let mut out = StepOutput {
        x_prev: Vec::with_capacity(n),
        x0: extras.x0.then(|| Vec::with_capacity(n)),
        eps: extras.eps.then(|| Vec::with_capacity(n)),
    };
    for i in 0..n {
        let h = match hist {
            None => 0.0,
            Some(h) => history(&p, h, i, n),
        };
        let (xp, x0, eps) = gaussian_step(&p, i, x, m, z, h);
        out.x_prev.push(xp);
        if let Some(v) = &mut out.x0 {
            v.push(x0);
        }
        if let Some(v) = &mut out.eps {
            v.push(eps);
        }
    }
    Ok(out)
}

const PRED_EPSILON: u32 = Prediction::Epsilon as u32;
const PRED_SAMPLE: u32 = Prediction::Sample as u32;

/// `gaussian_step` of `shaders/update.wgsl` for element `i`: (x_{t−1}, x̂0, ε̂).
fn gaussian_step(
    p: &Params,
    i: usize,
    x: &[f32],
    model: &[f32],
    z: Option<&[f32]>,
    hist: f32,
) -> (f32, f32, f32) {
    let xi = x[i];
    let m = if p.flags & F_CFG != 0 {
        // Stacked halves [2N, ..]: element i of the conditional and of the unconditional half.
        let n = x.len();
        let (c, u) = if p.flags & F_UNCOND_FIRST != 0 {
            (model[i + n], model[i])
        } else {
            (model[i], model[i + n])
        };
        u + p.w * (c - u)
    } else {
        model[i]
    };
    let (mut x0, mut eps) = match p.pred {
        PRED_EPSILON => ((xi - p.s1mab * m) / p.sab, m),
        PRED_SAMPLE => (m, (xi - p.sab * m) / p.s1mab),
        _ => (p.sab * xi - p.s1mab * m, p.sab * m + p.s1mab * xi),
    };
    if p.flags & F_CLIP != 0 {
        x0 = x0.max(-p.clip).min(p.clip);
        if p.flags & F_EPS_FROM_CLIPPED != 0 {
            eps = (xi - p.sab * x0) / p.s1mab;
        }
    }
    let mut xp = if p.flags & F_EPS_FORM != 0 {
        p.c_xt * (xi - p.c_eps * eps)
    } else {
        p.c_x0 * x0 + p.c_eps * eps + p.c_xt * xi + hist
    };
    if p.sigma != 0.0 {
        if p.flags & F_NOISE_PHILOX != 0 {
            let w = philox4x32_10([i as u32, p.stream, p.substream, 0], [p.seed_lo, p.seed_hi]);
            xp += p.sigma * normal_from_words(w);
        } else if p.flags & F_NOISE_INJECTED != 0 {
            if let Some(z) = z {
                xp += p.sigma * z[i];
            }
        }
    }
    (xp, x0, eps)
}
