//! Headless-friendly self-check of the native app (used by the test script under Xvfb): open the app,
//! let it sample until `after_steps` steps are recorded (or a lesson step has paused at its step), take a screenshot of the real window, write
//! it as PNG with the app's status, and close. A run that shows an error or never advances fails.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct Autopilot {
    pub screenshot: PathBuf,
    /// Save only the run's main picture, scaled to this many pixels wide: the model's thumbnail
    /// (`tools/make_thumbnails.sh`; see `thumbnail.rs`).
    pub thumbnail: Option<usize>,
    pub after_steps: usize,
    pub timeout: std::time::Duration,
    /// Filled when the app closes: the status JSON, or why the check failed.
    pub outcome: Arc<Mutex<Option<Result<String, String>>>>,
    pub(super) started: Option<std::time::Instant>,
    pub(super) requested: bool,
    pub(super) shot: Arc<Mutex<Option<Arc<egui::ColorImage>>>>,
}

impl Autopilot {
    pub fn new(screenshot: PathBuf, after_steps: usize, timeout_s: u64) -> Autopilot {
        Autopilot {
            screenshot,
            thumbnail: None,
            after_steps,
            timeout: std::time::Duration::from_secs(timeout_s),
            outcome: Arc::default(),
            started: None,
            requested: false,
            shot: Arc::default(),
        }
    }

    /// Called every frame with the app's step count, whether it has stopped where it was asked to
    /// (a lesson step held at its step), its error and status.
    pub(super) fn drive(
        &mut self,
        ctx: &egui::Context,
        (recorded, settled): (usize, bool),
        error: Option<&str>,
        status: impl FnOnce() -> String,
    ) {
        let ready = recorded >= self.after_steps || settled;
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        ctx.request_repaint();
        let timed_out = started.elapsed() > self.timeout;
        if !self.requested && (ready || error.is_some() || timed_out) {
            self.requested = true;
            let slot = self.shot.clone();
            let c = ctx.clone();
            ctx.request_screenshot(move |img| {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(img);
                c.request_repaint();
            });
        }
        let shot = self.shot.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(img) = shot {
            let saved = match self.thumbnail {
                None => save_png(&self.screenshot, &img),
                Some(width) => super::thumbnail::marked(ctx)
                    .and_then(|r| super::thumbnail::crop(&img, r, ctx.pixels_per_point(), width))
                    .ok_or_else(|| std::io::Error::other("the view marked no picture to crop"))
                    .and_then(|t| save_png(&self.screenshot, &t)),
            };
            let outcome = match (error, saved) {
                (Some(e), _) => Err(format!("the app shows an error: {e}")),
                (None, Err(e)) => Err(format!("{}: {e}", self.screenshot.display())),
                (None, Ok(())) if !ready => Err(format!(
                    "only {recorded} of {} steps after {:?}",
                    self.after_steps, self.timeout
                )),
                (None, Ok(())) => Ok(status()),
            };
            *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

fn save_png(path: &std::path::Path, img: &egui::ColorImage) -> std::io::Result<()> {
    let bytes = super::export::png(img).map_err(std::io::Error::other)?;
    std::fs::write(path, bytes)
}
