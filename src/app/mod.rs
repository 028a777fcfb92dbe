//! The egui app, shared by the native window and the browser: pick a model, run its reverse trajectory
//! one step per frame without blocking, scrub through every recorded step, and explore the forward
//! process. Compute runs on eframe's own wgpu device.

mod points;
mod schedule;

use crate::gpu::Gpu;
use crate::models::zoo::{self, GaussianModel};
use crate::process::gaussian::{PlannedStep, SampleSettings, Sampler};
use crate::tensor::{Tensor, TensorReadback};
use crate::trajectory::{History, DEFAULT_HISTORY_BYTES, DEFAULT_RECENT_STEPS};
use crate::weights::Weights;
use egui::{Color32, RichText};

/// A reverse run in progress or finished: host snapshots of every state so far.
struct Session {
    settings: SampleSettings,
    plan: Vec<PlannedStep>,
    n: usize,
    /// The GPU state after `states.len() - 1` steps (the state the next step starts from).
    x: Tensor,
    /// A readback in flight: the state after step `k` (and the GPU tensor it came from).
    pending: Option<(usize, TensorReadback)>,
    /// Host copies of the states, under a memory cap (older steps thinned; see `History`).
    states: History,
    started: web_time::Instant,
}

impl Session {
    fn done(&self) -> bool {
        self.states.len() > self.plan.len()
    }
}

pub struct DiffscopeApp {
    gpu: Option<Gpu>,
    error: Option<String>,
    /// The compute device was lost: offer to open a new one and carry on.
    device_lost: bool,
    model: Option<GaussianModel>,
    session: Option<Session>,
    // Controls.
    seed: u64,
    label: u32,
    guidance: f32,
    ddim: bool,
    steps: usize,
    eta: f32,
    n: usize,
    playing: bool,
    view: usize,
    follow: bool,
    // Forward explorer.
    forward_t: usize,
    forward_pending: Option<(usize, TensorReadback)>,
    forward_points: Option<(usize, Vec<f32>)>,
    examples: Vec<Vec<f32>>,
    show_forward: bool,
}

impl DiffscopeApp {
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let mut app = DiffscopeApp {
            gpu: None,
            error: None,
            device_lost: false,
            model: None,
            session: None,
            seed: 0,
            label: 0,
            guidance: 1.0,
            ddim: false,
            steps: 200,
            eta: 0.0,
            n: 1024,
            playing: true,
            view: 0,
            follow: true,
            forward_t: 50,
            forward_pending: None,
            forward_points: None,
            examples: Vec::new(),
            show_forward: false,
        };
        match cc.wgpu_render_state.as_ref() {
            Some(rs) => match Gpu::from_device(rs.adapter.get_info(), rs.device.clone(), rs.queue.clone()) {
                Ok(g) => app.gpu = Some(g),
                Err(e) => app.error = Some(e.to_string()),
            },
            None => {
                app.error = Some(
                    "no WebGPU/wgpu device: diffscope needs compute shaders (in a browser, use one with WebGPU)"
                        .into(),
                )
            }
        }
        if app.gpu.is_some() {
            app.load_model(zoo::DEFAULT_MODEL);
        }
        app
    }

    fn load_model(&mut self, name: &str) {
        let Some(gpu) = self.gpu.clone() else { return };
        self.session = None;
        match zoo::load_shipped(&gpu, name) {
            Ok(m) => {
                self.steps = m.process.train_timesteps();
                self.forward_t = self.steps / 4;
                self.examples = zoo::shipped(name)
                    .ok()
                    .and_then(|s| load_examples(s.examples).ok())
                    .unwrap_or_default();
                self.model = Some(m);
                self.restart();
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn settings(&self) -> SampleSettings {
        let k = self.model.as_ref().and_then(|m| m.denoiser.num_labels());
        SampleSettings {
            sampler: if self.ddim {
                Sampler::Ddim { eta: self.eta }
            } else {
                Sampler::Ddpm
            },
            steps: self.steps,
            seed: self.seed,
            labels: k.map(|_| vec![self.label; self.n]),
            guidance: (self.guidance != 1.0).then_some(self.guidance),
        }
    }

    /// Start a new trajectory from x_T with the current settings.
    fn restart(&mut self) {
        let Some(m) = &self.model else { return };
        let settings = self.settings();
        let result = (|| {
            let plan = m.process.plan(settings.sampler, settings.steps)?;
            let gpu = m.denoiser.gpu().expect("loaded model has a device").clone();
            let x = m
                .process
                .initial(&gpu, self.n, m.denoiser.sample_shape(), settings.seed)?;
            let rb = x.read();
            Ok::<_, crate::Error>(Session {
                settings,
                plan,
                n: self.n,
                x,
                pending: Some((0, rb)),
                states: History::new(DEFAULT_HISTORY_BYTES, DEFAULT_RECENT_STEPS),
                started: web_time::Instant::now(),
            })
        })();
        match result {
            Ok(s) => {
                self.session = Some(s);
                self.view = 0;
                self.follow = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Continue from the viewed step with a new seed: a different future from the same present.
    fn fork(&mut self) {
        let Some(m) = &self.model else { return };
        let Some(s) = &self.session else { return };
        let Some((k, state)) = s.states.nearest(self.view) else {
            return;
        };
        let state = state.to_vec();
        let mut shape = vec![s.n];
        shape.extend_from_slice(m.denoiser.sample_shape());
        let gpu = m.denoiser.gpu().expect("device").clone();
        self.seed = self.seed.wrapping_add(1);
        let mut settings = s.settings.clone();
        settings.seed = self.seed;
        match Tensor::from_f32(&gpu, &shape, &state) {
            Ok(x) => {
                let plan = s.plan.clone();
                let states = s.states.truncated(k);
                self.session = Some(Session {
                    settings,
                    plan,
                    n: s.n,
                    x,
                    pending: None,
                    states,
                    started: web_time::Instant::now(),
                });
                self.follow = true;
                self.playing = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// After the device was lost: open a new one, reload the model, and continue the run from the
    /// newest state kept on the host (the trajectory is a pure function of its settings, so it goes
    /// on exactly as it would have).
    fn recover_device(&mut self) {
        #[cfg(not(target_arch = "wasm32"))]
        let fresh = match &self.gpu {
            Some(g) => g.recreate(),
            None => Gpu::new(&Default::default()),
        };
        #[cfg(target_arch = "wasm32")]
        let fresh: crate::Result<Gpu> = Err(crate::Error::DeviceLost(
            "reload the page to get a new WebGPU device".into(),
        ));
        let gpu = match fresh {
            Ok(g) => g,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        let Some(name) = self.model.as_ref().map(|m| m.name.clone()) else {
            return;
        };
        let model = match zoo::load_shipped(&gpu, &name) {
            Ok(m) => m,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        let resumed = self.session.take().and_then(|s| {
            let (k, state) = s.states.nearest(s.states.len().checked_sub(1)?)?;
            let mut shape = vec![s.n];
            shape.extend_from_slice(model.denoiser.sample_shape());
            let x = Tensor::from_f32(&gpu, &shape, state).ok()?;
            Some(Session {
                states: s.states.truncated(k),
                x,
                pending: None,
                ..s
            })
        });
        self.gpu = Some(gpu);
        self.model = Some(model);
        self.session = resumed;
        self.error = None;
        self.device_lost = false;
        if self.session.is_none() {
            self.restart();
        }
        self.playing = true;
    }

    /// Advance the trajectory by at most one step per frame; never waits for the GPU.
    fn pump(&mut self) {
        let Some(m) = &self.model else { return };
        let Some(s) = &mut self.session else { return };
        let gpu = m.denoiser.gpu().expect("device").clone();
        if let Some((k, rb)) = &mut s.pending {
            // A state is recorded only if the device reported nothing wrong while computing it: a
            // validation error or a lost device would make it a wrong picture.
            match rb.try_f32().map(|r| r.and_then(|v| gpu.check().map(|_| v))) {
                None => return,
                Some(Ok(v)) => {
                    debug_assert_eq!(*k, s.states.len());
                    s.states.push(v);
                    s.pending = None;
                }
                Some(Err(e)) => {
                    self.device_lost = matches!(e, crate::Error::DeviceLost(_));
                    self.error = Some(e.to_string());
                    self.playing = false;
                    s.pending = None;
                    return;
                }
            }
        }
        if !self.playing || s.done() {
            return;
        }
        let k = s.states.len() - 1;
        let out = m.process.step(
            m.denoiser.as_ref(),
            &s.x,
            &s.plan,
            k,
            &s.settings,
            Default::default(),
        );
        match out {
            Ok(o) => {
                gpu.submit();
                s.x = o.x_prev;
                s.pending = Some((k + 1, s.x.read()));
            }
            Err(e) => {
                self.error = Some(e.to_string());
                self.playing = false;
            }
        }
    }

    fn pump_forward(&mut self) {
        if let Some((t, rb)) = &mut self.forward_pending {
            if let Some(r) = rb.try_f32() {
                match r {
                    Ok(v) => self.forward_points = Some((*t, v)),
                    Err(e) => self.error = Some(e.to_string()),
                }
                self.forward_pending = None;
            }
        }
        let want = self.forward_t;
        let have = self.forward_points.as_ref().map(|p| p.0);
        if !self.show_forward || self.forward_pending.is_some() || have == Some(want) {
            return;
        }
        let (Some(m), Some(gpu)) = (&self.model, &self.gpu) else {
            return;
        };
        let Some(ex) = self.examples.get(self.label as usize) else {
            return;
        };
        let r = Tensor::from_f32(gpu, &[ex.len() / 2, 2], ex)
            .and_then(|x0| m.process.forward(&x0, want, self.seed));
        match r {
            Ok((xt, _)) => self.forward_pending = Some((want, xt.read())),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.heading("diffscope");
        if let Some(g) = &self.gpu {
            ui.label(
                RichText::new(format!(
                    "{} ({:?})",
                    g.adapter_info().name,
                    g.adapter_info().backend
                ))
                .small(),
            );
        }
        ui.separator();
        ui.label("Model");
        let current = self
            .model
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let mut pick = None;
        for s in zoo::SHIPPED {
            if ui
                .selectable_label(current == s.name, s.name)
                .on_hover_text(s.summary)
                .clicked()
            {
                pick = Some(s.name);
            }
        }
        if let Some(p) = pick {
            self.load_model(p);
        }
        ui.separator();
        let mut changed = false;
        if let Some(m) = &self.model {
            if !m.labels.is_empty() {
                egui::ComboBox::from_label("label")
                    .selected_text(m.labels[self.label as usize % m.labels.len()].clone())
                    .show_ui(ui, |ui| {
                        for (i, l) in m.labels.iter().enumerate() {
                            changed |= ui.selectable_value(&mut self.label, i as u32, l).changed();
                        }
                    });
                changed |= ui
                    .add(egui::Slider::new(&mut self.guidance, 0.0..=5.0).text("guidance w"))
                    .on_hover_text(
                        "ε̂ = ε̂_uncond + w·(ε̂_cond − ε̂_uncond); w = 1 is plain conditional",
                    )
                    .changed();
            }
            let tt = m.process.train_timesteps();
            changed |= ui.checkbox(&mut self.ddim, "DDIM (else DDPM)").changed();
            changed |= ui
                .add(egui::Slider::new(&mut self.steps, 1..=tt).text("steps"))
                .changed();
            if self.ddim {
                changed |= ui
                    .add(egui::Slider::new(&mut self.eta, 0.0..=1.0).text("η"))
                    .changed();
            }
            changed |= ui
                .add(
                    egui::Slider::new(&mut self.n, 16..=4096)
                        .logarithmic(true)
                        .text("points"),
                )
                .changed();
        }
        ui.horizontal(|ui| {
            ui.label("seed");
            changed |= ui.add(egui::DragValue::new(&mut self.seed)).changed();
            if ui.button("new seed").clicked() {
                self.seed = self.seed.wrapping_add(1);
                changed = true;
            }
        });
        if changed {
            self.restart();
        }
        if let Some(m) = &self.model {
            ui.separator();
            ui.label("Noise schedule");
            let t = if self.show_forward {
                Some(self.forward_t)
            } else {
                self.session
                    .as_ref()
                    .and_then(|s| s.plan.get(self.view).map(|p| p.t))
            };
            schedule::draw(ui, &m.process.alphas_cumprod, t);
        }
    }

    fn timeline(&mut self, ui: &mut egui::Ui) {
        let Some(s) = &self.session else { return };
        let recorded = s.states.len();
        let total = s.plan.len();
        let mut fork = false;
        ui.horizontal(|ui| {
            let label = if self.playing { "Pause" } else { "Play" };
            if ui.button(label).clicked() {
                self.playing = !self.playing;
            }
            if ui.button("< Step back").clicked() {
                self.follow = false;
                self.view = self.view.saturating_sub(1);
            }
            if ui.button("Step >").clicked() {
                self.follow = false;
                if self.view + 1 < recorded {
                    self.view += 1;
                } else if !s.done() {
                    self.playing = true;
                    self.follow = true;
                }
            }
            if ui
                .button("Fork here")
                .on_hover_text("continue from this step with a new seed")
                .clicked()
            {
                fork = true;
            }
            let secs = s.started.elapsed().as_secs_f64().max(1e-3);
            ui.label(format!(
                "step {} / {total} · {:.1} steps/s",
                recorded.saturating_sub(1),
                recorded.saturating_sub(1) as f64 / secs
            ));
        });
        if recorded > 0 {
            let mut v = self.view.min(recorded - 1);
            let resp = ui.add(egui::Slider::new(&mut v, 0..=recorded - 1).text("viewed step"));
            if resp.changed() {
                self.follow = v == recorded - 1;
                self.view = v;
            }
        }
        if fork {
            self.fork();
        }
    }
}

fn load_examples(bytes: &[u8]) -> crate::Result<Vec<Vec<f32>>> {
    let mut w = Weights::from_bytes(bytes, "examples")?;
    let shape = w
        .shape_of("points")
        .ok_or_else(|| crate::Error::Invalid("examples lack \"points\"".into()))?
        .to_vec();
    let t = w.take("points", &shape)?;
    let per = t.data.len() / shape[0].max(1);
    Ok(t.data.chunks(per).map(|c| c.to_vec()).collect())
}

impl eframe::App for DiffscopeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.pump();
        self.pump_forward();
        if let Some(s) = &self.session {
            if self.follow {
                self.view = s.states.len().saturating_sub(1);
            }
            if !s.done() || s.pending.is_some() || self.forward_pending.is_some() {
                ui.ctx().request_repaint();
            }
        }
        egui::Panel::left("controls").show(ui, |ui| self.controls(ui));
        egui::Panel::bottom("timeline").show(ui, |ui| {
            if let Some(e) = &self.error {
                let mut recover = false;
                ui.horizontal(|ui| {
                    ui.colored_label(Color32::LIGHT_RED, format!("error: {e}"));
                    if self.device_lost && ui.button("Open a new GPU device and continue").clicked()
                    {
                        recover = true;
                    }
                });
                if recover {
                    self.recover_device();
                }
            }
            self.timeline(ui);
            ui.horizontal(|ui| {
                ui.checkbox(&mut self.show_forward, "forward process q(x_t | x0)");
                if self.show_forward {
                    let tt = self
                        .model
                        .as_ref()
                        .map_or(1, |m| m.process.train_timesteps());
                    ui.add(egui::Slider::new(&mut self.forward_t, 0..=tt - 1).text("t"));
                }
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            let Some(m) = &self.model else {
                ui.label("no model loaded");
                return;
            };
            if self.show_forward {
                if let Some((t, pts)) = &self.forward_points {
                    let a = m.process.alphas_cumprod[*t];
                    ui.label(format!(
                        "Forward process at t = {t}: x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε with ᾱ_t = {a:.4}. \
                         ᾱ_t is the share of the signal's variance left after t noising steps; \
                         as it falls to 0 every shape dissolves into the same Gaussian."
                    ));
                    points::draw(ui, &[pts.as_slice()], None, m.data_range);
                }
                return;
            }
            let Some(s) = &self.session else { return };
            if s.states.is_empty() {
                ui.spinner();
                return;
            }
            let want = self.view.min(s.states.len() - 1);
            // A step thinned out by the memory cap is shown as the nearest kept one, and said so.
            let Some((v, _)) = s.states.nearest(want) else { return };
            if v != want {
                ui.label(
                    RichText::new(format!(
                        "step {want} was not kept (memory cap: older steps are kept every {} steps); showing step {v}",
                        s.states.stride()
                    ))
                    .color(Color32::YELLOW),
                );
            }
            let t = if v < s.plan.len() { s.plan[v].t as i64 } else { -1 };
            ui.label(format!(
                "Reverse process, step {v}: the network predicts the noise ε̂ in x_t (t = {t}) and each \
                 step removes part of it: x_(t−1) = posterior mean(x_t, x̂0) + σ_t·z."
            ));
            let trail: Vec<&[f32]> = (v.saturating_sub(4)..=v).filter_map(|k| s.states.get(k)).collect();
            points::draw(ui, &trail, s.settings.labels.as_deref(), m.data_range);
        });
    }
}
