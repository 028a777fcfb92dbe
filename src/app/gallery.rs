//! The side panel: the compute device (`compute.rs`), the gallery of shipped models with the open one's card in brief, your
//! own models (a folder path, or files dropped on the window), and the open run's controls.

use super::download::{Download, State as DownloadState};
use super::gaussian::OpenGaussian;
use super::open_run::{self, seed_row, OpenRun};
use super::DiffscopeApp;
use crate::pipelines::gaussian::GaussianModel;
use crate::pipelines::zoo::{self, Family};
use egui::RichText;

impl DiffscopeApp {
    pub(super) fn side_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("diffscope");
        self.compute_ui(ui);
        ui.separator();
        ui.horizontal(|ui| {
            ui.label("Model");
            if !self.landing.shown
                && ui
                    .small_button("thumbnails")
                    .on_hover_text("what each model makes, above the view")
                    .clicked()
            {
                self.landing.shown = true;
            }
        });
        let (open_family, open_name) = match &self.run {
            Some(r) => (Some(r.family()), r.model_name().to_string()),
            None => (None, String::new()),
        };
        let mut pick = None;
        let mut heading = None;
        for s in zoo::MODELS {
            if heading != Some(s.family) {
                heading = Some(s.family);
                ui.weak(match s.family {
                    Family::Gaussian => "Gaussian: images and points",
                    Family::Sequence => "discrete: sequences",
                    Family::Graph => "discrete: graphs",
                });
            }
            let open = open_family == Some(s.family) && open_name == s.name;
            if ui
                .selectable_label(open, s.name)
                .on_hover_text(s.summary)
                .clicked()
            {
                pick = Some(s.name);
            }
        }
        self.download_ui(ui);
        ui.separator();
        self.lessons_list(ui);
        // The open model's card, in brief: a teaching tool should say how good its model is.
        self.about.show(ui, &open_name);
        if let Some(name) = pick {
            self.open_shipped(name);
        }
        let gaussian_or_none = self
            .run
            .as_ref()
            .is_none_or(|r| r.family() == Family::Gaussian);
        if gaussian_or_none {
            let name = self.run.as_ref().map(|r| r.model_name().to_string());
            if let Some(name) =
                name.filter(|n| !n.is_empty() && crate::pipelines::gaussian::shipped(n).is_err())
            {
                let _ = ui.selectable_label(true, format!("{name} (yours)"));
            }
            self.user_model_controls(ui);
        }
        let viewed = match &mut self.run {
            Some(run) => {
                if run.controls(ui) {
                    self.restart_run();
                }
                self.timeline.viewed()
            }
            None => {
                ui.separator();
                seed_row(ui, &mut self.carried.seed);
                return;
            }
        };
        if let Some(run) = &mut self.run {
            run.process_notes(ui, viewed);
        }
    }

    /// Open a shipped model of any family, starting from the settings the open run leaves behind.
    /// In the browser a model whose files have not arrived yet is fetched first, and opens when they
    /// have (see `poll_download`).
    pub(super) fn open_shipped(&mut self, name: &str) {
        let Some(device) = self.device.clone() else {
            return;
        };
        let missing = zoo::find(name).map(|s| s.missing()).unwrap_or_default();
        if !missing.is_empty() {
            self.download = Some(Download::start(name, missing));
            return;
        }
        self.download = None;
        self.remember_settings();
        let opened = open_run::open_shipped(&device, name, &self.carried);
        self.install(opened);
    }

    /// Follow the download in progress; open its model once everything has arrived.
    pub(super) fn poll_download(&mut self, ctx: &egui::Context) {
        let Some(d) = &mut self.download else { return };
        match d.poll() {
            DownloadState::Done => {
                let name = d.model.clone();
                self.download = None;
                self.open_shipped(&name);
            }
            DownloadState::Loading { .. } => ctx.request_repaint(),
            DownloadState::Failed(_) => {}
        }
    }

    /// Fetch a failed download again (the Retry button).
    pub fn retry_download(&mut self) {
        if let Some(d) = &mut self.download {
            if matches!(d.state, DownloadState::Failed(_)) {
                d.retry();
                // Called from the page between frames, an idle app would not draw (and so not
                // poll the fetch) until something else woke it.
                if let Some(ctx) = &self.ctx {
                    ctx.request_repaint();
                }
            }
        }
    }

    /// The download in progress (bytes and per cent), or why it failed with a retry.
    fn download_ui(&mut self, ui: &mut egui::Ui) {
        let Some(d) = &self.download else { return };
        let (failed, text, fraction) = (
            matches!(d.state, DownloadState::Failed(_)),
            d.describe(),
            d.fraction(),
        );
        ui.separator();
        if failed {
            ui.colored_label(ui.visuals().error_fg_color, text);
            if ui.button("Retry").clicked() {
                self.retry_download();
            }
        } else {
            let bar = egui::ProgressBar::new(fraction.unwrap_or(0.0))
                .text(text)
                .animate(fraction.is_none());
            ui.add(bar);
        }
    }

    /// A user's own model: files dropped on the window (or picked in the browser), or a folder path.
    pub(super) fn open_user(&mut self, m: crate::Result<GaussianModel>) {
        self.remember_settings();
        let carried = &self.carried;
        let opened = m.map(|m| Box::new(OpenGaussian::open_user(m, carried)) as Box<dyn OpenRun>);
        self.install(opened);
    }

    fn remember_settings(&mut self) {
        if let Some(r) = &self.run {
            r.remember(&mut self.carried);
        }
    }

    /// Make `opened` the open run and start its trajectory (or show why it could not open).
    fn install(&mut self, opened: crate::Result<Box<dyn OpenRun>>) {
        match opened {
            Ok(mut run) => {
                self.error = None;
                let mut step = None;
                if let Some(link) = self.link.take() {
                    if link.model.as_deref().is_none_or(|m| m == run.model_name()) {
                        run.apply_link(&link);
                        step = link.step;
                    }
                }
                self.run = Some(run);
                self.restart_run();
                self.hold_link_step(step);
            }
            Err(e) => {
                self.run = None;
                self.error = Some(e.to_string());
            }
        }
    }

    /// Start the open run again from x_T with its current settings.
    pub(super) fn restart_run(&mut self) {
        let Some(run) = &mut self.run else { return };
        match run.restart() {
            Ok(()) => {
                self.timeline.restarted();
                self.share.exact = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// A link's viewed step: play the run to it and pause there.
    pub(super) fn hold_link_step(&mut self, step: Option<usize>) {
        if let Some(k) = step {
            let recorded = self.recorded();
            self.timeline.hold_at(k, recorded);
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
                    if let Some(device) = self.device.clone() {
                        let m = crate::pipelines::gaussian::load_dir(&device, std::path::Path::new(self.user_dir.trim()));
                        self.open_user(m);
                    }
                }
            });
        });
    }

    /// Files dropped on the window. Native reads them at once; the browser only reads files
    /// asynchronously, so there they arrive through `dropped_inbox` a few frames later.
    pub(super) fn take_dropped_files(&mut self, ctx: &egui::Context) {
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
            let Some(device) = self.device.clone() else {
                return;
            };
            let m = crate::pipelines::gaussian::load_files(&device, "dropped model", &files);
            self.open_user(m);
        }
    }
}
