//! Sequence models (D3PM words, multinomial DNA) in the app: a reverse run over a few sequences, one
//! step per frame without blocking, drawn as rows of tokens. Each cell is shaded by the model's
//! probability for the token it shows, tokens that changed at the viewed step are outlined, and the
//! mask token is drawn as an empty slot — so absorbing noise visibly un-masks letter by letter.

use crate::gpu::Gpu;
use crate::pipelines::sequence::SequenceModel;
use crate::tensor::{Tensor, TensorReadback};
use egui::{Color32, RichText, Sense, Stroke, Vec2};

pub struct SeqFrame {
    pub ids: Vec<u32>,
    /// The distribution this step drew from, p(x_(t−1) | x_t), over every class at every position:
    /// `[n, L, K]` (none for x_T).
    pub probs: Option<Vec<f32>>,
    /// The model's prediction of the clean tokens at this step, p_θ(x0 | x_t), `[n, L, K]`.
    pub x0_probs: Option<Vec<f32>>,
}

impl SeqFrame {
    /// The probability of the token shown at flat position `i` (0 for x_T).
    pub fn prob_of_shown(&self, i: usize, k: usize) -> f32 {
        let id = self.ids.get(i).copied().unwrap_or(0) as usize;
        self.probs
            .as_ref()
            .and_then(|p| p.get(i * k + id))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Readbacks in flight for one frame: the tokens and (after x_T) the step's two sets of logits, with
/// what has arrived so far.
struct PendingTokens {
    ids: TensorReadback,
    logits: Vec<TensorReadback>,
    got_ids: Option<Vec<u32>>,
    got: Vec<Option<Vec<f32>>>,
}

/// A frame's tokens and its logits (the step's, then the model's), once all have arrived.
type Arrived = (Vec<u32>, Vec<Vec<f32>>);

impl PendingTokens {
    fn new(ids: TensorReadback, logits: Vec<TensorReadback>) -> PendingTokens {
        let got = logits.iter().map(|_| None).collect();
        PendingTokens {
            ids,
            logits,
            got_ids: None,
            got,
        }
    }

    /// Everything, once it has all arrived.
    fn poll(&mut self) -> crate::Result<Option<Arrived>> {
        if self.got_ids.is_none() {
            if let Some(r) = self.ids.try_u32() {
                self.got_ids = Some(r?);
            }
        }
        for (rb, slot) in self.logits.iter_mut().zip(self.got.iter_mut()) {
            if slot.is_none() {
                if let Some(r) = rb.try_f32() {
                    *slot = Some(r?);
                }
            }
        }
        if self.got_ids.is_none() || self.got.iter().any(Option::is_none) {
            return Ok(None);
        }
        let ids = self.got_ids.take().unwrap_or_default();
        Ok(Some((ids, self.got.drain(..).flatten().collect())))
    }
}

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
        m: &SequenceModel,
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
            pending: Some(PendingTokens::new(rx, Vec::new())),
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

    /// Steps started: recorded frames plus the one in flight.
    pub fn launched(&self) -> usize {
        self.frames.len() + self.pending.is_some() as usize
    }

    /// Continue from frame `at` with a new seed: later frames are dropped and the run goes on from
    /// that frame's tokens (the steps' noise is keyed by the new seed from here on).
    pub fn fork(&mut self, gpu: &Gpu, at: usize, seed: u64) -> crate::Result<()> {
        let f = self
            .frames
            .get(at)
            .ok_or_else(|| crate::Error::Invalid(format!("no frame {at} to fork from")))?;
        let l = f.ids.len() / self.n.max(1);
        self.x = Tensor::from_u32(gpu, &[self.n, l], &f.ids)?;
        self.frames.truncate(at + 1);
        self.pending = None;
        self.seed = seed;
        self.started = web_time::Instant::now();
        Ok(())
    }

    /// The timestep the viewed frame is at (x_T is frame 0).
    pub fn t_of(&self, frame: usize) -> Option<usize> {
        self.timesteps.get(frame).copied()
    }

    pub fn pump(&mut self, m: &SequenceModel, play: bool) -> crate::Result<()> {
        if let Some(p) = &mut self.pending {
            // A failed readback is dropped: polling it again would only say "already taken".
            let polled = p.poll();
            if polled.is_err() {
                self.pending = None;
            }
            let Some((ids, logits)) = polled? else {
                return Ok(());
            };
            let k = m.process.k();
            let mut probs = logits.iter().map(|l| softmax_rows(l, k));
            let (probs, x0_probs) = (probs.next(), probs.next());
            self.frames.push(SeqFrame {
                ids,
                probs,
                x0_probs,
            });
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
        let mut it = Tensor::read_many(&[&self.x, &out.logits, &out.x0_logits]).into_iter();
        if let Some(rx) = it.next() {
            self.pending = Some(PendingTokens::new(rx, it.collect()));
        }
        Ok(())
    }
}

/// Softmax of each `k`-wide row of logits.
fn softmax_rows(logits: &[f32], k: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(k.max(1)) {
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let z: f32 = row.iter().map(|v| (v - mx).exp()).sum();
        out.extend(row.iter().map(|v| (v - mx).exp() / z));
    }
    out
}

/// One row of token cells per sequence (`ids` is `[rows, L]`). `shade(i)` is the confidence of flat
/// position `i` (light = sure), `changed(i)` outlines the cell. Returns the row that was clicked.
fn token_rows(
    ui: &mut egui::Ui,
    m: &SequenceModel,
    ids: &[u32],
    shade: impl Fn(usize) -> f32,
    changed: impl Fn(usize) -> bool,
    selected: Option<usize>,
) -> Option<usize> {
    let vocab = m.vocab();
    let l = m.config.seq_len.max(1);
    let cell = ((ui.available_width() - 20.0) / l as f32).clamp(12.0, 28.0);
    let font = egui::FontId::monospace(cell * 0.6);
    let mut clicked = None;
    for s in 0..ids.len() / l {
        let (resp, painter) =
            ui.allocate_painter(Vec2::new(cell * l as f32 + 6.0, cell + 2.0), Sense::click());
        if resp.clicked() {
            clicked = Some(s);
        }
        if selected == Some(s) {
            painter.rect_filled(
                egui::Rect::from_min_size(resp.rect.min, Vec2::new(3.0, cell)),
                1.0,
                Color32::WHITE,
            );
        }
        for p in 0..l {
            let i = s * l + p;
            let id = ids[i] as usize;
            let r = egui::Rect::from_min_size(
                resp.rect.min + Vec2::new(6.0 + p as f32 * cell, 1.0),
                Vec2::splat(cell - 2.0),
            );
            let masked = m.config.mask_token == Some(id);
            let pad = m.config.pad_token == Some(id);
            let bg = if masked {
                Color32::from_gray(60)
            } else {
                // Light for confident tokens, dark for coin flips.
                let g = (80.0 + 175.0 * shade(i).clamp(0.0, 1.0)) as u8;
                Color32::from_rgb(g / 2, g, g / 2 + 40)
            };
            painter.rect_filled(r, 3.0, bg);
            if changed(i) {
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
    clicked
}

/// Rows of token cells for frame `v` (the previous frame marks what changed); a click selects a row
/// for [`detail`].
pub fn draw(ui: &mut egui::Ui, m: &SequenceModel, run: &SeqRun, v: usize, selected: &mut usize) {
    let Some(f) = run.frames.get(v) else { return };
    let prev = v.checked_sub(1).and_then(|p| run.frames.get(p));
    let k = m.process.k();
    let clicked = token_rows(
        ui,
        m,
        &f.ids,
        |i| f.prob_of_shown(i, k),
        |i| prev.is_some_and(|pf| pf.ids.get(i) != f.ids.get(i)),
        Some(*selected),
    );
    if let Some(c) = clicked {
        *selected = c;
    }
}

/// For each position of sequence `row`, the frame (≤ `v`) at which its token last changed: for
/// absorbing noise, when it was un-masked. `None` where it has not changed since x_T.
pub fn settled_at(run: &SeqRun, v: usize, row: usize, l: usize) -> Vec<Option<usize>> {
    let mut at = vec![None; l];
    let end = v.min(run.frames.len().saturating_sub(1));
    for f in 1..=end {
        let (a, b) = (&run.frames[f - 1].ids, &run.frames[f].ids);
        for (p, slot) in at.iter_mut().enumerate() {
            let i = row * l + p;
            if a.get(i) != b.get(i) {
                *slot = Some(f);
            }
        }
    }
    at
}

/// The selected sequence at frame `v`: the distribution its step drew from at every position (a
/// class × position heatmap), and when each position settled.
pub fn detail(
    ui: &mut egui::Ui,
    m: &SequenceModel,
    run: &SeqRun,
    v: usize,
    row: usize,
    show_x0: &mut bool,
) {
    let Some(f) = run.frames.get(v) else { return };
    let (k, l) = (m.process.k(), m.config.seq_len);
    let labels = super::heatmap::vocab_labels(&m.vocab(), m.config.pad_token);
    let ids = &f.ids[(row * l).min(f.ids.len())..((row + 1) * l).min(f.ids.len())];
    let cols: Vec<String> = ids
        .iter()
        .map(|&i| labels.get(i as usize).cloned().unwrap_or_default())
        .collect();
    let cell = heatmap_cell(ui, k, l);
    ui.horizontal(|ui| {
        ui.label(format!("Sequence {}:", row + 1));
        ui.radio_value(show_x0, true, "the model's x0_pred: p_θ(x0 | x_t)");
        ui.radio_value(show_x0, false, "the step's p(x_(t−1) | x_t)");
    });
    match if *show_x0 { &f.x0_probs } else { &f.probs } {
        Some(p) => {
            ui.label(
                RichText::new(if *show_x0 {
                    "What the network believes the clean sequence is, at each position (columns; the \
                     token now shown is on top) over every class (rows). Hover a cell for its value."
                } else {
                    "The distribution the step drew from: the model's x0_pred pushed through the posterior \
                     q(x_(t−1) | x_t, x0). Masked positions mostly stay masked until their turn."
                })
                .small(),
            );
            // [L, K] → [K, L]: classes as rows.
            let mut grid = vec![0.0; k * l];
            for pos in 0..l {
                for c in 0..k {
                    grid[c * l + pos] = p.get((row * l + pos) * k + c).copied().unwrap_or(0.0);
                }
            }
            super::heatmap::draw(ui, &grid, k, l, &labels, &cols, cell);
        }
        None => {
            ui.label("x_T: a draw from the prior; the first step shows the first distribution.");
        }
    }
    let at = settled_at(run, v, row, l);
    let mut order: Vec<(usize, usize)> = at
        .iter()
        .enumerate()
        .filter_map(|(p, s)| s.map(|s| (s, p)))
        .collect();
    order.sort();
    let text: Vec<String> = order
        .iter()
        .map(|(s, p)| format!("{}@{s}", p + 1))
        .collect();
    ui.label(
        RichText::new(format!(
            "Settling order (position@step of its last change): {}",
            if text.is_empty() {
                "nothing has changed yet".to_string()
            } else {
                text.join(" ")
            }
        ))
        .small(),
    );
}

/// The forward explorer for sequences: a data example, a timestep, and draws of q(x_t | x0).
#[derive(Default)]
pub struct SeqForward {
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

    /// Collect finished draws and ask for new ones when the example or t changed (never blocks).
    pub fn pump(
        &mut self,
        m: &SequenceModel,
        gpu: &Gpu,
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
        let x0 = Tensor::from_u32(gpu, &[n, ex.len()], &ex.repeat(n))?;
        let noise = crate::ops::sample::Noise::Philox(crate::rng::Philox::new(
            seed,
            self.t as u32,
            crate::rng::Substream::Forward,
        ));
        let xt = m.process.forward_sample(&x0, self.t, noise)?;
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
    let labels = super::heatmap::vocab_labels(&m.vocab(), m.config.pad_token);
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
    super::heatmap::draw(ui, &grid, k, l, &labels, &cols, cell);
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

/// A cell size that fits `l` columns across and keeps `k` rows to a few hundred points.
fn heatmap_cell(ui: &egui::Ui, k: usize, l: usize) -> f32 {
    ((ui.available_width() - 40.0) / l.max(1) as f32)
        .min(320.0 / k.max(1) as f32)
        .clamp(5.0, 22.0)
}

/// Q_t and Qbar_t at timestep `t` as heatmaps (rows: from, columns: to).
pub fn matrices(ui: &mut egui::Ui, m: &SequenceModel, t: usize) {
    let k = m.process.k();
    let labels = super::heatmap::vocab_labels(&m.vocab(), m.config.pad_token);
    let cell = (220.0 / k as f32).clamp(5.0, 40.0);
    ui.horizontal_top(|ui| {
        for (bar, name) in [(false, "Q_t"), (true, "Qbar_t")] {
            if let Ok((a, pi)) = m.process.transition(t, bar) {
                ui.vertical(|ui| {
                    ui.label(format!(
                        "{name} (t = {t}, {} = {a:.3})",
                        if bar { "ᾱ_t" } else { "α_t" }
                    ));
                    let q = crate::process::discrete::transition_matrix(a, &pi);
                    super::heatmap::draw(ui, &q, k, k, &labels, &labels, cell);
                });
            }
        }
    });
    ui.label(
        RichText::new(
            "Row i is where a token of class i goes: Q_t is one step, Qbar_t = Q_1···Q_t all steps from \
             x0. Absorbing noise fills one column (the mask), uniform noise spreads each row evenly.",
        )
        .small(),
    );
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
