//! What the model pays at each step, for the example the forward explorer shows: the ELBO's term
//! `L_{t−1} = KL(q(x_{t−1} | x_t, x0) ‖ p_θ(x_{t−1} | x_t))` at a grid of timesteps, in bits per
//! dimension. For DDPM's fixed variance σ_t² = β̃_t the KL between the two Gaussians is
//! `β_t² / (2 σ_t² α_t (1 − ᾱ_t)) · ‖ε − ε̂‖²`: one noised copy of the example per grid point (its ε
//! drawn from Philox, so the curve is the same every time), all through the network in one batch,
//! collected without blocking. Their sum over every step is the ELBO's bound on the example's
//! negative log-likelihood (less the prior and decoder terms).

use super::stepping::model_device;
use crate::pipelines::gaussian::GaussianModel;
use crate::process::gaussian::Prediction;
use crate::rng::{Philox, Substream};
use crate::tensor::{Tensor, TensorReadback};

/// Grid points over the timesteps.
const GRID: usize = 32;

/// What a curve was computed for: the example's label and the seed.
type Key = (u32, u64);

#[derive(Default)]
pub(super) struct LossCurve {
    /// In flight: its key, the grid, the drawn ε (row per grid point), and ε̂'s readback.
    pending: Option<(Key, Vec<usize>, Vec<f32>, TensorReadback)>,
    /// (key, [(t, bits per dimension)]).
    curve: crate::app::loss_plot::Kept<Key>,
}

impl LossCurve {
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Why there is no curve for this model, if there cannot be one.
    pub fn unavailable(m: &GaussianModel) -> Option<&'static str> {
        if m.process.is_ve() {
            Some("the score-SDE process has no DDPM steps")
        } else if m.process.config.prediction != Prediction::Epsilon {
            Some("shown for ε-prediction models")
        } else {
            None
        }
    }

    /// Collect a finished curve and, when none is on its way, compute the one for the first sample
    /// of `example` (never blocks).
    pub fn pump(
        &mut self,
        m: &GaussianModel,
        example: Option<&[f32]>,
        label: u32,
        seed: u64,
    ) -> crate::Result<()> {
        if let Some((key, ts, eps, rb)) = &mut self.pending {
            let Some(r) = rb.try_f32() else {
                return Ok(());
            };
            let (key, ts, eps) = (*key, std::mem::take(ts), std::mem::take(eps));
            self.pending = None;
            self.curve.set(key, bits(m, &ts, &eps, &r?));
        }
        let key = (label, seed);
        if self.curve.get(&key).is_some() || Self::unavailable(m).is_some() {
            return Ok(());
        }
        let Some(example) = example else {
            return Ok(());
        };
        let shape = m.denoiser.sample_shape().to_vec();
        let d: usize = shape.iter().product();
        let Some(x0) = example.get(..d) else {
            return Ok(());
        };
        let tt = m.process.train_timesteps();
        let ts: Vec<usize> = (0..GRID)
            .map(|i| 1 + i * (tt - 2) / (GRID - 1).max(1))
            .collect();
        let mut xs = Vec::with_capacity(GRID * d);
        let mut eps = Vec::with_capacity(GRID * d);
        for &t in &ts {
            let a = m.process.alphas_cumprod[t];
            let e = Philox::new(seed, t as u32, Substream::Forward).normals(d);
            xs.extend(
                x0.iter()
                    .zip(&e)
                    .map(|(x, z)| a.sqrt() * x + (1.0 - a).sqrt() * z),
            );
            eps.extend(e);
        }
        let dev = model_device(m);
        let mut batch = vec![GRID];
        batch.extend_from_slice(&shape);
        let x = Tensor::from_f32(dev, &batch, &xs)?;
        let t = Tensor::from_f32(
            dev,
            &[GRID],
            &ts.iter().map(|&t| t as f32).collect::<Vec<_>>(),
        )?;
        let labels = match m.denoiser.num_labels() {
            Some(k) => Some(Tensor::from_u32(
                dev,
                &[GRID],
                &[label.min(k.saturating_sub(1) as u32); GRID],
            )?),
            None => None,
        };
        let eps_hat = m.denoiser.forward(&x, &t, labels.as_ref())?;
        self.pending = Some((key, ts, eps, eps_hat.read()));
        Ok(())
    }

    /// (t, bits per dimension) of the curve for this label and seed, if it has arrived.
    pub fn curve(&self, label: u32, seed: u64) -> Option<&[(usize, f32)]> {
        self.curve.get(&(label, seed))
    }

    /// The curve (log scale), the explorer's t marked, and the total over every step.
    pub fn draw(&self, ui: &mut egui::Ui, m: &GaussianModel, label: u32, seed: u64, at: usize) {
        if let Some(why) = Self::unavailable(m) {
            ui.weak(format!("loss per step: {why}"));
            return;
        }
        let Some(c) = self.curve(label, seed) else {
            crate::app::loss_plot::on_its_way(ui);
            return;
        };
        let tt = m.process.train_timesteps() as f32;
        let total = c.iter().map(|p| p.1).sum::<f32>() / c.len() as f32 * tt;
        ui.label(format!(
            "The ELBO's term at each step for this example: KL(q(x_(t−1) | x_t, x0) || p_θ(x_(t−1) | x_t)), \
             bits per dimension (log scale). Summed over all {tt} steps ≈ {total:.3} bits/dim."
        ));
        crate::app::loss_plot::draw(ui, c, tt as usize, at);
    }

    /// For the status JSON: the grid's size, whether every term is finite and non-negative, and the
    /// total over all steps.
    pub fn status(&self, m: &GaussianModel, label: u32, seed: u64) -> serde_json::Value {
        match self.curve(label, seed) {
            Some(c) => {
                let total = c.iter().map(|p| p.1).sum::<f32>() / c.len() as f32
                    * m.process.train_timesteps() as f32;
                let mut v = crate::app::loss_plot::status(c, total);
                v["total_bits_per_dim"] = total.into();
                v
            }
            None => serde_json::Value::Null,
        }
    }
}

/// Each grid point's KL in bits per dimension from ε and ε̂ (rows of `eps` and `eps_hat`).
fn bits(m: &GaussianModel, ts: &[usize], eps: &[f32], eps_hat: &[f32]) -> Vec<(usize, f32)> {
    let d = eps.len() / ts.len().max(1);
    let (b, ac) = (&m.process.betas, &m.process.alphas_cumprod);
    ts.iter()
        .enumerate()
        .map(|(i, &t)| {
            let (beta, abar) = (b[t] as f64, ac[t] as f64);
            let prev = if t == 0 { 1.0 } else { ac[t - 1] as f64 };
            // σ_t² = β̃_t, the posterior variance (DDPM's fixed_small).
            let var = (1.0 - prev) / (1.0 - abar) * beta;
            let coef = beta * beta / (2.0 * var * (1.0 - beta) * (1.0 - abar));
            let sq: f64 = eps[i * d..(i + 1) * d]
                .iter()
                .zip(&eps_hat[i * d..(i + 1) * d])
                .map(|(&e, &h)| ((e - h) as f64).powi(2))
                .sum();
            (t, (coef * sq / d as f64 / std::f64::consts::LN_2) as f32)
        })
        .collect()
}
