//! diffusers' σ-space and multistep schedulers as reverse samplers: each is built from the model's
//! scheduler settings as its diffusers class's `from_config` would build it (that class's defaults
//! for what the file leaves out), plans one entry per model evaluation, and turns every evaluation
//! into one or two fused `ops::update::solver_step` passes whose coefficients it computes here, on
//! the host, in float64 from diffusers' float32 σ tables.
//!
//! The state a run carries is always the variance-preserving x_t the network sees (diffusers' own
//! σ-space `sample` divided by √(σ²+1), which is what `scale_model_input` feeds the model), so the
//! views, the trajectory and resuming work the same for every sampler; x_T is unit-variance noise
//! scaled by [`Solver::init_scale`] (diffusers' `init_noise_sigma` in those terms).
//!
//! What a multistep sampler remembers between evaluations is a [`Memory`] (earlier model outputs, a
//! kept state), carried by the run beside x. It is a function of the states the solver stepped
//! from, so a run resumed from host copies (a fork, a moved device) rebuilds it by replaying the
//! solver over them (`GaussianRun::resume_replayed`) and continues bit for bit. Resumed from one
//! state alone it starts with empty memory: the solver then warms up again as at its first step
//! (first order; Heun's and PNDM's pending correction is skipped) — a valid run of the sampler from
//! that state, not the uninterrupted one.

mod dpm;
mod euler;
mod heun;
mod pndm;
mod score_sde;
mod unipc;

use super::{evaluate, step_noise, Gaussian, PlannedStep, Prediction, SampleSettings, Sampler};
use crate::error::{Error, Result};
use crate::nn::Denoiser;
use crate::ops::update::{solver_step, Extras, ModelOutput, Noise, SolverStepParams, StepOutput};
use crate::tensor::Tensor;

/// What a multistep sampler keeps between model evaluations (tensors of x's shape; cloning shares
/// them).
#[derive(Clone, Default)]
pub struct Memory {
    /// Earlier model outputs, oldest first: x̂0 for DPM-Solver++ and UniPC, the raw (guided) output
    /// for PNDM, Heun's first-stage x̂0.
    outputs: Vec<Tensor>,
    /// A state kept across evaluations: Heun's x at the start of its step, UniPC's last (corrected)
    /// sample, PNDM's sample at the start of its Runge–Kutta group.
    sample: Option<Tensor>,
    /// PNDM's Runge–Kutta accumulator.
    partial: Option<Tensor>,
    /// Evaluations since the sampler (re)started: its warm-up counter.
    warm: usize,
    /// UniPC: the order of the last predictor (the next corrector's).
    order: usize,
}

impl Memory {
    /// Whether the sampler has nothing remembered (a fresh or resumed run).
    pub fn is_empty(&self) -> bool {
        self.warm == 0
    }
}

/// One multistep or σ-space sampler, planned for a number of steps.
pub struct Solver {
    sampler: Sampler,
    method: Method,
    /// The timestep the network sees at each evaluation (fractional for Euler/Heun with Karras σ; σ
    /// itself for the score-SDE sampler).
    model_t: Vec<f32>,
    /// The training timestep each evaluation is shown at (the model's own but for the score-SDE
    /// sampler, whose σ maps onto the training grid).
    plan_t: Vec<f32>,
    init_scale: f32,
    prediction: Prediction,
}

enum Method {
    Euler(euler::Euler),
    Heun(heun::Heun),
    Dpm(dpm::Dpm),
    UniPc(unipc::UniPc),
    Pndm(pndm::Pndm),
    ScoreSdeVe(score_sde::ScoreSdeVe),
}

/// A class default where the file did not set the field (`from_config`).
fn default_unless<T>(c: &super::SchedulerConfig, field: &str, from_file: T, class_default: T) -> T {
    if c.has(field) {
        from_file
    } else {
        class_default
    }
}

/// A multistep class's `solver_type` and `solver_order` from the file: `own` are the class's two
/// names (the first its default), `foreign` the other class's, which diffusers maps onto the
/// default; true when the second of `own` is chosen. Orders above 2 are refused.
fn multistep_settings(
    c: &super::SchedulerConfig,
    sampler: &str,
    own: [&str; 2],
    foreign: &[&str],
) -> Result<(bool, usize)> {
    let second = match c.solver.solver_type.as_deref() {
        None => false,
        Some(t) if t == own[0] || foreign.contains(&t) => false,
        Some(t) if t == own[1] => true,
        Some(o) => {
            return Err(Error::Invalid(format!(
                "{sampler}: solver_type \"{o}\" ({} or {})",
                own[0], own[1]
            )))
        }
    };
    if c.solver.order > 2 {
        return Err(Error::Invalid(format!(
            "{sampler}: solver_order {} is not supported (1 or 2)",
            c.solver.order
        )));
    }
    Ok((second, c.solver.order))
}

/// The variance-preserving (α_t, σ_t) of k-diffusion's σ: `α = 1/√(σ²+1)`, `σ_t = σ·α`.
fn vp(sigma: f64) -> (f64, f64) {
    let a = 1.0 / (sigma * sigma + 1.0).sqrt();
    (a, sigma * a)
}

impl Solver {
    /// The solver for `sampler` over `steps` inference steps, or `None` for DDPM and DDIM (which keep
    /// no memory and step through [`Gaussian::step`]).
    pub fn new(g: &Gaussian, sampler: Sampler, steps: usize) -> Result<Option<Solver>> {
        let c = &g.config;
        if g.is_ve() && sampler != Sampler::ScoreSdeVe {
            return Err(Error::Invalid(format!(
                "{}: this is a score-SDE (variance-exploding) model, whose network returns the \
                 score of σ-space samples; it samples with sde-ve",
                sampler.name()
            )));
        }
        let (method, model_t, init_scale) = match sampler {
            Sampler::Ddpm | Sampler::Ddim { .. } => return Ok(None),
            Sampler::ScoreSdeVe => {
                let v = score_sde::ScoreSdeVe::new(g, steps)?;
                let (t, s) = (v.model_t(), v.init_scale());
                (Method::ScoreSdeVe(v), t, s)
            }
            Sampler::Euler { karras } => {
                let e = euler::Euler::new(g, steps, karras || c.use_karras_sigmas, false)?;
                let (t, s) = (e.model_t(), e.init_scale());
                (Method::Euler(e), t, s)
            }
            Sampler::EulerAncestral => {
                let e = euler::Euler::new(g, steps, false, true)?;
                let (t, s) = (e.model_t(), e.init_scale());
                (Method::Euler(e), t, s)
            }
            Sampler::Heun { karras } => {
                let h = heun::Heun::new(g, steps, karras || c.use_karras_sigmas)?;
                let (t, s) = (h.model_t(), h.init_scale());
                (Method::Heun(h), t, s)
            }
            Sampler::DpmSolver { sde, karras } => {
                let d = dpm::Dpm::new(g, steps, sde, karras || c.use_karras_sigmas)?;
                let t = d.model_t();
                (Method::Dpm(d), t, 1.0)
            }
            Sampler::UniPc { karras } => {
                let u = unipc::UniPc::new(g, steps, karras || c.use_karras_sigmas)?;
                let t = u.model_t();
                (Method::UniPc(u), t, 1.0)
            }
            Sampler::Pndm { plms } => {
                if c.prediction == Prediction::Sample {
                    return Err(Error::Invalid(
                        "pndm/plms: diffusers' PNDMScheduler takes epsilon or v_prediction models, \
                         not sample"
                            .into(),
                    ));
                }
                let p = pndm::Pndm::new(g, steps, plms || c.skip_prk_steps)?;
                let t = p.model_t();
                (Method::Pndm(p), t, 1.0)
            }
        };
        let plan_t = match &method {
            Method::ScoreSdeVe(v) => v.plan_t(),
            _ => model_t.clone(),
        };
        Ok(Some(Solver {
            sampler,
            method,
            plan_t,
            model_t,
            init_scale,
            prediction: c.prediction,
        }))
    }

    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// Model evaluations in the whole run (Heun: 2·steps − 1; PNDM with warm-up: steps + 9).
    pub fn evals(&self) -> usize {
        self.model_t.len()
    }

    /// The timestep the network sees at evaluation `k`.
    pub fn model_t(&self, k: usize) -> f32 {
        self.model_t[k]
    }

    /// What unit-variance x_T is multiplied by to start the run (diffusers' `init_noise_sigma`,
    /// expressed for the variance-preserving state).
    pub fn init_scale(&self) -> f32 {
        self.init_scale
    }

    /// One entry per evaluation: the (rounded) model timestep and the next evaluation's.
    pub fn plan(&self) -> Vec<PlannedStep> {
        let t: Vec<usize> = self
            .plan_t
            .iter()
            .map(|&v| v.round().max(0.0) as usize)
            .collect();
        (0..t.len())
            .map(|k| PlannedStep {
                t: t[k],
                prev: t.get(k + 1).copied(),
            })
            .collect()
    }

    /// Evaluation `k` of the run from x (the state after `k` evaluations) and the memory after
    /// `k`: the network, then the update, recorded (the caller submits). Returns the step's outputs
    /// and the memory after it. Noise, where the sampler draws any, is Philox (seed, stream = k,
    /// `StepNoise`) unless `noise` injects it.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        model: &dyn Denoiser,
        x: &Tensor,
        k: usize,
        settings: &SampleSettings,
        memory: &Memory,
        noise: Option<Noise<'_>>,
        extras: Extras,
    ) -> Result<(StepOutput, Memory)> {
        if k >= self.evals() {
            return Err(Error::Invalid(format!(
                "step {k} is past the plan's {} steps",
                self.evals()
            )));
        }
        let eval = match &self.method {
            Method::ScoreSdeVe(v) => v.as_eps(
                evaluate(model, &v.model_input(x, k)?, self.model_t[k], settings)?,
                k,
            )?,
            _ => evaluate(model, x, self.model_t[k], settings)?,
        };
        let noise = noise.unwrap_or_else(|| step_noise(settings, k));
        let ctx = Ctx {
            prediction: self.prediction,
            eval: &eval,
            noise,
            extras,
        };
        match &self.method {
            Method::Euler(e) => e.step(&ctx, k, x, memory),
            Method::Heun(h) => h.step(&ctx, k, x, memory),
            Method::Dpm(d) => d.step(&ctx, k, x, memory),
            Method::UniPc(u) => u.step(&ctx, k, x, memory),
            Method::Pndm(p) => p.step(&ctx, k, x, memory),
            Method::ScoreSdeVe(v) => v.step(&ctx, k, x, memory),
        }
    }
}

/// What every method's step gets besides its own tables.
struct Ctx<'a> {
    prediction: Prediction,
    eval: &'a super::Evaluation,
    noise: Noise<'a>,
    extras: Extras,
}

/// The linear form of one fused pass: how the model output is read at x, and the weights.
#[derive(Clone, Copy, Default)]
struct Pass {
    /// (√ᾱ, √(1−ᾱ)) the model output is read with at x.
    read: (f64, f64),
    clip: Option<f32>,
    c_x0: f64,
    c_eps: f64,
    c_xt: f64,
    sigma: f64,
}

impl Ctx<'_> {
    /// One pass over the step's own model output at x, plus `hist`.
    fn pass(
        &self,
        x: &Tensor,
        p: Pass,
        hist: &[(f64, &Tensor)],
        extras: Extras,
    ) -> Result<StepOutput> {
        self.pass_over(
            x,
            self.eval.as_model_output(),
            self.prediction,
            p,
            hist,
            extras,
        )
    }

    /// [`Self::pass`] that also returns the step's x̂0 (a multistep solver keeps it), leaving it in
    /// the output only where the caller asked for it.
    fn pass_keeping_x0(
        &self,
        x: &Tensor,
        p: Pass,
        hist: &[(f64, &Tensor)],
    ) -> Result<(StepOutput, Tensor)> {
        let extras = Extras {
            x0: true,
            ..self.extras
        };
        let mut out = self.pass(x, p, hist, extras)?;
        let x0 = if self.extras.x0 {
            out.x0.clone()
        } else {
            out.x0.take()
        };
        let x0 = x0.ok_or_else(|| Error::Internal("solver_step wrote no x̂0".into()))?;
        Ok((out, x0))
    }

    /// One pass over any model output (a kept x̂0 read as a "sample" prediction, say).
    fn pass_over(
        &self,
        x: &Tensor,
        model: ModelOutput<'_>,
        prediction: Prediction,
        p: Pass,
        hist: &[(f64, &Tensor)],
        extras: Extras,
    ) -> Result<StepOutput> {
        let h: Vec<(f32, &Tensor)> = hist.iter().map(|&(c, t)| (c as f32, t)).collect();
        let noise = if p.sigma != 0.0 {
            self.noise
        } else {
            Noise::None
        };
        solver_step(
            x,
            model,
            &SolverStepParams {
                prediction,
                sqrt_alpha_bar: p.read.0 as f32,
                sqrt_one_minus_alpha_bar: p.read.1 as f32,
                clip: p.clip,
                c_x0: p.c_x0 as f32,
                c_eps: p.c_eps as f32,
                c_xt: p.c_xt as f32,
                sigma: p.sigma as f32,
            },
            &h,
            noise,
            extras,
        )
    }
}
