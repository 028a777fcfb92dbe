//! Gaussian diffusion with diffusers' conventions: the scheduler settings (read from a diffusers
//! `scheduler_config.json`), the schedule tables, and the forward process q(x_t | x0).

use super::schedule::{alphas_cumprod, betas, timesteps, BetaSchedule, Spacing};
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

/// The DDPM ancestral step's variance (diffusers `variance_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Variance {
    /// σ² = β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t)·β_t (diffusers' default).
    FixedSmall,
    /// σ² = β_t (labml, google/ddpm-cifar10-32).
    FixedLarge,
}

/// Whose DDPM ancestral step to reproduce. The two agree in exact arithmetic on the mean for
/// consecutive steps but round differently, and differ at the last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DdpmStyle {
    /// diffusers `DDPMScheduler.step`: posterior-form mean with β recomputed as `1 − ᾱ_t/ᾱ_prev`;
    /// no noise on the last step.
    Diffusers,
    /// labml `DenoiseDiffusion.p_sample`: `(1/√α_t)(x_t − β_t/√(1−ᾱ_t)·ε̂) + σ z` from the table
    /// `α_t = 1 − β_t`, with noise added at *every* step, t = 0 included (labml's σ at t = 0 is
    /// √β_0 = 0.01). labml only steps t → t−1; a strided plan uses the step's own `α = ᾱ_t/ᾱ_prev`.
    Labml,
}

/// A diffusers scheduler configuration, validated.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SchedulerConfig {
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: BetaSchedule,
    pub prediction: Prediction,
    pub variance: Variance,
    pub clip_sample: bool,
    pub clip_sample_range: f32,
    pub timestep_spacing: Spacing,
    pub steps_offset: usize,
    pub set_alpha_to_one: bool,
    /// A diffscope extension (`"ddpm_style"` in the JSON; diffusers ignores it): `Diffusers` unless
    /// a model was trained and sampled with labml's sampler.
    pub ddpm_style: DdpmStyle,
}

impl Default for SchedulerConfig {
    /// diffusers' `DDPMScheduler()` defaults.
    fn default() -> Self {
        SchedulerConfig {
            num_train_timesteps: 1000,
            beta_start: 1e-4,
            beta_end: 0.02,
            beta_schedule: BetaSchedule::Linear,
            prediction: Prediction::Epsilon,
            variance: Variance::FixedSmall,
            clip_sample: true,
            clip_sample_range: 1.0,
            timestep_spacing: Spacing::Leading,
            steps_offset: 0,
            set_alpha_to_one: true,
            ddpm_style: DdpmStyle::Diffusers,
        }
    }
}

impl SchedulerConfig {
    /// labml's DDPM (`DenoiseDiffusion(eps_model, n_steps)`): β = linspace(1e-4, 0.02, T), ε
    /// prediction, σ² = β_t ("fixed_large"), no clipping, noise at every step including t = 0.
    /// labml's models see data in [0, 1], not [−1, 1].
    pub fn labml(num_train_timesteps: usize) -> SchedulerConfig {
        SchedulerConfig {
            num_train_timesteps,
            variance: Variance::FixedLarge,
            clip_sample: false,
            ddpm_style: DdpmStyle::Labml,
            ..SchedulerConfig::default()
        }
    }

    /// Parse a diffusers `scheduler_config.json` (DDPMScheduler or DDIMScheduler). Unknown fields and
    /// settings diffscope does not implement are errors that name the field.
    pub fn from_json(json: &str, file: &str) -> Result<SchedulerConfig> {
        let bad = |detail: String| Error::Config {
            file: file.to_string(),
            detail,
        };
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(format!("not valid JSON ({e})")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        let mut c = SchedulerConfig::default();
        for (k, val) in obj {
            let num = || {
                val.as_f64()
                    .ok_or_else(|| bad(format!("field \"{k}\" must be a number, got {val}")))
            };
            let int = || {
                val.as_u64()
                    .and_then(|u| usize::try_from(u).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "field \"{k}\" must be a non-negative integer, got {val}"
                        ))
                    })
            };
            let boolean = || {
                val.as_bool()
                    .ok_or_else(|| bad(format!("field \"{k}\" must be true or false, got {val}")))
            };
            let string = || {
                val.as_str()
                    .ok_or_else(|| bad(format!("field \"{k}\" must be a string, got {val}")))
            };
            match k.as_str() {
                "_class_name" => {
                    let s = string()?;
                    if !matches!(
                        s,
                        "DDPMScheduler" | "DDIMScheduler" | "GaussianDDPMScheduler"
                    ) {
                        return Err(bad(format!(
                            "_class_name \"{s}\" is not supported (DDPMScheduler or DDIMScheduler)"
                        )));
                    }
                }
                "_diffusers_version" => {}
                "num_train_timesteps" | "timesteps" => c.num_train_timesteps = int()?,
                "beta_start" => c.beta_start = num()?,
                "beta_end" => c.beta_end = num()?,
                "beta_schedule" => c.beta_schedule = BetaSchedule::parse(string()?)?,
                "trained_betas" => {
                    if !val.is_null() {
                        return Err(bad("trained_betas is not supported (must be null)".into()));
                    }
                }
                "prediction_type" => {
                    c.prediction = match string()? {
                        "epsilon" => Prediction::Epsilon,
                        "sample" => Prediction::Sample,
                        "v_prediction" => Prediction::V,
                        o => {
                            return Err(bad(format!(
                                "prediction_type \"{o}\" (epsilon, sample or v_prediction)"
                            )))
                        }
                    }
                }
                "variance_type" => {
                    c.variance = match string()? {
                        "fixed_small" => Variance::FixedSmall,
                        "fixed_large" => Variance::FixedLarge,
                        o => {
                            return Err(bad(format!(
                            "variance_type \"{o}\" is not supported (fixed_small or fixed_large)"
                        )))
                        }
                    }
                }
                "clip_sample" => c.clip_sample = boolean()?,
                "clip_sample_range" => c.clip_sample_range = num()? as f32,
                "timestep_spacing" => c.timestep_spacing = Spacing::parse(string()?)?,
                "steps_offset" => c.steps_offset = int()?,
                "set_alpha_to_one" => c.set_alpha_to_one = boolean()?,
                "ddpm_style" => {
                    c.ddpm_style = match string()? {
                        "diffusers" => DdpmStyle::Diffusers,
                        "labml" => DdpmStyle::Labml,
                        o => return Err(bad(format!("ddpm_style \"{o}\" (diffusers or labml)"))),
                    }
                }
                "thresholding" | "rescale_betas_zero_snr" => {
                    if boolean()? {
                        return Err(bad(format!("{k} = true is not supported")));
                    }
                }
                "dynamic_thresholding_ratio" | "sample_max_value" => {
                    num()?;
                }
                other => return Err(bad(format!("unknown field \"{other}\""))),
            }
        }
        use crate::weights::limits as lim;
        let t = lim::size(
            file,
            "num_train_timesteps",
            c.num_train_timesteps,
            1..=lim::MAX_TRAIN_TIMESTEPS,
        )?;
        lim::number(file, "beta_start", c.beta_start, 0.0..=0.999)?;
        lim::number(file, "beta_end", c.beta_end, 0.0..=0.999)?;
        lim::number(
            file,
            "clip_sample_range",
            c.clip_sample_range as f64,
            1e-6..=1e6,
        )?;
        lim::size(file, "steps_offset", c.steps_offset, 0..=t - 1)?;
        Ok(c)
    }
}

/// The schedule tables of one configuration.
#[derive(Clone, Debug)]
pub struct Gaussian {
    pub config: SchedulerConfig,
    pub betas: Vec<f32>,
    pub alphas_cumprod: Vec<f32>,
}

impl Gaussian {
    pub fn new(config: SchedulerConfig) -> Result<Gaussian> {
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

/// Which reverse sampler.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Sampler {
    /// Ancestral DDPM with the config's variance type.
    Ddpm,
    /// DDIM with η (0 = deterministic).
    Ddim { eta: f32 },
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
    /// diffusers' timesteps for `steps` inference steps, with each step's previous timestep: DDPM
    /// steps to the next listed timestep; DDIM to `t − T/steps` whatever the spacing (diffusers does).
    pub fn plan(&self, sampler: Sampler, steps: usize) -> Result<Vec<PlannedStep>> {
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
                    Sampler::Ddpm => ts.get(i + 1).copied(),
                    Sampler::Ddim { .. } => t.checked_sub(tt / steps),
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

    /// One reverse step `index` of `plan` from `x_t`: the model (twice the batch when guided) and the
    /// fused update, recorded — the caller submits. The step's noise is Philox (seed, stream = index,
    /// `StepNoise`), so re-running step k from the same x_t gives the same bits.
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
        let device = x_t.device();
        let n = x_t.dim(0);
        let guided = settings.guidance.is_some_and(|w| w != 1.0);
        let batch = if guided { 2 * n } else { n };
        // Uploads first: a host write flushes recorded work, and this step must stay one submission.
        let t = Tensor::from_f32(device, &[batch], &vec![s.t as f32; batch])?;
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
        let out = model.forward(&input, &t, labels.as_ref())?;
        let model_out = if guided {
            ModelOutput::Guided {
                out: &out,
                guidance: Guidance {
                    scale: settings.guidance.unwrap_or(1.0),
                    form: GuidanceForm::Diffusers,
                },
                order: CfgOrder::CondFirst,
            }
        } else {
            ModelOutput::Plain(&out)
        };
        let noise = Noise::Philox(Philox::new(
            settings.seed,
            index as u32,
            Substream::StepNoise,
        ));
        match settings.sampler {
            Sampler::Ddpm => update::ddpm_step(x_t, model_out, &self.ddpm_params(s), noise, extras),
            Sampler::Ddim { eta } => {
                update::ddim_step(x_t, model_out, &self.ddim_params(s, eta), noise, extras)
            }
        }
    }
}

/// `[x; x]` along the batch axis.
fn duplicate_batch(x: &Tensor) -> Result<Tensor> {
    crate::ops::layout::concat(&[x, x], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cifar10_config_and_rejects_unknowns() {
        let cifar = r#"{"_class_name":"DDPMScheduler","beta_start":0.0001,"beta_end":0.02,"beta_schedule":"linear","num_train_timesteps":1000,"clip_sample":true,"variance_type":"fixed_large","trained_betas":null}"#;
        let c = SchedulerConfig::from_json(cifar, "s.json").unwrap();
        assert_eq!(c.variance, Variance::FixedLarge);
        assert!(c.clip_sample);
        let e = SchedulerConfig::from_json(r#"{"beta_stat": 1}"#, "s.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field \"beta_stat\"") && e.contains("s.json"),
            "{e}"
        );
        let e = SchedulerConfig::from_json(r#"{"variance_type": "learned"}"#, "s.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("learned"), "{e}");
        let c = SchedulerConfig::from_json(r#"{"ddpm_style": "labml"}"#, "s.json").unwrap();
        assert_eq!(c.ddpm_style, DdpmStyle::Labml);
        let e = SchedulerConfig::from_json(r#"{"ddpm_style": "ddim"}"#, "s.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ddpm_style \"ddim\""), "{e}");
        assert!(SchedulerConfig::from_json("[1,2]", "s").is_err());
        assert!(SchedulerConfig::from_json("{", "s").is_err());
    }
}
