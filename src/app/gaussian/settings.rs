//! The sampler settings a Gaussian run starts from: the defaults a model card suggests, and the link
//! keys that carry them (written by `OpenRun::link`, read by `OpenRun::apply_link`; the model-level
//! ones — clip, compare, score, the forward schedule — stay with the open model).

use super::card;
use crate::app::Link;
use crate::process::gaussian::Sampler;
use std::ops::RangeInclusive;

pub(super) struct Settings {
    pub seed: u64,
    pub label: u32,
    pub guidance: f32,
    /// A name of `Sampler::NAMES`.
    pub sampler: &'static str,
    /// Karras σ, for the samplers that take them.
    pub karras: bool,
    pub steps: usize,
    pub eta: f32,
    pub n: usize,
}

/// What fits the open model: its training timesteps, labels and batch range.
pub(super) struct Fits {
    pub timesteps: usize,
    pub labels: usize,
    pub n: RangeInclusive<usize>,
}

impl Settings {
    /// These settings as a link's keys (η and Karras only where the sampler reads them, guidance
    /// and label only for a conditional model, so a link says what matters).
    pub fn link(&self, conditional: bool) -> Link {
        let sampler = Sampler::parse(self.sampler, self.eta, self.karras).ok();
        Link {
            seed: Some(self.seed),
            n: Some(self.n),
            sampler: Some(self.sampler.to_string()),
            steps: Some(self.steps),
            eta: matches!(sampler, Some(Sampler::Ddim { .. })).then_some(self.eta),
            karras: sampler.filter(|p| p.takes_karras()).map(|_| self.karras),
            guidance: conditional.then_some(self.guidance),
            label: conditional.then_some(self.label),
            ..Default::default()
        }
    }

    /// Take what `link` asks for where it fits the model; the rest is ignored (a link is a
    /// suggestion).
    pub fn apply_link(&mut self, link: &Link, fits: &Fits) {
        if let Some(v) = link.seed {
            self.seed = v;
        }
        if let Some(name) = link
            .sampler
            .as_deref()
            .and_then(|v| Sampler::NAMES.iter().find(|&&n| n == v))
        {
            self.sampler = name;
        }
        if let Some(v) = link.steps.filter(|v| (1..=fits.timesteps).contains(v)) {
            self.steps = v;
        }
        let conditional = fits.labels > 0;
        if let Some(v) = link
            .guidance
            .filter(|v| conditional && (0.0..=5.0).contains(v))
        {
            self.guidance = v;
        }
        if let Some(v) = link.label.filter(|&v| (v as usize) < fits.labels) {
            self.label = v;
        }
        if let Some(v) = link.n.filter(|v| fits.n.contains(v)) {
            self.n = v;
        }
        if let Some(v) = link.eta.filter(|v| (0.0..=1.0).contains(v)) {
            self.eta = v;
        }
        if let Some(v) = link.karras {
            self.karras = v;
        }
    }
}

/// A model card may suggest how the app should open it (`"app": {"sampler": "ddim", "steps": 50,
/// "guidance": 3, "n": 16}`): a 1000-step UNet is better met with 50 DDIM steps than 1000 DDPM ones.
pub(super) fn apply_card_defaults(s: &mut Settings, card: &str) {
    let Some(app) = card::card_app(card) else {
        return;
    };
    let tt = s.steps.max(1);
    if let Some(v) = app.get("sampler").and_then(|v| v.as_str()) {
        if let Some(name) = Sampler::NAMES.iter().find(|&&n| n == v) {
            s.sampler = name;
        }
    }
    if let Some(k) = app.get("steps").and_then(|v| v.as_u64()) {
        s.steps = (k as usize).clamp(1, tt);
    }
    if let Some(e) = app.get("eta").and_then(|v| v.as_f64()) {
        s.eta = (e as f32).clamp(0.0, 1.0);
    }
    if let Some(w) = app.get("guidance").and_then(|v| v.as_f64()) {
        s.guidance = (w as f32).clamp(0.0, 10.0);
    }
    if let Some(n) = app.get("n").and_then(|v| v.as_u64()) {
        s.n = (n as usize).clamp(1, 4096);
    }
}
