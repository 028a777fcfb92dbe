//! One step of a multistep or σ-space solver as one fused pass (`solver_step` in
//! `shaders/update.wgsl`): the model output is read as the DDIM step reads it (guidance halves
//! combined, x̂0 and ε̂ derived for the prediction type at `√ᾱ`, `√(1−ᾱ)`, x̂0 clipped), then
//!
//! `x_next = c_x0·x̂0 + c_eps·ε̂ + c_xt·x + Σ_j c_j·hist_j + σ·z`
//!
//! where `hist` are up to three tensors of x's shape that the solver kept from earlier steps (model
//! outputs or states). DPM-Solver++, Euler, Heun, UniPC and PNDM are each this with their own
//! coefficients, which the process layer computes on the host.

use super::{cpu, host_step, run, Extras, ModelOutput, Noise, Params, Prediction, StepOutput};
use crate::error::{Error, Result};
use crate::ops::check_u32_len;
use crate::tensor::{same_device, DType, Device, Tensor};

/// The most history tensors one step combines.
pub const MAX_HISTORY: usize = 3;

/// One solver step's scalars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolverStepParams {
    pub prediction: Prediction,
    /// How the model output is read at `x`: x̂0 and ε̂ with these `√ᾱ` and `√(1−ᾱ)` (for a σ-space
    /// solver, `1/√(σ²+1)` and `σ/√(σ²+1)`).
    pub sqrt_alpha_bar: f32,
    pub sqrt_one_minus_alpha_bar: f32,
    /// Clamp x̂0 to `[−clip, clip]` before it is used.
    pub clip: Option<f32>,
    pub c_x0: f32,
    pub c_eps: f32,
    pub c_xt: f32,
    /// Standard deviation of the added noise (0: none is drawn).
    pub sigma: f32,
}

/// A solver step over the whole of `x` (f32, any shape with a first axis); `hist` pairs each
/// history tensor (x's shape and device) with its weight.
pub fn solver_step(
    x: &Tensor,
    model: ModelOutput<'_>,
    s: &SolverStepParams,
    hist: &[(f32, &Tensor)],
    noise: Noise<'_>,
    extras: Extras,
) -> Result<StepOutput> {
    const OP: &str = "solver_step";
    if hist.len() > MAX_HISTORY {
        return Err(Error::Invalid(format!(
            "{OP}: {} history tensors; at most {MAX_HISTORY}",
            hist.len()
        )));
    }
    x.expect_dtype(OP, DType::F32)?;
    for (k, (c, h)) in hist.iter().enumerate() {
        h.expect_dtype(OP, DType::F32)?;
        if h.shape() != x.shape() {
            return Err(Error::shape(
                OP,
                format!(
                    "history tensor {k} has shape {:?}, x has {:?}",
                    h.shape(),
                    x.shape()
                ),
            ));
        }
        if !c.is_finite() {
            return Err(Error::Invalid(format!(
                "{OP}: history weight {k} is not finite ({c})"
            )));
        }
    }
    let hs: Vec<&Tensor> = hist.iter().map(|(_, h)| *h).collect();
    let mut all = vec![x];
    all.extend(&hs);
    same_device(OP, &all)?;
    let mut p = Params {
        sab: s.sqrt_alpha_bar,
        s1mab: s.sqrt_one_minus_alpha_bar,
        c_x0: s.c_x0,
        c_eps: s.c_eps,
        c_xt: s.c_xt,
        sigma: s.sigma,
        nhist: hist.len() as u32,
        ..Default::default()
    };
    let weights = [&mut p.c_h0, &mut p.c_h1, &mut p.c_h2];
    for (w, (c, _)) in weights.into_iter().zip(hist) {
        *w = *c;
    }
    if let Device::Cpu(_) = x.device() {
        return host(x, model, s, p, &hs, noise, extras);
    }
    check_u32_len(OP, x)?;
    // Without history the step is the DDIM form with these coefficients: the 6-binding entry
    // (measured on lavapipe, the 7-binding one costs several times more for the same pass).
    if hs.is_empty() {
        return run(
            OP,
            "ddim_step",
            x,
            model,
            s.prediction,
            s.clip,
            p,
            noise,
            extras,
            None,
        );
    }
    // The kernel reads injected noise and history as one buffer: stack them (a copy of ≤ 3 states,
    // beside a network evaluation).
    let mut parts: Vec<&Tensor> = Vec::with_capacity(4);
    if let Noise::Injected(z) = noise {
        if z.shape() != x.shape() {
            return Err(Error::shape(
                OP,
                format!(
                    "injected noise {:?} must have x's shape {:?}",
                    z.shape(),
                    x.shape()
                ),
            ));
        }
        parts.push(z);
    }
    parts.extend(&hs);
    let stacked = match parts.as_slice() {
        [one] => (*one).clone(),
        many => crate::ops::layout::concat(many, 0)?,
    };
    run(
        OP,
        OP,
        x,
        model,
        s.prediction,
        s.clip,
        p,
        noise,
        extras,
        Some(&stacked),
    )
}

/// The CPU backend: `cpu::solver_step` over the host data (the shared host-step path checks the
/// tensors and maps the noise), with the history gathered from its tensors.
fn host(
    x: &Tensor,
    model: ModelOutput<'_>,
    s: &SolverStepParams,
    p: Params,
    hist: &[&Tensor],
    noise: Noise<'_>,
    extras: Extras,
) -> Result<StepOutput> {
    let (prediction, clip) = (s.prediction, s.clip);
    host_step(
        "solver_step",
        x,
        model,
        noise,
        extras,
        hist,
        move |xs, shape, m, n, hist| {
            let stacked = hist.concat();
            cpu::solver_step(xs, shape, m, prediction, clip, p, n, extras, &stacked)
        },
    )
}
