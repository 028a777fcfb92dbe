//! What the model pays at each step, for the example the forward explorer shows: the ELBO's term
//! `KL(q(x_{t−1} | x_t, x0) ‖ p_θ(x_{t−1} | x_t))` at a grid of timesteps, in bits per token
//! (`Process::step_kl`, the terms `diffscope nll` sums). Four noised copies of the example per grid
//! point, averaged (drawn from Philox with the run's seed, so the curve is the same every time), all through
//! the network in one batch, collected without blocking. Where the loss is spent says what the
//! model learned: an absorbing model pays at the steps where letters are revealed.

use crate::pipelines::sequence::SequenceModel;
use crate::rng::{Philox, Substream};
use crate::tensor::{Device, Tensor, TensorReadback};

/// Most grid points over the steps.
const GRID: usize = 32;
/// Draws of x_t per grid point, averaged (one draw leaves the curve ragged: a draw with no masked
/// letter pays nothing).
const DRAWS: usize = 4;

/// What a curve was computed for: the example's index and the seed.
type Key = (usize, u64);

#[derive(Default)]
pub(super) struct SeqLossCurve {
    /// In flight: its key, the grid, and the per-position KL's readback (`[grid, L]`).
    pending: Option<(Key, Vec<usize>, TensorReadback)>,
    /// (key, [(t, bits per token)]).
    curve: crate::app::loss_plot::Kept<Key>,
}

/// The timesteps whose step term is a KL (past the decoder's step), first to last.
fn kl_timesteps(m: &SequenceModel) -> Vec<usize> {
    let (first, _) = m.process.alpha_bars();
    (first + 1..first + m.process.nsteps()).collect()
}

impl SeqLossCurve {
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Curves asked of a lost device never land: forget them.
    pub fn forget(&mut self) {
        self.pending = None;
    }

    /// Collect a finished curve and, when none is on its way, compute the one for `example`
    /// (never blocks).
    pub fn pump(
        &mut self,
        m: &SequenceModel,
        device: &Device,
        example: Option<(usize, &[u32])>,
        seed: u64,
    ) -> crate::Result<()> {
        if let Some((key, ts, rb)) = &mut self.pending {
            let Some(r) = rb.try_f32() else {
                return Ok(());
            };
            let (key, ts) = (*key, std::mem::take(ts));
            self.pending = None;
            let kl = r?;
            // `ts` lists each grid point DRAWS times, the draws of one point side by side.
            let per = kl.len() / (ts.len() / DRAWS).max(1);
            let l = per / DRAWS;
            let bits = ts
                .iter()
                .step_by(DRAWS)
                .zip(kl.chunks(per.max(1)))
                .map(|(&t, rows)| {
                    // Rounding can leave a KL of zero a hair below it.
                    let nats = rows.iter().map(|&v| v as f64).sum::<f64>().max(0.0);
                    let per_token = nats / (DRAWS * l).max(1) as f64;
                    (t, (per_token / std::f64::consts::LN_2) as f32)
                })
                .collect();
            self.curve.set(key, bits);
        }
        let Some((index, ex)) = example else {
            return Ok(());
        };
        let key = (index, seed);
        if self.curve.get(&key).is_some() || self.pending.is_some() {
            return Ok(());
        }
        let all = kl_timesteps(m);
        if all.is_empty() || ex.is_empty() {
            return Ok(());
        }
        let g = GRID.min(all.len());
        let ts: Vec<usize> = (0..g)
            .flat_map(|i| [all[i * (all.len() - 1) / (g - 1).max(1)]; DRAWS])
            .collect();
        let (rows, l) = (ts.len(), ex.len());
        let x0 = Tensor::from_u32(device, &[rows, l], &ex.repeat(rows))?;
        let noise = crate::ops::sample::Noise::Philox(Philox::new(seed, 0, Substream::Forward));
        let x_t = m.process.forward_sample(&x0, &ts, noise)?;
        let kl = m.process.step_kl(&m.denoiser, &x0, &x_t, &ts)?;
        self.pending = Some((key, ts, kl.read()));
        Ok(())
    }

    /// (t, bits per token) for this example and seed, if it has arrived.
    pub fn curve(&self, example: usize, seed: u64) -> Option<&[(usize, f32)]> {
        self.curve.get(&(example, seed))
    }

    /// The curve's estimate of the step terms' sum, bits per token.
    fn total(m: &SequenceModel, c: &[(usize, f32)]) -> f32 {
        c.iter().map(|p| p.1).sum::<f32>() / c.len().max(1) as f32 * kl_timesteps(m).len() as f32
    }

    /// The curve (log scale) with the explorer's t marked, and its total over every step.
    pub fn draw(&self, ui: &mut egui::Ui, m: &SequenceModel, example: usize, seed: u64, at: usize) {
        let Some(c) = self.curve(example, seed) else {
            crate::app::loss_plot::on_its_way(ui);
            return;
        };
        let (first, _) = m.process.alpha_bars();
        ui.label(format!(
            "The ELBO's term at each step for this example: KL(q(x_(t−1) | x_t, x0) || \
             p_θ(x_(t−1) | x_t)), bits per token (log scale; the mean of 4 draws of x_t per point). Summed \
             over the {} steps ≈ {:.3} bits/token ({} adds the first step's and the prior's terms).",
            kl_timesteps(m).len(),
            Self::total(m, c),
            "diffscope nll"
        ));
        crate::app::loss_plot::draw(ui, c, first + m.process.nsteps(), at);
    }

    pub fn status(&self, m: &SequenceModel, example: usize, seed: u64) -> serde_json::Value {
        match self.curve(example, seed) {
            Some(c) => crate::app::loss_plot::status(c, Self::total(m, c)),
            None => serde_json::Value::Null,
        }
    }
}
