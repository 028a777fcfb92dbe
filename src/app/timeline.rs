//! The one timeline every family's run uses: play/pause, step back and forward, the scrub slider over
//! the recorded steps, "Fork here", and the playback speed cap. It knows a run only by its
//! [`Progress`]; what it decides (play, which step is viewed, fork) the app carries out.

use super::frames::FrameStats;
use super::open_run::Progress;

pub struct Timeline {
    pub playing: bool,
    /// The step shown (x_T is step 0).
    view: usize,
    /// Follow the newest recorded step.
    follow: bool,
    /// Playback speed cap in steps per second (`None`: as fast as the device goes).
    max_rate: Option<f32>,
    /// When the last step was launched (for the speed cap).
    last_launch: Option<web_time::Instant>,
    /// Play up to this step, then pause and show it (a lesson step's `at_step`).
    hold: Option<usize>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            playing: true,
            view: 0,
            follow: true,
            max_rate: None,
            last_launch: None,
            hold: None,
        }
    }
}

impl Timeline {
    /// The step being viewed.
    pub fn viewed(&self) -> usize {
        self.view
    }

    /// Playing on and showing the newest step (a link then names no step).
    pub fn live(&self) -> bool {
        self.playing && self.follow && self.hold.is_none()
    }

    /// A new trajectory started from x_T: view it from the start, following its newest step (a
    /// hold is dropped: whoever restarted the run has taken over).
    pub fn restarted(&mut self) {
        self.view = 0;
        self.follow = true;
        self.hold = None;
    }

    /// Play until step `k` is recorded, then pause there and show it; with `recorded` steps
    /// already there (x_T is step 0) that happens at once.
    pub fn hold_at(&mut self, k: usize, recorded: usize) {
        self.hold = Some(k);
        self.playing = true;
        self.follow = true;
        self.recorded(recorded);
    }

    /// Play on from the newest step, following it (a lesson step without `at_step`).
    pub fn play_on(&mut self) {
        self.hold = None;
        self.playing = true;
        self.follow = true;
    }

    /// Whether a hold allows launching another step when `launched` are started (x_T counts).
    pub fn hold_allows(&self, launched: usize) -> bool {
        self.hold.is_none_or(|k| launched <= k)
    }

    /// The run was forked at the viewed step: play on from there.
    pub fn forked(&mut self) {
        self.follow = true;
        self.playing = true;
    }

    /// A step was launched now (the speed cap counts from here).
    pub fn launched(&mut self) {
        self.last_launch = Some(web_time::Instant::now());
    }

    /// After new steps were recorded: keep showing the newest one while following.
    pub fn recorded(&mut self, recorded: usize) {
        if let Some(k) = self.hold.filter(|&k| recorded > k) {
            self.hold = None;
            self.playing = false;
            self.follow = false;
            self.view = k;
        } else if self.follow {
            self.view = recorded.saturating_sub(1);
        }
    }

    /// Whether the speed cap lets a step start now; if not, asks for a frame when it will.
    pub fn may_step(&self, ctx: &egui::Context) -> bool {
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

    /// Play/pause, step back/forward, fork, the scrub slider and the speed row for a run at `p`;
    /// true when "Fork here" was clicked.
    pub fn ui(&mut self, ui: &mut egui::Ui, p: &Progress, stats: &FrameStats) -> bool {
        let recorded = p.recorded;
        let mut fork = false;
        ui.horizontal(|ui| {
            let label = if self.playing { "Pause" } else { "Play" };
            if ui.button(label).clicked() {
                self.playing = !self.playing;
                self.hold = None;
            }
            if ui.button("< Step back").clicked() {
                self.follow = false;
                self.view = self.view.saturating_sub(1);
            }
            if ui.button("Step >").clicked() {
                self.follow = false;
                if self.view + 1 < recorded {
                    self.view += 1;
                } else if !p.done() {
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
            let secs = p.started.elapsed().as_secs_f64().max(1e-3);
            ui.label(format!(
                "step {} / {} · {:.1} steps/s",
                recorded.saturating_sub(1),
                p.total.saturating_sub(1),
                recorded.saturating_sub(1) as f64 / secs
            ));
        });
        if recorded > 0 {
            let mut v = self.view.min(recorded - 1);
            let resp = ui.add(egui::Slider::new(&mut v, 0..=recorded - 1).text("viewed step"));
            let resp = super::highlight::mark(ui, "timeline", resp);
            if resp.changed() {
                self.follow = v == recorded - 1;
                self.view = v;
            }
        }
        ui.horizontal(|ui| self.speed_row(ui, stats));
        fork
    }

    /// The playback speed: as fast as the device goes, or at most so many steps per second.
    fn speed_row(&mut self, ui: &mut egui::Ui, stats: &FrameStats) {
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
        if let (Some(f), Some(w)) = (stats.interval(), stats.work()) {
            ui.weak(format!("UI frame {:.0} ms", f.p50)).on_hover_text(format!(
                "over the last frames: interval median {:.1} ms, p95 {:.1} ms; the app's own work \
                 per frame (UI, readbacks collected, next step recorded) median {:.1} ms, p95 {:.1} ms. \
                 Sampling never blocks a frame: the GPU works between them.",
                f.p50, f.p95, w.p50, w.p95
            ));
        }
    }
}
