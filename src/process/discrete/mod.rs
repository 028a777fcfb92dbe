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
//! forward draw at t is (seed, t, `Forward`). A confidence-ordered step ([`Unmasking::Confident`])
//! draws its tokens from (seed, i, `Gumbel`) and its reveal coins from (seed, i, `Reveal`).
//!
//! One file per concern: [`schedule`] (the α schedules), [`config`] (`process.json`), [`d3pm`] and
//! [`multinomial`] (the two processes), [`elbo`] (the ELBO terms); this file holds [`Process`], the
//! model folder's process of either kind, and what both share.

mod config;
mod d3pm;
mod elbo;
mod multinomial;
mod schedule;

pub use config::{DiscretePrior, ProcessConfig, ScheduleConfig};
pub use d3pm::D3pm;
pub use multinomial::{Multinomial, HOOGEBOOM_U_MIN};
pub use schedule::{hoogeboom_cosine_alphas, moco_cosine_alphas, moco_linear_alphas};

use crate::error::{Error, Result};
use crate::nn::Denoiser;
use crate::ops::norm;
use crate::ops::sample::Noise;
use crate::rng::{Philox, Substream};
use crate::tensor::{Device, Tensor};

pub(super) fn bad_t(t: usize, lo: usize, n: usize) -> Error {
    Error::Invalid(format!(
        "timestep {t} is outside {lo}..{} (this process has {n} steps)",
        lo + n
    ))
}

/// A per-batch coefficient tensor `[B, width]` when the values differ per batch element (`vals` has
/// B·width entries); `None` when one set is shared (`vals` has `width`).
pub(super) fn per_batch_f32(
    device: &Device,
    x: &Tensor,
    vals: &[f32],
    width: usize,
) -> Result<Option<Tensor>> {
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
    Ok(Some(Tensor::from_f32(device, &shape, vals)?))
}

/// A discrete process of either family, as a model folder describes it.
pub enum Process {
    D3pm(D3pm),
    Multinomial(Multinomial),
}

/// Which masked positions an absorbing model's reverse step reveals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unmasking {
    /// The process's own posterior (D3PM): each masked position is revealed with the step's
    /// chance, independently, so the order is random.
    #[default]
    Random,
    /// As many positions as the process would reveal, but the ones whose drawn token the model is
    /// most sure of (MaskGIT, LLaDA): [`crate::ops::unmask`].
    Confident,
    /// Between the two: the most confident after Gumbel noise of scale
    /// [`Unmasking::ANNEALED_NOISE`]·(t+1)/T is added to each confidence (MaskGIT's annealed choice
    /// temperature), so the first reveals are nearly random and the last nearly most-confident.
    /// Confident-first writes more real words but repeats itself; random is varied but misspells;
    /// this keeps most of both (the words-absorb card measures the three).
    Annealed,
}

impl Unmasking {
    pub const NAMES: &[&str] = &["random", "confident", "annealed"];

    /// The choice noise's scale at the first step of an [`Unmasking::Annealed`] run.
    pub const ANNEALED_NOISE: f32 = 6.0;

    pub fn parse(name: &str) -> Result<Unmasking> {
        match name {
            "random" => Ok(Unmasking::Random),
            "confident" => Ok(Unmasking::Confident),
            "annealed" => Ok(Unmasking::Annealed),
            o => Err(Error::Invalid(format!(
                "unknown un-masking order \"{o}\" (random, confident or annealed)"
            ))),
        }
    }

    /// The scale of the Gumbel noise on the confidences at timestep `t` of `nsteps` (0 for the
    /// orders that add none).
    pub fn choice_noise(&self, t: usize, nsteps: usize) -> f32 {
        match self {
            Unmasking::Annealed => {
                Unmasking::ANNEALED_NOISE * ((t + 1) as f32 / nsteps.max(1) as f32).min(1.0)
            }
            Unmasking::Random | Unmasking::Confident => 0.0,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Unmasking::Random => "random",
            Unmasking::Confident => "confident",
            Unmasking::Annealed => "annealed",
        }
    }
}

/// Where a step may put padding, for models whose sequences are padded (`pad_token`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Padding {
    /// Only at the end, as in the data: a draw that would put a pad before a letter is drawn again
    /// among the classes that fit ([`crate::ops::pad_suffix`]).
    #[default]
    Suffix,
    /// Wherever the model's draw puts it (to see what the model itself has learnt).
    Free,
}

impl Padding {
    pub fn parse(name: &str) -> Result<Padding> {
        match name {
            "suffix" => Ok(Padding::Suffix),
            "free" => Ok(Padding::Free),
            o => Err(Error::Invalid(format!(
                "unknown padding \"{o}\" (suffix or free)"
            ))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Padding::Suffix => "suffix",
            Padding::Free => "free",
        }
    }
}

/// How a reverse step draws its tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDraw {
    /// Divides the logits of each draw (> 0).
    pub temperature: f32,
    /// Which masked positions a step reveals (absorbing models).
    pub order: Unmasking,
    /// The padding class to keep at the end of each sequence, if any ([`Padding::Suffix`]).
    pub pad_suffix: Option<u32>,
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
    pub fn from_config(device: &Device, c: &ProcessConfig, file: &str) -> Result<Process> {
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
        use crate::weights::limits as lim;
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
                    device,
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

    pub fn prior_sample(&self, device: &Device, n: usize, len: usize, seed: u64) -> Result<Tensor> {
        match self {
            Process::D3pm(d) => d.prior_sample(device, n, len, seed),
            Process::Multinomial(m) => m.prior_sample(device, n, len, seed),
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

    /// x_t ~ q(x_t | x0) at timestep `t`: one for the batch, or one per row of `x0`.
    pub fn forward_sample(&self, x0: &Tensor, t: &[usize], noise: Noise<'_>) -> Result<Tensor> {
        match self {
            Process::D3pm(d) => d.forward_sample(x0, t, noise),
            Process::Multinomial(m) => m.forward_sample(x0, t, noise),
        }
    }

    /// Whether [`Unmasking::Confident`] applies (an absorbing prior).
    pub fn absorbing(&self) -> bool {
        matches!(
            self,
            Process::D3pm(D3pm {
                prior: DiscretePrior::Absorbing(_),
                ..
            })
        )
    }

    /// Reverse step number `index` (0 = the first) of a run with `seed`, from x_t at timestep `t`:
    /// the model and the update, recorded (the caller submits). Noise: Philox (seed, index, Gumbel).
    /// An `order` other than random needs an absorbing process, a pad suffix a D3PM one.
    pub fn step(
        &self,
        model: &dyn Denoiser,
        x_t: &Tensor,
        (t, index, seed): (usize, usize, u64),
        draw: StepDraw,
    ) -> Result<StepOut> {
        let StepDraw {
            temperature,
            order,
            pad_suffix,
        } = draw;
        let n = x_t.dim(0);
        let tt = Tensor::from_f32(x_t.device(), &[n], &vec![t as f32; n])?;
        let x0_logits = model.forward(x_t, &tt, None)?;
        let key = Philox::new(seed, index as u32, Substream::Gumbel);
        let noise = Noise::Philox(key);
        let (x_prev, logits) = match (self, order) {
            (Process::D3pm(d), Unmasking::Random) => {
                d.step(&x0_logits, x_t, &[t], temperature, noise)?
            }
            (Process::D3pm(d), Unmasking::Confident | Unmasking::Annealed) => {
                let noise = order.choice_noise(t, d.nsteps);
                d.step_confident(&x0_logits, x_t, t, temperature, key, noise)?
            }
            (Process::Multinomial(m), Unmasking::Random) => {
                m.step(&x0_logits, x_t, &[t], temperature, noise)?
            }
            (Process::Multinomial(_), Unmasking::Confident | Unmasking::Annealed) => {
                return Err(Error::Invalid(
                    "un-masking by confidence needs an absorbing process; multinomial diffusion \
                     has no masks"
                        .into(),
                ))
            }
        };
        let x_prev = match (self, pad_suffix) {
            (_, None) => x_prev,
            (Process::D3pm(d), Some(pad)) => {
                let confident = order != Unmasking::Random;
                let scores = if confident { &x0_logits } else { &logits };
                d.hold_pad_suffix(scores, x_t, x_prev, t, pad, (temperature, key), confident)?
            }
            (Process::Multinomial(_), Some(_)) => {
                return Err(Error::Invalid(
                    "a pad suffix is held by D3PM steps; multinomial diffusion has none".into(),
                ))
            }
        };
        Ok(StepOut {
            x_prev,
            logits,
            x0_logits,
        })
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
