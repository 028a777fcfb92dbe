//! Compare samplers: the same x_T (the run's seed) through several samplers at once, stepping
//! together, one column each — the sampler, its steps and model evaluations, and at the viewed point
//! of the reverse process its x0_pred and x_t (image models) or its points. The timeline's viewed
//! step maps to the same fraction of each run, so a 2n−1-evaluation Heun run and a 20-step DPM-Solver
//! run are seen at the same stage of denoising.

use std::sync::Arc;

use super::stepping::{split_frame, Session};
use crate::app::{images, points};
use crate::pipelines::gaussian::GaussianModel;
use crate::process::gaussian::{SampleSettings, Sampler};
use egui::RichText;

/// The samplers a comparison starts with.
const DEFAULT: &[&str] = &["ddim", "dpm++2m", "euler-a", "heun"];

struct Column {
    name: &'static str,
    session: Session,
    /// x0_pred and x_t textures and the step they show.
    textures: [Option<egui::TextureHandle>; 2],
    shown: Option<usize>,
}

pub(super) struct Comparison {
    /// The samplers chosen (names of `Sampler::NAMES`), in menu order.
    pub chosen: Vec<&'static str>,
    columns: Vec<Column>,
}

impl Default for Comparison {
    fn default() -> Self {
        Comparison {
            chosen: DEFAULT.to_vec(),
            columns: Vec::new(),
        }
    }
}

impl Comparison {
    /// The sampler checkboxes; true when the choice changed.
    /// `names`: the samplers the open model takes.
    pub fn controls(&mut self, ui: &mut egui::Ui, names: &[&'static str]) -> bool {
        let mut changed = false;
        ui.horizontal_wrapped(|ui| {
            for &name in names {
                let mut on = self.chosen.contains(&name);
                if ui.checkbox(&mut on, name).changed() {
                    changed = true;
                    if on {
                        self.chosen.push(name);
                    } else {
                        self.chosen.retain(|&n| n != name);
                    }
                }
            }
        });
        self.chosen
            .sort_by_key(|n| Sampler::NAMES.iter().position(|m| m == n));
        changed
    }

    /// Start every chosen sampler from the same x_T with the run's other settings (`base`); `eta` and
    /// `karras` apply where a sampler takes them.
    pub fn start(
        &mut self,
        m: &GaussianModel,
        base: &SampleSettings,
        n: usize,
        eta: f32,
        karras: bool,
        first_id: u64,
    ) -> crate::Result<()> {
        let mut columns = Vec::new();
        // Only the samplers this model takes (the choice may come from another model).
        let takes = Sampler::names_for(&m.process);
        let chosen = self.chosen.iter().filter(|n| takes.contains(n));
        for (i, &name) in chosen.enumerate() {
            let settings = SampleSettings {
                sampler: Sampler::parse(name, eta, karras)?,
                ..base.clone()
            };
            columns.push(Column {
                name,
                session: Session::start(m, settings, n, first_id + i as u64)?,
                textures: [None, None],
                shown: None,
            });
        }
        self.columns = columns;
        Ok(())
    }

    pub fn running(&self) -> bool {
        !self.columns.is_empty()
    }

    /// Collect landed steps and, if `step`, launch the next one of every run still going.
    pub fn pump(&mut self, m: &Arc<GaussianModel>, step: bool) -> crate::Result<()> {
        for c in &mut self.columns {
            c.session.pump(m, step)?;
        }
        Ok(())
    }

    /// Some run is still stepping or reading back.
    pub fn busy(&self) -> bool {
        self.columns
            .iter()
            .any(|c| !c.session.done() || c.session.in_flight())
    }

    /// One column per sampler at `fraction` (0 = x_T, 1 = the end) of its run.
    pub fn draw(&mut self, ui: &mut egui::Ui, m: &GaussianModel, fraction: f32) {
        if self.columns.is_empty() {
            ui.label("Choose at least one sampler to compare.");
            return;
        }
        ui.label(
            "The same x_T through each sampler, seen at the same stage of the reverse process. \
             Model evaluations are what a step costs; multistep samplers reuse earlier x0_pred, \
             Heun evaluates twice per step.",
        );
        let shape = m.denoiser.sample_shape().to_vec();
        let k = self.columns.len();
        ui.columns(k, |cols| {
            for (ui, c) in cols.iter_mut().zip(&mut self.columns) {
                let s = &c.session;
                let total = s.run.plan.len();
                let want = (fraction * total as f32).round() as usize;
                let Some((v, frame)) = s.states.nearest(want.min(s.states.len().saturating_sub(1)))
                else {
                    ui.label(c.name);
                    continue;
                };
                ui.label(RichText::new(c.name).strong());
                ui.label(format!(
                    "{} steps · {total} model evaluations\nevaluation {v} of {total}{}",
                    s.run.settings.steps,
                    if s.done() { " · done" } else { "" }
                ));
                let width = ui.available_width().max(48.0);
                if let &[ch, h, w] = shape.as_slice() {
                    let n = s.n;
                    let (fx, fx0, _) = split_frame(frame, n * ch * h * w);
                    let cols = (n as f64).sqrt().ceil() as usize;
                    let dims = [n, ch, h, w];
                    let range = images::Scale::Range(m.data_range);
                    let fresh = c.shown != Some(v);
                    c.shown = Some(v);
                    let parts = [(fx0.unwrap_or(fx), "x0_pred"), (fx, "x_t")];
                    for (i, (values, caption)) in parts.into_iter().enumerate() {
                        let id = format!("compare-{}-{i}", c.name);
                        if fresh || c.textures[i].is_none() {
                            images::panel(
                                ui,
                                &mut c.textures[i],
                                &id,
                                images::grid(values, dims, cols, range),
                                caption,
                                width,
                            );
                        } else if let Some(t) = &c.textures[i] {
                            let sz = t.size_vec2();
                            ui.label(caption);
                            ui.image((t.id(), egui::vec2(width, width * sz.y / sz.x)));
                        }
                    }
                } else {
                    let per = s.n * shape.iter().product::<usize>();
                    let x = split_frame(frame, per).0;
                    points::draw(ui, &[x], s.run.settings.labels.as_deref(), m.data_range);
                }
            }
        });
    }

    /// The samplers compared and how far each run is (the status JSON).
    pub fn status(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.columns
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "sampler": c.name,
                        "recorded": c.session.states.len(),
                        "evaluations": c.session.run.plan.len(),
                    })
                })
                .collect(),
        )
    }
}
