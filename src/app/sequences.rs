//! Sequence models (D3PM words, multinomial DNA) in the app: a reverse run over a few sequences, one
//! step per frame without blocking, drawn as rows of tokens. Each cell is shaded by the model's
//! probability for the token it shows, tokens that changed at the viewed step are outlined, and the
//! mask token is drawn as an empty slot — so absorbing noise visibly un-masks letter by letter.

use crate::gpu::Gpu;
use crate::models::zoo::DiscreteModel;
use crate::tensor::{Tensor, TensorReadback};
use egui::{Color32, Sense, Stroke, Vec2};

pub struct SeqFrame {
    pub ids: Vec<u32>,
    /// The model's probability of each shown token at this step (none for x_T).
    pub prob: Option<Vec<f32>>,
}

/// Readbacks of the tokens and the logits in flight, and what has arrived.
type PendingTokens = (
    TensorReadback,
    Option<TensorReadback>,
    [Option<Vec<f32>>; 2],
);

pub struct SeqRun {
    pub n: usize,
    pub seed: u64,
    pub temperature: f32,
    x: Tensor,
    timesteps: Vec<usize>,
    pending: Option<PendingTokens>,
    pub frames: Vec<SeqFrame>,
    pub started: web_time::Instant,
}

impl SeqRun {
    pub fn start(
        m: &DiscreteModel,
        gpu: &Gpu,
        n: usize,
        seed: u64,
        temperature: f32,
    ) -> crate::Result<SeqRun> {
        let x = m.process.prior_sample(gpu, n, m.config.seq_len, seed)?;
        let rx = x.read();
        Ok(SeqRun {
            n,
            seed,
            temperature,
            timesteps: m.process.timesteps(),
            x,
            pending: Some((rx, None, [None, None])),
            frames: Vec::new(),
            started: web_time::Instant::now(),
        })
    }

    pub fn total(&self) -> usize {
        self.timesteps.len() + 1
    }

    pub fn done(&self) -> bool {
        self.frames.len() >= self.total()
    }

    /// The timestep the viewed frame is at (x_T is frame 0).
    pub fn t_of(&self, frame: usize) -> Option<usize> {
        self.timesteps.get(frame).copied()
    }

    pub fn pump(&mut self, m: &DiscreteModel, play: bool) -> crate::Result<()> {
        if let Some((rx, rl, got)) = &mut self.pending {
            if got[0].is_none() {
                if let Some(r) = rx.try_u32() {
                    got[0] = Some(r?.into_iter().map(|v| v as f32).collect());
                }
            }
            if let (None, Some(rl)) = (&got[1], rl.as_mut()) {
                if let Some(r) = rl.try_f32() {
                    got[1] = Some(r?);
                }
            }
            let want_logits = rl.is_some();
            if got[0].is_none() || (want_logits && got[1].is_none()) {
                return Ok(());
            }
            let [ids, logits] = std::mem::take(got);
            let ids: Vec<u32> = ids
                .unwrap_or_default()
                .into_iter()
                .map(|v| v as u32)
                .collect();
            let k = m.process.k();
            let prob = logits.map(|l| {
                ids.iter()
                    .enumerate()
                    .map(|(p, &id)| {
                        let row = &l[p * k..(p + 1) * k];
                        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let z: f32 = row.iter().map(|v| (v - mx).exp()).sum();
                        row.get(id as usize).map_or(0.0, |v| (v - mx).exp() / z)
                    })
                    .collect()
            });
            self.frames.push(SeqFrame { ids, prob });
            self.pending = None;
        }
        if !play || self.done() {
            return Ok(());
        }
        let i = self.frames.len() - 1;
        let t = self.timesteps[i];
        let out = m
            .process
            .step(&m.denoiser, &self.x, t, i, self.seed, self.temperature)?;
        self.x = out.x_prev;
        let mut it = Tensor::read_many(&[&self.x, &out.logits]).into_iter();
        if let (Some(rx), Some(rl)) = (it.next(), it.next()) {
            self.pending = Some((rx, Some(rl), [None, None]));
        }
        Ok(())
    }
}

/// Rows of token cells for frame `v` (the previous frame marks what changed).
pub fn draw(ui: &mut egui::Ui, m: &DiscreteModel, run: &SeqRun, v: usize) {
    let Some(f) = run.frames.get(v) else { return };
    let prev = v.checked_sub(1).and_then(|p| run.frames.get(p));
    let vocab = m.vocab();
    let l = m.config.seq_len;
    let cell = ((ui.available_width() - 20.0) / l as f32).clamp(12.0, 28.0);
    let font = egui::FontId::monospace(cell * 0.6);
    for s in 0..run.n {
        let (resp, painter) =
            ui.allocate_painter(Vec2::new(cell * l as f32, cell + 2.0), Sense::hover());
        for p in 0..l {
            let i = s * l + p;
            let id = f.ids.get(i).copied().unwrap_or(0) as usize;
            let r = egui::Rect::from_min_size(
                resp.rect.min + Vec2::new(p as f32 * cell, 1.0),
                Vec2::splat(cell - 2.0),
            );
            let masked = m.config.mask_token == Some(id);
            let pad = m.config.pad_token == Some(id);
            let q = f
                .prob
                .as_ref()
                .and_then(|pr| pr.get(i))
                .copied()
                .unwrap_or(0.0);
            let bg = if masked {
                Color32::from_gray(60)
            } else {
                // Light for confident tokens, dark for coin flips.
                let g = (80.0 + 175.0 * q.clamp(0.0, 1.0)) as u8;
                Color32::from_rgb(g / 2, g, g / 2 + 40)
            };
            painter.rect_filled(r, 3.0, bg);
            if prev.is_some_and(|pf| pf.ids.get(i) != f.ids.get(i)) {
                painter.rect_stroke(
                    r,
                    3.0,
                    Stroke::new(2.0, Color32::YELLOW),
                    egui::StrokeKind::Inside,
                );
            }
            let ch = if masked {
                ' '
            } else if pad {
                '·'
            } else {
                vocab.get(id).copied().unwrap_or('?')
            };
            painter.text(
                r.center(),
                egui::Align2::CENTER_CENTER,
                ch,
                font.clone(),
                Color32::BLACK,
            );
        }
    }
}
