//! Gaussian diffusion with diffusers' conventions: the scheduler settings (`config.rs`, read from a
//! diffusers `scheduler_config.json`), the schedule tables, the forward process q(x_t | x0), and the
//! reverse samplers: DDPM and DDIM here (one fused update each, no memory), diffusers' σ-space and
//! multistep schedulers in `solver/` (DPM-Solver++, Euler, Euler ancestral, Heun, UniPC, PNDM), on
//! the σ tables of `sigmas.rs`.

mod config;
pub mod sigmas;
pub mod solver;
mod variation;

pub use config::{DdpmStyle, SchedulerConfig, SolverSettings, Variance};
pub use variation::{Variant, Variation};

use super::schedule::{alphas_cumprod, betas, timesteps};
use crate::error::{Error, Result};
use crate::nn::Denoiser;
use crate::ops::elementwise as ew;
use crate::ops::random;
use crate::ops::update::{
    self, CfgOrder, DdimStepParams, DdpmStepParams, DdpmVariance, Extras, Guidance, GuidanceForm,
    ModelOutput, Noise, StepOutput,
};
use crate::rng::{Philox, Substream};
use crate::tensor::Tensor;

/// What the network predicts: the update kernels' own type.
pub use crate::ops::update::Prediction;

/// The schedule tables of one configuration.
#[derive(Clone, Debug)]
pub struct Gaussian {
    pub config: SchedulerConfig,
    pub betas: Vec<f32>,
    pub alphas_cumprod: Vec<f32>,
}

impl Gaussian {
    pub fn new(config: SchedulerConfig) -> Result<Gaussian> {
        if let Some(ve) = &config.ve {
            // The variance-exploding process in variance-preserving terms: x_t/√(1+σ_t²) has
            // ᾱ_t = 1/(1+σ_t²), on the training grid σ_t = exp(linspace(ln σ_min, ln σ_max, T)).
            let t = config.num_train_timesteps;
            let (lo, hi) = (ve.sigma_min.ln(), ve.sigma_max.ln());
            let ac: Vec<f32> = (0..t)
                .map(|i| {
                    let s = (lo + (hi - lo) * i as f64 / (t - 1).max(1) as f64).exp();
                    (1.0 / (1.0 + s * s)) as f32
                })
                .collect();
            let b = (0..t)
                .map(|i| 1.0 - ac[i] / if i == 0 { 1.0 } else { ac[i - 1] })
                .collect();
            return Ok(Gaussian {
                config,
                betas: b,
                alphas_cumprod: ac,
            });
        }
        let b = betas(
            config.beta_schedule,
            config.num_train_timesteps,
            config.beta_start,
            config.beta_end,
        )?;
        let ac = alphas_cumprod(&b);
        // ᾱ_t = 0 would make x̂0 = (x_t − √(1−ᾱ)ε̂)/√ᾱ infinite: refuse rather than draw NaNs.
        if let Some(t) = ac.iter().position(|&a| !(a > 0.0 && a.is_finite())) {
            return Err(Error::Invalid(format!(
                "the β schedule ({:?}, β from {} to {} over {} timesteps) drives ᾱ_t to {} at t = {t}; \
                 no sampler can divide by it",
                config.beta_schedule,
                config.beta_start,
                config.beta_end,
                config.num_train_timesteps,
                ac[t]
            )));
        }
        Ok(Gaussian {
            config,
            betas: b,
            alphas_cumprod: ac,
        })
    }

    /// Whether this is a score-SDE variance-exploding process (its network takes σ and returns the
    /// score; it samples with [`Sampler::ScoreSdeVe`] only).
    pub fn is_ve(&self) -> bool {
        self.config.ve.is_some()
    }

    pub fn train_timesteps(&self) -> usize {
        self.config.num_train_timesteps
    }

    fn check_t(&self, t: usize) -> Result<()> {
        if t >= self.train_timesteps() {
            return Err(Error::Invalid(format!(
                "timestep {t} is outside 0..{}",
                self.train_timesteps()
            )));
        }
        Ok(())
    }

    /// Signal-to-noise ratio ᾱ/(1−ᾱ) at `t`.
    pub fn snr(&self, t: usize) -> f32 {
        let a = self.alphas_cumprod[t];
        a / (1.0 - a)
    }

    /// q(x_t | x0) = √ᾱ_t x0 + √(1−ᾱ_t) ε, with ε from Philox (seed, stream 0, `Forward`) so that moving
    /// the t slider shows the *same* noise growing. Returns (x_t, ε).
    pub fn forward(&self, x0: &Tensor, t: usize, seed: u64) -> Result<(Tensor, Tensor)> {
        self.check_t(t)?;
        let eps = random::normal(
            x0.device(),
            x0.shape(),
            Philox::new(seed, 0, Substream::Forward),
        )?;
        let a = self.alphas_cumprod[t];
        let xt = ew::axpby(a.sqrt(), x0, (1.0 - a).sqrt(), &eps)?;
        Ok((xt, eps))
    }
}

/// Which reverse sampler. The σ-space and multistep ones take the scheduler file's settings as the
/// diffusers class of the same name does through `from_config`; `karras` asks for Karras σ on top of
/// what the file says (`use_karras_sigmas`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Sampler {
    /// Ancestral DDPM with the config's variance type.
    Ddpm,
    /// DDIM with η (0 = deterministic).
    Ddim { eta: f32 },
    /// `DPMSolverMultistepScheduler`, `dpmsolver++` (order 2 by default); `sde`: `sde-dpmsolver++`.
    DpmSolver { sde: bool, karras: bool },
    /// `EulerDiscreteScheduler`.
    Euler { karras: bool },
    /// `EulerAncestralDiscreteScheduler`.
    EulerAncestral,
    /// `HeunDiscreteScheduler`: two model evaluations per step (one on the last).
    Heun { karras: bool },
    /// `UniPCMultistepScheduler` (bh2 predictor–corrector, order 2 by default).
    UniPc { karras: bool },
    /// `PNDMScheduler`: four Runge–Kutta warm-up steps then PLMS, or PLMS throughout when `plms`
    /// (diffusers `skip_prk_steps`, also taken from the file).
    Pndm { plms: bool },
    /// `ScoreSdeVeScheduler` as `ScoreSdeVePipeline` runs it: per step, Langevin corrections then a
    /// reverse-diffusion prediction (score-SDE variance-exploding models only).
    ScoreSdeVe,
}

impl Sampler {
    /// Every sampler's command-line name, in menu order.
    pub const NAMES: &[&str] = &[
        "ddpm",
        "ddim",
        "dpm++2m",
        "dpm++2m-sde",
        "euler",
        "euler-a",
        "heun",
        "unipc",
        "pndm",
        "plms",
        "sde-ve",
    ];

    /// The names of the samplers a process takes, in menu order: `sde-ve` alone for a score-SDE
    /// (variance-exploding) model, every other one otherwise.
    pub fn names_for(g: &Gaussian) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .copied()
            .filter(|&n| (n == "sde-ve") == g.is_ve())
            .collect()
    }

    /// The sampler a name of [`Self::NAMES`] means; `eta` is DDIM's, `karras` the σ-space ones'.
    pub fn parse(name: &str, eta: f32, karras: bool) -> Result<Sampler> {
        Ok(match name {
            "ddpm" => Sampler::Ddpm,
            "ddim" => Sampler::Ddim { eta },
            "dpm++2m" => Sampler::DpmSolver { sde: false, karras },
            "dpm++2m-sde" => Sampler::DpmSolver { sde: true, karras },
            "euler" => Sampler::Euler { karras },
            "euler-a" => Sampler::EulerAncestral,
            "heun" => Sampler::Heun { karras },
            "unipc" => Sampler::UniPc { karras },
            "pndm" => Sampler::Pndm { plms: false },
            "plms" => Sampler::Pndm { plms: true },
            "sde-ve" => Sampler::ScoreSdeVe,
            o => {
                return Err(Error::Invalid(format!(
                    "unknown sampler \"{o}\" (one of {})",
                    Sampler::NAMES.join(", ")
                )))
            }
        })
    }

    /// Its name in [`Self::NAMES`].
    pub fn name(&self) -> &'static str {
        match self {
            Sampler::Ddpm => "ddpm",
            Sampler::Ddim { .. } => "ddim",
            Sampler::DpmSolver { sde: false, .. } => "dpm++2m",
            Sampler::DpmSolver { sde: true, .. } => "dpm++2m-sde",
            Sampler::Euler { .. } => "euler",
            Sampler::EulerAncestral => "euler-a",
            Sampler::Heun { .. } => "heun",
            Sampler::UniPc { .. } => "unipc",
            Sampler::Pndm { plms: false } => "pndm",
            Sampler::Pndm { plms: true } => "plms",
            Sampler::ScoreSdeVe => "sde-ve",
        }
    }

    /// Its usual number of steps on a model trained over `train` timesteps: every one for DDPM and
    /// the score-SDE sampler, 50 for DDIM and PNDM, 20 for the other solvers (what diffusers'
    /// pipelines and their users run them at).
    pub fn default_steps(&self, train: usize) -> usize {
        match self {
            Sampler::Ddpm | Sampler::ScoreSdeVe => train,
            Sampler::Ddim { .. } | Sampler::Pndm { .. } => 50.min(train),
            _ => 20.min(train),
        }
    }

    /// Whether Karras σ were asked for (always false where diffusers has no such option).
    pub fn karras(&self) -> bool {
        match *self {
            Sampler::DpmSolver { karras, .. }
            | Sampler::Euler { karras }
            | Sampler::Heun { karras }
            | Sampler::UniPc { karras } => karras,
            _ => false,
        }
    }

    /// Whether diffusers offers Karras σ for this sampler.
    pub fn takes_karras(&self) -> bool {
        matches!(
            self,
            Sampler::DpmSolver { .. }
                | Sampler::Euler { .. }
                | Sampler::Heun { .. }
                | Sampler::UniPc { .. }
        )
    }

    /// The same sampler with Karras σ asked for or not (where it takes them).
    pub fn with_karras(self, on: bool) -> Sampler {
        match self {
            Sampler::DpmSolver { sde, .. } => Sampler::DpmSolver { sde, karras: on },
            Sampler::Euler { .. } => Sampler::Euler { karras: on },
            Sampler::Heun { .. } => Sampler::Heun { karras: on },
            Sampler::UniPc { .. } => Sampler::UniPc { karras: on },
            other => other,
        }
    }

    /// Whether it draws fresh noise during the reverse run (so its seed matters past x_T).
    pub fn stochastic(&self) -> bool {
        match *self {
            Sampler::Ddpm | Sampler::EulerAncestral | Sampler::ScoreSdeVe => true,
            Sampler::Ddim { eta } => eta != 0.0,
            Sampler::DpmSolver { sde, .. } => sde,
            _ => false,
        }
    }
}

/// Everything that, with the model, determines a reverse trajectory.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SampleSettings {
    pub sampler: Sampler,
    pub steps: usize,
    pub seed: u64,
    /// Per-sample labels for conditional models (the null label means unconditional).
    pub labels: Option<Vec<u32>>,
    /// Classifier-free guidance weight `w` of `uncond + w·(cond − uncond)`; 1 (or `None`) is plain
    /// conditional sampling and needs no unconditional pass.
    pub guidance: Option<f32>,
}

/// One planned reverse step: the timestep the model sees and the timestep it steps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    pub t: usize,
    /// `None` past the end (ᾱ_prev = 1, or `final_alpha_cumprod` for DDIM).
    pub prev: Option<usize>,
}

impl Gaussian {
    /// The reverse run's plan for `steps` inference steps: one entry per model evaluation, with the
    /// timestep the model sees (rounded where a σ-space sampler feeds it a fractional one) and the
    /// one it steps to. DDPM steps to the next listed timestep; DDIM to `t − T/steps` whatever the
    /// spacing (diffusers does); the solvers to their next evaluation's.
    pub fn plan(&self, sampler: Sampler, steps: usize) -> Result<Vec<PlannedStep>> {
        if let Some(solver) = solver::Solver::new(self, sampler, steps)? {
            return Ok(solver.plan());
        }
        let tt = self.train_timesteps();
        let ts = timesteps(
            tt,
            steps,
            self.config.timestep_spacing,
            self.config.steps_offset,
        )?;
        Ok(ts
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let prev = match sampler {
                    Sampler::Ddim { .. } => t.checked_sub(tt / steps),
                    _ => ts.get(i + 1).copied(),
                };
                PlannedStep { t, prev }
            })
            .collect())
    }

    fn clip(&self) -> Option<f32> {
        self.config
            .clip_sample
            .then_some(self.config.clip_sample_range)
    }

    pub fn ddpm_params(&self, s: PlannedStep) -> DdpmStepParams {
        if self.config.ddpm_style == DdpmStyle::Labml {
            return self.labml_params(s);
        }
        DdpmStepParams::diffusers(
            self.config.prediction,
            self.alphas_cumprod[s.t] as f64,
            s.prev.map(|p| self.alphas_cumprod[p] as f64),
            match self.config.variance {
                Variance::FixedSmall => DdpmVariance::FixedSmall,
                Variance::FixedLarge => DdpmVariance::FixedLarge,
            },
            self.clip(),
        )
    }

    fn labml_params(&self, s: PlannedStep) -> DdpmStepParams {
        let ab = self.alphas_cumprod[s.t];
        let ab_prev = s.prev.map_or(1.0, |p| self.alphas_cumprod[p]);
        let (alpha, beta) = if s.prev == s.t.checked_sub(1) {
            // labml's own step: its float32 tables α = 1 − β and σ² = β.
            (1.0 - self.betas[s.t], self.betas[s.t])
        } else {
            let a = ab / ab_prev;
            (a, 1.0 - a)
        };
        let variance = match self.config.variance {
            Variance::FixedLarge => beta,
            Variance::FixedSmall => (1.0 - ab_prev) / (1.0 - ab) * beta,
        };
        DdpmStepParams::labml(self.config.prediction, alpha, ab, variance, self.clip())
    }

    pub fn ddim_params(&self, s: PlannedStep, eta: f32) -> DdimStepParams {
        let final_ac = if self.config.set_alpha_to_one {
            1.0
        } else {
            self.alphas_cumprod[0]
        };
        DdimStepParams {
            prediction: self.config.prediction,
            alpha_bar_t: self.alphas_cumprod[s.t],
            alpha_bar_prev: s.prev.map_or(final_ac, |p| self.alphas_cumprod[p]),
            eta,
            clip: self.clip(),
            use_clipped_model_output: false,
        }
    }

    /// Initial noise x_T for `n` samples of `shape`: Philox (seed, stream 0, `Init`).
    pub fn initial(
        &self,
        device: &crate::tensor::Device,
        n: usize,
        shape: &[usize],
        seed: u64,
    ) -> Result<Tensor> {
        let mut full = vec![n];
        full.extend_from_slice(shape);
        random::normal(device, &full, Philox::new(seed, 0, Substream::Init))
    }

    /// One reverse step `index` of `plan` from `x_t` with DDPM or DDIM: the model (twice the batch
    /// when guided) and the fused update, recorded — the caller submits. The step's noise is Philox
    /// (seed, stream = index, `StepNoise`), so re-running step k from the same x_t gives the same
    /// bits. The solvers keep memory between steps and step through [`solver::Solver::step`].
    pub fn step(
        &self,
        model: &dyn Denoiser,
        x_t: &Tensor,
        plan: &[PlannedStep],
        index: usize,
        settings: &SampleSettings,
        extras: Extras,
    ) -> Result<StepOutput> {
        let s = *plan.get(index).ok_or_else(|| {
            Error::Invalid(format!(
                "step {index} is past the plan's {} steps",
                plan.len()
            ))
        })?;
        let out = evaluate(model, x_t, s.t as f32, settings)?;
        let model_out = out.as_model_output();
        let noise = step_noise(settings, index);
        match settings.sampler {
            Sampler::Ddpm => update::ddpm_step(x_t, model_out, &self.ddpm_params(s), noise, extras),
            Sampler::Ddim { eta } => {
                update::ddim_step(x_t, model_out, &self.ddim_params(s, eta), noise, extras)
            }
            other => Err(Error::Invalid(format!(
                "{} keeps memory between steps: step it through process::gaussian::solver",
                other.name()
            ))),
        }
    }
}

/// The noise of reverse step `index`: Philox (seed, stream = index, `StepNoise`).
pub fn step_noise(settings: &SampleSettings, index: usize) -> Noise<'static> {
    Noise::Philox(Philox::new(
        settings.seed,
        index as u32,
        Substream::StepNoise,
    ))
}

/// A network evaluation at x_t: its output, with both classifier-free guidance halves stacked
/// (conditional first) when the settings guide.
pub struct Evaluation {
    pub out: Tensor,
    /// The guidance weight when `out` stacks both halves.
    pub guidance: Option<f32>,
}

impl Evaluation {
    /// The update kernels' view of it.
    pub fn as_model_output(&self) -> ModelOutput<'_> {
        match self.guidance {
            Some(scale) => ModelOutput::Guided {
                out: &self.out,
                guidance: Guidance {
                    scale,
                    form: GuidanceForm::Diffusers,
                },
                order: CfgOrder::CondFirst,
            },
            None => ModelOutput::Plain(&self.out),
        }
    }

    /// `uncond + w·(cond − uncond)` as a tensor of x_t's shape (the raw output when unguided).
    pub fn combined(&self) -> Result<Tensor> {
        let Some(w) = self.guidance else {
            return Ok(self.out.clone());
        };
        let n = self.out.dim(0) / 2;
        let cond = crate::ops::layout::slice(&self.out, 0, 0, n)?;
        let uncond = crate::ops::layout::slice(&self.out, 0, n, n)?;
        ew::axpby(w, &cond, 1.0 - w, &uncond)
    }
}

/// The network at x_t and model timestep `t` (fractional for σ-space samplers), with the settings'
/// labels, and both guidance halves in one batch when guided. Recorded, not submitted.
pub fn evaluate(
    model: &dyn Denoiser,
    x_t: &Tensor,
    t: f32,
    settings: &SampleSettings,
) -> Result<Evaluation> {
    let device = x_t.device();
    let n = x_t.dim(0);
    let guided = settings.guidance.is_some_and(|w| w != 1.0);
    let batch = if guided { 2 * n } else { n };
    // Uploads first: a host write flushes recorded work, and this step must stay one submission.
    let tt = Tensor::from_f32(device, &[batch], &vec![t; batch])?;
    let labels = match (model.num_labels(), &settings.labels) {
        (Some(k), Some(l)) => {
            if l.len() != n {
                return Err(Error::Invalid(format!(
                    "{} labels for {n} samples",
                    l.len()
                )));
            }
            let mut all = l.clone();
            if guided {
                all.extend(std::iter::repeat_n(k as u32, n));
            }
            Some(Tensor::from_indices(
                device,
                &[batch],
                &all,
                k as u32 + 1,
                "labels",
            )?)
        }
        (Some(k), None) => Some(Tensor::from_u32(device, &[batch], &vec![k as u32; batch])?),
        (None, Some(_)) => {
            return Err(Error::Invalid("this model takes no labels".into()));
        }
        (None, None) => None,
    };
    if guided && model.num_labels().is_none() {
        return Err(Error::Invalid("guidance needs a conditional model".into()));
    }
    let input = if guided {
        duplicate_batch(x_t)?
    } else {
        x_t.clone()
    };
    let out = model.forward(&input, &tt, labels.as_ref())?;
    Ok(Evaluation {
        out,
        guidance: guided.then(|| settings.guidance.unwrap_or(1.0)),
    })
}

/// `[x; x]` along the batch axis.
fn duplicate_batch(x: &Tensor) -> Result<Tensor> {
    crate::ops::layout::concat(&[x, x], 0)
}
