//! Gaussian diffusion with diffusers' conventions: the scheduler settings (read from a diffusers
//! `scheduler_config.json`), the schedule tables, and the forward process q(x_t | x0).

use super::schedule::{alphas_cumprod, betas, BetaSchedule, Spacing};
use crate::error::{Error, Result};
use crate::ops::elementwise as ew;
use crate::ops::random;
use crate::rng::{Philox, Substream};
use crate::tensor::Tensor;

/// What the network predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Prediction {
    Epsilon,
    Sample,
    V,
}

/// The DDPM ancestral step's variance (diffusers `variance_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Variance {
    /// σ² = β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t)·β_t (diffusers' default).
    FixedSmall,
    /// σ² = β_t (labml, google/ddpm-cifar10-32).
    FixedLarge,
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
        }
    }
}

impl SchedulerConfig {
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
                    .map(|u| u as usize)
                    .ok_or_else(|| bad(format!("field \"{k}\" must be a non-negative integer, got {val}")))
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
                    if !matches!(s, "DDPMScheduler" | "DDIMScheduler" | "GaussianDDPMScheduler") {
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
                        o => return Err(bad(format!("prediction_type \"{o}\" (epsilon, sample or v_prediction)"))),
                    }
                }
                "variance_type" => {
                    c.variance = match string()? {
                        "fixed_small" => Variance::FixedSmall,
                        "fixed_large" => Variance::FixedLarge,
                        o => return Err(bad(format!("variance_type \"{o}\" is not supported (fixed_small or fixed_large)"))),
                    }
                }
                "clip_sample" => c.clip_sample = boolean()?,
                "clip_sample_range" => c.clip_sample_range = num()? as f32,
                "timestep_spacing" => c.timestep_spacing = Spacing::parse(string()?)?,
                "steps_offset" => c.steps_offset = int()?,
                "set_alpha_to_one" => c.set_alpha_to_one = boolean()?,
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
        if c.num_train_timesteps == 0 {
            return Err(bad("num_train_timesteps must be at least 1".into()));
        }
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
        let eps = random::normal(x0.gpu(), x0.shape(), Philox::new(seed, 0, Substream::Forward))?;
        let a = self.alphas_cumprod[t];
        let xt = ew::axpby(a.sqrt(), x0, (1.0 - a).sqrt(), &eps)?;
        Ok((xt, eps))
    }
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
        let e = SchedulerConfig::from_json(r#"{"beta_stat": 1}"#, "s.json").unwrap_err().to_string();
        assert!(e.contains("unknown field \"beta_stat\"") && e.contains("s.json"), "{e}");
        let e = SchedulerConfig::from_json(r#"{"variance_type": "learned"}"#, "s.json").unwrap_err().to_string();
        assert!(e.contains("learned"), "{e}");
        assert!(SchedulerConfig::from_json("[1,2]", "s").is_err());
        assert!(SchedulerConfig::from_json("{", "s").is_err());
    }
}
