//! Hoogeboom et al.'s multinomial diffusion: uniform noise on a √α cosine schedule (float64), the
//! posterior re-weighted by the x_t likelihood at every step including t = 0.

use crate::error::{Error, Result};
use crate::ops::sample::{self, Categorical, Noise};
use crate::ops::transition::{self as tr, Coef, Coefs, Prior, StepCoefs, X0};
use crate::rng::{Philox, Substream};
use crate::tensor::{DType, Device, Tensor};

use super::schedule::hoogeboom_cosine_alphas;
use super::{bad_t, per_batch_f32};

/// Multinomial diffusion (Hoogeboom et al.): uniform noise, √α cosine schedule.
pub struct Multinomial {
    pub k: usize,
    pub nsteps: usize,
    pub alphas: Vec<f32>,
    pub alpha_bars: Vec<f32>,
    /// 1 − α_t and 1 − ᾱ_t from the float64 schedule (Hoogeboom's `log_1_min_a` is float64 too).
    pub one_minus_alphas: Vec<f32>,
    pub one_minus_alpha_bars: Vec<f32>,
}

impl Multinomial {
    pub fn new(k: usize, nsteps: usize) -> Result<Multinomial> {
        if k < 2 || nsteps == 0 {
            return Err(Error::Invalid(format!(
                "multinomial diffusion needs K ≥ 2 and T ≥ 1 (got {k}, {nsteps})"
            )));
        }
        let a64 = hoogeboom_cosine_alphas(nsteps, 0.008);
        let mut acc = 0.0f64;
        let ab64: Vec<f64> = a64
            .iter()
            .map(|&a| {
                acc += a.ln();
                acc.exp()
            })
            .collect();
        let f = |v: &[f64], g: fn(f64) -> f64| v.iter().map(|&x| g(x) as f32).collect();
        Ok(Multinomial {
            k,
            nsteps,
            alphas: f(&a64, |x| x),
            alpha_bars: f(&ab64, |x| x),
            one_minus_alphas: f(&a64, |x| 1.0 - x),
            one_minus_alpha_bars: f(&ab64, |x| 1.0 - x),
        })
    }

    pub(super) fn check(&self, t: usize) -> Result<()> {
        if t >= self.nsteps {
            return Err(bad_t(t, 0, self.nsteps));
        }
        Ok(())
    }

    pub fn coefs(&self, t: usize) -> Result<StepCoefs> {
        self.check(t)?;
        Ok(StepCoefs {
            alpha_t: self.alphas[t],
            // At t = 0 Hoogeboom uses log x0 itself: Q̄ = I.
            alpha_bar_prev: if t == 0 { 1.0 } else { self.alpha_bars[t - 1] },
            alpha_bar_t: self.alpha_bars[t],
            last: false,
        })
    }

    pub fn timesteps(&self) -> Vec<usize> {
        (0..self.nsteps).rev().collect()
    }

    /// [1 − α_t, 1 − ᾱ_{t−1}] (t already checked).
    fn complements(&self, t: usize) -> [f32; 2] {
        [
            self.one_minus_alphas[t],
            if t == 0 {
                0.0
            } else {
                self.one_minus_alpha_bars[t - 1]
            },
        ]
    }

    /// `exp(q_pred(log x0, t))` = ᾱ_t x0 + (1 − ᾱ_t)/K: f32 `[.., K]`.
    pub fn forward_probs(&self, x0: &Tensor, t: &[usize]) -> Result<Tensor> {
        let abs = t
            .iter()
            .map(|&t| {
                self.check(t)?;
                Ok(self.alpha_bars[t])
            })
            .collect::<Result<Vec<f32>>>()?;
        let per = per_batch_f32(x0.device(), x0, &abs, 1)?;
        let c = match &per {
            Some(p) => Coef::PerBatch(p),
            None => Coef::Shared(abs[0]),
        };
        tr::forward_ids(x0, c, Prior::Uniform, self.k)
    }

    /// `q_sample`: a Gumbel-max draw from `q_pred`.
    pub fn forward_sample(&self, x0: &Tensor, t: &[usize], noise: Noise<'_>) -> Result<Tensor> {
        let p = self.forward_probs(x0, t)?;
        sample::sample_probs(&p, &Categorical::new(noise).u_min(HOOGEBOOM_U_MIN))
    }

    /// `q_posterior(x0, log x_t, t)` (normalised log probabilities `[.., K]`): with `X0::Ids` the true
    /// posterior, with `X0::Logits(model output)` Hoogeboom's `p_pred` (x0 parametrisation).
    pub fn posterior_log(&self, x0: X0<'_>, x_t: &Tensor, t: &[usize]) -> Result<Tensor> {
        let rows = t
            .iter()
            .map(|&t| {
                let r = self.coefs(t)?.row();
                let c = self.complements(t);
                Ok([r[0], r[1], r[2], r[3], c[0], c[1]])
            })
            .collect::<Result<Vec<[f32; 6]>>>()?;
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let per = per_batch_f32(x_t.device(), x_t, &flat, 6)?;
        let c = match &per {
            Some(p) => Coefs::PerBatchPrecise(p),
            None => Coefs::SharedPrecise(self.coefs(t[0])?, self.complements(t[0])),
        };
        tr::multinomial_posterior_log(x0, x_t, c, Prior::Uniform)
    }

    /// One reverse step: `log_sample_categorical(p_pred(x_t, t))` (Gumbel-max at every t, including
    /// 0). Returns (x_{t−1}, the log posterior).
    pub fn step(
        &self,
        logits: &Tensor,
        x_t: &Tensor,
        t: &[usize],
        temperature: f32,
        noise: Noise<'_>,
    ) -> Result<(Tensor, Tensor)> {
        let lp = self.posterior_log(X0::Logits(logits), x_t, t)?;
        let x = sample::gumbel_max(
            &lp,
            &Categorical::new(noise)
                .temperature(temperature)
                .u_min(HOOGEBOOM_U_MIN),
        )?;
        Ok((x, lp))
    }

    /// The uniform start: Gumbel-max over zero logits, as `log_sample_categorical(zeros)`.
    pub fn prior_sample(&self, device: &Device, n: usize, len: usize, seed: u64) -> Result<Tensor> {
        let z = Tensor::zeros(device, &[n, len, self.k], DType::F32)?;
        sample::gumbel_max(
            &z,
            &Categorical::new(Noise::Philox(Philox::new(seed, 0, Substream::Init)))
                .u_min(HOOGEBOOM_U_MIN),
        )
    }
}

/// Hoogeboom's Gumbel uses `u + 1e-30`; clipping at 1e-30 is the same draw for every u ≥ 1e-30.
pub const HOOGEBOOM_U_MIN: f32 = 1e-30;
