//! Discrete diffusion over sequences of class ids: bionemo-moco 0.0.2.2's D3PM and Hoogeboom et al.'s
//! multinomial diffusion (ANCHOR_MATH §1.3–1.4 and §3.1), on the GPU through the transition,
//! posterior and Gumbel kernels.
//!
//! Time indices follow each reference. D3PM: steps `t ∈ {ℓ, …, ℓ+T−1}` (ℓ = `last_time_idx`), index ℓ
//! already carries one step of noise (`Q̄_ℓ = Q_0`), and the step at ℓ returns the argmax of the
//! model's logits. Multinomial: `t ∈ {0, …, T−1}`, and at t = 0 the posterior re-weights the prediction
//! by the x_t likelihood and is sampled like every other step.
//!
//! Random draws are Philox keyed by (seed, stream, substream): the prior draw is (seed, 0, `Init`), the
//! Gumbel noise of reverse step number `i` (0 = the first, at t = T−1) is (seed, i, `Gumbel`), and a
//! forward draw at t is (seed, t, `Forward`).

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::Denoiser;
use crate::ops::norm;
use crate::ops::sample::{self, Categorical, Noise};
use crate::ops::transition::{self as tr, Coef, Coefs, Prior, StepCoefs, X0};
use crate::rng::{Philox, Substream};
use crate::tensor::{DType, Tensor};

/// bionemo-moco's `DiscreteCosineNoiseSchedule(nsteps, nu, s).generate_schedule()`: the per-step keep
/// factors α (index 0 least noisy), computed in float32 in torch's order, with β clipped to
/// [1e-3, 0.999].
pub fn moco_cosine_alphas(nsteps: usize, nu: f32, s: f32) -> Vec<f32> {
    let n = nsteps as f32;
    let x = super::schedule::linspace_f32(0.0, nsteps as f64, nsteps + 1);
    let one_s = (1.0f64 + s as f64) as f32;
    let ac: Vec<f32> = x
        .iter()
        .map(|&xi| {
            let c = (((xi / n).powf(nu) + s) / one_s * std::f32::consts::PI * 0.5).cos();
            c * c
        })
        .collect();
    let a0 = ac[0];
    let ac: Vec<f32> = ac.iter().map(|&v| v / a0).collect();
    (0..nsteps)
        .map(|i| 1.0 - (1.0 - ac[i + 1] / ac[i]).clamp(0.001, 0.999))
        .collect()
}

/// bionemo-moco's `DiscreteLinearNoiseSchedule`: `α = 1 − linspace(β_start, β_end, n)` in float32.
pub fn moco_linear_alphas(nsteps: usize, beta_start: f64, beta_end: f64) -> Vec<f32> {
    super::schedule::linspace_f32(beta_start, beta_end, nsteps)
        .into_iter()
        .map(|b| 1.0 - b)
        .collect()
}

/// Hoogeboom's `cosine_beta_schedule` for multinomial diffusion, in float64: `linspace(0, T+1, T+1)`
/// spacing, α = ᾱ_{t+1}/ᾱ_t clipped to ≥ 1e-3, then **√α** ("alpha in our paper is alpha_sqrt of Ho").
pub fn hoogeboom_cosine_alphas(t: usize, s: f64) -> Vec<f64> {
    let steps = t + 1;
    let ac: Vec<f64> = (0..steps)
        .map(|i| {
            // numpy linspace(0, steps, steps): i·steps/(steps−1).
            let x = if steps > 1 {
                i as f64 * steps as f64 / (steps - 1) as f64
            } else {
                0.0
            };
            let c = ((x / steps as f64 + s) / (1.0 + s) * std::f64::consts::PI * 0.5).cos();
            c * c
        })
        .collect();
    let a0 = ac[0];
    (0..t)
        .map(|i| ((ac[i + 1] / a0) / (ac[i] / a0)).clamp(0.001, 1.0).sqrt())
        .collect()
}

/// ᾱ_t = Π_{s ≤ t} α_s (the closed form of moco's sequential `Q̄` products), accumulated in f64.
fn cumprod(alphas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    alphas
        .iter()
        .map(|&a| {
            acc *= a as f64;
            acc as f32
        })
        .collect()
}

/// The stationary distribution of a D3PM.
#[derive(Clone, Debug, PartialEq)]
pub enum DiscretePrior {
    Uniform,
    /// Everything is absorbed into this class (moco's `DiscreteMaskedPrior`; inclusive: K − 1).
    Absorbing(usize),
    /// Any π (moco's `DiscreteCustomPrior`).
    Custom(Vec<f32>),
}

/// The settings of a discrete process, as stored in a model's `process.json`.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// "d3pm" or "multinomial".
    pub process: String,
    pub num_classes: usize,
    pub seq_len: usize,
    pub nsteps: usize,
    pub schedule: ScheduleConfig,
    /// D3PM: "uniform", "absorbing" or "custom".
    #[serde(default)]
    pub prior: Option<String>,
    /// D3PM custom prior π.
    #[serde(default)]
    pub prior_dist: Option<Vec<f32>>,
    #[serde(default)]
    pub last_time_idx: usize,
    #[serde(default)]
    pub mask_token: Option<usize>,
    /// The class that pads short sequences (words), if any.
    #[serde(default)]
    pub pad_token: Option<usize>,
    /// One character per class id, for text and FASTA output.
    pub vocab: String,
}

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// "cosine" (moco), "linear" (moco) or "hoogeboom_cosine_sqrt".
    pub kind: String,
    #[serde(default)]
    pub nu: Option<f32>,
    #[serde(default)]
    pub s: Option<f64>,
    #[serde(default)]
    pub beta_start: Option<f64>,
    #[serde(default)]
    pub beta_end: Option<f64>,
}

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

fn bad_t(t: usize, lo: usize, n: usize) -> Error {
    Error::Invalid(format!(
        "timestep {t} is outside {lo}..{} (this process has {n} steps)",
        lo + n
    ))
}

impl D3pm {
    pub fn new(
        gpu: &Gpu,
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
                Some(Tensor::from_f32(gpu, &[k], p)?)
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

    fn index(&self, t: usize) -> Result<usize> {
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
    pub fn matrix(&self, gpu: &Gpu, t: usize, bar: bool) -> Result<Tensor> {
        let i = self.index(t)?;
        let a = if bar {
            self.alpha_bars[i]
        } else {
            self.alphas[i]
        };
        let at = Tensor::from_f32(gpu, &[1], &[a])?;
        tr::matrices(&at, self.prior(), self.k)?.reshape(&[self.k, self.k])
    }

    /// q(x_t | x0) = onehot(x0) @ Q̄_t for u32 ids `[B, ..]`: f32 `[B, .., K]`. `t` holds one timestep
    /// for the batch or one per batch element.
    pub fn forward_probs(&self, x0: &Tensor, t: &[usize]) -> Result<Tensor> {
        let gpu = x0.gpu();
        let abs = t
            .iter()
            .map(|&t| Ok(self.alpha_bars[self.index(t)?]))
            .collect::<Result<Vec<f32>>>()?;
        let per = per_batch_f32(gpu, x0, &abs, 1)?;
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
        let rows = t
            .iter()
            .map(|&t| Ok(self.coefs(t)?.row()))
            .collect::<Result<Vec<[f32; 4]>>>()?;
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let per = per_batch_f32(x_t.gpu(), x_t, &flat, 4)?;
        let c = match &per {
            Some(p) => Coefs::PerBatch(p),
            None => Coefs::Shared(self.coefs(t[0])?),
        };
        tr::d3pm_posterior_logits(x0, x_t, c, self.prior())
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
            Some(Tensor::from_f32(x_t.gpu(), &[t.len()], &nz)?)
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
        let gpu = logits.gpu();
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
            let oh = Tensor::from_f32(gpu, &shape, &oh)?;
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
    pub fn prior_sample(&self, gpu: &Gpu, n: usize, len: usize, seed: u64) -> Result<Tensor> {
        let key = Philox::new(seed, 0, Substream::Init);
        match &self.prior {
            DiscretePrior::Absorbing(m) => {
                Tensor::from_u32(gpu, &[n, len], &vec![*m as u32; n * len])
            }
            _ => {
                let pi = self.pi();
                let rows: Vec<f32> = (0..n * len).flat_map(|_| pi.iter().copied()).collect();
                let p = Tensor::from_f32(gpu, &[n, len, self.k], &rows)?;
                sample::sample_probs(&p, &Categorical::new(Noise::Philox(key)))
            }
        }
    }
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

    fn check(&self, t: usize) -> Result<()> {
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
        let per = per_batch_f32(x0.gpu(), x0, &abs, 1)?;
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
        let per = per_batch_f32(x_t.gpu(), x_t, &flat, 6)?;
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
    pub fn prior_sample(&self, gpu: &Gpu, n: usize, len: usize, seed: u64) -> Result<Tensor> {
        let z = Tensor::zeros(gpu, &[n, len, self.k], DType::F32)?;
        sample::gumbel_max(
            &z,
            &Categorical::new(Noise::Philox(Philox::new(seed, 0, Substream::Init)))
                .u_min(HOOGEBOOM_U_MIN),
        )
    }
}

/// Hoogeboom's Gumbel uses `u + 1e-30`; clipping at 1e-30 is the same draw for every u ≥ 1e-30.
pub const HOOGEBOOM_U_MIN: f32 = 1e-30;

/// A per-batch coefficient tensor `[B, width]` when the values differ per batch element (`vals` has
/// B·width entries); `None` when one set is shared (`vals` has `width`).
fn per_batch_f32(gpu: &Gpu, x: &Tensor, vals: &[f32], width: usize) -> Result<Option<Tensor>> {
    if vals.len() == width {
        return Ok(None);
    }
    let b = x.shape().first().copied().unwrap_or(0);
    if vals.len() != b * width || b == 0 {
        return Err(Error::Invalid(format!(
            "{} timesteps for a batch of {b}: give one, or one per batch element",
            vals.len() / width
        )));
    }
    let shape: Vec<usize> = if width == 1 { vec![b] } else { vec![b, width] };
    Ok(Some(Tensor::from_f32(gpu, &shape, vals)?))
}

/// A discrete process of either family, as a model folder describes it.
pub enum Process {
    D3pm(D3pm),
    Multinomial(Multinomial),
}

/// One reverse step's results.
pub struct StepOut {
    /// u32 `[B, L]`.
    pub x_prev: Tensor,
    /// The distribution the step sampled from, as (unnormalised) logits `[B, L, K]`.
    pub logits: Tensor,
    /// The model's prediction of the clean tokens, p̂(x0 | x_t), as logits `[B, L, K]`.
    pub x0_logits: Tensor,
}

impl Process {
    pub fn from_config(gpu: &Gpu, c: &ProcessConfig, file: &str) -> Result<Process> {
        let bad = |d: String| Error::Config {
            file: file.to_string(),
            detail: d,
        };
        if c.vocab.chars().count() != c.num_classes {
            return Err(bad(format!(
                "vocab has {} characters for {} classes",
                c.vocab.chars().count(),
                c.num_classes
            )));
        }
        if c.seq_len == 0 {
            return Err(bad("seq_len must be at least 1".into()));
        }
        use crate::models::limits as lim;
        lim::size(file, "num_classes", c.num_classes, 2..=lim::MAX_LABELS)?;
        lim::size(file, "seq_len", c.seq_len, 1..=lim::MAX_SPATIAL)?;
        lim::size(file, "nsteps", c.nsteps, 1..=lim::MAX_TRAIN_TIMESTEPS)?;
        lim::size(
            file,
            "last_time_idx",
            c.last_time_idx,
            0..=lim::MAX_TRAIN_TIMESTEPS,
        )?;
        for (field, tok) in [("mask_token", c.mask_token), ("pad_token", c.pad_token)] {
            if let Some(t) = tok {
                lim::size(file, field, t, 0..=c.num_classes - 1)?;
            }
        }
        match c.process.as_str() {
            "d3pm" => {
                let alphas = match c.schedule.kind.as_str() {
                    "cosine" => moco_cosine_alphas(
                        c.nsteps,
                        c.schedule.nu.unwrap_or(1.0),
                        c.schedule.s.unwrap_or(0.008) as f32,
                    ),
                    "linear" => moco_linear_alphas(
                        c.nsteps,
                        c.schedule.beta_start.unwrap_or(1e-4),
                        c.schedule.beta_end.unwrap_or(0.02),
                    ),
                    o => {
                        return Err(bad(format!(
                            "D3PM schedule \"{o}\" (expected cosine or linear)"
                        )))
                    }
                };
                let prior = match c.prior.as_deref() {
                    Some("uniform") | None => DiscretePrior::Uniform,
                    Some("absorbing") => {
                        DiscretePrior::Absorbing(c.mask_token.unwrap_or(c.num_classes - 1))
                    }
                    Some("custom") => DiscretePrior::Custom(
                        c.prior_dist
                            .clone()
                            .ok_or_else(|| bad("a custom prior needs prior_dist".into()))?,
                    ),
                    Some(o) => {
                        return Err(bad(format!(
                            "prior \"{o}\" (expected uniform, absorbing or custom)"
                        )))
                    }
                };
                Ok(Process::D3pm(D3pm::new(
                    gpu,
                    c.num_classes,
                    alphas,
                    prior,
                    c.last_time_idx,
                )?))
            }
            "multinomial" => {
                if c.schedule.kind != "hoogeboom_cosine_sqrt" {
                    return Err(bad(format!(
                        "multinomial schedule \"{}\" (expected hoogeboom_cosine_sqrt)",
                        c.schedule.kind
                    )));
                }
                Ok(Process::Multinomial(Multinomial::new(
                    c.num_classes,
                    c.nsteps,
                )?))
            }
            o => Err(bad(format!(
                "process \"{o}\" (expected d3pm or multinomial)"
            ))),
        }
    }

    pub fn k(&self) -> usize {
        match self {
            Process::D3pm(d) => d.k,
            Process::Multinomial(m) => m.k,
        }
    }

    pub fn nsteps(&self) -> usize {
        match self {
            Process::D3pm(d) => d.nsteps,
            Process::Multinomial(m) => m.nsteps,
        }
    }

    /// The reverse run's timesteps, first to last.
    pub fn timesteps(&self) -> Vec<usize> {
        match self {
            Process::D3pm(d) => d.timesteps(),
            Process::Multinomial(m) => m.timesteps(),
        }
    }

    pub fn prior_sample(&self, gpu: &Gpu, n: usize, len: usize, seed: u64) -> Result<Tensor> {
        match self {
            Process::D3pm(d) => d.prior_sample(gpu, n, len, seed),
            Process::Multinomial(m) => m.prior_sample(gpu, n, len, seed),
        }
    }

    /// ᾱ over the process's timesteps and the timestep of its first entry (moco's `last_time_idx`).
    pub fn alpha_bars(&self) -> (usize, &[f32]) {
        match self {
            Process::D3pm(d) => (d.last_time_idx, &d.alpha_bars),
            Process::Multinomial(m) => (0, &m.alpha_bars),
        }
    }

    /// `Q_t` (`bar = false`) or `Q̄_t` in closed form, `a·I + (1 − a)·1πᵀ`, as `(a, π)`: what the
    /// app's heatmaps and the forward explorer's per-position distributions show, without the GPU.
    pub fn transition(&self, t: usize, bar: bool) -> Result<(f32, Vec<f32>)> {
        match self {
            Process::D3pm(d) => {
                let i = d.index(t)?;
                let a = if bar { d.alpha_bars[i] } else { d.alphas[i] };
                Ok((a, d.pi()))
            }
            Process::Multinomial(m) => {
                m.check(t)?;
                let a = if bar { m.alpha_bars[t] } else { m.alphas[t] };
                Ok((a, vec![1.0 / m.k as f32; m.k]))
            }
        }
    }

    pub fn forward_probs(&self, x0: &Tensor, t: usize) -> Result<Tensor> {
        match self {
            Process::D3pm(d) => d.forward_probs(x0, &[t]),
            Process::Multinomial(m) => m.forward_probs(x0, &[t]),
        }
    }

    pub fn forward_sample(&self, x0: &Tensor, t: usize, noise: Noise<'_>) -> Result<Tensor> {
        match self {
            Process::D3pm(d) => d.forward_sample(x0, &[t], noise),
            Process::Multinomial(m) => m.forward_sample(x0, &[t], noise),
        }
    }

    /// Reverse step number `index` (0 = the first) of a run with `seed`, from x_t at timestep `t`:
    /// the model and the update, recorded (the caller submits). Noise: Philox (seed, index, Gumbel).
    pub fn step(
        &self,
        model: &dyn Denoiser,
        x_t: &Tensor,
        t: usize,
        index: usize,
        seed: u64,
        temperature: f32,
    ) -> Result<StepOut> {
        let n = x_t.dim(0);
        let tt = Tensor::from_f32(x_t.gpu(), &[n], &vec![t as f32; n])?;
        let x0_logits = model.forward(x_t, &tt, None)?;
        let noise = Noise::Philox(Philox::new(seed, index as u32, Substream::Gumbel));
        let (x_prev, logits) = match self {
            Process::D3pm(d) => d.step(&x0_logits, x_t, &[t], temperature, noise)?,
            Process::Multinomial(m) => m.step(&x0_logits, x_t, &[t], temperature, noise)?,
        };
        Ok(StepOut {
            x_prev,
            logits,
            x0_logits,
        })
    }

    #[cfg(not(target_arch = "wasm32"))] // reads results back, blocking
    /// The ELBO terms of u32 data `x0 [B, L]` in nats, `[T + 1][B]`: index 0 is the decoder term
    /// `−log p(x0 | x_first)`, 1..T−1 the KLs `KL(q(x_{t−1} | x_t, x0) ‖ p_θ(x_{t−1} | x_t))`, the last
    /// the prior `KL(q(x_last | x0) ‖ π)` (log π floored at log 1e-30 for absorbing). Each t uses one
    /// x_t ~ q(x_t | x0) from Philox (seed, t, `Forward`), or `injected[t]` when given. D3PM's decoder
    /// is the model's x0 distribution itself (moco's last step); multinomial's is `p_pred` at t = 0.
    pub fn elbo_terms(
        &self,
        model: &dyn Denoiser,
        x0: &Tensor,
        seed: u64,
        injected: Option<&[Tensor]>,
    ) -> Result<Vec<Vec<f64>>> {
        let gpu = x0.gpu();
        let b = x0.dim(0);
        let k = self.k();
        let nsteps = self.nsteps();
        if let Some(inj) = injected {
            if inj.len() != nsteps {
                return Err(Error::Invalid(format!(
                    "{} injected x_t for {nsteps} steps",
                    inj.len()
                )));
            }
        }
        let mut terms = Vec::with_capacity(nsteps + 1);
        for i in 0..nsteps {
            let t = match self {
                Process::D3pm(d) => i + d.last_time_idx,
                Process::Multinomial(_) => i,
            };
            let drawn;
            let x_t = match injected {
                Some(inj) => &inj[i],
                None => {
                    let key = Philox::new(seed, i as u32, Substream::Forward);
                    drawn = self.forward_sample(x0, t, Noise::Philox(key))?;
                    &drawn
                }
            };
            let tt = Tensor::from_f32(gpu, &[b], &vec![t as f32; b])?;
            let logits = model.forward(x_t, &tt, None)?;
            let rows = match self {
                Process::D3pm(d) => {
                    if i == 0 {
                        tr::row_nll(&logits, x0)?
                    } else {
                        let truth = tr::multinomial_posterior_log(
                            X0::Ids { ids: x0, k },
                            x_t,
                            Coefs::Shared(d.coefs(t)?),
                            d.prior(),
                        )?;
                        let pred = d.posterior_logits(X0::Logits(&logits), x_t, &[t])?;
                        tr::row_kl(&truth, &pred)?
                    }
                }
                Process::Multinomial(m) => {
                    let pred = m.posterior_log(X0::Logits(&logits), x_t, &[t])?;
                    if i == 0 {
                        tr::row_nll(&pred, x0)?
                    } else {
                        let truth = m.posterior_log(X0::Ids { ids: x0, k }, x_t, &[t])?;
                        tr::row_kl(&truth, &pred)?
                    }
                }
            };
            terms.push(per_sequence(&rows.to_f32()?, b));
        }
        let ids = x0.to_u32()?;
        let (ab, pi) = match self {
            Process::D3pm(d) => (d.alpha_bars[nsteps - 1] as f64, d.pi()),
            Process::Multinomial(m) => (m.alpha_bars[nsteps - 1] as f64, vec![1.0 / k as f32; k]),
        };
        let per = ids.len() / b.max(1);
        let prior: Vec<f64> = ids
            .chunks(per.max(1))
            .map(|seq| seq.iter().map(|&c| prior_kl(ab, &pi, c as usize)).sum())
            .collect();
        terms.push(prior);
        Ok(terms)
    }

    /// A short, human-readable description.
    pub fn describe(&self) -> String {
        match self {
            Process::D3pm(d) => format!(
                "D3PM ({} prior, K = {}, T = {})",
                match d.prior {
                    DiscretePrior::Uniform => "uniform",
                    DiscretePrior::Absorbing(_) => "absorbing",
                    DiscretePrior::Custom(_) => "custom",
                },
                d.k,
                d.nsteps
            ),
            Process::Multinomial(m) => {
                format!("multinomial diffusion (K = {}, T = {})", m.k, m.nsteps)
            }
        }
    }
}

/// `KL(ᾱ e_c + (1 − ᾱ) π ‖ π)` in nats, log π floored at log 1e-30.
#[cfg(not(target_arch = "wasm32"))]
fn prior_kl(ab: f64, pi: &[f32], c: usize) -> f64 {
    pi.iter()
        .enumerate()
        .map(|(j, &p)| {
            let q = ab * (j == c) as u32 as f64 + (1.0 - ab) * p as f64;
            if q <= 0.0 {
                0.0
            } else {
                q * (q.max(1e-30).ln() - (p as f64).max(1e-30).ln())
            }
        })
        .sum()
}

#[cfg(not(target_arch = "wasm32"))]
fn per_sequence(rows: &[f32], b: usize) -> Vec<f64> {
    let per = rows.len() / b.max(1);
    rows.chunks(per.max(1))
        .map(|c| c.iter().map(|&v| v as f64).sum())
        .collect()
}

/// The `[K, K]` matrix `a·I + (1 − a)·1πᵀ` (row = from, column = to) of [`Process::transition`].
pub fn transition_matrix(a: f32, pi: &[f32]) -> Vec<f32> {
    let k = pi.len();
    let mut q = vec![0.0; k * k];
    for (r, row) in q.chunks_mut(k.max(1)).enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = (1.0 - a) * pi[c] + if r == c { a } else { 0.0 };
        }
    }
    q
}

/// Per-position probabilities (softmax over classes) of a step's logits, for trajectories and views.
pub fn probabilities(logits: &Tensor) -> Result<Tensor> {
    norm::softmax(logits)
}
