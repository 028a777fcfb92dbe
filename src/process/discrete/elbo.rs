//! The ELBO of data under a discrete process, term by term (decoder, the KL of every step, prior), on
//! the GPU: what `diffscope nll` reports (natively), and the step terms alone without waiting (the
//! app's loss curve, in the page too).

use crate::error::{Error, Result};
use crate::nn::Denoiser;
#[cfg(not(target_arch = "wasm32"))]
use crate::ops::sample::Noise;
use crate::ops::transition::{self as tr, X0};
#[cfg(not(target_arch = "wasm32"))]
use crate::rng::{Philox, Substream};
use crate::tensor::Tensor;

use super::Process;

impl Process {
    /// The ELBO's step terms `KL(q(x_{t−1} | x_t, x0) ‖ p_θ(x_{t−1} | x_t))` in nats per position,
    /// f32 `[B, L]`, for u32 data `x0 [B, L]` and its noised `x_t`, each row at its own timestep
    /// `t[b]` (a step past the decoder's: index ≥ 1 of [`Self::elbo_terms`]). Nothing is read back,
    /// so the app draws a curve of them without waiting.
    pub fn step_kl(
        &self,
        model: &dyn Denoiser,
        x0: &Tensor,
        x_t: &Tensor,
        t: &[usize],
    ) -> Result<Tensor> {
        let b = x0.dim(0);
        if t.len() != b || x_t.shape() != x0.shape() {
            return Err(Error::Invalid(format!(
                "step terms need one timestep per row and x_t shaped like x0 (got {} timesteps, \
                 shapes {:?} and {:?})",
                t.len(),
                x0.shape(),
                x_t.shape()
            )));
        }
        let tf: Vec<f32> = t.iter().map(|&t| t as f32).collect();
        let tt = Tensor::from_f32(x0.device(), &[b], &tf)?;
        let logits = model.forward(x_t, &tt, None)?;
        let (truth, pred) = match self {
            Process::D3pm(d) => (
                d.true_posterior_log(x0, x_t, t)?,
                d.posterior_logits(X0::Logits(&logits), x_t, t)?,
            ),
            Process::Multinomial(m) => (
                m.posterior_log(X0::Ids { ids: x0, k: m.k }, x_t, t)?,
                m.posterior_log(X0::Logits(&logits), x_t, t)?,
            ),
        };
        tr::row_kl(&truth, &pred)
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
        let device = x0.device();
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
                    drawn = self.forward_sample(x0, &[t], Noise::Philox(key))?;
                    &drawn
                }
            };
            let rows = if i == 0 {
                let tt = Tensor::from_f32(device, &[b], &vec![t as f32; b])?;
                let logits = model.forward(x_t, &tt, None)?;
                match self {
                    // D3PM's decoder is the model's x0 distribution itself.
                    Process::D3pm(_) => tr::row_nll(&logits, x0)?,
                    Process::Multinomial(m) => {
                        tr::row_nll(&m.posterior_log(X0::Logits(&logits), x_t, &[t])?, x0)?
                    }
                }
            } else {
                self.step_kl(model, x0, x_t, &vec![t; b])?
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
