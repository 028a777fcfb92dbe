//! A sequence model open in the app (D3PM words, multinomial DNA): its controls, the reverse run over
//! a few sequences (see [`stepping`]), the token view with the selected sequence's distributions,
//! the forward explorer, and the exports (FASTA for DNA, text otherwise).

mod compare;
mod draw;
mod forward;
mod input;
mod loss_curve;
mod stepping;

use crate::process::varied::Varied;
use std::sync::Arc;

use super::export::{self, Export};
use super::open_run::{seed_row, Carried, OpenRun, Progress, RunStatus};
use super::{card, highlight, schedule};
use crate::pipelines::sequence::variation::SeqVariation;
use crate::pipelines::sequence::SequenceModel;
use crate::pipelines::zoo::Family;
use crate::process::discrete::{Padding, Unmasking};
use crate::tensor::Device;
use compare::SeqComparison;
use egui::RichText;
use forward::SeqForward;
use loss_curve::SeqLossCurve;
use stepping::SeqRun;

pub struct OpenSequences {
    /// Shared with a step computing on a worker thread (CPU backend).
    model: Arc<SequenceModel>,
    device: Device,
    run: Option<SeqRun>,
    seed: u64,
    /// Sequences per run.
    n: usize,
    temperature: f32,
    /// Which masked positions a step reveals (absorbing models).
    order: Unmasking,
    /// Where padding may go (models with a pad class).
    padding: Padding,
    /// The sequence whose distributions the detail panel shows.
    selected: usize,
    /// The detail panel shows the model's x0_pred distribution (else the step's posterior).
    show_x0: bool,
    /// Data examples for the forward explorer.
    examples: Vec<Vec<u32>>,
    forward: SeqForward,
    /// The ELBO's term per step for the explorer's example.
    loss: SeqLossCurve,
    /// Runs side by side under other temperatures or un-masking orders, when on.
    compare: Option<SeqComparison>,
    /// The user's own sequence, and whether the run starts from it.
    input: input::OwnSequence,
}

impl OpenSequences {
    pub fn open(device: &Device, name: &str, carried: &Carried) -> crate::Result<OpenSequences> {
        let m = crate::pipelines::sequence::load_shipped(device, name)?;
        let k = m.process.k() as u32;
        let examples: Vec<Vec<u32>> = crate::pipelines::sequence::shipped(name)
            .and_then(|s| forward::load_examples(&s.data().ok()?, 64).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.len() == m.config.seq_len && e.iter().all(|&i| i < k))
            .collect();
        // A card may suggest a temperature and, for an absorbing model, an un-masking order
        // (words-absorb: the annealed order); anything else opens at the model's own
        // distribution, τ = 1, in the process's random order.
        let app = crate::pipelines::sequence::shipped(name).and_then(|s| card::card_app(s.card));
        let temperature = app
            .as_ref()
            .and_then(|app| app.get("temperature")?.as_f64())
            .map_or(1.0, |t| (t as f32).clamp(0.05, 2.0));
        let order = app
            .as_ref()
            .and_then(|app| Unmasking::parse(app.get("unmask")?.as_str()?).ok())
            .filter(|_| m.process.absorbing())
            .unwrap_or_default();
        let ts = m.process.timesteps();
        let forward = SeqForward::new(ts[ts.len() / 2]);
        let input = input::OwnSequence::new(&m, examples.first().map(|e| e.as_slice()));
        Ok(OpenSequences {
            model: Arc::new(m),
            device: device.clone(),
            run: None,
            seed: carried.seed,
            n: carried.sequences,
            temperature,
            order,
            padding: Padding::default(),
            selected: 0,
            show_x0: carried.seq_show_x0,
            examples,
            forward,
            loss: SeqLossCurve::default(),
            compare: None,
            input,
        })
    }
}

impl OpenRun for OpenSequences {
    fn model_name(&self) -> &str {
        &self.model.name
    }

    fn family(&self) -> Family {
        Family::Sequence
    }

    fn remember(&self, carried: &mut Carried) {
        carried.seed = self.seed;
        carried.sequences = self.n;
        carried.seq_show_x0 = self.show_x0;
    }

    fn link(&self) -> crate::app::Link {
        crate::app::Link {
            model: Some(self.model.name.clone()),
            seed: Some(self.seed),
            n: Some(self.n),
            temperature: Some(self.temperature),
            unmask: self
                .model
                .process
                .absorbing()
                .then(|| self.order.name().to_string()),
            padding: self
                .model
                .pad_suffix()
                .map(|_| self.padding.name().to_string()),
            compare: self.compare.is_some().then_some(true),
            vary: self.compare.as_ref().map(|c| c.vary.varied.spec()),
            ..Default::default()
        }
    }

    fn apply_link(&mut self, link: &crate::app::Link) {
        if let Some(v) = link.seed {
            self.seed = v;
        }
        if let Some(v) = link.n.filter(|v| (1..=32).contains(v)) {
            self.n = v;
        }
        if let Some(v) = link.temperature.filter(|v| (0.05..=2.0).contains(v)) {
            self.temperature = v;
        }
        if let Some(o) = link
            .unmask
            .as_deref()
            .and_then(|v| Unmasking::parse(v).ok())
        {
            if self.model.process.absorbing() {
                self.order = o;
            }
        }
        if let Some(p) = link.padding.as_deref().and_then(|v| Padding::parse(v).ok()) {
            self.padding = p;
        }
        if let Some(on) = link.compare {
            if on != self.compare.is_some() {
                self.compare = on.then(SeqComparison::default);
            }
        }
        // What the compared runs differ in (it turns the comparison on unless the link turns it off).
        if let Some(v) = link
            .vary
            .as_deref()
            .and_then(|v| SeqVariation::parse(v).ok())
        {
            if link.compare != Some(false) {
                self.compare = Some(SeqComparison::of(v));
            }
        }
    }

    fn restart(&mut self) -> crate::Result<()> {
        let m = &self.model;
        let from_input = self.input.active.then(|| self.input.ids(m)).transpose();
        self.run = Some(match from_input {
            Ok(Some(ids)) => {
                let k = self.input.start_step(m);
                SeqRun::from_input(m, self.n, &ids, k, self.seed, self.temperature)?
                    .drawing(m, (self.order, self.padding))?
            }
            // Text that does not encode cannot reach "Denoise"; if it is edited after, the prior.
            _ => SeqRun::start(m, self.n, self.seed, self.temperature)?
                .drawing(m, (self.order, self.padding))?,
        });
        if let Some(c) = &mut self.compare {
            let draw = (self.temperature, self.order, self.padding);
            c.start(m, self.n, self.seed, draw)?;
        }
        Ok(())
    }

    fn controls(&mut self, ui: &mut egui::Ui) -> bool {
        ui.separator();
        let mut changed = std::mem::take(&mut self.input.restart);
        changed |= ui
            .add(egui::Slider::new(&mut self.n, 1..=32).text("sequences"))
            .changed();
        let r = ui
            .add(egui::Slider::new(&mut self.temperature, 0.05..=2.0).text("temperature"))
            .on_hover_text(match self.order {
                Unmasking::Random => "divides the posterior logits before each draw: < 1 is greedier",
                Unmasking::Confident | Unmasking::Annealed => {
                    "divides the model's prediction of each token before it is drawn: < 1 is greedier"
                }
            });
        changed |= highlight::mark(ui, "temperature", r).changed();
        if self.model.process.absorbing() {
            let before = self.order;
            let r = egui::ComboBox::from_label("un-masking order")
                .selected_text(order_label(self.order))
                .show_ui(ui, |ui| {
                    for o in [Unmasking::Random, Unmasking::Confident, Unmasking::Annealed] {
                        ui.selectable_value(&mut self.order, o, order_label(o));
                    }
                })
                .response
                .on_hover_text(
                    "which masked positions a step reveals. random: the D3PM posterior, each with \
                     the step's chance. most confident first: as many, but those whose drawn token \
                     the model is surest of (MaskGIT, LLaDA) — more real words, less variety. \
                     annealed: as many, the surest after noise that fades over the run (MaskGIT's \
                     choice temperature) — between the two",
                );
            highlight::mark(ui, "unmask", r);
            changed |= self.order != before;
        }
        if self.model.pad_suffix().is_some() {
            let mut suffix = self.padding == Padding::Suffix;
            let r = ui
                .checkbox(&mut suffix, "padding only ends a word")
                .on_hover_text(
                    "in the data, padding (_) only follows the last letter. On: a draw that would \
                     put a pad before a letter is drawn again among the tokens that fit (from the \
                     same distribution, restricted). Off: whatever the model draws — it learnt \
                     the rule only approximately",
                );
            highlight::mark(ui, "padding", r.clone());
            if r.changed() {
                self.padding = if suffix {
                    Padding::Suffix
                } else {
                    Padding::Free
                };
                changed = true;
            }
        }
        changed |= seed_row(ui, &mut self.seed);
        let absorbing = self.model.process.absorbing();
        changed |= compare::switch(ui, &mut self.compare, absorbing);
        changed
    }

    fn process_notes(&mut self, ui: &mut egui::Ui, viewed: usize) {
        let m = &self.model;
        ui.separator();
        let text = match m.config.prior.as_deref() {
            Some("absorbing") => {
                "Absorbing (mask) noise: q(x_t | x0) keeps each token with \
                probability ᾱ_t and otherwise replaces it by the mask. Reversing it, the model \
                un-masks positions one by one — once a letter appears it stays."
            }
            Some("uniform") => {
                "Uniform noise: q(x_t | x0) keeps each token with probability \
                ᾱ_t and otherwise draws any token uniformly. Reversing it, every position can \
                change at every step until the word settles."
            }
            _ => {
                "Multinomial diffusion (Hoogeboom): x_t mixes x0 with the uniform distribution \
                (ᾱ_t on a √α cosine schedule); each step samples p(x_(t−1) | x_t) from the \
                model's x0_pred through the exact posterior."
            }
        };
        ui.label(RichText::new(text).small());
        ui.separator();
        ui.label("Noise schedule (ᾱ_t: chance a token is still clean)");
        let (first, abar) = m.process.alpha_bars();
        let t = if self.forward.shown {
            Some(self.forward.t)
        } else {
            self.run.as_ref().and_then(|r| r.t_of(viewed))
        };
        highlight::mark_scope(ui, "schedule", |ui| {
            schedule::draw(ui, abar, t.map(|t| t.saturating_sub(first)), None)
        });
    }

    fn pump(&mut self, step: bool) -> crate::Result<()> {
        if let Some(c) = &mut self.compare {
            c.pump(&self.model, step)?;
        }
        match &mut self.run {
            Some(r) => r.pump(&self.model, step),
            None => Ok(()),
        }
    }

    fn pump_forward(&mut self) -> crate::Result<()> {
        if !self.forward.shown {
            return Ok(());
        }
        let (m, device) = (&self.model, &self.device);
        self.forward.pump(m, device, &self.examples, self.seed)?;
        let e = self.forward.example;
        let example = self.examples.get(e).map(|x| (e, x.as_slice()));
        self.loss.pump(m, device, example, self.seed)
    }

    fn wants_repaint(&self, playing: bool) -> bool {
        self.run.as_ref().is_some_and(|r| !r.done() && playing)
            || self.forward.busy()
            || self.loss.busy()
            || self.compare.as_ref().is_some_and(|c| c.busy() && playing)
    }

    fn progress(&self) -> Option<Progress> {
        self.run.as_ref().map(|r| Progress {
            recorded: r.frames.len(),
            launched: r.launched(),
            total: r.total(),
            started: r.started,
        })
    }

    fn fork(&mut self, viewed: usize) -> crate::Result<bool> {
        let Some(r) = &mut self.run else {
            return Ok(false);
        };
        let seed = self.seed.wrapping_add(1);
        r.fork(
            &self.model,
            viewed.min(r.frames.len().saturating_sub(1)),
            seed,
        )?;
        self.seed = seed;
        Ok(true)
    }

    fn central(&mut self, ui: &mut egui::Ui, viewed: usize) {
        if self.input.editing {
            self.input.ui(ui, &self.model, self.seed);
            return;
        }
        let m = &self.model;
        let Some(r) = &self.run else { return };
        if r.frames.is_empty() {
            ui.spinner();
            return;
        }
        if let Some(c) = self.compare.as_mut().filter(|c| c.running()) {
            if !self.forward.shown {
                c.draw(ui, m, viewed);
                return;
            }
        }
        if self.forward.shown {
            let (fw, examples) = (&self.forward, &self.examples);
            egui::ScrollArea::vertical().show(ui, |ui| {
                forward::draw_forward(ui, m, fw, examples);
                if !examples.is_empty() {
                    self.loss.draw(ui, m, fw.example, self.seed, fw.t);
                }
                ui.collapsing("Transition matrices at this t", |ui| {
                    draw::matrices(ui, m, fw.t)
                });
            });
            return;
        }
        if self.input.active {
            let mut back = false;
            ui.horizontal_wrapped(|ui| {
                back = ui.button("start from the prior again").clicked();
                ui.label(
                    RichText::new(format!(
                        "Denoised from your input at t = {}: the steps before the first the \
                         model took show your input through the forward process.",
                        self.input.t0
                    ))
                    .color(egui::Color32::LIGHT_BLUE),
                );
            });
            if back {
                self.input.active = false;
                self.input.restart = true;
            }
        }
        let v = viewed.min(r.frames.len() - 1);
        let t = r.t_of(v).map_or("0 (done)".to_string(), |t| t.to_string());
        let draw = match r.run.order {
            Unmasking::Random => {
                "the step combines it with the noise process into p(x_(t−1) | x_t) and draws \
                 each token (Gumbel-max)"
            }
            Unmasking::Confident => {
                "the step draws a token for every masked position and reveals as many as the \
                 noise process would, the ones the model is surest of (most confident first)"
            }
            Unmasking::Annealed => {
                "the step draws a token for every masked position and reveals as many as the \
                 noise process would, the ones the model is surest of once noise is added to each \
                 confidence — strong at first, fading to none by the last step (annealed)"
            }
        };
        let padding = match (m.pad_suffix(), r.run.padding) {
            (Some(_), Padding::Suffix) => {
                " A draw that would put padding before a letter is drawn again among the tokens \
                 that fit, so padding only ends a word, as in the data."
            }
            _ => "",
        };
        ui.label(format!(
            "Reverse process, step {v} (t = {t}): the model predicts a distribution over the \
             clean token at every position; {draw}.{padding} Cells are shaded by the model's \
             probability of the token shown; yellow outlines mark what changed. Click a sequence \
             to see its distributions below."
        ));
        let (row, show_x0) = (&mut self.selected, &mut self.show_x0);
        // Both ways: 50-letter DNA rows outgrow a view narrowed by the lesson panel.
        egui::ScrollArea::both().show(ui, |ui| {
            *row = (*row).min(r.n.saturating_sub(1));
            let rows = ui.scope(|ui| draw::draw(ui, m, r, v, row)).response.rect;
            super::thumbnail::mark(ui, rows);
            ui.separator();
            draw::detail(ui, m, r, v, *row, show_x0);
            // The step from frame v−1 to v ran at t_of(v − 1); x_T shows the first step's.
            let t_mat = r.t_of(v.saturating_sub(1)).or_else(|| r.t_of(0));
            if let Some(t) = t_mat {
                ui.collapsing("Transition matrices Q_t and Qbar_t", |ui| {
                    draw::matrices(ui, m, t)
                });
            }
        });
    }

    fn forward_row(&mut self, ui: &mut egui::Ui) {
        let ts = self.model.process.timesteps();
        let (lo, hi) = (
            ts.iter().copied().min().unwrap_or(0),
            ts.iter().copied().max().unwrap_or(0),
        );
        super::open_run::view_switches(
            ui,
            &mut self.input.editing,
            &mut self.forward.shown,
            "forward process q(x_t | x0)",
            "type a sequence and denoise it from any t (? marks letters to fill in)",
        );
        if self.forward.shown && !self.examples.is_empty() {
            let fw = &mut self.forward;
            ui.add(egui::Slider::new(&mut fw.example, 0..=self.examples.len() - 1).text("example"));
            let r = ui.add(egui::Slider::new(&mut fw.t, lo..=hi).text("t"));
            highlight::mark(ui, "forward-t", r);
        }
    }

    fn show_forward(&mut self, t: Option<usize>) {
        self.input.editing = false;
        self.forward.shown = t.is_some();
        if let Some(t) = t {
            let ts = self.model.process.timesteps();
            let (lo, hi) = (
                ts.iter().copied().min().unwrap_or(0),
                ts.iter().copied().max().unwrap_or(0),
            );
            self.forward.t = t.clamp(lo, hi);
        }
    }

    fn forward_shown(&self) -> Option<usize> {
        self.forward.shown.then_some(self.forward.t)
    }

    fn export_buttons(
        &mut self,
        ui: &mut egui::Ui,
        viewed: usize,
    ) -> Option<crate::Result<Export>> {
        let mut made = None;
        if ui
            .button("sequences (viewed step)")
            .on_hover_text("FASTA for DNA, plain text otherwise")
            .clicked()
        {
            made = Some(self.export(viewed, false));
        }
        if ui
            .button("trajectory of the selected sequence")
            .on_hover_text("one line per step, x_T first")
            .clicked()
        {
            made = Some(self.export(viewed, true));
        }
        made
    }

    fn status(&self) -> RunStatus {
        RunStatus {
            temperature: self.run.as_ref().map(|r| r.run.temperature),
            unmask: self.run.as_ref().map(|r| r.run.order.name()),
            padding: self
                .run
                .as_ref()
                .filter(|_| self.model.pad_suffix().is_some())
                .map(|r| r.run.padding.name()),
            input: serde_json::json!({
                "editing": self.input.editing,
                "active": self.input.active,
                "t0": self.input.t0,
                "text": self.input.text,
                "from_step": self.input.active.then(|| self.input.start_step(&self.model)),
            }),
            loss_curve: self
                .loss
                .status(&self.model, self.forward.example, self.seed),
            compare: self
                .compare
                .as_ref()
                .map_or(serde_json::Value::Null, SeqComparison::status),
            ..Default::default()
        }
    }

    fn own_input(&self) -> Option<Vec<f32>> {
        let ids = self.input.ids(&self.model).ok()?;
        self.input
            .active
            .then(|| ids.iter().map(|&i| i as f32).collect())
    }

    fn recorded_state(&self, k: usize) -> Option<Vec<f32>> {
        let f = self.run.as_ref()?.frames.get(k)?;
        Some(f.ids.iter().map(|&i| i as f32).collect())
    }

    fn resume_on(&mut self, device: &Device) -> crate::Result<()> {
        // The run keeps every frame on the host: a fork from the newest one with the run's own
        // seed is its continuation. `fork` changes nothing when it fails.
        let model = Arc::new(crate::pipelines::sequence::load_shipped(
            device,
            &self.model.name,
        )?);
        match &mut self.run {
            Some(r) => r.fork(&model, r.frames.len().saturating_sub(1), r.run.seed)?,
            None => {
                self.run = Some(
                    SeqRun::start(&model, self.n, self.seed, self.temperature)?
                        .drawing(&model, (self.order, self.padding))?,
                )
            }
        }
        self.model = model;
        self.device = device.clone();
        self.forward.forget_draws();
        self.loss.forget();
        Ok(())
    }
}

/// The un-masking order as the menu names it.
fn order_label(o: Unmasking) -> &'static str {
    match o {
        Unmasking::Random => "random (D3PM)",
        Unmasking::Confident => "most confident first",
        Unmasking::Annealed => "annealed confidence",
    }
}

impl OpenSequences {
    /// The viewed step's sequences (FASTA for DNA), or the selected one's whole trajectory.
    fn export(&self, viewed: usize, trajectory: bool) -> crate::Result<Export> {
        let (m, Some(r)) = (&self.model, &self.run) else {
            return Err(crate::Error::NotReady("nothing to export yet".into()));
        };
        // Before x_T's readback lands there is no frame to slice or to name.
        if r.frames.is_empty() {
            return Err(crate::Error::NotReady("no step recorded yet".into()));
        }
        let l = m.config.seq_len.max(1);
        let v = viewed.min(r.frames.len().saturating_sub(1));
        let decode = |ids: &[u32]| -> String {
            // Masked positions as '?', whatever the vocabulary calls the mask.
            ids.iter()
                .map(|&i| {
                    if m.config.mask_token == Some(i as usize) {
                        "?".to_string()
                    } else {
                        m.decode(&[i])
                    }
                })
                .collect()
        };
        let dna = m.data_chars().chars().all(|c| "ACGTN".contains(c));
        let (text, what, ext, mime) = if trajectory {
            let row = self.selected;
            let lines: Vec<String> = r.frames[..=v]
                .iter()
                .map(|f| decode(f.ids.get(row * l..(row + 1) * l).unwrap_or(&[])))
                .collect();
            (
                lines.join("\n") + "\n",
                format!("seq{}-trajectory-to-step{v}", row + 1),
                "txt",
                "text/plain",
            )
        } else {
            let seqs: Vec<String> = r
                .frames
                .get(v)
                .map(|f| f.ids.chunks(l).map(decode).collect())
                .unwrap_or_default();
            if dna {
                (
                    export::fasta(&format!("{}_seed{}_step{v}_", m.name, r.run.seed), &seqs),
                    format!("seed{}-step{v}", r.run.seed),
                    "fasta",
                    "text/x-fasta",
                )
            } else {
                (
                    seqs.join("\n") + "\n",
                    format!("seed{}-step{v}", r.run.seed),
                    "txt",
                    "text/plain",
                )
            }
        };
        Ok(Export {
            file_name: export::file_name(&m.name, &what, ext),
            mime,
            bytes: text.into_bytes(),
        })
    }
}
