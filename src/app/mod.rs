//! The egui app, shared by the native window and the browser: pick a model, run its reverse trajectory
//! one step per frame without blocking, scrub through every recorded step, and explore the forward
//! process. In the browser compute runs on eframe's WebGPU device. The desktop app opens a device of its
//! own for compute (see `run_app` in the CLI): frames then never queue behind a reverse step — on
//! lavapipe, sharing eframe's queue made every frame wait for the step in flight (mnist-unet: one
//! frame per 1.3 s while sampling, 0.15 s with its own device).

#[cfg(not(target_arch = "wasm32"))]
pub mod autopilot;
mod export;
mod frames;
mod graphs;
mod heatmap;
mod images;
mod points;
mod schedule;
mod sequences;

use crate::gpu::Gpu;
use crate::pipelines::gaussian::GaussianModel;
use crate::pipelines::zoo;
use crate::process::gaussian::{PlannedStep, SampleSettings, Sampler};
use crate::tensor::{Tensor, TensorReadback};
use crate::trajectory::{History, DEFAULT_HISTORY_BYTES, DEFAULT_RECENT_STEPS};
use crate::weights::Weights;
use egui::{Color32, RichText};

/// One recorded reverse step on the host: the state, and (for image models) what the network predicted
/// on the way there. Step 0 is x_T and has no prediction.
struct Frame {
    x: Vec<f32>,
    x0: Option<Vec<f32>>,
    eps: Option<Vec<f32>>,
}

impl Frame {
    /// One buffer for the history: x, then x0_pred and ε_pred when present (each as long as x).
    fn flatten(self) -> Vec<f32> {
        let mut v = self.x;
        v.extend(self.x0.unwrap_or_default());
        v.extend(self.eps.unwrap_or_default());
        v
    }
}

/// A history entry back as (x, x0_pred, ε_pred), given the length of x.
fn split_frame(v: &[f32], per: usize) -> (&[f32], Option<&[f32]>, Option<&[f32]>) {
    let per = per.min(v.len()).max(1);
    let mut parts = v.chunks(per);
    (parts.next().unwrap_or(&[]), parts.next(), parts.next())
}

/// Readbacks of one step in flight; the frame is complete when all have arrived.
struct PendingFrame {
    index: usize,
    x: TensorReadback,
    x0: Option<TensorReadback>,
    eps: Option<TensorReadback>,
    got: [Option<Vec<f32>>; 3],
}

impl PendingFrame {
    /// Starts the readbacks, submitting the step recorded so far with them (one submission).
    fn new(index: usize, x: &Tensor, x0: Option<&Tensor>, eps: Option<&Tensor>) -> PendingFrame {
        let all: Vec<&Tensor> = [Some(x), x0, eps].into_iter().flatten().collect();
        let mut rbs = Tensor::read_many(&all).into_iter();
        let mut next = |want: bool| if want { rbs.next() } else { None };
        let x = next(true).expect("x is always read");
        let x0 = next(x0.is_some());
        let eps = next(eps.is_some());
        PendingFrame {
            index,
            x,
            x0,
            eps,
            got: [None, None, None],
        }
    }

    /// The frame once every readback has landed; never waits.
    fn poll(&mut self) -> Option<crate::Result<Frame>> {
        let slots = [Some(&mut self.x), self.x0.as_mut(), self.eps.as_mut()];
        for (slot, rb) in self.got.iter_mut().zip(slots) {
            if let (None, Some(rb)) = (&slot, rb) {
                match rb.try_f32()? {
                    Ok(v) => *slot = Some(v),
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        if self.got[0].is_none()
            || (self.x0.is_some() && self.got[1].is_none())
            || (self.eps.is_some() && self.got[2].is_none())
        {
            return None;
        }
        let [x, x0, eps] = std::mem::take(&mut self.got);
        Some(Ok(Frame {
            x: x.unwrap_or_default(),
            x0,
            eps,
        }))
    }
}

/// A reverse run in progress or finished: host snapshots of every state so far.
struct Session {
    settings: SampleSettings,
    plan: Vec<PlannedStep>,
    n: usize,
    /// The GPU state after `states.len() - 1` steps (the state the next step starts from).
    x: Tensor,
    /// Readbacks in flight: the state after step `index`.
    pending: Option<PendingFrame>,
    /// Host copies of every step's frame (x, then x0_pred and ε_pred when recorded, concatenated) under a
    /// memory cap: older steps are thinned (see `History`).
    states: History,
    started: web_time::Instant,
    /// Bumped whenever a new run starts, so cached views know they are stale.
    id: u64,
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
    // Image views: textures for x_t, x0_pred, ε_pred and the (session, step) they show.
    textures: [Option<egui::TextureHandle>; 3],
    textures_show: Option<(u64, usize)>,
    sessions_started: u64,
    #[cfg(not(target_arch = "wasm32"))]
    user_dir: String,
    dropped_inbox: DroppedInbox,
    #[cfg(not(target_arch = "wasm32"))]
    autopilot: Option<autopilot::Autopilot>,
    // Graph models (DiGress) run instead of a Gaussian model when one is picked.
    graph_model: Option<crate::pipelines::graph::DigressModel>,
    graph_run: Option<graphs::GraphRun>,
    graphs_n: usize,
    /// Draw the network's edge beliefs p_θ over the sampled graphs.
    graph_predicted: bool,
    graph_examples: Vec<crate::process::graph::Graph>,
    graph_forward: graphs::GraphForward,
    // Sequence models (D3PM, multinomial).
    seq_model: Option<crate::pipelines::sequence::SequenceModel>,
    seq_run: Option<sequences::SeqRun>,
    seq_n: usize,
    temperature: f32,
    /// The sequence whose distributions the detail panel shows.
    seq_selected: usize,
    /// The detail panel shows the model's x0_pred distribution (else the step's posterior).
    seq_show_x0: bool,
    seq_examples: Vec<Vec<u32>>,
    seq_forward: sequences::SeqForward,
    /// Playback speed cap in steps per second (`None`: as fast as the device goes).
    max_rate: Option<f32>,
    /// When the last step was launched (for the speed cap).
    last_launch: Option<web_time::Instant>,
    /// What the last export did (shown under the timeline).
    notice: Option<String>,
    /// Frame intervals and the app's work per frame.
    frame_stats: frames::FrameStats,
    /// The open model's card in brief, ready to draw, and the model it belongs to: cards are static,
    /// so it is parsed once per model, not once per frame.
    about: Option<(String, Option<String>)>,
    /// Where exports are written on the desktop.
    #[cfg(not(target_arch = "wasm32"))]
    export_dir: std::path::PathBuf,
}

/// Dropped files, read: (name, bytes or why not), one batch per drop.
type DroppedInbox = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, Result<Vec<u8>, String>)>>>>;

/// When a run started (for its steps/s).
struct Started {
    started: web_time::Instant,
}

/// What the app opens with.
pub enum Start {
    Shipped(String),
    #[cfg(not(target_arch = "wasm32"))]
    Dir(std::path::PathBuf),
}

impl DiffscopeApp {
    fn next_session_id(&mut self) -> u64 {
        self.sessions_started += 1;
        self.sessions_started
    }

    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        Self::with_start(cc, Start::Shipped(zoo::DEFAULT_MODEL.to_string()))
    }

    /// Write exports to `dir` (default: `diffscope-exports` in the working directory).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_export_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.export_dir = dir.into();
        self
    }

    /// Run the native self-check (see [`autopilot`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_autopilot(mut self, ap: autopilot::Autopilot) -> Self {
        self.autopilot = Some(ap);
        self
    }

    pub fn with_start(cc: &eframe::CreationContext<'_>, start: Start) -> Self {
        let gpu = match cc.wgpu_render_state.as_ref() {
            Some(rs) => Gpu::from_device(rs.adapter.get_info(), rs.device.clone(), rs.queue.clone())
                .map_err(|e| e.to_string()),
            None => Err(
                "no WebGPU/wgpu device: diffscope needs compute shaders (in a browser, use one with WebGPU)"
                    .into(),
            ),
        };
        Self::with_gpu(gpu, start)
    }

    /// The app on a compute device of the caller's (or the reason there is none, shown in the UI):
    /// eframe passes its own; tests pass one they made.
    pub fn with_gpu(gpu: std::result::Result<Gpu, String>, start: Start) -> Self {
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
            textures: [None, None, None],
            textures_show: None,
            sessions_started: 0,
            #[cfg(not(target_arch = "wasm32"))]
            user_dir: String::new(),
            dropped_inbox: Default::default(),
            #[cfg(not(target_arch = "wasm32"))]
            autopilot: None,
            graph_model: None,
            graph_run: None,
            graphs_n: 4,
            graph_predicted: true,
            graph_examples: Vec::new(),
            graph_forward: Default::default(),
            seq_model: None,
            seq_run: None,
            seq_n: 8,
            temperature: 1.0,
            seq_selected: 0,
            seq_show_x0: true,
            seq_examples: Vec::new(),
            seq_forward: Default::default(),
            max_rate: None,
            last_launch: None,
            frame_stats: Default::default(),
            about: None,
            notice: None,
            #[cfg(not(target_arch = "wasm32"))]
            export_dir: "diffscope-exports".into(),
        };
        match gpu {
            Ok(g) => app.gpu = Some(g),
            Err(e) => app.error = Some(e),
        }
        if let Some(gpu) = app.gpu.clone() {
            match start {
                Start::Shipped(name) => match zoo::find(&name).map(|m| m.family) {
                    Some(zoo::Family::Graph) => app.load_graph_model(&name),
                    Some(zoo::Family::Sequence) => app.load_seq_model(&name),
                    // An unknown name reaches the Gaussian loader, whose error lists the models.
                    _ => app.load_model(&name),
                },
                #[cfg(not(target_arch = "wasm32"))]
                Start::Dir(d) => {
                    app.user_dir = d.display().to_string();
                    app.load_user_model(crate::pipelines::gaussian::load_dir(&gpu, &d));
                }
            }
            let _ = gpu;
        }
        app
    }

    fn load_model(&mut self, name: &str) {
        let Some(gpu) = self.gpu.clone() else { return };
        let card = crate::pipelines::gaussian::shipped(name)
            .ok()
            .map(|s| s.card);
        let examples = crate::pipelines::gaussian::shipped(name)
            .ok()
            .and_then(|s| load_examples(s.data).ok())
            .unwrap_or_default();
        let m = crate::pipelines::gaussian::load_shipped(&gpu, name);
        self.install_model(m, card, examples);
    }

    fn load_graph_model(&mut self, name: &str) {
        let Some(gpu) = self.gpu.clone() else { return };
        self.model = None;
        self.session = None;
        self.show_forward = false;
        match crate::pipelines::graph::load_graph_shipped(&gpu, name) {
            Ok(m) => {
                self.error = None;
                // The forward explorer's examples: the held-out split the model was not trained on.
                self.graph_examples = crate::pipelines::graph::dataset::shipped_dataset(name)
                    .map(|d| d.test.into_iter().take(32).collect())
                    .unwrap_or_default();
                self.graph_forward = graphs::GraphForward::new(m.process.steps() / 4);
                self.graph_model = Some(m);
                self.restart_graphs();
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn restart_graphs(&mut self) {
        let (Some(m), Some(gpu)) = (&self.graph_model, &self.gpu) else {
            return;
        };
        match graphs::GraphRun::start(m, gpu, self.graphs_n, self.seed) {
            Ok(r) => {
                self.graph_run = Some(r);
                self.view = 0;
                self.follow = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Steps launched so far by the active run, recorded or in flight (for the speed cap).
    fn progress(&self) -> usize {
        self.session
            .as_ref()
            .map_or(0, |s| s.states.len() + s.pending.is_some() as usize)
            + self.graph_run.as_ref().map_or(0, |r| r.launched())
            + self.seq_run.as_ref().map_or(0, |r| r.launched())
    }

    /// Whether the active run has steps left.
    fn running(&self) -> bool {
        self.session.as_ref().is_some_and(|s| !s.done())
            || match (&self.graph_model, &self.graph_run) {
                (Some(m), Some(r)) => !r.done(m),
                _ => false,
            }
            || self.seq_run.as_ref().is_some_and(|r| !r.done())
    }

    /// Whether the speed cap lets a step start now; if not, asks for a frame when it will.
    fn may_step(&self, ctx: &egui::Context) -> bool {
        let (Some(rate), Some(last)) = (self.max_rate, self.last_launch) else {
            return true;
        };
        let period = std::time::Duration::from_secs_f32(1.0 / rate.max(0.01));
        let since = last.elapsed();
        if since >= period {
            return true;
        }
        if self.playing {
            ctx.request_repaint_after(period - since);
        }
        false
    }

    /// The playback speed: as fast as the device goes, or at most so many steps per second.
    fn speed_row(&mut self, ui: &mut egui::Ui) {
        let mut capped = self.max_rate.is_some();
        ui.checkbox(&mut capped, "slow down")
            .on_hover_text("cap the playback speed, to watch each step");
        match (capped, self.max_rate) {
            (true, None) => self.max_rate = Some(5.0),
            (false, Some(_)) => self.max_rate = None,
            _ => {}
        }
        if let Some(r) = &mut self.max_rate {
            ui.add(
                egui::Slider::new(r, 0.2..=60.0)
                    .logarithmic(true)
                    .text("steps/s"),
            );
        }
        if let (Some(f), Some(w)) = (self.frame_stats.interval(), self.frame_stats.work()) {
            ui.weak(format!("UI frame {:.0} ms", f.p50)).on_hover_text(format!(
                "over the last frames: interval median {:.1} ms, p95 {:.1} ms; the app's own work \
                 per frame (UI, readbacks collected, next step recorded) median {:.1} ms, p95 {:.1} ms. \
                 Sampling never blocks a frame: the GPU works between them.",
                f.p50, f.p95, w.p50, w.p95
            ));
        }
    }

    /// The seed and "new seed" row every family shows; true when the seed changed.
    fn seed_row(&mut self, ui: &mut egui::Ui) -> bool {
        let mut changed = false;
        ui.horizontal(|ui| {
            let name = ui.label("seed").id;
            changed |= ui
                .add(egui::DragValue::new(&mut self.seed))
                .labelled_by(name)
                .changed();
            if ui.button("new seed").clicked() {
                self.seed = self.seed.wrapping_add(1);
                changed = true;
            }
        });
        changed
    }

    fn graph_controls(&mut self, ui: &mut egui::Ui) {
        ui.separator();
        let mut changed = ui
            .add(egui::Slider::new(&mut self.graphs_n, 1..=16).text("graphs"))
            .changed();
        changed |= self.seed_row(ui);
        if changed {
            self.restart_graphs();
        }
        ui.checkbox(&mut self.graph_predicted, "the network's p_θ(edge)")
            .on_hover_text(
                "fade each edge by the network's belief that it belongs to the clean graph, and dash \
                 pairs it expects to become edges (p_θ ≥ 0.3)",
            );
        if let Some(m) = &self.graph_model {
            ui.separator();
            ui.label(
                RichText::new(format!(
                    "DiGress, T = {}: nodes and edges are categories. Each step the graph transformer \
                     predicts the clean graph p(G0 | Gt); the step mixes it with the marginal-preserving \
                     noise q(Gt | Gt−1) into p(Gt−1 | Gt) and samples every node and every edge pair \
                     (upper triangle, mirrored) from it.",
                    m.process.steps()
                ))
                .small(),
            );
            ui.separator();
            ui.label("Noise schedule (ᾱ_t: chance a node or pair keeps its class)");
            let t = if self.show_forward {
                self.graph_forward.t
            } else {
                m.process.steps().saturating_sub(self.view)
            };
            schedule::draw(ui, &m.process.schedule.alphas_bar, Some(t));
            // Qbar_t for edges: marginal transitions keep the edge density of the data at every t.
            let ab = m.process.schedule.alphas_bar.get(t).copied().unwrap_or(0.0);
            let q = crate::process::discrete::transition_matrix(ab, &m.process.e_limit);
            let names: Vec<String> = (0..m.process.de)
                .map(|i| {
                    if i == 0 {
                        "none".into()
                    } else {
                        format!("edge{i}")
                    }
                })
                .collect();
            ui.label(format!(
                "Qbar_t for edges at t = {t} (rows: from, columns: to)"
            ));
            let short: Vec<String> = (0..m.process.de).map(|i| i.to_string()).collect();
            heatmap::draw(ui, &q, m.process.de, m.process.de, &names, &short, 28.0);
        }
    }

    fn pump_graphs(&mut self, may_step: bool) {
        if let (true, Some(m), Some(gpu)) = (self.show_forward, &self.graph_model, &self.gpu) {
            if let Err(e) = self
                .graph_forward
                .pump(m, gpu, &self.graph_examples, self.seed)
            {
                self.error = Some(e.to_string());
            }
        }
        let (Some(m), Some(r)) = (&self.graph_model, &mut self.graph_run) else {
            return;
        };
        if let Err(e) = r.pump(m, self.playing && may_step) {
            self.error = Some(e.to_string());
            self.playing = false;
        }
    }

    fn graph_timeline(&mut self, ui: &mut egui::Ui) {
        let (Some(m), Some(r)) = (&self.graph_model, &self.graph_run) else {
            return;
        };
        let (recorded, total, started) = (r.frames.len(), r.total(m), r.started);
        self.run_timeline(ui, recorded, total, started);
    }

    fn seq_timeline(&mut self, ui: &mut egui::Ui) {
        let Some(r) = &self.seq_run else { return };
        let (recorded, total, started) = (r.frames.len(), r.total(), r.started);
        self.run_timeline(ui, recorded, total, started);
    }

    /// Play/pause, step back/forward and the scrub slider for the discrete runs.
    fn run_timeline(
        &mut self,
        ui: &mut egui::Ui,
        recorded: usize,
        total: usize,
        started: web_time::Instant,
    ) {
        let r = Started { started };
        let mut fork = false;
        ui.horizontal(|ui| {
            if ui
                .button(if self.playing { "Pause" } else { "Play" })
                .clicked()
            {
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
                }
            }
            if ui
                .button("Fork here")
                .on_hover_text("continue from this step with a new seed")
                .clicked()
            {
                fork = true;
            }
            let secs = r.started.elapsed().as_secs_f64().max(1e-3);
            ui.label(format!(
                "step {} / {} · {:.1} steps/s",
                recorded.saturating_sub(1),
                total.saturating_sub(1),
                recorded.saturating_sub(1) as f64 / secs
            ));
            self.speed_row(ui);
        });
        if recorded > 0 {
            let mut v = self.view.min(recorded - 1);
            if ui
                .add(egui::Slider::new(&mut v, 0..=recorded - 1).text("viewed step"))
                .changed()
            {
                self.follow = v == recorded - 1;
                self.view = v;
            }
        }
        if fork {
            self.fork_discrete();
        }
    }

    /// "Fork here" for sequence and graph runs: continue from the viewed step with a new seed.
    fn fork_discrete(&mut self) {
        let Some(gpu) = self.gpu.clone() else { return };
        let seed = self.seed.wrapping_add(1);
        let r = match (&mut self.seq_run, &self.graph_model, &mut self.graph_run) {
            (Some(r), _, _) => r.fork(&gpu, self.view.min(r.frames.len().saturating_sub(1)), seed),
            (None, Some(m), Some(r)) => {
                let at = self.view.min(r.frames.len().saturating_sub(1));
                r.fork(m, &gpu, at, seed)
            }
            _ => return,
        };
        match r {
            Ok(()) => {
                self.seed = seed;
                self.follow = true;
                self.playing = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn load_seq_model(&mut self, name: &str) {
        let Some(gpu) = self.gpu.clone() else { return };
        self.model = None;
        self.session = None;
        self.graph_model = None;
        self.graph_run = None;
        self.show_forward = false;
        match crate::pipelines::sequence::load_shipped(&gpu, name) {
            Ok(m) => {
                self.error = None;
                let k = m.process.k() as u32;
                self.seq_examples = crate::pipelines::sequence::shipped(name)
                    .and_then(|s| sequences::load_examples(s.data, 64).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| e.len() == m.config.seq_len && e.iter().all(|&i| i < k))
                    .collect();
                // A card may suggest a temperature (words-absorb: τ = 0.7 quadruples the share of
                // real words); anything else opens at the model's own distribution, τ = 1.
                self.temperature = crate::pipelines::sequence::shipped(name)
                    .and_then(|s| card_app(s.card))
                    .and_then(|app| app.get("temperature")?.as_f64())
                    .map_or(1.0, |t| (t as f32).clamp(0.05, 2.0));
                let ts = m.process.timesteps();
                self.seq_forward = sequences::SeqForward::new(ts[ts.len() / 2]);
                self.seq_selected = 0;
                self.seq_model = Some(m);
                self.restart_seqs();
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn restart_seqs(&mut self) {
        let (Some(m), Some(gpu)) = (&self.seq_model, &self.gpu) else {
            return;
        };
        match sequences::SeqRun::start(m, gpu, self.seq_n, self.seed, self.temperature) {
            Ok(r) => {
                self.seq_run = Some(r);
                self.view = 0;
                self.follow = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn seq_controls(&mut self, ui: &mut egui::Ui) {
        ui.separator();
        let mut changed = ui
            .add(egui::Slider::new(&mut self.seq_n, 1..=32).text("sequences"))
            .changed();
        changed |= ui
            .add(egui::Slider::new(&mut self.temperature, 0.05..=2.0).text("temperature"))
            .on_hover_text("divides the posterior logits before each draw: < 1 is greedier")
            .changed();
        changed |= self.seed_row(ui);
        if changed {
            self.restart_seqs();
        }
        if let Some(m) = &self.seq_model {
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
            let t = if self.show_forward {
                Some(self.seq_forward.t)
            } else {
                self.seq_run.as_ref().and_then(|r| r.t_of(self.view))
            };
            schedule::draw(ui, abar, t.map(|t| t.saturating_sub(first)));
        }
    }

    fn pump_seqs(&mut self, may_step: bool) {
        if let (true, Some(m), Some(gpu)) = (self.show_forward, &self.seq_model, &self.gpu) {
            if let Err(e) = self.seq_forward.pump(m, gpu, &self.seq_examples, self.seed) {
                self.error = Some(e.to_string());
            }
        }
        let (Some(m), Some(r)) = (&self.seq_model, &mut self.seq_run) else {
            return;
        };
        if let Err(e) = r.pump(m, self.playing && may_step) {
            self.error = Some(e.to_string());
            self.playing = false;
        }
        if self.follow {
            self.view = r.frames.len().saturating_sub(1);
        }
    }

    /// A user's own model: files dropped on the window (or picked in the browser), or a folder path.
    fn load_user_model(&mut self, m: crate::Result<GaussianModel>) {
        self.install_model(m, None, Vec::new());
    }

    fn install_model(
        &mut self,
        m: crate::Result<GaussianModel>,
        card: Option<&str>,
        examples: Vec<Vec<f32>>,
    ) {
        self.session = None;
        match m {
            Ok(m) => {
                self.error = None;
                self.steps = m.process.train_timesteps();
                self.forward_t = self.steps / 4;
                self.label = 0;
                self.guidance = 1.0;
                self.ddim = false;
                self.n = if m.denoiser.sample_shape().len() == 3 {
                    16
                } else {
                    1024
                };
                if let Some(card) = card {
                    self.apply_card_defaults(card);
                }
                self.textures = [None, None, None];
                self.examples = examples;
                self.model = Some(m);
                self.restart();
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// A model card may suggest how the app should open it (`"app": {"sampler": "ddim", "steps": 50,
    /// "guidance": 3, "n": 16}`): a 1000-step UNet is better met with 50 DDIM steps than 1000 DDPM ones.
    fn apply_card_defaults(&mut self, card: &str) {
        let Some(app) = card_app(card) else { return };
        let tt = self.steps.max(1);
        if let Some(s) = app.get("sampler").and_then(|s| s.as_str()) {
            self.ddim = s == "ddim";
        }
        if let Some(k) = app.get("steps").and_then(|s| s.as_u64()) {
            self.steps = (k as usize).clamp(1, tt);
        }
        if let Some(e) = app.get("eta").and_then(|s| s.as_f64()) {
            self.eta = (e as f32).clamp(0.0, 1.0);
        }
        if let Some(w) = app.get("guidance").and_then(|s| s.as_f64()) {
            self.guidance = (w as f32).clamp(0.0, 10.0);
        }
        if let Some(n) = app.get("n").and_then(|s| s.as_u64()) {
            self.n = (n as usize).clamp(1, 4096);
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
        let id = self.next_session_id();
        let Some(m) = &self.model else { return };
        let settings = self.settings();
        let result = (|| {
            let plan = m.process.plan(settings.sampler, settings.steps)?;
            let gpu = m.denoiser.gpu().clone();
            let x = m
                .process
                .initial(&gpu, self.n, m.denoiser.sample_shape(), settings.seed)?;
            let pending = Some(PendingFrame::new(0, &x, None, None));
            Ok::<_, crate::Error>(Session {
                settings,
                plan,
                n: self.n,
                x,
                pending,
                states: History::new(DEFAULT_HISTORY_BYTES, DEFAULT_RECENT_STEPS),
                started: web_time::Instant::now(),
                id,
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
        // Only the state itself (a frame may carry x0_pred and ε_pred after it).
        let per = s.n * m.denoiser.sample_shape().iter().product::<usize>();
        let state = state[..per.min(state.len())].to_vec();
        let mut shape = vec![s.n];
        shape.extend_from_slice(m.denoiser.sample_shape());
        let gpu = m.denoiser.gpu().clone();
        self.seed = self.seed.wrapping_add(1);
        let mut settings = s.settings.clone();
        settings.seed = self.seed;
        match Tensor::from_f32(&gpu, &shape, &state) {
            Ok(x) => {
                let plan = s.plan.clone();
                let n = s.n;
                let states = s.states.truncated(k);
                self.session = Some(Session {
                    settings,
                    plan,
                    n,
                    x,
                    pending: None,
                    states,
                    started: web_time::Instant::now(),
                    id: self.next_session_id(),
                });
                self.follow = true;
                self.playing = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// After the device was lost: open a new one, reload the model, and continue the run from the
    /// newest state kept on the host. Every family's trajectory is a pure function of its settings
    /// and the state it resumes from, so the run goes on exactly as it would have.
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
        let resumed = fresh.and_then(|gpu| {
            self.resume_on(&gpu)?;
            Ok(gpu)
        });
        match resumed {
            Ok(gpu) => {
                self.gpu = Some(gpu);
                self.error = None;
                self.device_lost = false;
                self.playing = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Reload the open model on `gpu` and move the run onto it, from its newest host copy. Nothing
    /// changes unless everything succeeds (a failed recovery can be tried again).
    fn resume_on(&mut self, gpu: &Gpu) -> crate::Result<()> {
        // Sequence and graph runs keep every frame on the host: a fork from the newest one with the
        // run's own seed is its continuation. `fork` changes nothing when it fails.
        if let (Some(m), Some(r)) = (&self.seq_model, &mut self.seq_run) {
            let model = crate::pipelines::sequence::load_shipped(gpu, &m.name)?;
            r.fork(gpu, r.frames.len().saturating_sub(1), r.seed)?;
            self.seq_model = Some(model);
            let example = self.seq_forward.example;
            self.seq_forward = sequences::SeqForward::new(self.seq_forward.t);
            self.seq_forward.example = example;
            return Ok(());
        }
        if let (Some(m), Some(r)) = (&self.graph_model, &mut self.graph_run) {
            let model = crate::pipelines::graph::load_graph_shipped(gpu, &m.name)?;
            r.fork(&model, gpu, r.frames.len().saturating_sub(1), r.seed)?;
            self.graph_model = Some(model);
            let example = self.graph_forward.example;
            self.graph_forward = graphs::GraphForward::new(self.graph_forward.t);
            self.graph_forward.example = example;
            return Ok(());
        }
        let Some(name) = self.model.as_ref().map(|m| m.name.clone()) else {
            return Ok(());
        };
        let mut model = crate::pipelines::gaussian::load_shipped(gpu, &name)?;
        // The run's own settings (the clip switch lives in the model's scheduler config).
        if let Some(old) = &self.model {
            model.process.config.clip_sample = old.process.config.clip_sample;
        }
        let resumed = match &self.session {
            Some(s) if !s.states.is_empty() => {
                let (k, state) = s.states.nearest(s.states.len() - 1).ok_or_else(|| {
                    crate::Error::Invalid("no recorded state to resume from".into())
                })?;
                let mut shape = vec![s.n];
                shape.extend_from_slice(model.denoiser.sample_shape());
                let per: usize = shape.iter().product();
                Some((k, Tensor::from_f32(gpu, &shape, split_frame(state, per).0)?))
            }
            _ => None,
        };
        self.model = Some(model);
        self.forward_pending = None;
        match (resumed, self.session.take()) {
            (Some((k, x)), Some(s)) => {
                self.session = Some(Session {
                    states: s.states.truncated(k),
                    x,
                    pending: None,
                    ..s
                });
            }
            _ => self.restart(),
        }
        Ok(())
    }

    /// Advance the trajectory by at most one step per frame; never waits for the GPU.
    fn pump(&mut self, may_step: bool) {
        let Some(m) = &self.model else { return };
        let Some(s) = &mut self.session else { return };
        let gpu = m.denoiser.gpu().clone();
        if let Some(p) = &mut s.pending {
            // A state is recorded only if the device reported nothing wrong while computing it: a
            // validation error or a lost device would make it a wrong picture.
            match p.poll().map(|r| r.and_then(|f| gpu.check().map(|_| f))) {
                None => return,
                Some(Ok(f)) => {
                    debug_assert_eq!(p.index, s.states.len());
                    s.states.push(f.flatten());
                    s.pending = None;
                }
                Some(Err(e)) => {
                    self.device_lost |= matches!(e, crate::Error::DeviceLost(_));
                    self.error = Some(e.to_string());
                    self.playing = false;
                    s.pending = None;
                    return;
                }
            }
        }
        if !self.playing || !may_step || s.done() {
            return;
        }
        let k = s.states.len() - 1;
        // Image models show what the network predicted at every step; points show only the state.
        let images = m.denoiser.sample_shape().len() == 3;
        let extras = crate::ops::update::Extras {
            x0: images,
            eps: images,
        };
        let out = m
            .process
            .step(m.denoiser.as_ref(), &s.x, &s.plan, k, &s.settings, extras);
        match out {
            Ok(o) => {
                s.x = o.x_prev;
                s.pending = Some(PendingFrame::new(
                    k + 1,
                    &s.x,
                    o.x0.as_ref(),
                    o.eps.as_ref(),
                ));
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
        let per: usize = m.denoiser.sample_shape().iter().product();
        let mut shape = vec![ex.len() / per.max(1)];
        shape.extend_from_slice(m.denoiser.sample_shape());
        let r = Tensor::from_f32(gpu, &shape, ex)
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
        let current_graph = self.graph_model.as_ref().map(|m| m.name.clone());
        let current_seq = self.seq_model.as_ref().map(|m| m.name.clone());
        let mut pick = None;
        let mut heading = None;
        for s in zoo::MODELS {
            if heading != Some(s.family) {
                heading = Some(s.family);
                ui.weak(match s.family {
                    zoo::Family::Gaussian => "Gaussian: images and points",
                    zoo::Family::Sequence => "discrete: sequences",
                    zoo::Family::Graph => "discrete: graphs",
                });
            }
            let open = match s.family {
                zoo::Family::Gaussian => current == s.name,
                zoo::Family::Sequence => current_seq.as_deref() == Some(s.name),
                zoo::Family::Graph => current_graph.as_deref() == Some(s.name),
            };
            if ui
                .selectable_label(open, s.name)
                .on_hover_text(s.summary)
                .clicked()
            {
                pick = Some(s);
            }
        }
        // The open model's card, in brief: a teaching tool should say how good its model is.
        let open_name = current_graph
            .as_deref()
            .or(current_seq.as_deref())
            .unwrap_or(&current);
        if self.about.as_ref().map(|(n, _)| n.as_str()) != Some(open_name) {
            let font = egui::TextStyle::Small.resolve(ui.style());
            let text = zoo::find(open_name)
                .and_then(|s| card_about(s.card))
                .map(|t| drawable(ui, &t, &font));
            self.about = Some((open_name.to_string(), text));
        }
        if let Some((_, Some(about))) = &self.about {
            egui::CollapsingHeader::new("about this model").show(ui, |ui| {
                ui.label(RichText::new(about.as_str()).small());
            });
        }
        match pick.map(|s| (s.family, s.name)) {
            Some((zoo::Family::Gaussian, name)) => {
                self.graph_model = None;
                self.graph_run = None;
                self.seq_model = None;
                self.seq_run = None;
                self.load_model(name);
            }
            Some((zoo::Family::Graph, name)) => {
                self.seq_model = None;
                self.seq_run = None;
                self.load_graph_model(name);
            }
            Some((zoo::Family::Sequence, name)) => self.load_seq_model(name),
            None => {}
        }
        if self.graph_model.is_some() {
            self.graph_controls(ui);
            return;
        }
        if self.seq_model.is_some() {
            self.seq_controls(ui);
            return;
        }
        if crate::pipelines::gaussian::shipped(&current).is_err() && !current.is_empty() {
            let _ = ui.selectable_label(true, format!("{current} (yours)"));
        }
        self.user_model_controls(ui);
        ui.separator();
        let mut changed = false;
        if let Some(m) = &mut self.model {
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
                        "ε_pred = ε_uncond + w·(ε_cond − ε_uncond); w = 1 is plain conditional",
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
            let mut clip = m.process.config.clip_sample;
            if ui
                .checkbox(&mut clip, "clip x0_pred to the data range")
                .on_hover_text(
                    "diffusers' clip_sample: each step clamps the network's x0_pred to the data range \
                     before stepping. With guidance above 1 the extrapolated ε_pred pushes x0_pred far \
                     outside it, and clamping (while the step keeps the unclamped ε_pred) drives the \
                     samples to saturated blobs — switch it off there.",
                )
                .changed()
            {
                m.process.config.clip_sample = clip;
                changed = true;
            }
            let (range, what) = if m.denoiser.sample_shape().len() == 3 {
                (1..=64, "images")
            } else {
                (16..=4096, "points")
            };
            changed |= ui
                .add(
                    egui::Slider::new(&mut self.n, range)
                        .logarithmic(true)
                        .text(what),
                )
                .changed();
        }
        changed |= self.seed_row(ui);
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

    /// Load your own checkpoint of a supported architecture (diffusers UNet2DModel, FiLM-MLP):
    /// drop its config.json, scheduler_config.json and .safetensors on the window, or (desktop) type
    /// the folder's path.
    fn user_model_controls(&mut self, ui: &mut egui::Ui) {
        ui.collapsing("Your own model", |ui| {
            ui.label(
                RichText::new(
                    "Drop config.json, scheduler_config.json and the .safetensors weights of a \
                     diffusers UNet2DModel (or a FiLM-MLP) here. Safetensors only: pickles are never read.",
                )
                .small(),
            );
            #[cfg(not(target_arch = "wasm32"))]
            ui.horizontal(|ui| {
                ui.add(egui::TextEdit::singleline(&mut self.user_dir).hint_text("model folder"));
                if ui.button("Load").clicked() {
                    if let Some(gpu) = self.gpu.clone() {
                        let m = crate::pipelines::gaussian::load_dir(&gpu, std::path::Path::new(self.user_dir.trim()));
                        self.load_user_model(m);
                    }
                }
            });
        });
    }

    /// Files dropped on the window. Native reads them at once; the browser only reads files
    /// asynchronously, so there they arrive through `dropped_inbox` a few frames later.
    fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        let arrived =
            std::mem::take(&mut *self.dropped_inbox.lock().unwrap_or_else(|p| p.into_inner()));
        if !dropped.is_empty() {
            let names: Vec<String> = dropped
                .iter()
                .map(|f| f.path().display().to_string())
                .collect();
            #[cfg(not(target_arch = "wasm32"))]
            {
                let read: Vec<_> = names
                    .into_iter()
                    .zip(dropped.iter().map(|f| f.bytes()))
                    .collect();
                self.dropped_inbox
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(read);
                ctx.request_repaint();
            }
            #[cfg(target_arch = "wasm32")]
            {
                let inbox = self.dropped_inbox.clone();
                let ctx = ctx.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let mut read = Vec::new();
                    for (name, f) in names.into_iter().zip(dropped.iter()) {
                        read.push((name, f.bytes_async().await));
                    }
                    inbox.lock().unwrap_or_else(|p| p.into_inner()).push(read);
                    ctx.request_repaint();
                });
            }
        }
        for batch in arrived {
            let mut files = Vec::new();
            for (name, bytes) in batch {
                match bytes {
                    Ok(b) => files.push((name, b)),
                    Err(e) => {
                        self.error = Some(format!("{name}: {e}"));
                        return;
                    }
                }
            }
            let Some(gpu) = self.gpu.clone() else { return };
            let m = crate::pipelines::gaussian::load_files(&gpu, "dropped model", &files);
            self.load_user_model(m);
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
        ui.horizontal(|ui| self.speed_row(ui));
        if fork {
            self.fork();
        }
    }
}

impl DiffscopeApp {
    /// The export buttons of the active family, and the last export's result.
    fn export_row(&mut self, ui: &mut egui::Ui) {
        let mut made: Option<crate::Result<export::Export>> = None;
        ui.horizontal(|ui| {
            ui.label("Export:");
            if self.seq_model.is_some() {
                if ui
                    .button("sequences (viewed step)")
                    .on_hover_text("FASTA for DNA, plain text otherwise")
                    .clicked()
                {
                    made = Some(self.export_sequences(false));
                }
                if ui
                    .button("trajectory of the selected sequence")
                    .on_hover_text("one line per step, x_T first")
                    .clicked()
                {
                    made = Some(self.export_sequences(true));
                }
            } else if self.graph_model.is_some() {
                if ui
                    .button("graphs (viewed step, JSON)")
                    .on_hover_text("node classes and edges (i, j, class) of every graph")
                    .clicked()
                {
                    made = Some(self.export_graphs());
                }
            } else if self.session.is_some() {
                if ui
                    .button("frame (PNG)")
                    .on_hover_text("the viewed step as drawn: x_t, x0_pred and ε_pred for images")
                    .clicked()
                {
                    made = Some(self.export_frame());
                }
                if ui
                    .button("trajectory strip (PNG)")
                    .on_hover_text(
                        "each sample's x_t at 10 steps up to the viewed one, left to right",
                    )
                    .clicked()
                {
                    made = Some(self.export_strip());
                }
            }
            if let Some(n) = &self.notice {
                ui.label(RichText::new(n).small());
            }
        });
        #[cfg(not(target_arch = "wasm32"))]
        let deliver = |e: export::Export| export::deliver(&e, &self.export_dir);
        #[cfg(target_arch = "wasm32")]
        let deliver = |e: export::Export| export::deliver(&e);
        match made.map(|r| r.and_then(deliver)) {
            Some(Ok(msg)) => self.notice = Some(msg),
            Some(Err(e)) => self.error = Some(format!("export: {e}")),
            None => {}
        }
    }

    /// The viewed Gaussian step: x_t | x0_pred | ε_pred grids for images, the point cloud for points.
    fn export_frame(&self) -> crate::Result<export::Export> {
        let (Some(m), Some(s)) = (&self.model, &self.session) else {
            return Err(crate::Error::Invalid("nothing to export yet".into()));
        };
        let (v, f) = s
            .states
            .nearest(self.view)
            .ok_or_else(|| crate::Error::Invalid("no step recorded yet".into()))?;
        let shape = m.denoiser.sample_shape();
        let img = if let &[c, h, w] = shape {
            let per = s.n * c * h * w;
            let (fx, fx0, feps) = split_frame(f, per);
            let dims = [s.n, c, h, w];
            let cols = (s.n as f64).sqrt().ceil() as usize;
            let range = images::Scale::Range(m.data_range);
            let mut parts = vec![images::grid(fx, dims, cols, range)];
            parts.extend(fx0.map(|x0| images::grid(x0, dims, cols, range)));
            parts.extend(feps.map(|e| images::grid(e, dims, cols, images::Scale::Noise)));
            export::upscale(&export::hstack(&parts, 2, Color32::WHITE), 4)
        } else {
            export::points_image(split_frame(f, s.n * 2).0, m.data_range, 512)
        };
        Ok(export::Export {
            file_name: export::file_name(
                &m.name,
                &format!("seed{}-step{v}", s.settings.seed),
                "png",
            ),
            mime: "image/png",
            bytes: export::png(&img)?,
        })
    }

    /// Each image sample as a row of x_t at 10 evenly spaced kept steps from x_T to the viewed one.
    fn export_strip(&self) -> crate::Result<export::Export> {
        let (Some(m), Some(s)) = (&self.model, &self.session) else {
            return Err(crate::Error::Invalid("nothing to export yet".into()));
        };
        let &[c, h, w] = m.denoiser.sample_shape() else {
            return Err(crate::Error::Invalid(
                "a trajectory strip is for image models; export a frame instead".into(),
            ));
        };
        let end = self.view.min(s.states.len().saturating_sub(1));
        let mut steps: Vec<usize> = (0..10).map(|i| i * end / 9).collect();
        steps.dedup();
        let per = c * h * w;
        let frames: Vec<(usize, &[f32])> =
            steps.iter().filter_map(|&k| s.states.nearest(k)).collect();
        let rows: Vec<egui::ColorImage> = (0..s.n.min(8))
            .map(|i| {
                let tiles: Vec<f32> = frames
                    .iter()
                    .flat_map(|(_, f)| split_frame(f, s.n * per).0[i * per..(i + 1) * per].to_vec())
                    .collect();
                images::grid(
                    &tiles,
                    [frames.len(), c, h, w],
                    frames.len(),
                    images::Scale::Range(m.data_range),
                )
            })
            .collect();
        let img = export::upscale(&export::vstack(&rows, 0, Color32::WHITE), 3);
        Ok(export::Export {
            file_name: export::file_name(
                &m.name,
                &format!("seed{}-strip-to-step{end}", s.settings.seed),
                "png",
            ),
            mime: "image/png",
            bytes: export::png(&img)?,
        })
    }

    /// The viewed step's sequences (FASTA for DNA), or the selected one's whole trajectory.
    fn export_sequences(&self, trajectory: bool) -> crate::Result<export::Export> {
        let (Some(m), Some(r)) = (&self.seq_model, &self.seq_run) else {
            return Err(crate::Error::Invalid("nothing to export yet".into()));
        };
        let l = m.config.seq_len.max(1);
        let v = self.view.min(r.frames.len().saturating_sub(1));
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
            let row = self.seq_selected;
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
                    export::fasta(&format!("{}_seed{}_step{v}_", m.name, r.seed), &seqs),
                    format!("seed{}-step{v}", r.seed),
                    "fasta",
                    "text/x-fasta",
                )
            } else {
                (
                    seqs.join("\n") + "\n",
                    format!("seed{}-step{v}", r.seed),
                    "txt",
                    "text/plain",
                )
            }
        };
        Ok(export::Export {
            file_name: export::file_name(&m.name, &what, ext),
            mime,
            bytes: text.into_bytes(),
        })
    }

    /// The viewed step's graphs as JSON.
    fn export_graphs(&self) -> crate::Result<export::Export> {
        let (Some(m), Some(r)) = (&self.graph_model, &self.graph_run) else {
            return Err(crate::Error::Invalid("nothing to export yet".into()));
        };
        let v = self.view.min(r.frames.len().saturating_sub(1));
        let f = r
            .frames
            .get(v)
            .ok_or_else(|| crate::Error::Invalid("no step recorded yet".into()))?;
        let graphs = crate::process::graph::graphs_from_ids(&r.counts, r.n, &f.x, &f.e);
        let json = serde_json::json!({
            "model": m.name,
            "seed": r.seed,
            "step": v,
            "t": m.process.steps().saturating_sub(v),
            "graphs": graphs,
        });
        Ok(export::Export {
            file_name: export::file_name(&m.name, &format!("seed{}-step{v}", r.seed), "json"),
            mime: "application/json",
            bytes: serde_json::to_vec_pretty(&json)
                .map_err(|e| crate::Error::Invalid(format!("JSON: {e}")))?,
        })
    }
}

/// What a model card suggests for opening the model in the app (its `"app"` object), if anything.
fn card_app(card: &str) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(card).ok()?;
    Some(v.get_mut("app")?.take())
}

/// A shipped model's card in a few lines: its size and training, its data, and what it was measured
/// to do (the card's `status`, where it has one). None if the card says none of these.
fn card_about(card: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(card).ok()?;
    let mut lines = Vec::new();
    let mut size = Vec::new();
    if let Some(p) = v["parameters"].as_u64() {
        size.push(format!("{:.2} M parameters", p as f64 / 1e6));
    }
    if let Some(s) = v["training"]["steps"].as_u64() {
        size.push(format!("{s} training steps"));
    }
    if !size.is_empty() {
        lines.push(size.join(", "));
    }
    for key in ["data", "status"] {
        if let Some(t) = v[key].as_str() {
            lines.push(t.to_string());
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n\n"))
}

/// `text` with each character the UI's font cannot draw replaced — arrows and relations by ASCII,
/// anything else by '?' — so a card written for people shows no tofu boxes.
fn drawable(ui: &egui::Ui, text: &str, font: &egui::FontId) -> String {
    ui.ctx().fonts_mut(|f| {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_control() || f.has_glyph(font, c) {
                out.push(c);
                continue;
            }
            out.push_str(match c {
                '→' => "->",
                '≤' => "<=",
                '≥' => ">=",
                '≈' => "~",
                '−' | '–' | '—' => "-",
                '…' => "...",
                _ => "?",
            });
        }
        out
    })
}

fn load_examples(bytes: &[u8]) -> crate::Result<Vec<Vec<f32>>> {
    // One entry per label: a point set ("points", [labels, N, 2]) or a few images ("images",
    // [labels, K, C, H, W]).
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

impl DiffscopeApp {
    /// The compute device the app runs on.
    pub fn gpu(&self) -> Option<&Gpu> {
        self.gpu.as_ref()
    }

    /// The state after step `k` of the active run, as recorded on the host (token and class ids
    /// as numbers; a graph's node then edge classes), or `None` if it is not (or no longer) kept.
    pub fn recorded_state(&self, k: usize) -> Option<Vec<f32>> {
        if let Some(r) = &self.seq_run {
            return r
                .frames
                .get(k)
                .map(|f| f.ids.iter().map(|&i| i as f32).collect());
        }
        if let Some(r) = &self.graph_run {
            return r
                .frames
                .get(k)
                .map(|f| f.x.iter().chain(&f.e).map(|&i| i as f32).collect());
        }
        let (m, s) = (self.model.as_ref()?, self.session.as_ref()?);
        let per = s.n * m.denoiser.sample_shape().iter().product::<usize>();
        s.states.get(k).map(|f| split_frame(f, per).0.to_vec())
    }

    /// A machine-readable snapshot for tests and the page (JSON): which model, how far the run is, the
    /// first error, and the spread of the newest state (a blank or collapsed picture shows up here).
    pub fn status_json(&self) -> String {
        let s = self.session.as_ref();
        let per = self.model.as_ref().map_or(1, |m| {
            s.map_or(1, |s| s.n) * m.denoiser.sample_shape().iter().product::<usize>()
        });
        let last = s
            .and_then(|s| s.states.last())
            .map(|f| split_frame(f, per).0);
        let (mean, std, finite) = last.map_or((0.0, 0.0, true), |v| {
            let n = v.len().max(1) as f64;
            let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
            (m, var.sqrt(), v.iter().all(|x| x.is_finite()))
        });
        serde_json::json!({
            "adapter": self.gpu.as_ref().map(|g| g.adapter_info().name.clone()),
            "model": self.model.as_ref().map(|m| m.name.clone())
                .or_else(|| self.graph_model.as_ref().map(|m| m.name.clone()))
                .or_else(|| self.seq_model.as_ref().map(|m| m.name.clone())),
            "recorded": s.map_or(0, |s| s.states.len())
                .max(self.graph_run.as_ref().map_or(0, |r| r.frames.len()))
                .max(self.seq_run.as_ref().map_or(0, |r| r.frames.len())),
            "total": s.map_or(0, |s| s.plan.len() + 1).max(
                match (&self.graph_model, &self.graph_run) {
                    (Some(m), Some(r)) => r.total(m),
                    _ => 0,
                }
            ).max(self.seq_run.as_ref().map_or(0, |r| r.total())),
            "error": self.error,
            "last_mean": mean,
            "last_std": std,
            "last_finite": finite,
            "temperature": self.seq_run.as_ref().map(|r| r.temperature),
            "ui_frames": self.frame_stats.json(),
        })
        .to_string()
    }
}

impl eframe::App for DiffscopeApp {
    // Lets the web handle reach the app (status for tests and the page).
    #[cfg(target_arch = "wasm32")]
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

impl DiffscopeApp {
    /// One frame of the whole app in `ui` (eframe's window, or a test harness).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let frame_start = self.frame_stats.begin();
        self.show_frame(ui);
        let busy = self.playing && self.running();
        self.frame_stats.end(frame_start, busy);
    }

    fn show_frame(&mut self, ui: &mut egui::Ui) {
        // Errors the device reports after the fact (the web's validation, a lost device) are shown,
        // the first one kept: later ones are usually its consequences.
        if let Some(e) = self.gpu.as_ref().and_then(|g| g.take_error()) {
            self.playing = false;
            self.error.get_or_insert(format!("GPU: {e}"));
        }
        // A lost device is the root of whatever else failed: say so, and offer a new one.
        if let Some(why) = self.gpu.as_ref().and_then(|g| g.lost()) {
            if !self.device_lost {
                self.device_lost = true;
                self.playing = false;
                self.error = Some(format!("the GPU device was lost ({why})"));
            }
        }
        self.take_dropped_files(ui.ctx());
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(mut ap) = self.autopilot.take() {
            let recorded = self
                .session
                .as_ref()
                .map_or(0, |s| s.states.len())
                .max(self.graph_run.as_ref().map_or(0, |r| r.frames.len()))
                .max(self.seq_run.as_ref().map_or(0, |r| r.frames.len()));
            let error = self.error.clone();
            ap.drive(ui.ctx(), recorded, error.as_deref(), || self.status_json());
            self.autopilot = Some(ap);
        }
        let may_step = self.may_step(ui.ctx());
        let before = self.progress();
        // Nothing can run on a lost device: wait for the user to open a new one.
        if !self.device_lost {
            self.pump(may_step);
            self.pump_forward();
            self.pump_graphs(may_step);
            self.pump_seqs(may_step);
        }
        if self.progress() > before {
            self.last_launch = Some(web_time::Instant::now());
        }
        if let Some(r) = &self.seq_run {
            if !r.done() && self.playing {
                ui.ctx().request_repaint();
            }
        }
        if self.seq_forward.busy() || self.graph_forward.busy() {
            ui.ctx().request_repaint();
        }
        if let (Some(m), Some(r)) = (&self.graph_model, &mut self.graph_run) {
            if self.follow {
                self.view = r.frames.len().saturating_sub(1);
            }
            // Relaxes on every frame drawn; frames keep coming while sampling (and on interaction).
            r.relax_layout(self.view.min(r.frames.len().saturating_sub(1)), 8);
            if !r.done(m) && self.playing {
                ui.ctx().request_repaint();
            }
        }
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
            if let Some(m) = &self.graph_model {
                let steps = m.process.steps();
                self.graph_timeline(ui);
                self.export_row(ui);
                ui.horizontal(|ui| {
                    ui.checkbox(&mut self.show_forward, "forward process q(G_t | G_0)");
                    if self.show_forward && !self.graph_examples.is_empty() {
                        let fw = &mut self.graph_forward;
                        ui.add(
                            egui::Slider::new(&mut fw.example, 0..=self.graph_examples.len() - 1)
                                .text("data graph"),
                        );
                        ui.add(egui::Slider::new(&mut fw.t, 0..=steps).text("t"));
                    }
                });
                return;
            }
            if let Some(m) = &self.seq_model {
                let ts = m.process.timesteps();
                let (lo, hi) = (
                    ts.iter().copied().min().unwrap_or(0),
                    ts.iter().copied().max().unwrap_or(0),
                );
                self.seq_timeline(ui);
                self.export_row(ui);
                ui.horizontal(|ui| {
                    ui.checkbox(&mut self.show_forward, "forward process q(x_t | x0)");
                    if self.show_forward && !self.seq_examples.is_empty() {
                        let fw = &mut self.seq_forward;
                        ui.add(
                            egui::Slider::new(&mut fw.example, 0..=self.seq_examples.len() - 1)
                                .text("example"),
                        );
                        ui.add(egui::Slider::new(&mut fw.t, lo..=hi).text("t"));
                    }
                });
                return;
            }
            self.timeline(ui);
            self.export_row(ui);
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
            if let (Some(m), Some(r)) = (&self.seq_model, &self.seq_run) {
                if r.frames.is_empty() {
                    ui.spinner();
                    return;
                }
                if self.show_forward {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        sequences::draw_forward(ui, m, &self.seq_forward, &self.seq_examples);
                        ui.collapsing("Transition matrices at this t", |ui| {
                            sequences::matrices(ui, m, self.seq_forward.t)
                        });
                    });
                    return;
                }
                let v = self.view.min(r.frames.len() - 1);
                let t = r.t_of(v).map_or("0 (done)".to_string(), |t| t.to_string());
                ui.label(format!(
                    "Reverse process, step {v} (t = {t}): the model predicts a distribution over the \
                     clean token at every position; the step combines it with the noise process into \
                     p(x_(t−1) | x_t) and draws each token (Gumbel-max). Cells are shaded by the \
                     model's probability of the token shown; yellow outlines mark what changed. \
                     Click a sequence to see its distributions below."
                ));
                egui::ScrollArea::vertical().show(ui, |ui| {
                    let row = &mut self.seq_selected;
                    *row = (*row).min(r.n.saturating_sub(1));
                    sequences::draw(ui, m, r, v, row);
                    ui.separator();
                    sequences::detail(ui, m, r, v, *row, &mut self.seq_show_x0);
                    // The step from frame v−1 to v ran at t_of(v − 1); x_T shows the first step's.
                    let t_mat = r.t_of(v.saturating_sub(1)).or_else(|| r.t_of(0));
                    if let Some(t) = t_mat {
                        ui.collapsing("Transition matrices Q_t and Qbar_t", |ui| {
                            sequences::matrices(ui, m, t)
                        });
                    }
                });
                return;
            }
            if let (true, Some(m)) = (self.show_forward, &self.graph_model) {
                self.graph_forward.draw(ui, m, &self.graph_examples);
                return;
            }
            if let (Some(m), Some(r)) = (&self.graph_model, &self.graph_run) {
                let Some(f) = r.frames.get(self.view.min(r.frames.len().saturating_sub(1))) else {
                    ui.spinner();
                    return;
                };
                let t = m.process.steps().saturating_sub(self.view);
                let structure = if m.name.contains("planar") {
                    "planarity: no two edges cross in some drawing"
                } else if m.name.contains("sbm") {
                    "communities: dense blocks, sparse links between them"
                } else {
                    "the training graphs' structure"
                };
                ui.label(format!(
                    "Reverse process at t = {t}: at t = T every node and edge is drawn from the data's \
                     marginals; by t = 0 the structure ({structure}) must have emerged."
                ));
                graphs::draw(ui, r, f, self.graph_predicted);
                return;
            }
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
                    if let &[c, h, w] = m.denoiser.sample_shape() {
                        let n = pts.len() / (c * h * w).max(1);
                        let img = images::grid(
                            pts,
                            [n, c, h, w],
                            n.min(8),
                            images::Scale::Range(m.data_range),
                        );
                        let width = ui.available_width().min(900.0);
                        images::panel(ui, &mut self.textures[0], "view0", img, "x_t ~ q(x_t | x0)", width);
                        self.textures_show = None;
                    } else {
                        points::draw(ui, &[pts.as_slice()], None, m.data_range);
                    }
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
            // After the last step the state is the sample itself: x_0, no timestep left.
            let t = if v < s.plan.len() {
                s.plan[v].t.to_string()
            } else {
                "0, done".to_string()
            };
            ui.label(format!(
                "Reverse process, step {v}: the network predicts the noise ε_pred in x_t (t = {t}) and each \
                 step removes part of it: x_(t−1) = posterior mean(x_t, x0_pred) + σ_t·z."
            ));
            let shape = m.denoiser.sample_shape();
            if let &[c, h, w] = shape {
                let n = s.n;
                let (fx, fx0, feps) = split_frame(s.states.get(v).unwrap_or(&[]), n * c * h * w);
                let cols = (n as f64).sqrt().ceil() as usize;
                let key = (s.id, v);
                let grids = (self.textures_show != Some(key)).then(|| {
                    let dims = [n, c, h, w];
                    let range = images::Scale::Range(m.data_range);
                    [
                        Some(images::grid(fx, dims, cols, range)),
                        fx0.map(|x0| images::grid(x0, dims, cols, range)),
                        feps.map(|e| images::grid(e, dims, cols, images::Scale::Noise)),
                    ]
                });
                self.textures_show = Some(key);
                let captions = [
                    format!("x_t (t = {t})"),
                    "x0_pred: the network's guess of the clean image".to_string(),
                    "ε_pred: the noise it sees in x_t".to_string(),
                ];
                let width = ((ui.available_width() - 24.0) / 3.0).max(64.0);
                ui.horizontal_top(|ui| {
                    let mut grids = grids;
                    for (i, cap) in captions.iter().enumerate() {
                        let img = grids.as_mut().and_then(|g| g[i].take());
                        match img {
                            Some(img) => {
                                images::panel(ui, &mut self.textures[i], &format!("view{i}"), img, cap, width)
                            }
                            None if grids.is_some() => {
                                // A step without this prediction (x_T): drop the stale picture.
                                self.textures[i] = None;
                            }
                            None => {
                                if let Some(tex) = &self.textures[i] {
                                    let sz = tex.size_vec2();
                                    ui.vertical(|ui| {
                                        ui.label(cap.as_str());
                                        ui.image((tex.id(), egui::vec2(width, width * sz.y / sz.x)));
                                    });
                                }
                            }
                        }
                    }
                });
                ui.label(
                    "x0_pred = (x_t − √(1−ᾱ_t)·ε_pred) / √ᾱ_t: early on it is a blurry average of plausible digits; \
                     it sharpens as the noise is removed. The step mixes x0_pred and x_t to get x_(t−1).",
                );
            } else {
                let per = s.n * shape.iter().product::<usize>();
                let trail: Vec<&[f32]> = (v.saturating_sub(4)..=v)
                    .filter_map(|k| s.states.get(k))
                    .map(|f| split_frame(f, per).0)
                    .collect();
                points::draw(ui, &trail, s.settings.labels.as_deref(), m.data_range);
            }
        });
    }
}
