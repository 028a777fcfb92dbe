//! bionemo-moco 0.0.2.2's D3PM: uniform, absorbing and custom priors, `last_time_idx`, the step
//! (posterior + Gumbel-max draw, argmax at the last step) and moco's loss terms.

use crate::error::{Error, Result};
use crate::ops::sample::{self, Categorical, Noise};
use crate::ops::transition::{self as tr, Coef, Coefs, Prior, StepCoefs, X0};
use crate::rng::{Philox, Substream};
use crate::tensor::{Device, Tensor};

use super::config::DiscretePrior;
use super::schedule::cumprod;
use super::{bad_t, per_batch_f32};

/// bionemo-moco's D3PM.
pub struct D3pm {
    pub k: usize,
    pub nsteps: usize,
    pub last_time_idx: usize,
    pub prior: DiscretePrior,
    /// α_i of `Q_i`, i = t − ℓ.
    pub alphas: Vec<f32>,
    /// ᾱ_i of `Q̄_i`.
    pub alpha_bars: Vec<f32>,
    prior_tensor: Option<Tensor>,
}

impl D3pm {
    pub fn new(
        device: &Device,
        k: usize,
        alphas: Vec<f32>,
        prior: DiscretePrior,
        last_time_idx: usize,
    ) -> Result<D3pm> {
        if k < 2 || alphas.is_empty() {
            return Err(Error::Invalid(format!(
                "a D3PM needs K ≥ 2 classes and at least one step (got K = {k}, {} steps)",
                alphas.len()
            )));
        }
        let prior_tensor = match &prior {
            DiscretePrior::Uniform => None,
            DiscretePrior::Absorbing(m) => {
                if *m >= k {
                    return Err(Error::Invalid(format!(
                        "absorbing class {m} is not below K = {k}"
                    )));
                }
                None
            }
            DiscretePrior::Custom(p) => {
                // moco checks the sum one-sidedly; a distribution must sum to 1 either way.
                let s: f32 = p.iter().sum();
                if p.len() != k
                    || (s - 1.0).abs() > 1e-5
                    || p.iter().any(|v| v.is_nan() || *v < 0.0)
                {
                    return Err(Error::Invalid(format!(
                        "custom prior must be {k} non-negative probabilities summing to 1, got {p:?}"
                    )));
                }
                Some(Tensor::from_f32(device, &[k], p)?)
            }
        };
        let alpha_bars = cumprod(&alphas);
        Ok(D3pm {
            k,
            nsteps: alphas.len(),
            last_time_idx,
            prior,
            alphas,
            alpha_bars,
            prior_tensor,
        })
    }

    pub fn prior(&self) -> Prior<'_> {
        match (&self.prior, &self.prior_tensor) {
            (DiscretePrior::Absorbing(m), _) => Prior::Absorbing(*m),
            (DiscretePrior::Custom(_), Some(t)) => Prior::Marginal(t),
            _ => Prior::Uniform,
        }
    }

    /// π as a host vector.
    pub fn pi(&self) -> Vec<f32> {
        match &self.prior {
            DiscretePrior::Uniform => vec![1.0 / self.k as f32; self.k],
            DiscretePrior::Absorbing(m) => (0..self.k).map(|j| (j == *m) as u32 as f32).collect(),
            DiscretePrior::Custom(p) => p.clone(),
        }
    }

    pub(super) fn index(&self, t: usize) -> Result<usize> {
        t.checked_sub(self.last_time_idx)
            .filter(|&i| i < self.nsteps)
            .ok_or_else(|| bad_t(t, self.last_time_idx, self.nsteps))
    }

    /// The coefficients of the reverse step from t: α of `Q_t`, ᾱ of `Q̄prev_t` (1 at ℓ, where moco's
    /// `Q̄prev` is I), ᾱ of `Q̄_t`, and `t == ℓ`.
    pub fn coefs(&self, t: usize) -> Result<StepCoefs> {
        let i = self.index(t)?;
        Ok(StepCoefs {
            alpha_t: self.alphas[i],
            alpha_bar_prev: if i == 0 { 1.0 } else { self.alpha_bars[i - 1] },
            alpha_bar_t: self.alpha_bars[i],
            last: i == 0,
        })
    }

    /// The timesteps of a reverse run, T−1+ℓ down to ℓ.
    pub fn timesteps(&self) -> Vec<usize> {
        (0..self.nsteps)
            .rev()
            .map(|i| i + self.last_time_idx)
            .collect()
    }

    /// `Q_t` (`bar = false`) or `Q̄_t` as a `[K, K]` matrix (for views and checks).
    pub fn matrix(&self, device: &Device, t: usize, bar: bool) -> Result<Tensor> {
        let i = self.index(t)?;
        let a = if bar {
            self.alpha_bars[i]
        } else {
            self.alphas[i]
        };
        let at = Tensor::from_f32(device, &[1], &[a])?;
        tr::matrices(&at, self.prior(), self.k)?.reshape(&[self.k, self.k])
    }

    /// q(x_t | x0) = onehot(x0) @ Q̄_t for u32 ids `[B, ..]`: f32 `[B, .., K]`. `t` holds one timestep
    /// for the batch or one per batch element.
    pub fn forward_probs(&self, x0: &Tensor, t: &[usize]) -> Result<Tensor> {
        let device = x0.device();
        let abs = t
            .iter()
            .map(|&t| Ok(self.alpha_bars[self.index(t)?]))
            .collect::<Result<Vec<f32>>>()?;
        let per = per_batch_f32(device, x0, &abs, 1)?;
        let c = match &per {
            Some(p) => Coef::PerBatch(p),
            None => Coef::Shared(abs[0]),
        };
        tr::forward_ids(x0, c, self.prior(), self.k)
    }

    /// moco's `interpolate`: x_t ~ Cat(onehot(x0) @ Q̄_t) by Gumbel-max with uniforms clipped at 1e-6.
    pub fn forward_sample(&self, x0: &Tensor, t: &[usize], noise: Noise<'_>) -> Result<Tensor> {
        let p = self.forward_probs(x0, t)?;
        sample::sample_probs(&p, &Categorical::new(noise))
    }

    /// moco's `_q_posterior_logits` for model logits (or ids) `x0` and u32 `x_t`: f32 `[.., K]`.
    pub fn posterior_logits(&self, x0: X0<'_>, x_t: &Tensor, t: &[usize]) -> Result<Tensor> {
        let (per, first) = self.coefs_of(x_t, t)?;
        let c = per.as_ref().map_or(Coefs::Shared(first), Coefs::PerBatch);
        tr::d3pm_posterior_logits(x0, x_t, c, self.prior())
    }

    /// The true posterior `q(x_{t−1} | x_t, x0)` of data ids `x0` as normalised log probabilities
    /// `[.., K]` (the ELBO's reference for each step's KL).
    pub fn true_posterior_log(&self, x0: &Tensor, x_t: &Tensor, t: &[usize]) -> Result<Tensor> {
        let (per, first) = self.coefs_of(x_t, t)?;
        let c = per.as_ref().map_or(Coefs::Shared(first), Coefs::PerBatch);
        let ids = X0::Ids { ids: x0, k: self.k };
        tr::multinomial_posterior_log(ids, x_t, c, self.prior())
    }

    /// The step coefficients of `t` (one timestep, or one per batch row of `x_t`) as the posterior
    /// kernels take them: per row (`[B, 4]`) where there are several, and the first's.
    fn coefs_of(&self, x_t: &Tensor, t: &[usize]) -> Result<(Option<Tensor>, StepCoefs)> {
        let first = self.coefs(*t.first().ok_or_else(|| {
            crate::error::Error::Invalid("a posterior needs at least one timestep".into())
        })?)?;
        let rows = t
            .iter()
            .map(|&t| Ok(self.coefs(t)?.row()))
            .collect::<Result<Vec<[f32; 4]>>>()?;
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Ok((per_batch_f32(x_t.device(), x_t, &flat, 4)?, first))
    }

    /// moco's `step`: posterior logits, then `argmax(L/τ + g)` with Gumbel noise except where t = ℓ
    /// (a deterministic argmax of the model's logits there). Returns (x_{t−1}, the posterior logits).
    pub fn step(
        &self,
        logits: &Tensor,
        x_t: &Tensor,
        t: &[usize],
        temperature: f32,
        noise: Noise<'_>,
    ) -> Result<(Tensor, Tensor)> {
        self.step_masked(logits, x_t, t, temperature, noise, None)
    }

    /// [`D3pm::step`] with moco's `mask`: the next state times `mask` (f32 0/1, `[B, L]` or `[B]`), so
    /// masked positions come out as class 0 (moco multiplies the ids; only 0/1 masks make sense).
    pub fn step_masked(
        &self,
        logits: &Tensor,
        x_t: &Tensor,
        t: &[usize],
        temperature: f32,
        noise: Noise<'_>,
        mask: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let post = self.posterior_logits(X0::Logits(logits), x_t, t)?;
        let nz: Vec<f32> = t
            .iter()
            .map(|&t| (t != self.last_time_idx) as u32 as f32)
            .collect();
        let nz_mask = if t.len() > 1 {
            Some(Tensor::from_f32(x_t.device(), &[t.len()], &nz)?)
        } else {
            None
        };
        let noise = if t.len() == 1 && nz[0] == 0.0 {
            Noise::None
        } else {
            noise
        };
        let mut opts = Categorical::new(noise).temperature(temperature);
        if let Some(m) = &nz_mask {
            opts = opts.mask(m);
        }
        if let Some(k) = mask {
            opts = opts.keep(k);
        }
        let x = sample::gumbel_max(&post, &opts)?;
        Ok((x, post))
    }

    /// The step from t with [`super::Unmasking::Confident`]: as many masked positions revealed as
    /// the process reveals (each with chance c_t = (ᾱ_{t−1} − ᾱ_t)/(1 − ᾱ_t), every one at the last
    /// step), the most confident ones, each with a token drawn from the model's prediction at
    /// temperature τ ([`crate::ops::unmask::confident`]). Returns (x_{t−1}, the posterior logits,
    /// for the views). Needs the absorbing prior.
    pub fn step_confident(
        &self,
        logits: &Tensor,
        x_t: &Tensor,
        t: usize,
        temperature: f32,
        gumbel: Philox,
        choice_noise: f32,
    ) -> Result<(Tensor, Tensor)> {
        let DiscretePrior::Absorbing(m) = self.prior else {
            return Err(Error::Invalid(
                "un-masking by confidence needs the absorbing prior".into(),
            ));
        };
        let c = self.coefs(t)?;
        let reveal = if c.last {
            1.0
        } else {
            ((c.alpha_bar_prev - c.alpha_bar_t) / (1.0 - c.alpha_bar_t).max(f32::MIN_POSITIVE))
                .clamp(0.0, 1.0)
        };
        let post = self.posterior_logits(X0::Logits(logits), x_t, &[t])?;
        let b = x_t.dim(0);
        let reveal = Tensor::from_f32(x_t.device(), &[b], &vec![reveal; b])?;
        let opts = crate::ops::unmask::Unmask {
            mask_token: m as u32,
            temperature,
            u_min: 1e-6,
            gumbel,
            reveal: Philox {
                substream: Substream::Reveal as u32,
                ..gumbel
            },
            choice_noise,
            choice: Philox {
                substream: Substream::Choice as u32,
                ..gumbel
            },
        };
        let x = crate::ops::unmask::confident(logits, x_t, &reveal, &opts)?;
        Ok((x, post))
    }

    /// A step's draw `x` from x_t, redrawn where it would put a pad before a letter
    /// ([`crate::ops::pad_suffix`]), from the `scores` it was drawn from: at every step of an
    /// absorbing process (a revealed token is final), and at the last step of the others (their
    /// tokens are redrawn at every step until then). `confident`: the draw was
    /// [`D3pm::step_confident`]'s (tokens from the model's logits, the mask never drawn); else
    /// [`D3pm::step`]'s (from the posterior, which may keep a position masked; argmax at the last step).
    #[allow(clippy::too_many_arguments)]
    pub fn hold_pad_suffix(
        &self,
        scores: &Tensor,
        x_t: &Tensor,
        x: Tensor,
        t: usize,
        pad: u32,
        (temperature, gumbel): (f32, Philox),
        confident: bool,
    ) -> Result<Tensor> {
        let last = t == self.last_time_idx;
        let mask = match self.prior {
            DiscretePrior::Absorbing(m) => Some(m as u32),
            _ if last => None,
            _ => return Ok(x),
        };
        let o = crate::ops::pad_suffix::PadSuffix {
            pad,
            mask,
            mask_competes: !confident,
            temperature,
            u_min: 1e-6,
            noise: (confident || !last).then_some(gumbel),
        };
        crate::ops::pad_suffix::redraw(scores, x_t, &x, &o)
    }

    #[cfg(not(target_arch = "wasm32"))] // reads results back, blocking
    /// moco's `loss(logits, target, x_t, t, vb_scale)` without a mask: per batch element, the mean
    /// cross-entropy over positions plus `vb_scale ·` the VLB (moco's quirks kept: the "true"
    /// posterior is computed from the one-hot target *as logits*, and the VLB is one scalar — the mean
    /// over every position of the batch — added to each element).
    pub fn loss(
        &self,
        logits: &Tensor,
        target: &Tensor,
        x_t: &Tensor,
        t: &[usize],
        vb_scale: f32,
    ) -> Result<Vec<f32>> {
        let device = logits.device();
        let b = x_t.dim(0);
        let ce = tr::row_nll(logits, target)?.to_f32()?;
        let per = ce.len() / b.max(1);
        let mut out: Vec<f32> = ce
            .chunks(per.max(1))
            .map(|c| c.iter().sum::<f32>() / per as f32)
            .collect();
        if vb_scale > 0.0 {
            let ids = target.to_u32()?;
            let mut oh = vec![0.0f32; ids.len() * self.k];
            for (r, &c) in ids.iter().enumerate() {
                oh[r * self.k + (c as usize).min(self.k - 1)] = 1.0;
            }
            let mut shape = target.shape().to_vec();
            shape.push(self.k);
            let oh = Tensor::from_f32(device, &shape, &oh)?;
            let truth = self.posterior_logits(X0::Logits(&oh), x_t, t)?;
            let pred = self.posterior_logits(X0::Logits(logits), x_t, t)?;
            let kl = tr::row_kl(&truth, &pred)?.to_f32()?;
            let vb = kl.iter().map(|&v| v as f64).sum::<f64>() / kl.len() as f64;
            for v in &mut out {
                *v += vb_scale * vb as f32;
            }
        }
        Ok(out)
    }

    /// A draw from the prior π for `[n, len]`: all mask for absorbing, Philox Gumbel-max otherwise.
    pub fn prior_sample(&self, device: &Device, n: usize, len: usize, seed: u64) -> Result<Tensor> {
        let key = Philox::new(seed, 0, Substream::Init);
        match &self.prior {
            DiscretePrior::Absorbing(m) => {
                Tensor::from_u32(device, &[n, len], &vec![*m as u32; n * len])
            }
            _ => {
                let pi = self.pi();
                let rows: Vec<f32> = (0..n * len).flat_map(|_| pi.iter().copied()).collect();
                let p = Tensor::from_f32(device, &[n, len, self.k], &rows)?;
                sample::sample_probs(&p, &Categorical::new(Noise::Philox(key)))
            }
        }
    }
}
