//! A diffusers `scheduler_config.json`, read as every diffusers scheduler's `from_config` reads it:
//! the class name in the file does not matter, fields a scheduler does not know are ignored, and the
//! scheduler's own defaults fill what the file leaves out ([`SchedulerConfig::present`] remembers
//! which fields the file set, so each sampler can apply its class's defaults to the rest). A known
//! field of the wrong type, an out-of-range size or a setting diffscope does not implement is an
//! error that names the field.

use super::super::schedule::{BetaSchedule, Spacing};
use super::Prediction;
use crate::error::{Error, Result};
use crate::weights::config_json::{self, Field};
use std::collections::BTreeSet;

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

/// The multistep solvers' settings (DPM-Solver multistep, UniPC), with diffusers' defaults.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SolverSettings {
    /// `solver_order` (both default to 2).
    pub order: usize,
    /// `solver_type`: DPM-Solver's "midpoint" | "heun", UniPC's "bh1" | "bh2" (`None`: the class's
    /// default).
    pub solver_type: Option<String>,
    /// `lower_order_final`: first order for the last steps of short schedules.
    pub lower_order_final: bool,
    /// `euler_at_final` (DPM-Solver).
    pub euler_at_final: bool,
    /// `disable_corrector` (UniPC): step indices whose corrector is skipped.
    pub disable_corrector: Vec<usize>,
}

impl Default for SolverSettings {
    fn default() -> Self {
        SolverSettings {
            order: 2,
            solver_type: None,
            lower_order_final: true,
            euler_at_final: false,
            disable_corrector: Vec::new(),
        }
    }
}

/// diffusers' `ScoreSdeVeScheduler` settings: the variance-exploding SDE of the score-SDE (NCSN++)
/// checkpoints, σ(t) = σ_min·(σ_max/σ_min)^t for t from 1 down to `sampling_eps`, sampled by
/// reverse-diffusion prediction plus `correct_steps` Langevin corrections at signal-to-noise `snr`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VeSettings {
    pub sigma_min: f64,
    pub sigma_max: f64,
    pub snr: f64,
    pub sampling_eps: f64,
    pub correct_steps: usize,
}

impl Default for VeSettings {
    /// `ScoreSdeVeScheduler()`'s defaults.
    fn default() -> Self {
        VeSettings {
            sigma_min: 0.01,
            sigma_max: 1348.0,
            snr: 0.15,
            sampling_eps: 1e-5,
            correct_steps: 1,
        }
    }
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
    /// `use_karras_sigmas` (Euler, Heun, DPM-Solver, UniPC).
    pub use_karras_sigmas: bool,
    /// `skip_prk_steps` (PNDM: PLMS from the first step instead of four Runge–Kutta warm-up steps).
    pub skip_prk_steps: bool,
    pub solver: SolverSettings,
    /// Set for a `ScoreSdeVeScheduler` file: the model is a score-SDE (variance-exploding) one, and
    /// the fields above other than `num_train_timesteps` do not apply.
    pub ve: Option<VeSettings>,
    /// The fields the file set; a sampler's own defaults apply to the others.
    pub present: BTreeSet<String>,
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
            use_karras_sigmas: false,
            skip_prk_steps: false,
            solver: SolverSettings::default(),
            ve: None,
            present: BTreeSet::new(),
        }
    }
}

/// Boolean settings diffusers offers that change the result and diffscope does not implement: each
/// is an error when the file turns it on.
const REFUSED_WHEN_TRUE: &[&str] = &[
    "thresholding",
    "rescale_betas_zero_snr",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "use_lu_lambdas",
    "use_flow_sigmas",
    "use_dynamic_shifting",
    "shift_terminal",
];

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

    /// Whether the file set `field`.
    pub fn has(&self, field: &str) -> bool {
        self.present.contains(field)
    }

    /// Parse a diffusers `scheduler_config.json` of any scheduler class. Python's `json.dump` writes
    /// `-Infinity` for DPM-Solver's default `lambda_min_clipped`, which is not JSON: it is read as
    /// "no clipping". One class name does matter: `ScoreSdeVeScheduler` is a different process
    /// (variance exploding, a score network), read by [`Self::ve_from_json`]; diffusers' pipeline for
    /// those folders (`ScoreSdeVePipeline`) cannot run with another scheduler either.
    pub fn from_json(json: &str, file: &str) -> Result<SchedulerConfig> {
        let bad = |detail: String| Error::Config {
            file: file.to_string(),
            detail,
        };
        let cleaned = json.replace("-Infinity", "null");
        let obj = config_json::object(&cleaned, file)?;
        if obj.get("_class_name").and_then(|v| v.as_str()) == Some("ScoreSdeVeScheduler") {
            return Self::ve_from_json(&obj, file);
        }
        let mut c = SchedulerConfig::default();
        for (k, val) in &obj {
            let f = Field { file, key: k, val };
            let known = match k.as_str() {
                "num_train_timesteps" | "timesteps" => {
                    c.num_train_timesteps = f.int()?;
                    true
                }
                "beta_start" => {
                    c.beta_start = f.num()?;
                    true
                }
                "beta_end" => {
                    c.beta_end = f.num()?;
                    true
                }
                "beta_schedule" => {
                    c.beta_schedule = BetaSchedule::parse(f.string()?)?;
                    true
                }
                "trained_betas" => {
                    if !val.is_null() {
                        return Err(bad("trained_betas is not supported (must be null)".into()));
                    }
                    true
                }
                "prediction_type" => {
                    c.prediction = match f.string()? {
                        "epsilon" => Prediction::Epsilon,
                        "sample" => Prediction::Sample,
                        "v_prediction" => Prediction::V,
                        o => {
                            return Err(bad(format!(
                                "prediction_type \"{o}\" (epsilon, sample or v_prediction)"
                            )))
                        }
                    };
                    true
                }
                // DPM-Solver's variance_type is None or "learned"/"learned_range"; DDPM's names the
                // fixed variances. Only DDPM's fixed ones are implemented.
                "variance_type" => {
                    if !val.is_null() {
                        c.variance = match f.string()? {
                            "fixed_small" => Variance::FixedSmall,
                            "fixed_large" => Variance::FixedLarge,
                            o => {
                                return Err(bad(format!(
                                "variance_type \"{o}\" is not supported (fixed_small or fixed_large)"
                            )))
                            }
                        };
                    }
                    true
                }
                "clip_sample" => {
                    c.clip_sample = f.boolean()?;
                    true
                }
                "clip_sample_range" => {
                    c.clip_sample_range = f.num()? as f32;
                    true
                }
                "timestep_spacing" => {
                    c.timestep_spacing = Spacing::parse(f.string()?)?;
                    true
                }
                "steps_offset" => {
                    c.steps_offset = f.int()?;
                    true
                }
                "set_alpha_to_one" => {
                    c.set_alpha_to_one = f.boolean()?;
                    true
                }
                "ddpm_style" => {
                    c.ddpm_style = match f.string()? {
                        "diffusers" => DdpmStyle::Diffusers,
                        "labml" => DdpmStyle::Labml,
                        o => return Err(bad(format!("ddpm_style \"{o}\" (diffusers or labml)"))),
                    };
                    true
                }
                "use_karras_sigmas" => {
                    c.use_karras_sigmas = !val.is_null() && f.boolean()?;
                    true
                }
                "skip_prk_steps" => {
                    c.skip_prk_steps = f.boolean()?;
                    true
                }
                "solver_order" => {
                    c.solver.order = f.int()?;
                    true
                }
                "solver_type" => {
                    c.solver.solver_type = Some(f.string()?.to_string());
                    true
                }
                "lower_order_final" => {
                    c.solver.lower_order_final = f.boolean()?;
                    true
                }
                "euler_at_final" => {
                    c.solver.euler_at_final = f.boolean()?;
                    true
                }
                "disable_corrector" => {
                    let list = val.as_array().ok_or_else(|| {
                        bad(format!("field \"{k}\" must be a list of step indices"))
                    })?;
                    c.solver.disable_corrector = list
                        .iter()
                        .map(|i| {
                            i.as_u64().map(|u| u as usize).ok_or_else(|| {
                                bad(format!("field \"{k}\" must hold step indices, got {i}"))
                            })
                        })
                        .collect::<Result<_>>()?;
                    true
                }
                "predict_x0" => {
                    if !f.boolean()? {
                        return Err(bad(
                            "predict_x0 = false (UniPC's noise-prediction form) is not \
                                        supported"
                                .into(),
                        ));
                    }
                    true
                }
                "final_sigmas_type" => {
                    if f.string()? != "zero" {
                        return Err(bad(format!(
                            "final_sigmas_type {val} is not supported (\"zero\")"
                        )));
                    }
                    true
                }
                "interpolation_type" => {
                    if f.string()? != "linear" {
                        return Err(bad(format!(
                            "interpolation_type {val} is not supported (\"linear\")"
                        )));
                    }
                    true
                }
                "timestep_type" => {
                    if f.string()? != "discrete" {
                        return Err(bad(format!(
                            "timestep_type {val} is not supported (\"discrete\")"
                        )));
                    }
                    true
                }
                "lambda_min_clipped" | "sigma_min" | "sigma_max" => {
                    if !val.is_null() {
                        return Err(bad(format!("{k} = {val} is not supported (null)")));
                    }
                    true
                }
                "algorithm_type" => {
                    f.string()?;
                    true
                }
                "dynamic_thresholding_ratio" | "sample_max_value" => {
                    f.num()?;
                    true
                }
                k if REFUSED_WHEN_TRUE.contains(&k) => {
                    if !val.is_null() && f.boolean()? {
                        return Err(bad(format!("{k} = true is not supported")));
                    }
                    true
                }
                // The class name and anything else: diffusers' from_config ignores what a class
                // does not take.
                _ => false,
            };
            if known {
                c.present.insert(k.to_string());
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
        lim::size(file, "solver_order", c.solver.order, 1..=3)?;
        Ok(c)
    }

    /// A `ScoreSdeVeScheduler` file: its five settings and `num_train_timesteps` (default 2000);
    /// other fields are ignored, as `from_config` ignores them.
    fn ve_from_json(
        obj: &serde_json::Map<String, serde_json::Value>,
        file: &str,
    ) -> Result<SchedulerConfig> {
        let mut ve = VeSettings::default();
        let mut c = SchedulerConfig {
            num_train_timesteps: 2000,
            clip_sample: false,
            ..SchedulerConfig::default()
        };
        for (k, val) in obj {
            let f = Field { file, key: k, val };
            match k.as_str() {
                "sigma_min" => ve.sigma_min = f.num()?,
                "sigma_max" => ve.sigma_max = f.num()?,
                "snr" => ve.snr = f.num()?,
                "sampling_eps" => ve.sampling_eps = f.num()?,
                "correct_steps" => ve.correct_steps = f.int()?,
                "num_train_timesteps" => c.num_train_timesteps = f.int()?,
                _ => continue,
            }
            c.present.insert(k.to_string());
        }
        use crate::weights::limits as lim;
        lim::size(
            file,
            "num_train_timesteps",
            c.num_train_timesteps,
            2..=lim::MAX_TRAIN_TIMESTEPS,
        )?;
        lim::number(file, "sigma_min", ve.sigma_min, 1e-6..=1e6)?;
        lim::number(file, "sigma_max", ve.sigma_max, ve.sigma_min..=1e6)?;
        lim::number(file, "snr", ve.snr, 0.0..=1e3)?;
        lim::number(file, "sampling_eps", ve.sampling_eps, 1e-12..=1.0)?;
        lim::size(file, "correct_steps", ve.correct_steps, 0..=100)?;
        c.ve = Some(ve);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cifar10_config_and_ignores_what_no_scheduler_takes() {
        let cifar = r#"{"_class_name":"DDPMScheduler","beta_start":0.0001,"beta_end":0.02,"beta_schedule":"linear","num_train_timesteps":1000,"clip_sample":true,"variance_type":"fixed_large","trained_betas":null}"#;
        let c = SchedulerConfig::from_json(cifar, "s.json").unwrap();
        assert_eq!(c.variance, Variance::FixedLarge);
        assert!(c.clip_sample);
        assert!(c.has("clip_sample") && !c.has("timestep_spacing") && !c.has("_class_name"));
        // from_config semantics: the class name does not matter and unknown fields are ignored.
        let c = SchedulerConfig::from_json(
            r#"{"_class_name": "KarrasVeScheduler", "beta_stat": 1, "s_churn": 80}"#,
            "s.json",
        )
        .unwrap();
        assert!(!c.has("beta_stat"));
        // A known field of the wrong type is still an error naming it.
        let e = SchedulerConfig::from_json(r#"{"beta_start": "small"}"#, "s.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("beta_start") && e.contains("s.json"), "{e}");
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

    #[test]
    fn reads_a_saved_dpm_solver_config_and_refuses_what_it_cannot_run() {
        // As diffusers 0.42.1 saves DPMSolverMultistepScheduler(): note the bare -Infinity.
        let dpm = r#"{"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver++",
            "beta_end": 0.02, "beta_schedule": "linear", "beta_start": 0.0001, "dynamic_thresholding_ratio": 0.995,
            "euler_at_final": false, "final_sigmas_type": "zero", "lambda_min_clipped": -Infinity,
            "lower_order_final": true, "num_train_timesteps": 1000, "prediction_type": "epsilon",
            "sample_max_value": 1.0, "solver_order": 2, "solver_type": "midpoint", "steps_offset": 0,
            "thresholding": false, "timestep_spacing": "linspace", "trained_betas": null,
            "use_karras_sigmas": true, "variance_type": null, "use_lu_lambdas": false}"#;
        let c = SchedulerConfig::from_json(dpm, "d.json").unwrap();
        assert!(c.use_karras_sigmas && c.has("timestep_spacing"));
        assert_eq!(c.solver.order, 2);
        assert_eq!(c.solver.solver_type.as_deref(), Some("midpoint"));
        for (json, field) in [
            (r#"{"thresholding": true}"#, "thresholding"),
            (
                r#"{"use_exponential_sigmas": true}"#,
                "use_exponential_sigmas",
            ),
            (r#"{"final_sigmas_type": "sigma_min"}"#, "final_sigmas_type"),
            (r#"{"solver_order": 4}"#, "solver_order"),
            (r#"{"predict_x0": false}"#, "predict_x0"),
            (r#"{"disable_corrector": "all"}"#, "disable_corrector"),
        ] {
            let e = SchedulerConfig::from_json(json, "d.json")
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{json}: {e}");
        }
    }
}
