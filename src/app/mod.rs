//! The egui app, shared by the native window and the browser: pick a model, run its reverse trajectory
//! one step per frame without blocking, scrub through every recorded step, and explore the forward
//! process. In the browser compute runs on eframe's WebGPU device, or on the CPU backend where the
//! page draws with WebGL2. The desktop app opens a device of its own for compute (see `run_app` in the CLI): frames then never queue behind a reverse step — on
//! lavapipe, sharing eframe's queue made every frame wait for the step in flight (mnist-unet: one
//! frame per 1.3 s while sampling, 0.15 s with its own device).

#[cfg(not(target_arch = "wasm32"))]
pub mod autopilot;
mod card;
mod compute;
mod download;
mod export;
mod frames;
mod gallery;
mod gaussian;
mod graph;
mod heatmap;
mod highlight;
mod images;
mod landing;
mod layout;
mod lesson;
mod link;
mod loss_plot;
mod open_run;
mod plot_frame;
mod points;
mod recovery;
mod schedule;
mod sequence;
mod share;
mod thumbnail;
mod timeline;
mod vary;
mod worker;

use crate::gpu::Gpu;
use crate::pipelines::zoo;
use crate::tensor::Device;
use egui::{Color32, RichText};
use open_run::{Carried, OpenRun};
use timeline::Timeline;

pub struct DiffscopeApp {
    device: Option<Device>,
    /// Why this device, and how to open the other backend.
    compute: compute::Compute,
    error: Option<String>,
    /// The compute device was lost: offer to open a new one and carry on.
    device_lost: bool,
    /// The open model and its run, whatever the family (`None`: nothing opened, or it failed).
    run: Option<Box<dyn OpenRun>>,
    /// Settings the next opened model starts from.
    carried: Carried,
    timeline: Timeline,
    /// What the last export did (shown under the timeline).
    notice: Option<String>,
    /// Frame intervals and the app's work per frame.
    frame_stats: frames::FrameStats,
    /// The first visit's strip of thumbnails above the run.
    landing: landing::Landing,
    /// The open model's card in brief.
    about: card::About,
    /// A shipped model's files being fetched before it opens (the browser build).
    download: Option<download::Download>,
    /// Settings the page's link asks for, applied to the model it opens (then dropped).
    link: Option<link::Link>,
    /// The lesson being followed, if any.
    lesson: Option<lesson::OpenLesson>,
    /// The state shared as a link (the page's address, "Copy link").
    share: share::Share,
    /// Narrow screens: the side panel as a drawer; hit targets for touch.
    layout: layout::Layout,
    /// The screen was narrow at the last frame.
    narrow: bool,
    /// The UI's context, kept from the first frame so a call from outside a frame (the page's
    /// `retry_download()`) can ask for the frame that acts on it.
    ctx: Option<egui::Context>,
    #[cfg(not(target_arch = "wasm32"))]
    user_dir: String,
    dropped_inbox: DroppedInbox,
    #[cfg(not(target_arch = "wasm32"))]
    autopilot: Option<autopilot::Autopilot>,
    /// Where exports are written on the desktop.
    #[cfg(not(target_arch = "wasm32"))]
    export_dir: std::path::PathBuf,
}

/// Dropped files, read: (name, bytes or why not), one batch per drop.
type DroppedInbox = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, Result<Vec<u8>, String>)>>>>;

/// What the app opens with.
pub enum Start {
    Shipped(String),
    /// Where the last session left off (its model, settings or lesson, kept by eframe's storage:
    /// a file natively, the page's local storage in the browser), else a first visit.
    Last,
    /// The default model as a first visit sees it: with the thumbnails of every model above it.
    FirstVisit,
    #[cfg(not(target_arch = "wasm32"))]
    Dir(std::path::PathBuf),
}

pub use link::Link;

impl DiffscopeApp {
    /// Apply `link`'s settings to the model it opens (the page's URL; the browser tests): to the run
    /// already open if it is that model (natively a shipped model opens at once), else to the model
    /// when it opens (in the browser, once its files have arrived).
    pub fn with_link(mut self, link: Link) -> Self {
        if let Some(name) = &link.lesson {
            match crate::lessons::find(name) {
                Ok(l) => {
                    let k = link.lesson_step.unwrap_or(1) - 1;
                    self.start_lesson(l, k);
                }
                Err(e) => self.error = Some(e.to_string()),
            }
            return self;
        }
        match &mut self.run {
            Some(run) if link.model.as_deref().is_none_or(|m| m == run.model_name()) => {
                run.apply_link(&link);
                self.restart_run();
                self.hold_link_step(link.step);
            }
            _ => self.link = Some(link),
        }
        self
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

    /// Say why the app computes on its device, and open the other backend with `options` when the
    /// user switches (native; the CLI passes what it opened the device with).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_device_choice(
        mut self,
        why: Option<String>,
        options: crate::tensor::DeviceOptions,
    ) -> Self {
        self.compute.why = why;
        self.compute.options = options;
        self
    }

    /// Run the native self-check (see [`autopilot`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_autopilot(mut self, ap: autopilot::Autopilot) -> Self {
        self.autopilot = Some(ap);
        self
    }

    /// [`Start::Last`] made concrete: the model the last session's link opens and that link (to
    /// apply with [`Self::with_link`]), or the default model when nothing was kept (or what was
    /// kept no longer opens a shipped model). Other starts are returned as they are.
    pub fn resolve_start(cc: &eframe::CreationContext<'_>, start: Start) -> (Start, Option<Link>) {
        if !matches!(start, Start::Last) {
            return (start, None);
        }
        let last = cc
            .storage
            .and_then(|s| s.get_string(share::LAST_KEY))
            .map(|q| Link::parse(&q))
            .filter(|l| l.opens().is_some_and(|m| zoo::find(&m).is_some()));
        match last.as_ref().and_then(Link::opens) {
            Some(model) => (Start::Shipped(model), last),
            None => (Start::FirstVisit, None),
        }
    }

    pub fn with_start(cc: &eframe::CreationContext<'_>, start: Start) -> Self {
        Self::with_start_on(cc, start, None)
    }

    /// [`Self::with_start`] computing on the backend `wanted` where it can be had (a link's
    /// `backend=`). Otherwise the window's GPU computes, except in the browser when that is a
    /// software rasteriser (a fallback WebGPU adapter such as SwiftShader): the CPU backend is
    /// 7–20× faster per step there, so it computes and the GPU stays in the switch.
    pub fn with_start_on(
        cc: &eframe::CreationContext<'_>,
        start: Start,
        wanted: Option<crate::tensor::Backend>,
    ) -> Self {
        use crate::tensor::Backend;
        let (start, last) = Self::resolve_start(cc, start);
        let cpu = || Device::Cpu(crate::cpu::Cpu::new(&Default::default()));
        let mut kept_gpu = None;
        let (device, why) = match cc.wgpu_render_state.as_ref() {
            // WebGL2 (the browser granted no WebGPU adapter) draws but cannot compute.
            Some(rs) if rs.adapter.get_info().backend == wgpu::Backend::Gl => (
                Ok(cpu()),
                "no WebGPU adapter here: WebGL2 draws the UI and the CPU backend computes".into(),
            ),
            Some(rs) => {
                let info = rs.adapter.get_info();
                let software = info.device_type == wgpu::DeviceType::Cpu;
                match Gpu::from_device(info.clone(), rs.device.clone(), rs.queue.clone()) {
                    Err(e) => (Err(e.to_string()), String::new()),
                    Ok(g) if wanted == Some(Backend::Cpu) => {
                        kept_gpu = Some(Device::Gpu(g));
                        (Ok(cpu()), "the CPU backend was asked for".into())
                    }
                    Ok(g) if software && wanted.is_none() && cfg!(target_arch = "wasm32") => {
                        kept_gpu = Some(Device::Gpu(g));
                        // SwiftShader's adapter has no name in Chromium.
                        let name = match info.name.as_str() {
                            "" => String::new(),
                            n => format!(" ({n})"),
                        };
                        (
                            Ok(cpu()),
                            format!(
                                "auto: the browser's WebGPU adapter is a software rasteriser{name}; \
                                 the CPU backend is faster (GPU takes it)"
                            ),
                        )
                    }
                    Ok(g) => (Ok(Device::Gpu(g)), "the GPU the window draws with".into()),
                }
            }
            None => (
                Err("no wgpu device to draw with (neither WebGPU nor WebGL2)".into()),
                String::new(),
            ),
        };
        let mut app = Self::with_device(device, start);
        if app.device.is_some() {
            app.compute.why = Some(why);
        }
        #[cfg(target_arch = "wasm32")]
        {
            app.compute.web_gpu = kept_gpu;
        }
        #[cfg(not(target_arch = "wasm32"))]
        drop(kept_gpu);
        match last {
            Some(link) => app.with_link(link),
            None => app,
        }
    }

    /// The app on a compute device of the caller's (or the reason there is none, shown in the UI):
    /// eframe passes its own; tests pass one they made.
    pub fn with_device(device: std::result::Result<Device, String>, start: Start) -> Self {
        let mut app = DiffscopeApp {
            device: None,
            compute: Default::default(),
            error: None,
            device_lost: false,
            run: None,
            carried: Carried::default(),
            timeline: Timeline::default(),
            notice: None,
            frame_stats: Default::default(),
            landing: landing::Landing::new(matches!(start, Start::Last | Start::FirstVisit)),
            about: Default::default(),
            download: None,
            link: None,
            lesson: None,
            share: Default::default(),
            layout: Default::default(),
            narrow: false,
            ctx: None,
            #[cfg(not(target_arch = "wasm32"))]
            user_dir: String::new(),
            dropped_inbox: Default::default(),
            #[cfg(not(target_arch = "wasm32"))]
            autopilot: None,
            #[cfg(not(target_arch = "wasm32"))]
            export_dir: "diffscope-exports".into(),
        };
        match device {
            Ok(d) => app.device = Some(d),
            Err(e) => app.error = Some(e),
        }
        match start {
            Start::Shipped(name) => app.open_shipped(&name),
            Start::Last | Start::FirstVisit => app.open_shipped(zoo::DEFAULT_MODEL),
            #[cfg(not(target_arch = "wasm32"))]
            Start::Dir(d) => {
                if let Some(device) = app.device.clone() {
                    app.user_dir = d.display().to_string();
                    app.open_user(crate::pipelines::gaussian::load_dir(&device, &d));
                }
            }
        }
        app
    }

    /// The compute device the app runs on.
    pub fn device(&self) -> Option<&Device> {
        self.device.as_ref()
    }

    /// The state after step `k` of the open run, as recorded on the host (token and class ids
    /// as numbers; a graph's node then edge classes), or `None` if it is not (or no longer) kept.
    pub fn recorded_state(&self, k: usize) -> Option<Vec<f32>> {
        self.run.as_ref()?.recorded_state(k)
    }

    /// The user's own input the open run started from (data units, one sample), if it did.
    pub fn own_input(&self) -> Option<Vec<f32>> {
        self.run.as_ref()?.own_input()
    }

    /// A machine-readable snapshot for tests and the page (JSON): which model, how far the run is, the
    /// first error, and the spread of the newest state (a blank or collapsed picture shows up here).
    pub fn status_json(&self) -> String {
        let run = self.run.as_deref();
        let progress = run.and_then(|r| r.progress());
        let part = run.map(|r| r.status()).unwrap_or_default();
        serde_json::json!({
            "adapter": self.device.as_ref().map(Device::describe),
            "backend": self.device.as_ref().map(|d| d.backend().name()),
            "model": run.map(|r| r.model_name().to_string()),
            "recorded": progress.map_or(0, |p| p.recorded),
            "total": progress.map_or(0, |p| p.total),
            "error": self.error,
            "last_mean": part.last.mean,
            "last_std": part.last.std,
            "last_finite": part.last.finite,
            "temperature": part.temperature,
            "unmask": part.unmask,
            "padding": part.padding,
            "sampler": part.sampler,
            "compare": part.compare,
            "input": part.input,
            "score": part.score,
            "decoded": part.decoded,
            "loss_curve": part.loss_curve,
            "entropy": part.entropy,
            "viewed": self.timeline.viewed(),
            "playing": self.timeline.playing,
            "forward_t": run.and_then(|r| r.forward_shown()),
            "lesson": self.lesson_status(),
            "layout": self.ctx.as_ref().map(|c| self.layout.status(self.narrow, c)),
            "link": self.link().map(|l| l.query()),
            "viewed_hash": self.viewed_hash(),
            "ui_frames": self.frame_stats.json(),
            "landing": {
                "shown": self.landing.shown,
                "thumbnails": self.landing.loaded(),
                "models": crate::pipelines::zoo::MODELS.len(),
            },
            "download": self.download.as_ref().map(|d| d.describe()),
        })
        .to_string()
    }

    /// Steps recorded by the open run.
    fn recorded(&self) -> usize {
        self.run
            .as_ref()
            .and_then(|r| r.progress())
            .map_or(0, |p| p.recorded)
    }

    /// Steps launched by the open run, recorded or in flight (for the speed cap).
    fn launched(&self) -> usize {
        self.run
            .as_ref()
            .and_then(|r| r.progress())
            .map_or(0, |p| p.launched)
    }

    /// Whether the open run has steps left.
    fn running(&self) -> bool {
        self.run
            .as_ref()
            .and_then(|r| r.progress())
            .is_some_and(|p| !p.done())
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

    /// Keep where the user is (model and settings, or lesson and step) for the next session: see
    /// [`Start::Last`].
    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Some(q) = self.resume_link() {
            storage.set_string(share::LAST_KEY, q);
        }
    }
}

impl DiffscopeApp {
    /// One frame of the whole app in `ui` (eframe's window, or a test harness).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        if self.ctx.is_none() {
            self.ctx = Some(ui.ctx().clone());
        }
        let frame_start = self.frame_stats.begin();
        self.show_frame(ui);
        let busy = self.timeline.playing && self.running();
        self.frame_stats.end(frame_start, busy);
    }

    fn show_frame(&mut self, ui: &mut egui::Ui) {
        // Errors the device reports after the fact (the web's validation, a lost device) are shown,
        // the first one kept: later ones are usually its consequences.
        if let Some(e) = self
            .device
            .as_ref()
            .and_then(Device::gpu)
            .and_then(|g| g.take_error())
        {
            self.timeline.playing = false;
            self.error.get_or_insert(format!("GPU: {e}"));
        }
        // A lost device is the root of whatever else failed: say so, and offer a new one.
        if let Some(why) = self.device.as_ref().and_then(Device::lost) {
            if !self.device_lost {
                self.device_lost = true;
                self.timeline.playing = false;
                self.error = Some(format!("the GPU device was lost ({why})"));
            }
        }
        self.take_dropped_files(ui.ctx());
        self.poll_download(ui.ctx());
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(mut ap) = self.autopilot.take() {
            let recorded = self.recorded();
            let error = self.error.clone();
            // Nothing more will come: a lesson step paused where it asked, or the run is done.
            let done = self
                .run
                .as_ref()
                .and_then(|r| r.progress())
                .is_some_and(|p| p.done());
            let settled = self.lesson_settled() || done;
            ap.drive(ui.ctx(), (recorded, settled), error.as_deref(), || {
                self.status_json()
            });
            self.autopilot = Some(ap);
        }
        self.drive_lesson(ui.ctx());
        self.step_run(ui.ctx());
        // The side panel scrolls: a graph model's controls and Q̄_t heatmap outgrow a laptop screen.
        // On a narrow screen it is a drawer behind the top bar's button.
        self.narrow = self.layout.update(ui.ctx());
        if self.narrow {
            let was_open = self.layout.drawer_open;
            let model = self.run.as_ref().map(|r| r.model_name().to_string());
            let bar = egui::Panel::top("drawer bar")
                .show(ui, |ui| self.layout.drawer_bar(ui, model.as_deref()));
            if self.layout.drawer_open {
                self.controls_drawer(ui.ctx(), bar.response.rect.bottom(), was_open);
            }
        } else {
            let mut open = self.layout.drawer_open;
            egui::Panel::left("controls").show_collapsible(ui, &mut open, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.side_panel(ui));
            });
            self.layout.drawer_open = open;
        }
        egui::Panel::bottom("timeline").show(ui, |ui| self.bottom_panel(ui));
        self.lesson_panel(ui);
        #[cfg(target_arch = "wasm32")]
        self.sync_address(ui.ctx());
        let landing = self.landing.shown && self.lesson.is_none();
        // The page fetches the thumbnails once the open run has made its first reverse step (the
        // live run first; they would otherwise share the line with the model's own files).
        let fetch = self.download.is_none()
            && (self.recorded() >= 2 || self.run.is_none() || self.error.is_some());
        let mut picked = None;
        let view = egui::CentralPanel::default().show(ui, |ui| {
            if landing {
                picked = self.landing.ui(ui, fetch);
            }
            match &mut self.run {
                Some(run) => run.central(ui, self.timeline.viewed()),
                None => match &self.download {
                    Some(d) => {
                        ui.label(d.describe());
                    }
                    None => {
                        ui.label("no model loaded");
                    }
                },
            }
        });
        self.layout.view_width = view.response.rect.width();
        if let Some(name) = picked {
            self.open_shipped(name);
        }
    }

    /// The side panel as a drawer over the view (narrow screens): the view keeps its size under
    /// it, and a tap outside the drawer closes it (unless this frame's tap was the one opening it).
    fn controls_drawer(&mut self, ctx: &egui::Context, top: f32, was_open: bool) {
        let screen = ctx.content_rect();
        let width = (screen.width() * 0.85).min(300.0);
        // Down to the screen's bottom: the controls scroll within it.
        let height = (screen.bottom() - top - 12.0).max(0.0);
        let shown = egui::Area::new(egui::Id::unique("controls drawer"))
            .order(egui::Order::Foreground)
            .fixed_pos(egui::pos2(screen.left(), top))
            .show(ctx, |ui| {
                // A panel's fill with a window's edge and shadow: it lies over the view.
                let v = &ui.style().visuals;
                let frame = egui::Frame::side_top_panel(ui.style())
                    .stroke(v.window_stroke)
                    .shadow(v.popup_shadow);
                frame.show(ui, |ui| {
                    ui.set_width(width);
                    egui::ScrollArea::vertical()
                        .max_height(height)
                        .min_scrolled_height(height)
                        .show(ui, |ui| self.side_panel(ui));
                })
            });
        // A press on the view beside the drawer closes it (below the bar, whose own button toggles
        // it; on the screen: a test may click a widget scrolled out of sight).
        let frame = shown.inner.response.rect;
        let outside = ctx.input(|i| {
            i.pointer.any_pressed()
                && i.pointer
                    .interact_pos()
                    .is_some_and(|p| p.y > top && screen.contains(p) && !frame.contains(p))
        });
        if was_open && outside {
            self.layout.drawer_open = false;
        }
    }

    /// This frame's work on the open run: collect what landed, start the next step if the timeline
    /// plays and the speed cap allows, and keep frames coming while anything is in flight.
    fn step_run(&mut self, ctx: &egui::Context) {
        // Where a step computes inside the frame (the CPU backend in the browser: one thread, its
        // ops recorded and run a frame's slice at a time by the readback polls), a frame takes
        // further steps while its slice lasts, so a quick model is not held to one step per frame
        // by a slow renderer; elsewhere a step is queued or on a thread, and one pump per frame is
        // all.
        let inline = cfg!(target_arch = "wasm32")
            && match &self.device {
                Some(crate::tensor::Device::Cpu(c)) => {
                    c.new_frame();
                    true
                }
                _ => false,
            };
        loop {
            let launched = self.launched();
            let may_step = self.timeline.hold_allows(launched) && self.timeline.may_step(ctx);
            let Some(run) = &mut self.run else { return };
            // Nothing can run on a lost device: wait for the user to open a new one.
            if self.device_lost {
                break;
            }
            if let Err(e) = run.pump(self.timeline.playing && may_step) {
                self.device_lost |= matches!(e, crate::Error::DeviceLost(_));
                self.error = Some(e.to_string());
                self.timeline.playing = false;
            }
            if self.launched() > launched {
                self.timeline.launched();
            }
            // The slice's end stops the loop: a poll after it runs nothing, so nothing lands and
            // no step is launched.
            if !inline || !self.timeline.playing || self.launched() == launched {
                break;
            }
        }
        let Some(run) = &mut self.run else { return };
        if !self.device_lost {
            if let Err(e) = run.pump_forward() {
                self.error = Some(e.to_string());
            }
        }
        if run.wants_repaint(self.timeline.playing) {
            ctx.request_repaint();
        }
        self.timeline.recorded(self.recorded());
        if let Some(run) = &mut self.run {
            run.animate(self.timeline.viewed());
        }
    }

    /// The error line (with the way out of a lost device), the timeline, the exports and the
    /// forward explorer's switch.
    fn bottom_panel(&mut self, ui: &mut egui::Ui) {
        if let Some(e) = &self.error {
            let mut recover = false;
            ui.horizontal(|ui| {
                ui.colored_label(Color32::LIGHT_RED, format!("error: {e}"));
                if self.device_lost && ui.button("Open a new GPU device and continue").clicked() {
                    recover = true;
                }
            });
            if recover {
                self.recover_device();
            }
        }
        let Some(run) = &mut self.run else { return };
        if let Some(p) = run.progress() {
            if self.timeline.ui(ui, &p, &self.frame_stats) {
                match run.fork(self.timeline.viewed()) {
                    Ok(true) => {
                        self.timeline.forked();
                        self.share.exact = false;
                    }
                    Ok(false) => {}
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
        }
        self.export_row(ui);
        if let Some(run) = &mut self.run {
            ui.horizontal_wrapped(|ui| run.forward_row(ui));
        }
    }

    /// The open run's export buttons, and the last export's result.
    fn export_row(&mut self, ui: &mut egui::Ui) {
        let viewed = self.timeline.viewed();
        let mut made = None;
        ui.horizontal(|ui| {
            let Some(run) = &mut self.run else { return };
            ui.label("Export:");
            made = run.export_buttons(ui, viewed);
            ui.separator();
            self.copy_link_button(ui);
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
}
