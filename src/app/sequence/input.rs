//! Your own input for a sequence model: type a word (or a DNA sequence), see it noised to any t, and
//! denoise from there. For an absorbing (mask) model, `?` marks letters to fill in: a mask stays a
//! mask under the forward process and the model fills it, while the letters you typed stay — the
//! absorbing posterior never changes a letter that is not a mask.

use crate::pipelines::sequence::SequenceModel;
use crate::rng::{Philox, Substream};
use egui::RichText;

pub(super) struct OwnSequence {
    /// The editor is shown instead of the reverse run.
    pub editing: bool,
    pub text: String,
    /// Denoise from this timestep.
    pub t0: usize,
    /// The reverse run starts from the input (set by "Denoise", cleared by "start from the prior").
    pub active: bool,
    /// Ask the app for a restart (it comes back through `controls`).
    pub restart: bool,
}

impl OwnSequence {
    pub fn new(m: &SequenceModel, example: Option<&[u32]>) -> OwnSequence {
        let ts = m.process.timesteps();
        OwnSequence {
            editing: false,
            text: example.map(|e| m.decode(e)).unwrap_or_default(),
            t0: ts[ts.len() / 2],
            active: false,
            restart: false,
        }
    }

    /// The typed text as ids (`?` is the mask where the model has one), or why not.
    pub fn ids(&self, m: &SequenceModel) -> crate::Result<Vec<u32>> {
        let text = self.text.trim();
        let mask = m.config.mask_token;
        let first = m.data_chars().chars().next().unwrap_or('a');
        let plain: String = text
            .chars()
            .map(|c| if c == '?' { first } else { c })
            .collect();
        let mut ids = m.encode(&plain, "your input")?;
        for (i, c) in text.chars().enumerate() {
            if c == '?' {
                match mask {
                    Some(k) => ids[i] = k as u32,
                    None => {
                        return Err(crate::Error::Invalid(format!(
                            "{} has no mask token: `?` only works with an absorbing model",
                            m.name
                        )))
                    }
                }
            }
        }
        Ok(ids)
    }

    /// The reverse step that starts at timestep `t0` (x_T is step 0).
    pub fn start_step(&self, m: &SequenceModel) -> usize {
        let ts = m.process.timesteps();
        ts.iter().position(|&t| t <= self.t0).unwrap_or(ts.len())
    }

    /// The editor: the text, t0, the input noised to t0, and the buttons.
    pub fn ui(&mut self, ui: &mut egui::Ui, m: &SequenceModel, seed: u64) {
        let absorbing = m.config.mask_token.is_some();
        ui.label(format!(
            "Your own input: type a sequence of {} characters from \"{}\"{}, choose t and denoise \
             from it.{}",
            m.config.seq_len,
            m.data_chars(),
            if m.config.pad_token.is_some() {
                " (shorter is padded)"
            } else {
                ""
            },
            if absorbing {
                " Type ? for letters the model should fill in: they stay masked while the letters \
                 you typed stay as they are."
            } else {
                ""
            }
        ));
        let ts = m.process.timesteps();
        let (lo, hi) = (
            ts.iter().copied().min().unwrap_or(0),
            ts.iter().copied().max().unwrap_or(0),
        );
        ui.horizontal(|ui| {
            let name = ui.label("your sequence").id;
            ui.add(
                egui::TextEdit::singleline(&mut self.text)
                    .font(egui::TextStyle::Monospace)
                    .desired_width(ui.available_width() * 0.5),
            )
            .labelled_by(name);
            ui.add(egui::Slider::new(&mut self.t0, lo..=hi).text("denoise from t"));
        });
        let ids = self.ids(m);
        match &ids {
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, e.to_string());
            }
            Ok(ids) => {
                let k = self.start_step(m);
                let a = alpha_bar(m, self.t0);
                let noised = forward_on_host(m, ids, a, seed, self.t0);
                ui.label(
                    RichText::new(format!("x_0:  {}", show(m, ids)))
                        .monospace()
                        .size(18.0),
                );
                ui.label(
                    RichText::new(format!("x_t:  {}", show(m, &noised)))
                        .monospace()
                        .size(18.0),
                );
                ui.weak(format!(
                    "one draw of q(x_t | x_0) at t = {}: each position kept with probability ᾱ_t = \
                     {a:.3}, else {}; the run starts at step {k}",
                    self.t0,
                    if absorbing { "masked (shown ?)" } else { "replaced by a uniform draw" }
                ));
                if ui.button(format!("Denoise from t = {}", self.t0)).clicked() {
                    self.active = true;
                    self.editing = false;
                    self.restart = true;
                }
            }
        }
    }
}

/// ᾱ at timestep `t` (0 outside the table).
pub(super) fn alpha_bar(m: &SequenceModel, t: usize) -> f32 {
    let (first, abar) = m.process.alpha_bars();
    t.checked_sub(first)
        .and_then(|i| abar.get(i))
        .copied()
        .unwrap_or(0.0)
}

/// A sequence as text, masks as `?`.
fn show(m: &SequenceModel, ids: &[u32]) -> String {
    ids.iter()
        .map(|&i| {
            if m.config.mask_token == Some(i as usize) {
                "?".to_string()
            } else {
                m.vocab()
                    .get(i as usize)
                    .map_or("·".into(), |c| c.to_string())
            }
        })
        .collect()
}

/// One draw of q(x_t | x_0) on the host: each position keeps its class with probability ᾱ (the
/// closed form of the shipped processes: absorbing, uniform and multinomial all mix x_0 with one
/// fixed distribution), else becomes the mask (absorbing) or a uniform class. Keyed by (`seed`, `t`)
/// in the forward stream, so each t is its own draw.
pub(super) fn forward_on_host(
    m: &SequenceModel,
    x0: &[u32],
    alpha_bar: f32,
    seed: u64,
    t: usize,
) -> Vec<u32> {
    let rng = Philox::new(seed, t as u32, Substream::Forward);
    let k = m.process.k() as u32;
    x0.iter()
        .enumerate()
        .map(|(i, &x)| {
            if rng.uniform(2 * i as u32) < alpha_bar {
                return x;
            }
            match m.config.mask_token {
                Some(mask) => mask as u32,
                None => ((rng.uniform(2 * i as u32 + 1) * k as f32) as u32).min(k - 1),
            }
        })
        .collect()
}
