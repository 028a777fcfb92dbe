//! `ScoreSdeVeScheduler` as diffusers' `ScoreSdeVePipeline` runs it, for the score-SDE
//! (variance-exploding) models: at each of N steps, `correct_steps` Langevin corrections
//! (`ops::langevin`) and one reverse-diffusion prediction, each after its own network evaluation at
//! the step's σ. The network takes the σ-space sample `x_VE` and σ itself, and returns the score.
//!
//! As for every sampler, the run's state is variance preserving, `x = α·x_VE` with `α = 1/√(1+σ²)`
//! at the σ the next evaluation sees (1 after the last step, whose state is diffusers' final
//! `prev_sample_mean`: the last prediction adds no noise). The network's score is read as
//! `ε̂ = −σ·score`, so x̂0 = x_VE + σ²·score and the views, exports and guidance-free solver pass
//! work unchanged.
//!
//! σ tables in float32 as diffusers builds them: `timesteps = linspace(1, sampling_eps, N)`, the
//! model's σ_i = σ_min·(σ_max/σ_min)^t_i, and the predictor's σ and adjacent σ from
//! `discrete_sigmas = exp(linspace(ln σ_min, ln σ_max, N))` at index ⌊t_i·(N−1)⌋.

use super::{Ctx, Memory, Pass};
use crate::error::{Error, Result};
use crate::ops::elementwise as ew;
use crate::ops::langevin::{langevin_correct, Langevin};
use crate::ops::random;
use crate::ops::update::{Noise, StepOutput};
use crate::process::gaussian::{Evaluation, Gaussian};
use crate::tensor::Tensor;

pub(super) struct ScoreSdeVe {
    /// The σ the network sees at step i (diffusers' `sigmas`).
    sigmas: Vec<f32>,
    /// The prediction's (σ, adjacent σ) at step i, from `discrete_sigmas`.
    pred: Vec<(f32, f32)>,
    sigma_max: f32,
    snr: f32,
    /// Evaluations per step: the corrections and the prediction.
    per_step: usize,
    /// For the views: the training timestep whose σ is nearest each step's.
    grid_t: Vec<f32>,
}

/// torch's float32 `linspace(start, end, n)`: the first half counted from `start`, the second from
/// `end`.
fn torch_linspace(start: f32, end: f32, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                start + step * i as f32
            } else {
                end - step * (n - i - 1) as f32
            }
        })
        .collect()
}

/// α = 1/√(1+σ²): the variance-preserving scale of σ-space.
fn alpha(sigma: f32) -> f64 {
    1.0 / (1.0 + f64::from(sigma).powi(2)).sqrt()
}

impl ScoreSdeVe {
    pub(super) fn new(g: &Gaussian, steps: usize) -> Result<ScoreSdeVe> {
        let ve = g.config.ve.as_ref().ok_or_else(|| {
            Error::Invalid(
                "sde-ve: this model's scheduler is not a ScoreSdeVeScheduler (a score-SDE \
                 variance-exploding model); use another sampler"
                    .into(),
            )
        })?;
        if steps < 2 {
            return Err(Error::Invalid(
                "sde-ve needs at least 2 steps (its σ grid spans σ_max to σ_min)".into(),
            ));
        }
        let (smin, smax) = (ve.sigma_min as f32, ve.sigma_max as f32);
        let ts = torch_linspace(1.0, ve.sampling_eps as f32, steps);
        let ratio = (ve.sigma_max / ve.sigma_min) as f32;
        // float32 pow, rounded once from float64 (torch's f32 pow is within an ulp of it).
        let sigmas: Vec<f32> = ts
            .iter()
            .map(|&t| smin * (f64::from(ratio).powf(f64::from(t)) as f32))
            .collect();
        let discrete: Vec<f32> = torch_linspace(smin.ln(), smax.ln(), steps)
            .iter()
            .map(|&l| f64::from(l).exp() as f32)
            .collect();
        let pred = ts
            .iter()
            .map(|&t| {
                let idx = (t * (steps - 1) as f32) as usize;
                let idx = idx.min(steps - 1);
                (
                    discrete[idx],
                    if idx == 0 { 0.0 } else { discrete[idx - 1] },
                )
            })
            .collect();
        let (lo, hi) = (ve.sigma_min.ln(), ve.sigma_max.ln());
        let last = (g.train_timesteps() - 1) as f64;
        let grid_t = sigmas
            .iter()
            .map(|&s| ((f64::from(s).ln() - lo) / (hi - lo) * last).clamp(0.0, last) as f32)
            .collect();
        Ok(ScoreSdeVe {
            sigmas,
            pred,
            sigma_max: smax,
            snr: ve.snr as f32,
            per_step: ve.correct_steps + 1,
            grid_t,
        })
    }

    /// Evaluation k's step and whether it is that step's prediction.
    fn at(&self, k: usize) -> (usize, bool) {
        (k / self.per_step, k % self.per_step + 1 == self.per_step)
    }

    pub(super) fn model_t(&self) -> Vec<f32> {
        let n = self.sigmas.len() * self.per_step;
        (0..n).map(|k| self.sigmas[self.at(k).0]).collect()
    }

    pub(super) fn plan_t(&self) -> Vec<f32> {
        let n = self.sigmas.len() * self.per_step;
        (0..n).map(|k| self.grid_t[self.at(k).0]).collect()
    }

    /// x_T = σ_max·z in σ-space, for the state at the first evaluation's σ.
    pub(super) fn init_scale(&self) -> f32 {
        (f64::from(self.sigma_max) * alpha(self.sigmas[0])) as f32
    }

    /// What the network is fed at evaluation k: the σ-space sample.
    pub(super) fn model_input(&self, x: &Tensor, k: usize) -> Result<Tensor> {
        let s = self.sigmas[self.at(k).0];
        ew::affine(x, (1.0 / alpha(s)) as f32, 0.0)
    }

    /// The network's score read as ε̂ = −σ·score (no guidance: these models are unconditional).
    pub(super) fn as_eps(&self, e: Evaluation, k: usize) -> Result<Evaluation> {
        if e.guidance.is_some() {
            return Err(Error::Invalid(
                "sde-ve: classifier-free guidance is not defined for score models".into(),
            ));
        }
        let s = self.sigmas[self.at(k).0];
        Ok(Evaluation {
            out: ew::affine(&e.out, -s, 0.0)?,
            guidance: None,
        })
    }

    pub(super) fn step(
        &self,
        ctx: &Ctx,
        k: usize,
        x: &Tensor,
        _memory: &Memory,
    ) -> Result<(StepOutput, Memory)> {
        let (i, predict) = self.at(k);
        let sigma = self.sigmas[i];
        let a = alpha(sigma);
        let eps = &ctx.eval.out;
        if !predict {
            let z = match ctx.noise {
                Noise::Philox(key) => random::normal(x.device(), x.shape(), key)?,
                Noise::Injected(t) => t.clone(),
                Noise::None => {
                    return Err(Error::Internal(
                        "sde-ve: a Langevin correction needs noise".into(),
                    ))
                }
            };
            let x_prev = langevin_correct(
                x,
                eps,
                &z,
                &Langevin {
                    alpha: a as f32,
                    sigma,
                    snr: self.snr,
                },
            )?;
            // x̂0 = x_VE − σ·ε̂ = (x − σα·ε̂)/α.
            let x0 = if ctx.extras.x0 {
                Some(ew::axpby((1.0 / a) as f32, x, -sigma, eps)?)
            } else {
                None
            };
            let out = StepOutput {
                x_prev,
                x0,
                eps: ctx.extras.eps.then(|| eps.clone()),
            };
            return Ok((out, Memory::default()));
        }
        let (s_d, s_adj) = self.pred[i];
        // diffusers: diffusion = √(σ² − σ_adj²) in float32, its square the drift's weight.
        let d = (s_d * s_d - s_adj * s_adj).sqrt();
        let d2 = f64::from(d * d);
        let a_next = self.sigmas.get(i + 1).map_or(1.0, |&s| alpha(s));
        let last = i + 1 == self.sigmas.len();
        let p = Pass {
            read: (a, f64::from(sigma) * a),
            clip: None,
            c_x0: 0.0,
            c_eps: -a_next * d2 / f64::from(sigma),
            c_xt: a_next / a,
            sigma: if last { 0.0 } else { a_next * f64::from(d) },
        };
        Ok((ctx.pass(x, p, &[], ctx.extras)?, Memory::default()))
    }
}
