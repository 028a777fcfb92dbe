//! The forward explorer for sequences: a data example, a timestep, and draws of q(x_t | x0).

use super::super::heatmap;
use super::draw::{heatmap_cell, token_rows};
use crate::pipelines::sequence::SequenceModel;
use crate::tensor::Device;
use crate::tensor::{Tensor, TensorReadback};

#[derive(Default)]
pub struct SeqForward {
    /// The explorer is shown instead of the reverse run.
    pub shown: bool,
    pub example: usize,
    pub t: usize,
    pub draws: usize,
    pending: Option<(usize, usize, TensorReadback)>,
    /// (example, t, ids `[draws, L]`) of the newest draws.
    pub samples: Option<(usize, usize, Vec<u32>)>,
}

impl SeqForward {
    /// A draw is on its way (keep frames coming to collect it).
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    pub fn new(t: usize) -> SeqForward {
        SeqForward {
            t,
            draws: 8,
            ..Default::default()
        }
    }

    /// Draws made on a lost device never land: forget them (the example, t and switch stay).
    pub fn forget_draws(&mut self) {
        self.pending = None;
        self.samples = None;
    }

    /// Collect finished draws and ask for new ones when the example or t changed (never blocks).
    pub fn pump(
        &mut self,
        m: &SequenceModel,
        device: &Device,
        examples: &[Vec<u32>],
        seed: u64,
    ) -> crate::Result<()> {
        if let Some((e, t, rb)) = &mut self.pending {
            match rb.try_u32() {
                None => return Ok(()),
                Some(r) => {
                    self.samples = Some((*e, *t, r?));
                    self.pending = None;
                }
            }
        }
        let want = (self.example, self.t);
        if self.samples.as_ref().map(|s| (s.0, s.1)) == Some(want) {
            return Ok(());
        }
        let Some(ex) = examples.get(self.example) else {
            return Ok(());
        };
        let n = self.draws.max(1);
        let x0 = Tensor::from_u32(device, &[n, ex.len()], &ex.repeat(n))?;
        let noise = crate::ops::sample::Noise::Philox(crate::rng::Philox::new(
            seed,
            self.t as u32,
            crate::rng::Substream::Forward,
        ));
        let xt = m.process.forward_sample(&x0, &[self.t], noise)?;
        self.pending = Some((self.example, self.t, xt.read()));
        Ok(())
    }
}

/// The explorer's picture: x0, the per-position distribution q(x_t | x0) = row x0 of Qbar_t (closed
/// form), and draws from it.
pub fn draw_forward(ui: &mut egui::Ui, m: &SequenceModel, fw: &SeqForward, examples: &[Vec<u32>]) {
    let Some(ex) = examples.get(fw.example) else {
        ui.label("this model ships no examples");
        return;
    };
    let Ok((a, pi)) = m.process.transition(fw.t, true) else {
        return;
    };
    let k = m.process.k();
    let l = ex.len();
    ui.label(format!(
        "Forward process at t = {}: q(x_t | x0) keeps each token with probability ᾱ_t = {a:.4} and \
         otherwise draws it from π — row x0 of Qbar_t = ᾱ_t·I + (1 − ᾱ_t)·1π^T.",
        fw.t
    ));
    ui.label(format!("x0: \"{}\"", m.decode(ex)));
    token_rows(ui, m, ex, |_| 1.0, |_| false, None);
    let labels = heatmap::vocab_labels(&m.vocab(), m.config.pad_token);
    let mut grid = vec![0.0; k * l];
    for (pos, &id) in ex.iter().enumerate() {
        for c in 0..k {
            grid[c * l + pos] = (1.0 - a) * pi[c] + if c == id as usize { a } else { 0.0 };
        }
    }
    let cols: Vec<String> = ex
        .iter()
        .map(|&i| labels.get(i as usize).cloned().unwrap_or_default())
        .collect();
    let cell = heatmap_cell(ui, k, l);
    ui.label("q(x_t | x0) at each position (rows: classes):");
    heatmap::draw(ui, &grid, k, l, &labels, &cols, cell);
    if let Some((e, t, ids)) = &fw.samples {
        ui.label(format!(
            "{} draws of x_t ~ q(x_t | x0) (t = {t}):",
            ids.len() / l.max(1)
        ));
        if *e == fw.example {
            token_rows(ui, m, ids, |_| 1.0, |i| ids[i] != ex[i % l], None);
        }
    }
}

/// Token examples shipped with a model (`tokens`, `[N, L]` integers), at most `max` of them.
pub fn load_examples(bytes: &[u8], max: usize) -> crate::Result<Vec<Vec<u32>>> {
    let mut w = crate::weights::Weights::from_bytes(bytes, "examples")?;
    let (shape, v) = w.take_ints("tokens")?;
    let l = shape.get(1).copied().unwrap_or(0).max(1);
    Ok(v.chunks(l)
        .take(max)
        .map(|c| c.iter().map(|&i| i.max(0) as u32).collect())
        .collect())
}
