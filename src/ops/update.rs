//! Fused Gaussian reverse steps: one dispatch turns `x_t` and the model output into `x_{t−1}` (and,
//! for views, x̂0 and ε̂) for a DDPM ancestral step or a DDIM step.
//!
//! Per-step scalars come from the CPU (the schedule lives in `process`); the kernel only evaluates
//! `x_{t−1} = c_x0·x̂0 + c_eps·ε̂ + c_xt·x_t + σ·z` with diffusers' conventions:
//! - ε: `x̂0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t`; x0 ("sample"): `ε̂ = (x_t − √ᾱ_t x̂0)/√(1−ᾱ_t)`;
//!   v: `x̂0 = √ᾱ_t x_t − √(1−ᾱ_t) v̂`, `ε̂ = √ᾱ_t v̂ + √(1−ᾱ_t) x_t`.
//! - `clip` clamps x̂0 to `[−c, c]` (diffusers `clip_sample`). diffusers' DDPM mean uses only x̂0; its
//!   DDIM keeps the *unclipped* ε̂ unless `use_clipped_model_output` (the DDIM pipeline's default is
//!   not to), which re-derives `ε̂ = (x_t − √ᾱ_t x̂0)/√(1−ᾱ_t)` from the clipped x̂0.
//! - Noise z is Philox (element `i` of (seed, stream = step, substream = StepNoise)) or injected;
//!   it is only read when σ ≠ 0.
//! - Classifier-free guidance is fused: the model output holds both halves stacked on the first axis,
//!   `[2N, ..]`, combined as `uncond + w·(cond − uncond)` before the prediction is interpreted.

pub mod cpu;
mod solver;
pub use solver::{solver_step, SolverStepParams};

use super::noise::cpu::Noise as HostNoise;
pub use super::noise::Noise;
use super::{check_u32_len, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::rng::Philox;
use crate::tensor::{same_device, DType, Device, Tensor};
use std::sync::LazyLock;

pub(super) const SRC: &str = concat!(
    include_str!("../../shaders/philox.wgsl"),
    include_str!("../../shaders/update.wgsl")
);

/// What the model predicts (diffusers `prediction_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Prediction {
    /// `"epsilon"`: the noise.
    Epsilon = 0,
    /// `"sample"`: x0 itself.
    Sample = 1,
    /// `"v_prediction"`: `v = √ᾱ ε − √(1−ᾱ) x0`.
    V = 2,
}

/// How a guidance scale maps to the weight `w` of `uncond + w·(cond − uncond)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuidanceForm {
    /// diffusers `guidance_scale`: `w = scale`. 1 is purely conditional, 0 purely unconditional.
    Diffusers,
    /// Ho & Salimans' `w_HS`: `(1 + w_HS)·cond − w_HS·uncond`, so `w = 1 + scale`; 0 is conditional.
    HoSalimans,
    /// The conditional-embedding DDPM snippet: `torch.lerp(uncond, cond, cfg_scale)` when
    /// `cfg_scale > 0`, and plain conditional (CFG skipped) when `cfg_scale == 0`. So `w = scale`
    /// except that 0 means 1 — a discontinuity at 0 that this form reproduces on purpose.
    SnippetLerp,
}

/// A guidance scale and how to read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guidance {
    pub scale: f32,
    pub form: GuidanceForm,
}

impl Guidance {
    /// The weight `w` of `uncond + w·(cond − uncond)`.
    pub fn weight(&self) -> f32 {
        match self.form {
            GuidanceForm::Diffusers => self.scale,
            GuidanceForm::HoSalimans => 1.0 + self.scale,
            GuidanceForm::SnippetLerp if self.scale == 0.0 => 1.0,
            GuidanceForm::SnippetLerp => self.scale,
        }
    }
}

/// Which half of a stacked `[2N, ..]` guided output is which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CfgOrder {
    /// Rows `0..N` conditional, `N..2N` unconditional.
    CondFirst,
    /// Rows `0..N` unconditional (diffusers pipelines: `noise_pred_uncond, noise_pred_text = chunk(2)`).
    UncondFirst,
}

/// The model output for a step.
#[derive(Clone, Copy, Debug)]
pub enum ModelOutput<'a> {
    /// Same shape as `x_t`.
    Plain(&'a Tensor),
    /// Both guidance halves stacked on the first axis: `[2N, ..]` for `x_t` of `[N, ..]`.
    Guided {
        out: &'a Tensor,
        guidance: Guidance,
        order: CfgOrder,
    },
}

impl<'a> ModelOutput<'a> {
    /// The output tensor, and the guidance and its order when guided.
    fn parts(self) -> (&'a Tensor, Option<(Guidance, CfgOrder)>) {
        match self {
            ModelOutput::Plain(m) => (m, None),
            ModelOutput::Guided {
                out,
                guidance,
                order,
            } => (out, Some((guidance, order))),
        }
    }
}

/// Which by-products to write besides `x_{t−1}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// x̂0 after clipping.
    pub x0: bool,
    /// ε̂ as used by the step (re-derived from the clipped x̂0 where the step does so).
    pub eps: bool,
}

/// The results of a step.
#[derive(Debug)]
pub struct StepOutput {
    pub x_prev: Tensor,
    pub x0: Option<Tensor>,
    pub eps: Option<Tensor>,
}

/// The DDPM mean's form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DdpmMean {
    /// diffusers: `μ = coef_x0·x̂0 + coef_xt·x_t` with `coef_x0 = √ᾱ_prev β_t/(1−ᾱ_t)` and
    /// `coef_xt = √α_t (1−ᾱ_prev)/(1−ᾱ_t)`.
    Posterior { coef_x0: f32, coef_xt: f32 },
    /// labml and the snippet: `μ = coef_xt·(x_t − coef_eps·ε̂)` with `coef_xt = 1/√α_t` and
    /// `coef_eps = β_t/√(1−ᾱ_t)`. With a clip, ε̂ is re-derived from the clipped x̂0.
    Epsilon { coef_xt: f32, coef_eps: f32 },
}

/// diffusers' DDPM `variance_type` (the two fixed ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DdpmVariance {
    /// `max((1−ᾱ_prev)/(1−ᾱ_t)·β_t, 1e-20)`, the default.
    FixedSmall,
    /// `β_t` (google/ddpm-cifar10-32).
    FixedLarge,
}

/// One DDPM ancestral step's scalars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DdpmStepParams {
    pub prediction: Prediction,
    pub sqrt_alpha_bar_t: f32,
    pub sqrt_one_minus_alpha_bar_t: f32,
    pub mean: DdpmMean,
    /// Standard deviation of the added noise; 0 at the last step.
    pub sigma: f32,
    /// Clamp x̂0 to `[−clip, clip]`.
    pub clip: Option<f32>,
}

impl DdpmStepParams {
    /// diffusers `DDPMScheduler.step` at a timestep with cumulative `alpha_bar_t`; `alpha_bar_prev` is
    /// `None` at the last step (diffusers' `prev_t < 0`: ᾱ_prev = 1 and no noise). β_t is recomputed
    /// as `1 − ᾱ_t/ᾱ_prev`, as diffusers does — in float32 and in diffusers' order of operations, since
    /// that subtraction cancels catastrophically near t = 0 (β_1 ≈ 1.2e-4 carries a ~5e-4 relative
    /// rounding error in diffusers itself, and matching the reference means matching that).
    pub fn diffusers(
        prediction: Prediction,
        alpha_bar_t: f64,
        alpha_bar_prev: Option<f64>,
        variance: DdpmVariance,
        clip: Option<f32>,
    ) -> Self {
        let at = alpha_bar_t as f32;
        let ap = alpha_bar_prev.map_or(1.0f32, |v| v as f32);
        let beta_prod_t = 1.0 - at;
        let beta_prod_prev = 1.0 - ap;
        let current_alpha_t = at / ap;
        let current_beta_t = 1.0 - current_alpha_t;
        let var = match variance {
            DdpmVariance::FixedSmall => (beta_prod_prev / beta_prod_t * current_beta_t).max(1e-20),
            DdpmVariance::FixedLarge => current_beta_t,
        };
        DdpmStepParams {
            prediction,
            sqrt_alpha_bar_t: at.sqrt(),
            sqrt_one_minus_alpha_bar_t: beta_prod_t.sqrt(),
            mean: DdpmMean::Posterior {
                coef_x0: ap.sqrt() * current_beta_t / beta_prod_t,
                coef_xt: current_alpha_t.sqrt() * beta_prod_prev / beta_prod_t,
            },
            sigma: if alpha_bar_prev.is_some() {
                var.sqrt()
            } else {
                0.0
            },
            clip,
        }
    }

    /// labml `DenoiseDiffusion.p_sample`, evaluated in float32 in labml's order of operations:
    /// `eps_coef = (1 − α_t)/√(1−ᾱ_t)`, `μ = (1/√α_t)(x_t − eps_coef·ε̂)`, `σ = √variance`. labml
    /// forms `1 − α_t` from the float32 `α_t = 1 − β_t`, which cancels near t = 0 (β_0 = 1e-4 comes
    /// back with a ~6e-4 relative error); doing the same here is what matches it. `variance` is
    /// added at every step, the last one included, as labml does.
    pub fn labml(
        prediction: Prediction,
        alpha_t: f32,
        alpha_bar_t: f32,
        variance: f32,
        clip: Option<f32>,
    ) -> Self {
        let s1mab = (1.0 - alpha_bar_t).sqrt();
        DdpmStepParams {
            prediction,
            sqrt_alpha_bar_t: alpha_bar_t.sqrt(),
            sqrt_one_minus_alpha_bar_t: s1mab,
            mean: DdpmMean::Epsilon {
                coef_xt: 1.0 / alpha_t.sqrt(),
                coef_eps: (1.0 - alpha_t) / s1mab,
            },
            sigma: variance.sqrt(),
            clip,
        }
    }

    /// labml `p_sample` / the snippet's `p_sample`: `(1/√α_t)(x_t − β_t/√(1−ᾱ_t)·ε̂) + σ z` with
    /// per-step `alpha_t` (β_t = 1 − α_t) and the caller's σ (labml √β_t at every step, the snippet
    /// √posterior_variance and 0 at its last step).
    pub fn epsilon_form(
        prediction: Prediction,
        alpha_t: f64,
        alpha_bar_t: f64,
        sigma: f64,
    ) -> Self {
        DdpmStepParams {
            prediction,
            sqrt_alpha_bar_t: alpha_bar_t.sqrt() as f32,
            sqrt_one_minus_alpha_bar_t: (1.0 - alpha_bar_t).sqrt() as f32,
            mean: DdpmMean::Epsilon {
                coef_xt: (1.0 / alpha_t.sqrt()) as f32,
                coef_eps: ((1.0 - alpha_t) / (1.0 - alpha_bar_t).sqrt()) as f32,
            },
            sigma: sigma as f32,
            clip: None,
        }
    }
}

/// One DDIM step's scalars (diffusers `DDIMScheduler.step`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DdimStepParams {
    pub prediction: Prediction,
    pub alpha_bar_t: f32,
    /// ᾱ at the previous timestep; diffusers' `final_alpha_cumprod` (1 with `set_alpha_to_one`) past
    /// the end.
    pub alpha_bar_prev: f32,
    /// 0 = deterministic DDIM, 1 = DDPM-like.
    pub eta: f32,
    pub clip: Option<f32>,
    /// diffusers `use_clipped_model_output`: re-derive ε̂ from the clipped x̂0.
    pub use_clipped_model_output: bool,
}

impl DdimStepParams {
    /// `σ = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev)`, in f64.
    pub fn sigma(&self) -> f64 {
        let (at, ap) = (self.alpha_bar_t as f64, self.alpha_bar_prev as f64);
        let var = (1.0 - ap) / (1.0 - at) * (1.0 - at / ap);
        self.eta as f64 * var.max(0.0).sqrt()
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    n: u32,
    flags: u32,
    pred: u32,
    _pad0: u32,
    sab: f32,
    s1mab: f32,
    c_x0: f32,
    c_eps: f32,
    c_xt: f32,
    sigma: f32,
    clip: f32,
    w: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    substream: u32,
    c_h0: f32,
    c_h1: f32,
    c_h2: f32,
    nhist: u32,
}
params_layout!(Params {
    n,
    flags,
    pred,
    _pad0,
    sab,
    s1mab,
    c_x0,
    c_eps,
    c_xt,
    sigma,
    clip,
    w,
    seed_lo,
    seed_hi,
    stream,
    substream,
    c_h0,
    c_h1,
    c_h2,
    nhist
});

const F_CLIP: u32 = 1;
const F_EPS_FROM_CLIPPED: u32 = 2;
const F_NOISE_PHILOX: u32 = 4;
const F_NOISE_INJECTED: u32 = 8;
const F_WRITE_X0: u32 = 16;
const F_WRITE_EPS: u32 = 32;
const F_CFG: u32 = 64;
const F_UNCOND_FIRST: u32 = 128;
const F_EPS_FORM: u32 = 256;

/// The constants `shaders/update.wgsl` shares with this driver, prepended to it.
pub(super) static DEFINES: LazyLock<String> = LazyLock::new(|| {
    wgsl_consts![
        F_CLIP,
        F_EPS_FROM_CLIPPED,
        F_NOISE_PHILOX,
        F_NOISE_INJECTED,
        F_WRITE_X0,
        F_WRITE_EPS,
        F_CFG,
        F_UNCOND_FIRST,
        F_EPS_FORM,
        PRED_EPSILON = Prediction::Epsilon as u32,
        PRED_SAMPLE = Prediction::Sample as u32,
    ]
});

const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
];

/// A DDPM ancestral step over the whole of `x_t` (f32, any shape with a first axis).
pub fn ddpm_step(
    x_t: &Tensor,
    model: ModelOutput<'_>,
    s: &DdpmStepParams,
    noise: Noise<'_>,
    extras: Extras,
) -> Result<StepOutput> {
    if let Device::Cpu(_) = x_t.device() {
        let s = *s;
        return host_step(
            "ddpm_step",
            x_t,
            model,
            noise,
            extras,
            &[],
            move |x, shape, m, n, _| cpu::ddpm_step(x, shape, m, &s, n, extras),
        );
    }
    run(
        "ddpm_step",
        "ddpm_step",
        x_t,
        model,
        s.prediction,
        s.clip,
        ddpm_params(s),
        noise,
        extras,
        None,
    )
}

/// A DDPM step's kernel parameters before the shared checks (both backends).
fn ddpm_params(s: &DdpmStepParams) -> Params {
    let mut p = Params {
        sab: s.sqrt_alpha_bar_t,
        s1mab: s.sqrt_one_minus_alpha_bar_t,
        sigma: s.sigma,
        ..Default::default()
    };
    match s.mean {
        DdpmMean::Posterior { coef_x0, coef_xt } => {
            p.c_x0 = coef_x0;
            p.c_xt = coef_xt;
        }
        DdpmMean::Epsilon { coef_xt, coef_eps } => {
            p.c_xt = coef_xt;
            p.c_eps = coef_eps;
            p.flags |= F_EPS_FORM;
            if s.clip.is_some() {
                p.flags |= F_EPS_FROM_CLIPPED;
            }
        }
    }
    p
}

/// A DDIM step over the whole of `x_t`: `x_prev = √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε̂ + σ z`.
pub fn ddim_step(
    x_t: &Tensor,
    model: ModelOutput<'_>,
    s: &DdimStepParams,
    noise: Noise<'_>,
    extras: Extras,
) -> Result<StepOutput> {
    const OP: &str = "ddim_step";
    if let Device::Cpu(_) = x_t.device() {
        let s = *s;
        return host_step(
            OP,
            x_t,
            model,
            noise,
            extras,
            &[],
            move |x, shape, m, n, _| cpu::ddim_step(x, shape, m, &s, n, extras),
        );
    }
    run(
        OP,
        "ddim_step",
        x_t,
        model,
        s.prediction,
        s.clip,
        ddim_params(s)?,
        noise,
        extras,
        None,
    )
}

/// A DDIM step's checks and kernel parameters before the shared checks (both backends).
fn ddim_params(s: &DdimStepParams) -> Result<Params> {
    const OP: &str = "ddim_step";
    let (at, ap) = (s.alpha_bar_t as f64, s.alpha_bar_prev as f64);
    if !(at > 0.0 && at < 1.0 && ap > 0.0 && ap <= 1.0) {
        return Err(Error::Invalid(format!(
            "{OP}: need 0 < ᾱ_t < 1 and 0 < ᾱ_prev ≤ 1, got {at} and {ap}"
        )));
    }
    if !(s.eta >= 0.0 && s.eta.is_finite()) {
        return Err(Error::Invalid(format!(
            "{OP}: eta must be finite and ≥ 0, got {}",
            s.eta
        )));
    }
    let sigma = s.sigma();
    let mut p = Params {
        sab: at.sqrt() as f32,
        s1mab: (1.0 - at).sqrt() as f32,
        c_x0: ap.sqrt() as f32,
        c_eps: (1.0 - ap - sigma * sigma).max(0.0).sqrt() as f32,
        sigma: sigma as f32,
        ..Default::default()
    };
    if s.use_clipped_model_output && s.clip.is_some() {
        p.flags |= F_EPS_FROM_CLIPPED;
    }
    Ok(p)
}

/// What the shared step checks see of the noise: its kind and key, not its data (each backend checks
/// injected draws against x_t's shape with its `Noise::injected`).
#[derive(Clone, Copy, Debug)]
enum NoiseKind {
    None,
    Philox(Philox),
    Injected,
}

/// The step's checks on shapes and scalars, and the kernel parameters they settle (both backends):
/// `x` is x_t's shape, `model` the model output's, `guided` its guidance when it stacks both halves.
#[allow(clippy::too_many_arguments)]
fn plan(
    op: &'static str,
    x: &[usize],
    model: &[usize],
    guided: Option<(Guidance, CfgOrder)>,
    pred: Prediction,
    clip: Option<f32>,
    mut p: Params,
    noise: NoiseKind,
) -> Result<Params> {
    let Some(&n0) = x.first() else {
        return Err(Error::shape(op, "x_t needs a batch axis"));
    };
    let scalars = [p.sab, p.s1mab, p.c_x0, p.c_eps, p.c_xt, p.sigma];
    if scalars.iter().any(|v| !v.is_finite()) || p.sab < 0.0 || p.s1mab < 0.0 || p.sigma < 0.0 {
        return Err(Error::Invalid(format!(
            "{op}: step scalars must be finite, and √ᾱ, √(1−ᾱ), σ non-negative: {scalars:?}"
        )));
    }
    // The divisions the prediction type needs.
    let needs_sab = pred == Prediction::Epsilon;
    let needs_s1mab = pred == Prediction::Sample || p.flags & F_EPS_FROM_CLIPPED != 0;
    if (needs_sab && p.sab == 0.0) || (needs_s1mab && p.s1mab == 0.0) {
        return Err(Error::Invalid(format!(
            "{op}: {pred:?} prediction divides by √ᾱ_t = {} or √(1−ᾱ_t) = {}",
            p.sab, p.s1mab
        )));
    }
    p.pred = pred as u32;
    if let Some(c) = clip {
        if c.is_nan() || c <= 0.0 {
            return Err(Error::Invalid(format!(
                "{op}: clip range must be positive, got {c}"
            )));
        }
        p.flags |= F_CLIP;
        p.clip = c;
    }
    match guided {
        None => {
            if model != x {
                return Err(Error::shape(
                    op,
                    format!("model output {model:?} must have x_t's shape {x:?}"),
                ));
            }
        }
        Some((guidance, order)) => {
            let mut want = x.to_vec();
            want[0] = 2 * n0;
            if model != want {
                return Err(Error::shape(
                    op,
                    format!("guided model output {model:?} must stack both halves: {want:?}"),
                ));
            }
            let w = guidance.weight();
            if !w.is_finite() {
                return Err(Error::Invalid(format!(
                    "{op}: guidance scale {} is not finite",
                    guidance.scale
                )));
            }
            p.flags |= F_CFG;
            if order == CfgOrder::UncondFirst {
                p.flags |= F_UNCOND_FIRST;
            }
            p.w = w;
        }
    }
    match noise {
        NoiseKind::None if p.sigma != 0.0 => {
            return Err(Error::Invalid(format!(
                "{op}: σ = {} needs noise (Philox or injected)",
                p.sigma
            )));
        }
        NoiseKind::None => {}
        NoiseKind::Philox(key) => {
            p.flags |= F_NOISE_PHILOX;
            [p.seed_lo, p.seed_hi] = key.key();
            p.stream = key.stream;
            p.substream = key.substream;
        }
        NoiseKind::Injected => p.flags |= F_NOISE_INJECTED,
    }
    Ok(p)
}

/// A step on host tensors: the CPU update `f` over their data (x_t, its shape, the model output,
/// the noise, and the words of `more`, e.g. a solver's history), its outputs as tensors. Recorded
/// like any op on a deferred CPU backend.
fn host_step<F>(
    op: &'static str,
    x_t: &Tensor,
    model: ModelOutput<'_>,
    noise: Noise<'_>,
    extras: Extras,
    more: &[&Tensor],
    f: F,
) -> Result<StepOutput>
where
    F: FnOnce(
            &[f32],
            &[usize],
            cpu::ModelOutput<'_>,
            HostNoise<'_>,
            &[&[f32]],
        ) -> Result<cpu::StepOutput>
        + Send
        + 'static,
{
    let (m, guided) = model.parts();
    let injected = match noise {
        Noise::Injected(t) => Some(t),
        _ => None,
    };
    let key = match noise {
        Noise::Philox(key) => Some(key),
        _ => None,
    };
    let mut ins: Vec<&Tensor> = vec![x_t, m];
    ins.extend(injected);
    for t in &ins {
        t.expect_dtype(op, DType::F32)?;
    }
    ins.extend(more);
    same_device(op, &ins)?;
    let dev = x_t.device();
    // x_{t−1}, then x̂0 and ε̂ where asked for: made by the kernel and taken over as they are.
    let wanted = 1 + usize::from(extras.x0) + usize::from(extras.eps);
    let outputs = vec![(x_t.shape(), DType::F32); wanted];
    let shapes: Vec<Vec<usize>> = ins.iter().map(|t| t.shape().to_vec()).collect();
    let has_noise = injected.is_some();
    let mut made = super::host_ops(op, dev, &outputs, &ins, move |w| {
        let i: Vec<&[f32]> = w.iter().map(|w| bytemuck::cast_slice(w)).collect();
        let host_model = match guided {
            None => cpu::ModelOutput::Plain(i[1], &shapes[1]),
            Some((guidance, order)) => cpu::ModelOutput::Guided {
                out: i[1],
                shape: &shapes[1],
                guidance,
                order,
            },
        };
        let host_noise = match (key, has_noise) {
            (Some(key), _) => HostNoise::Philox(key),
            (None, true) => HostNoise::Injected(i[2], &shapes[2]),
            (None, false) => HostNoise::None,
        };
        let rest = &i[2 + usize::from(has_noise)..];
        let r = f(i[0], &shapes[0], host_model, host_noise, rest)?;
        Ok([Some(r.x_prev), r.x0, r.eps]
            .into_iter()
            .flatten()
            .map(crate::tensor::words_of_f32)
            .collect())
    })?
    .into_iter();
    let mut next = |wanted: bool| wanted.then(|| made.next()).flatten();
    let (x_prev, x0, eps) = (next(true), next(extras.x0), next(extras.eps));
    let x_prev = x_prev.ok_or_else(|| Error::Internal(format!("{op}: no x_(t-1)")))?;
    Ok(StepOutput { x_prev, x0, eps })
}

/// A fused step on the GPU. `hist` is `solver_step`'s auxiliary input, bound where the noise goes:
/// the injected noise (if any) followed by `p.nhist` history tensors of x_t's size, stacked by the
/// caller; `None` for DDPM and DDIM.
#[allow(clippy::too_many_arguments)]
fn run(
    op: &'static str,
    entry: &'static str,
    x_t: &Tensor,
    model: ModelOutput<'_>,
    pred: Prediction,
    clip: Option<f32>,
    p: Params,
    noise: Noise<'_>,
    extras: Extras,
    hist: Option<&Tensor>,
) -> Result<StepOutput> {
    x_t.expect_dtype(op, DType::F32)?;
    check_u32_len(op, x_t)?;
    let (m, guided) = model.parts();
    m.expect_dtype(op, DType::F32)?;
    let kind = match noise {
        Noise::None => NoiseKind::None,
        Noise::Philox(key) => NoiseKind::Philox(key),
        Noise::Injected(_) => NoiseKind::Injected,
    };
    let mut p = plan(op, x_t.shape(), m.shape(), guided, pred, clip, p, kind)?;
    let nz = noise.injected(op, x_t, "x_t")?.unwrap_or(x_t);
    p.n = x_t.len() as u32;
    let gpu = x_t.gpu()?;
    let x_prev = Tensor::empty(gpu, x_t.shape(), DType::F32)?;
    // Unrequested outputs still need a binding; a distinct scratch buffer keeps writable bindings
    // from aliasing (the kernel never writes it).
    let out_or_scratch = |want: bool, flag: u32, p: &mut Params| -> Result<(Tensor, bool)> {
        if want {
            p.flags |= flag;
            Ok((Tensor::empty(gpu, x_t.shape(), DType::F32)?, true))
        } else {
            Ok((Tensor::empty(gpu, &[1], DType::F32)?, false))
        }
    };
    let (x0, want_x0) = out_or_scratch(extras.x0, F_WRITE_X0, &mut p)?;
    let (eps, want_eps) = out_or_scratch(extras.eps, F_WRITE_EPS, &mut p)?;
    let spec = KernelSpec {
        family: "update",
        source: SRC,
        entry,
        defines: &DEFINES,
        bindings: BINDINGS,
    };
    // solver_step reads its history from the noise binding (after the injected noise, if any).
    let aux = hist.unwrap_or(nz);
    gpu.dispatch(
        &spec,
        &p,
        &[
            x_t.buffer()?,
            m.buffer()?,
            aux.buffer()?,
            x_prev.buffer()?,
            x0.buffer()?,
            eps.buffer()?,
        ],
        Gpu::grid_1d(x_t.len() as u64, WG),
    )?;
    Ok(StepOutput {
        x_prev,
        x0: want_x0.then_some(x0),
        eps: want_eps.then_some(eps),
    })
}
