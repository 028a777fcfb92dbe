//! The app's state as a link: what the page's address shows as the user changes settings (so the
//! browser's address bar is always a link to what is on screen), and the "Copy link" button. The
//! link is the open run's settings (`OpenRun::link`) and the viewed step, or the lesson and its
//! step; opened again it reproduces the same frame, because a run is deterministic per model,
//! settings and seed. A forked run or one started from the user's own input is not: the button says
//! so.

use super::{DiffscopeApp, Link};

/// The key of the last session's link in eframe's storage.
pub const LAST_KEY: &str = "diffscope.last_link";

/// What has been shared of the app's state.
#[derive(Default)]
pub struct Share {
    /// The run since its last restart is the one its settings make (not forked).
    pub exact: bool,
    /// The query last written to the page's address, and when (the browser limits how often).
    #[cfg(target_arch = "wasm32")]
    written: Option<(String, web_time::Instant)>,
}

impl DiffscopeApp {
    /// The link to what the app shows: the lesson at its step, or the open shipped model with its
    /// run's settings and the viewed step (none while the run plays on following its newest step).
    /// `None` for a model of the user's own, which a link cannot carry.
    pub fn link(&self) -> Option<Link> {
        if let Some(l) = &self.lesson {
            return Some(Link {
                lesson: Some(l.lesson.name.clone()),
                lesson_step: Some(l.step + 1),
                ..Link::default()
            });
        }
        let run = self.run.as_ref()?;
        crate::pipelines::zoo::find(run.model_name())?;
        let mut link = run.link();
        link.step = (!self.timeline.live()).then(|| self.timeline.viewed());
        Some(link)
    }

    /// What the next session starts from ([`super::Start::Last`]): this link without the viewed
    /// step, so it opens playing from x_T.
    pub fn resume_link(&self) -> Option<String> {
        let mut link = self.link()?;
        link.step = None;
        Some(link.query())
    }

    /// A fingerprint of the viewed step's recorded state (FNV-1a 64 over its values' f32 bits, little
    /// endian, as hex): what a link promises to reproduce, compared across the desktop and the page.
    pub fn viewed_hash(&self) -> Option<String> {
        let state = self.recorded_state(self.timeline.viewed())?;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in state.iter().flat_map(|v| v.to_bits().to_le_bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Some(format!("{h:016x}"))
    }

    /// Whether the link reopens exactly these frames (not after a fork, nor from the user's input).
    fn link_exact(&self) -> bool {
        self.share.exact && self.run.as_ref().is_some_and(|r| r.own_input().is_none())
    }

    /// "Copy link": the page's address (in the browser) or the command that reopens this state
    /// (desktop), to the clipboard.
    pub(super) fn copy_link_button(&mut self, ui: &mut egui::Ui) {
        let Some(link) = self.link() else { return };
        let hover = if self.link_exact() {
            "copy a link that opens this model, these settings and this step"
        } else {
            "copy a link to these settings: this run was forked or started from your own input, \
             so the link starts a fresh run with them rather than showing these frames"
        };
        if ui.button("Copy link").on_hover_text(hover).clicked() {
            let query = link.query();
            #[cfg(target_arch = "wasm32")]
            let text = web_sys::window()
                .map(|w| w.location())
                .and_then(|l| Some(format!("{}{}", l.origin().ok()?, l.pathname().ok()?)))
                .map_or_else(|| format!("?{query}"), |page| format!("{page}?{query}"));
            #[cfg(not(target_arch = "wasm32"))]
            let text = format!("diffscope --link '?{query}'");
            ui.ctx().copy_text(text);
            self.notice = Some("link copied".into());
        }
    }

    /// Keep the page's address equal to [`DiffscopeApp::link`] (history.replaceState: no new
    /// history entries). Browsers throttle the call (Safari: 100 per 30 s), so at most every 0.4 s.
    #[cfg(target_arch = "wasm32")]
    pub(super) fn sync_address(&mut self, ctx: &egui::Context) {
        let Some(query) = self.link().map(|l| l.query()) else {
            return;
        };
        let now = web_time::Instant::now();
        let due = match &self.share.written {
            Some((q, _)) if *q == query => return,
            Some((_, at)) => now.duration_since(*at).as_secs_f32() >= 0.4,
            None => true,
        };
        if !due {
            // Come back to write it once the pause has passed.
            ctx.request_repaint_after(std::time::Duration::from_millis(400));
            return;
        }
        let written = web_sys::window()
            .and_then(|w| w.history().ok())
            .is_some_and(|h| {
                h.replace_state_with_url(
                    &wasm_bindgen::JsValue::NULL,
                    "",
                    Some(&format!("?{query}")),
                )
                .is_ok()
            });
        if written {
            self.share.written = Some((query, now));
        }
    }
}
