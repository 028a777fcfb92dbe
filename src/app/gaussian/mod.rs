//! A Gaussian model open in the app (images and points): its sampler settings and controls, the
//! reverse run (see [`stepping`]), the forward explorer, and the views of x_t, x0_pred and ε_pred.

mod captions;
mod compare;
mod decoded;
mod export;
mod forward;
mod input;
mod loss_curve;
mod reverse;
mod score;
mod settings;
mod stepping;
mod trace;

use crate::process::varied::Varied;
use std::sync::Arc;

use super::export::Export;
use super::open_run::{seed_row, Carried, LastState, OpenRun, Progress, RunStatus};
use super::{card, highlight, schedule};
use crate::pipelines::gaussian::GaussianModel;
use crate::pipelines::zoo::Family;
use crate::process::gaussian::{SampleSettings, Sampler, Variation};
use crate::tensor::Device;
use crate::weights::Weights;
use captions::sampler_help;
use compare::Comparison;
use forward::GaussianForward;
use settings::{apply_card_defaults, Settings};
use stepping::{split_frame, Session};

pub struct OpenGaussian {
    /// Shared with a step computing on a worker thread (CPU backend).
    model: Arc<GaussianModel>,
    settings: Settings,
    session: Option<Session>,
    forward: GaussianForward,
    /// Textures for x_t, x0_pred and ε_pred and the (session, step) they show.
    textures: [Option<egui::TextureHandle>; 3],
    textures_show: Option<(u64, usize)>,
    sessions_started: u64,
    /// Compare samplers (`Some`: on): the same x_T through several samplers, side by side.
    compare: Option<Comparison>,
    /// The user's own drawing or points, and whether the run starts from them (SDEdit).
    input: input::OwnInput,
    /// 2-D models: the network's score field at the viewed step's timestep.
    score: score::ScoreField,
    /// The timestep of the step being viewed (set every frame), for the score field.
    viewed_t: Option<usize>,
    /// The step being viewed (set every frame), for a latent model's decoded picture.
    viewed: usize,
    /// Latent models: the viewed step's latent decoded to an image.
    decoded: decoded::Decoded,
    /// The forward explorer's example: the ELBO's term at each step.
    loss: loss_curve::LossCurve,
}

impl OpenGaussian {
    /// A shipped model with its card's suggested settings and its examples.
    pub fn open_shipped(
        device: &Device,
        name: &str,
        carried: &Carried,
    ) -> crate::Result<OpenGaussian> {
        let card = crate::pipelines::gaussian::shipped(name)
            .ok()
            .map(|s| s.card);
        let examples = crate::pipelines::gaussian::shipped(name)
            .ok()
            .and_then(|s| load_examples(&s.data().ok()?).ok())
            .unwrap_or_default();
        let m = crate::pipelines::gaussian::load_shipped(device, name)?;
        Ok(OpenGaussian::new(m, card, examples, carried))
    }

    /// A user's own model: no card, no examples.
    pub fn open_user(m: GaussianModel, carried: &Carried) -> OpenGaussian {
        OpenGaussian::new(m, None, Vec::new(), carried)
    }

    fn new(
        m: GaussianModel,
        card: Option<&str>,
        examples: Vec<Vec<f32>>,
        carried: &Carried,
    ) -> OpenGaussian {
        let steps = m.process.train_timesteps();
        let mut settings = Settings {
            seed: carried.seed,
            label: 0,
            guidance: 1.0,
            sampler: "ddpm",
            karras: false,
            steps,
            eta: carried.eta,
            n: if m.denoiser.sample_shape().len() == 3 {
                16
            } else {
                1024
            },
        };
        if let Some(card) = card {
            apply_card_defaults(&mut settings, card);
        }
        let input = input::OwnInput::new(&m);
        OpenGaussian {
            model: Arc::new(m),
            settings,
            session: None,
            forward: GaussianForward::new(steps / 4, examples),
            textures: [None, None, None],
            textures_show: None,
            sessions_started: 0,
            compare: None,
            input,
            score: Default::default(),
            viewed_t: None,
            viewed: 0,
            decoded: Default::default(),
            loss: Default::default(),
        }
    }

    fn next_session_id(&mut self) -> u64 {
        self.sessions_started += 1;
        self.sessions_started
    }

    fn sample_settings(&self) -> SampleSettings {
        let s = &self.settings;
        let k = self.model.denoiser.num_labels();
        // The model's own samplers only (a link or lesson may name another family's).
        let names = Sampler::names_for(&self.model.process);
        let name = if names.contains(&s.sampler) {
            s.sampler
        } else {
            names[0]
        };
        SampleSettings {
            // Every name in the menu parses.
            sampler: Sampler::parse(name, s.eta, s.karras).unwrap_or(Sampler::Ddpm),
            steps: s.steps,
            seed: s.seed,
            labels: k.map(|_| vec![s.label; s.n]),
            guidance: (s.guidance != 1.0).then_some(s.guidance),
        }
    }

    /// Values per sample of x.
    fn per_sample(&self) -> usize {
        self.model.denoiser.sample_shape().iter().product()
    }
}

/// The examples shipped with a model, one entry per label: a point set ("points", [labels, N, 2])
/// or a few images ("images", [labels, K, C, H, W]).
fn load_examples(bytes: &[u8]) -> crate::Result<Vec<Vec<f32>>> {
    let mut w = Weights::from_bytes(bytes, "examples")?;
    let name = ["points", "images"]
        .into_iter()
        .find(|n| w.contains(n))
        .ok_or_else(|| {
            crate::Error::Invalid("examples hold neither \"points\" nor \"images\"".into())
        })?;
    let shape = w.shape_of(name).unwrap_or_default().to_vec();
    let t = w.take(name, &shape)?;
    let per = t.data.len() / shape[0].max(1);
    Ok(t.data.chunks(per).map(|c| c.to_vec()).collect())
}

impl OpenRun for OpenGaussian {
    fn model_name(&self) -> &str {
        &self.model.name
    }

    fn family(&self) -> Family {
        Family::Gaussian
    }

    fn remember(&self, carried: &mut Carried) {
        carried.seed = self.settings.seed;
        carried.eta = self.settings.eta;
    }

    fn link(&self) -> crate::app::Link {
        let conditional = !self.model.labels.is_empty();
        crate::app::Link {
            model: Some(self.model.name.clone()),
            clip: Some(self.model.process.config.clip_sample),
            compare: self.compare.is_some().then_some(true),
            vary: self.compare.as_ref().map(|c| c.vary.varied.spec()),
            score: self.score.shown.then_some(true),
            ..self.settings.link(conditional)
        }
    }

    fn apply_link(&mut self, link: &crate::app::Link) {
        let m = &self.model;
        let images = m.denoiser.sample_shape().len() == 3;
        let fits = settings::Fits {
            timesteps: m.process.train_timesteps(),
            labels: m.labels.len(),
            n: if images { 1..=64 } else { 16..=4096 },
        };
        self.settings.apply_link(link, &fits);
        if let Some(v) = link.clip {
            // A copy of the model's tables if a step in flight still holds the old ones.
            Arc::make_mut(&mut self.model).process.config.clip_sample = v;
        }
        if let Some(on) = link.compare {
            if on != self.compare.is_some() {
                self.compare = on.then(Comparison::default);
            }
        }
        // What the compared runs differ in (it turns the comparison on unless the link turns it off).
        if let Some(v) = link.vary.as_deref().and_then(|v| Variation::parse(v).ok()) {
            if link.compare != Some(false) {
                self.compare = Some(Comparison::of(v));
            }
        }
        if let Some(on) = link.score {
            self.score.shown = on;
        }
        if let Some(v) = &link.forward_schedule {
            // Both schedules' tables exist for every model that opened, so this does not fail.
            let _ = self.forward.choose_schedule(&self.model, v);
        }
    }

    fn restart(&mut self) -> crate::Result<()> {
        let id = self.next_session_id();
        let settings = self.sample_settings();
        if let Some(c) = &mut self.compare {
            // Ids after the main run's, so no view mistakes one run's picture for another's.
            self.sessions_started += Sampler::NAMES.len() as u64;
            let menu = (self.settings.eta, self.settings.karras);
            c.start(&self.model, &settings, self.settings.n, menu, id + 1)?;
        }
        let m = &self.model;
        self.session = Some(if self.input.active && !self.input.is_empty(m) {
            let (x0, n) = self.input.batch(m, self.settings.n);
            let mut settings = settings;
            settings.labels = settings.labels.map(|l| vec![l[0]; n]);
            Session::from_input(
                m,
                settings,
                n,
                id,
                &x0,
                (self.input.t0, self.input.keep_mask(m).as_deref()),
            )?
        } else {
            Session::start(m, settings, self.settings.n, id)?
        });
        Ok(())
    }

    fn controls(&mut self, ui: &mut egui::Ui) -> bool {
        ui.separator();
        // "Denoise" (or "start from noise") in the view asks for a restart here.
        let mut changed = std::mem::take(&mut self.input.restart);
        let (m, s) = (&mut self.model, &mut self.settings);
        if !m.labels.is_empty() {
            let r = egui::ComboBox::from_label("label")
                .selected_text(m.labels[s.label as usize % m.labels.len()].clone())
                .show_ui(ui, |ui| {
                    for (i, l) in m.labels.iter().enumerate() {
                        changed |= ui.selectable_value(&mut s.label, i as u32, l).changed();
                    }
                });
            highlight::mark(ui, "label", r.response);
            let r = ui
                .add(egui::Slider::new(&mut s.guidance, 0.0..=5.0).text("guidance w"))
                .on_hover_text(
                    "ε_pred = ε_uncond + w·(ε_cond − ε_uncond); w = 1 is plain conditional",
                );
            changed |= highlight::mark(ui, "guidance", r).changed();
        }
        let tt = m.process.train_timesteps();
        let mut picked = false;
        let r = egui::ComboBox::from_label("sampler")
            .selected_text(s.sampler)
            .show_ui(ui, |ui| {
                for name in Sampler::names_for(&m.process) {
                    picked |= ui
                        .selectable_value(&mut s.sampler, name, name)
                        .on_hover_text(sampler_help(name))
                        .changed();
                }
            })
            .response
            .on_hover_text(sampler_help(s.sampler));
        if picked {
            // A sampler picked from the menu starts at its usual step count (DDPM's thousand steps
            // are not what DPM-Solver++ is for, and a multistep solver cannot visit every one).
            if let Ok(p) = Sampler::parse(s.sampler, s.eta, s.karras) {
                s.steps = p.default_steps(tt);
            }
            changed = true;
        }
        highlight::mark(ui, "sampler", r);
        let r = ui.add(egui::Slider::new(&mut s.steps, 1..=tt).text("steps"));
        changed |= highlight::mark(ui, "steps", r).changed();
        let chosen = Sampler::parse(s.sampler, s.eta, s.karras).unwrap_or(Sampler::Ddpm);
        if s.sampler == "ddim" {
            let r = ui.add(egui::Slider::new(&mut s.eta, 0.0..=1.0).text("η"));
            changed |= highlight::mark(ui, "eta", r).changed();
        }
        if chosen.takes_karras() {
            changed |= ui
                .checkbox(&mut s.karras, "Karras σ")
                .on_hover_text(
                    "Karras et al.'s σ schedule (ρ = 7): more steps at low noise, where detail forms",
                )
                .changed();
        }
        let mut clip = m.process.config.clip_sample;
        let r = ui.checkbox(&mut clip, "clip x0_pred to the data range");
        if highlight::mark(ui, "clip", r)
            .on_hover_text(
                "diffusers' clip_sample: each step clamps the network's x0_pred to the data range \
                 before stepping. With guidance above 1 the extrapolated ε_pred pushes x0_pred far \
                 outside it, and clamping (while the step keeps the unclamped ε_pred) drives the \
                 samples to saturated blobs — switch it off there.",
            )
            .changed()
        {
            // A copy of the model's tables if a step in flight still holds the old ones.
            Arc::make_mut(m).process.config.clip_sample = clip;
            changed = true;
        }
        let (range, what) = if m.denoiser.sample_shape().len() == 3 {
            (1..=64, "images")
        } else {
            (16..=4096, "points")
        };
        changed |= ui
            .add(
                egui::Slider::new(&mut s.n, range)
                    .logarithmic(true)
                    .text(what),
            )
            .changed();
        changed |= seed_row(ui, &mut s.seed);
        changed |= compare::switch(
            ui,
            &mut self.compare,
            &Sampler::names_for(&self.model.process),
        );
        changed
    }

    fn process_notes(&mut self, ui: &mut egui::Ui, viewed: usize) {
        ui.separator();
        ui.label("Noise schedule");
        let t = if self.forward.shown {
            Some(self.forward.t)
        } else {
            self.session
                .as_ref()
                .and_then(|s| s.run.plan.get(viewed).map(|p| p.t))
        };
        let trained = &self.model.process.alphas_cumprod;
        highlight::mark_scope(ui, "schedule", |ui| {
            if self.forward.shown && self.forward.schedule != "trained" {
                let shown = &self.forward.process(&self.model).alphas_cumprod;
                let name = self.forward.schedule;
                schedule::draw(ui, shown, t, Some((trained, name)));
            } else {
                schedule::draw(ui, trained, t, None);
            }
        });
    }

    fn pump(&mut self, step: bool) -> crate::Result<()> {
        if let Some(c) = &mut self.compare {
            c.pump(&self.model, step)?;
        }
        match &mut self.session {
            Some(s) => s.pump(&self.model, step),
            None => Ok(()),
        }
    }

    fn pump_forward(&mut self) -> crate::Result<()> {
        let (label, seed) = (self.settings.label, self.settings.seed);
        self.forward.pump(&self.model, label, seed)?;
        if self.forward.shown {
            let ex = self.forward.example(label);
            self.loss.pump(&self.model, ex, label, seed)?;
        }
        if let Some(s) = &self.session {
            self.score
                .pump(&self.model, self.viewed_t, &s.run.settings)?;
            let per = s.n * self.per_sample();
            let frame = s.states.nearest(self.viewed);
            let latent = frame.and_then(|(_, f)| {
                let (x, x0, _) = split_frame(f, per);
                match self.decoded.source {
                    decoded::Source::Xt => Some(x),
                    decoded::Source::X0 => x0,
                }
            });
            let key = (s.id, frame.map_or(0, |(v, _)| v));
            self.decoded.pump(&self.model, key, latent)?;
        }
        Ok(())
    }

    fn animate(&mut self, viewed: usize) {
        self.viewed = viewed;
        self.viewed_t = self
            .session
            .as_ref()
            .and_then(|s| s.run.plan.get(viewed).map(|p| p.t));
    }

    fn wants_repaint(&self, _playing: bool) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.done() || s.in_flight() || self.forward.busy())
            || self.score.busy()
            || self.decoded.busy()
            || self.loss.busy()
            || self.compare.as_ref().is_some_and(Comparison::busy)
    }

    fn progress(&self) -> Option<Progress> {
        self.session.as_ref().map(|s| Progress {
            recorded: s.states.len(),
            launched: s.launched(),
            total: s.run.plan.len() + 1,
            started: s.started,
        })
    }

    fn fork(&mut self, viewed: usize) -> crate::Result<bool> {
        let Some(s) = &self.session else {
            return Ok(false);
        };
        let seed = self.settings.seed.wrapping_add(1);
        let id = self.sessions_started + 1;
        let Some(forked) = s.forked(&self.model, viewed, seed, id)? else {
            return Ok(false);
        };
        self.sessions_started = id;
        self.settings.seed = seed;
        self.session = Some(forked);
        Ok(true)
    }

    fn central(&mut self, ui: &mut egui::Ui, viewed: usize) {
        if self.input.editing {
            let example = self.forward.example(self.settings.label);
            self.input.ui(ui, &self.model, example, self.settings.seed);
            return;
        }
        if self.forward.shown {
            self.forward.draw(ui, &self.model, &mut self.textures[0]);
            let (label, seed, t) = (self.settings.label, self.settings.seed, self.forward.t);
            self.loss.draw(ui, &self.model, label, seed, t);
            self.textures_show = None;
            return;
        }
        if let (Some(c), Some(s)) = (&mut self.compare, &self.session) {
            if c.running() {
                let fraction = viewed as f32 / s.run.plan.len().max(1) as f32;
                c.draw(ui, &self.model, fraction.min(1.0));
                return;
            }
        }
        self.reverse_view(ui, viewed);
    }

    fn forward_row(&mut self, ui: &mut egui::Ui) {
        super::open_run::view_switches(
            ui,
            &mut self.input.editing,
            &mut self.forward.shown,
            "forward process q(x_t | x0)",
            "draw an image or place points, and denoise it from any t (SDEdit)",
        );
        if self.forward.shown {
            let tt = self.model.process.train_timesteps();
            let r = ui.add(egui::Slider::new(&mut self.forward.t, 0..=tt - 1).text("t"));
            highlight::mark(ui, "forward-t", r);
            let own = match self.model.process.config.beta_schedule {
                crate::process::schedule::BetaSchedule::Linear => "linear",
                crate::process::schedule::BetaSchedule::ScaledLinear => "scaled linear",
                crate::process::schedule::BetaSchedule::SquaredCosCapV2 => "cosine",
            };
            let mut pick = self.forward.schedule;
            let label = |n: &str| match n {
                "trained" => format!("as trained ({own})"),
                n => n.to_string(),
            };
            let r = egui::ComboBox::from_label("β schedule")
                .selected_text(label(pick))
                .show_ui(ui, |ui| {
                    for &n in crate::lessons::FORWARD_SCHEDULES {
                        ui.selectable_value(&mut pick, n, label(n));
                    }
                })
                .response
                .on_hover_text(
                    "draw the forward process under another β schedule, to compare where the \
                     signal goes (the reverse run keeps the schedule the model was trained on)",
                );
            highlight::mark(ui, "forward-schedule", r);
            if pick != self.forward.schedule {
                if let Err(e) = self.forward.choose_schedule(&self.model, pick) {
                    ui.colored_label(ui.visuals().error_fg_color, e.to_string());
                }
            }
        }
    }

    fn show_forward(&mut self, t: Option<usize>) {
        self.input.editing = false;
        self.forward.shown = t.is_some();
        if let Some(t) = t {
            self.forward.t = t.min(self.model.process.train_timesteps() - 1);
        }
    }

    fn forward_shown(&self) -> Option<usize> {
        self.forward.shown.then_some(self.forward.t)
    }

    fn own_input(&self) -> Option<Vec<f32>> {
        self.input.active.then(|| self.input.values.clone())
    }

    fn export_buttons(
        &mut self,
        ui: &mut egui::Ui,
        viewed: usize,
    ) -> Option<crate::Result<Export>> {
        let s = self.session.as_ref()?;
        let mut made = None;
        if ui
            .button("frame (PNG)")
            .on_hover_text("the viewed step as drawn: x_t, x0_pred and ε_pred for images")
            .clicked()
        {
            made = Some(export::frame(&self.model, s, viewed));
        }
        if ui
            .button("trajectory strip (PNG)")
            .on_hover_text("each sample's x_t at 10 steps up to the viewed one, left to right")
            .clicked()
        {
            made = Some(export::strip(&self.model, s, viewed));
        }
        made
    }

    fn status(&self) -> RunStatus {
        let s = self.session.as_ref();
        let per = s.map_or(1, |s| s.n) * self.per_sample();
        let last = s
            .and_then(|s| s.states.last())
            .map(|f| split_frame(f, per).0);
        let last = last.map_or_else(LastState::default, |v| {
            let n = v.len().max(1) as f64;
            let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
            LastState {
                mean: m,
                std: var.sqrt(),
                finite: v.iter().all(|x| x.is_finite()),
            }
        });
        RunStatus {
            last,
            temperature: None,
            unmask: None,
            padding: None,
            sampler: s.map(|s| s.run.settings.sampler.name()),
            compare: self
                .compare
                .as_ref()
                .map_or(serde_json::Value::Null, Comparison::status),
            input: serde_json::json!({
                "editing": self.input.editing,
                "active": self.input.active,
                "t0": self.input.t0,
                "empty": self.input.is_empty(&self.model),
                "keep": format!("{:?}", self.input.keep),
                // The step the model took first (the ones before show the input noised).
                "from_step": s.filter(|_| self.input.active).map(|s| s
                    .run
                    .plan
                    .iter()
                    .position(|p| p.t <= self.input.t0)
                    .unwrap_or(s.run.plan.len())),
            }),
            score: match (self.score.shown, self.viewed_t) {
                (true, Some(t)) => serde_json::json!({
                    "t": t,
                    "ready": self.score.field(t).is_some(),
                    "inward_share": self.score.inward_share(self.model.data_range, t),
                }),
                _ => serde_json::Value::Null,
            },
            loss_curve: self
                .loss
                .status(&self.model, self.settings.label, self.settings.seed),
            decoded: match self.model.decoder {
                Some(_) => self.decoded.status(),
                None => serde_json::Value::Null,
            },
            entropy: None,
        }
    }

    fn recorded_state(&self, k: usize) -> Option<Vec<f32>> {
        let s = self.session.as_ref()?;
        let per = s.n * self.per_sample();
        s.states.get(k).map(|f| split_frame(f, per).0.to_vec())
    }

    fn resume_on(&mut self, device: &Device) -> crate::Result<()> {
        let mut model = crate::pipelines::gaussian::load_shipped(device, &self.model.name)?;
        // The run's own settings (the clip switch lives in the model's scheduler config).
        model.process.config.clip_sample = self.model.process.config.clip_sample;
        let resumed = match &self.session {
            Some(s) => s.resumed_on(&model)?,
            None => None,
        };
        self.model = Arc::new(model);
        self.forward.drop_pending();
        match resumed {
            Some(s) => {
                self.session = Some(s);
                // The compared runs start over on the new device (their memory stays behind).
                let settings = self.sample_settings();
                let (eta, karras, n) = (self.settings.eta, self.settings.karras, self.settings.n);
                let id = self.sessions_started + 1;
                if let Some(c) = &mut self.compare {
                    self.sessions_started += Sampler::NAMES.len() as u64;
                    c.start(&self.model, &settings, n, (eta, karras), id)?;
                }
            }
            None => self.restart()?,
        }
        Ok(())
    }
}
