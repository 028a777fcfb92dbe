//! Compare runs side by side: the same x_T (the run's seed) through several settings at once,
//! stepping together, one column each — several samplers, or one setting (guidance w, steps, DDIM's
//! η, the noise seed) over a list of values (`process::gaussian::Variation`). Each column shows its
//! settings, steps and model evaluations, and at the viewed point of the reverse process its x0_pred
//! and x_t (image models) or its points. The timeline's viewed step maps to the same fraction of each
//! run, so a 2n−1-evaluation Heun run and a 20-step DPM-Solver run are seen at the same stage of
//! denoising. Below the columns: how far each run is from the first (RMS, and the second minus the
//! first as a picture), and one pixel or particle followed through every run (`trace.rs`).

use std::sync::Arc;

use super::stepping::{split_frame, Session};
use super::trace;
use crate::app::vary::VaryChoice;
use crate::app::{images, points};
use crate::pipelines::gaussian::GaussianModel;
use crate::process::gaussian::{SampleSettings, Sampler, Variation};
use crate::rng::{Philox, Substream};
use egui::RichText;

struct Column {
    /// Its heading: the sampler, or the varied setting's value (`w = 3`).
    label: String,
    session: Session,
    /// x0_pred and x_t textures and the step they show.
    textures: [Option<egui::TextureHandle>; 2],
    shown: Option<usize>,
}

pub(super) struct Comparison {
    /// What the runs differ in, and its values in column order.
    pub vary: VaryChoice<Variation>,
    columns: Vec<Column>,
    /// The pixel followed (row, column of the first image's first channel), or the particle.
    pub pixel: [usize; 2],
    pub particle: usize,
    /// Runs that could not start with these settings, with the reason (shown above the columns).
    refused: Vec<String>,
    /// The stage last drawn, and each run's RMS distance from the first there.
    fraction: f32,
    rms: Vec<Option<f32>>,
    /// The second run minus the first, and the (run ids, stage) it shows.
    diff_texture: Option<egui::TextureHandle>,
    diff_shown: Option<(u64, u64, usize)>,
}

impl Default for Comparison {
    fn default() -> Self {
        Comparison::of(Variation::default())
    }
}

/// The "compare runs side by side" switch, and what to vary while it is on; true when either
/// changed. `names`: the samplers the open model takes.
pub(super) fn switch(
    ui: &mut egui::Ui,
    compare: &mut Option<Comparison>,
    names: &[&'static str],
) -> bool {
    let mut comparing = compare.is_some();
    let r = ui.checkbox(&mut comparing, "compare runs side by side");
    let mut changed = false;
    if crate::app::highlight::mark(ui, "compare", r)
        .on_hover_text(
            "the same x_T through several samplers, or several values of one setting, at once",
        )
        .changed()
    {
        *compare = comparing.then(Comparison::default);
        changed = true;
    }
    if let Some(c) = compare {
        changed |= c.controls(ui, names);
    }
    changed
}

/// A recorded step: its index, x, and x0_pred where recorded.
type Seen<'a> = (usize, &'a [f32], Option<&'a [f32]>);

/// The frame of `s` at `fraction` of its run.
fn at_fraction(s: &Session, per: usize, fraction: f32) -> Option<Seen<'_>> {
    let want = (fraction * s.run.plan.len() as f32).round() as usize;
    let (v, frame) = s
        .states
        .nearest(want.min(s.states.len().saturating_sub(1)))?;
    let (x, x0, _) = split_frame(frame, per);
    Some((v, x, x0))
}

impl Comparison {
    /// A comparison of these runs.
    pub fn of(varied: Variation) -> Comparison {
        Comparison {
            vary: VaryChoice::new(varied),
            columns: Vec::new(),
            pixel: [usize::MAX; 2],
            particle: 0,
            refused: Vec::new(),
            fraction: 0.0,
            rms: Vec::new(),
            diff_texture: None,
            diff_shown: None,
        }
    }

    /// What to vary and its values (sampler checkboxes, or a typed list); true when the choice
    /// changed. `names`: the samplers the open model takes.
    pub fn controls(&mut self, ui: &mut egui::Ui, names: &[&'static str]) -> bool {
        let mut changed = self.vary.kind_menu(ui, "compare-vary", |_| true);
        let Variation::Sampler(chosen) = &mut self.vary.varied else {
            return changed | self.vary.values_field(ui);
        };
        ui.horizontal_wrapped(|ui| {
            for &name in names {
                let mut on = chosen.contains(&name);
                if ui.checkbox(&mut on, name).changed() {
                    changed = true;
                    if on {
                        chosen.push(name);
                    } else {
                        chosen.retain(|&n| n != name);
                    }
                }
            }
        });
        chosen.sort_by_key(|n| Sampler::NAMES.iter().position(|m| m == n));
        changed
    }

    /// Start one run per value of the variation from the same x_T, with the run's other settings
    /// (`base`); `eta` and `karras` apply where a sampler takes them.
    pub fn start(
        &mut self,
        m: &GaussianModel,
        base: &SampleSettings,
        n: usize,
        (eta, karras): (f32, bool),
        first_id: u64,
    ) -> crate::Result<()> {
        self.columns.clear();
        self.refused.clear();
        let variants = match self
            .vary
            .varied
            .variants(base, eta, karras, !m.labels.is_empty())
        {
            Ok(v) => v,
            Err(crate::Error::Invalid(why)) => {
                self.refused.push(why);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // Only the samplers this model takes (the choice may come from another model).
        let takes = Sampler::names_for(&m.process);
        // Runs that differ in their noise seed share the run's x_T (drawn as the process draws it).
        let init = matches!(self.vary.varied, Variation::Seed(_))
            .then(|| Philox::new(base.seed, 0, Substream::Init).normals(n * m.sample_len()));
        for (i, v) in variants.into_iter().enumerate() {
            if !takes.contains(&v.settings.sampler.name()) {
                continue;
            }
            // A run that cannot go with these settings (say a multistep solver at every training
            // timestep) stays out of the comparison, saying why; the others run.
            match Session::start_from(m, v.settings, n, first_id + i as u64, init.as_deref()) {
                Ok(session) => self.columns.push(Column {
                    label: v.label,
                    session,
                    textures: [None, None],
                    shown: None,
                }),
                Err(crate::Error::Invalid(why)) => self.refused.push(format!("{}: {why}", v.label)),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Something to show in place of the single run: runs, or why they could not start.
    pub fn running(&self) -> bool {
        !self.columns.is_empty() || !self.refused.is_empty()
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

    /// One column per sampler at `fraction` (0 = x_T, 1 = the end) of its run, then the
    /// differences and the followed pixel or particle; the whole scrolls.
    pub fn draw(&mut self, ui: &mut egui::Ui, m: &GaussianModel, fraction: f32) {
        egui::ScrollArea::vertical()
            .id_salt("compare")
            .auto_shrink([false, false])
            .show(ui, |ui| self.draw_all(ui, m, fraction));
    }

    fn draw_all(&mut self, ui: &mut egui::Ui, m: &GaussianModel, fraction: f32) {
        for why in &self.refused {
            ui.colored_label(egui::Color32::YELLOW, format!("not compared: {why}"));
        }
        if self.columns.is_empty() {
            ui.label("Choose at least one run to compare.");
            return;
        }
        ui.label(
            "The same x_T through each run, seen at the same stage of the reverse process. \
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
                    ui.label(&c.label);
                    continue;
                };
                ui.label(RichText::new(&c.label).strong());
                ui.label(format!(
                    "{} · {} steps · {total} model evaluations\nevaluation {v} of {total}{}",
                    s.run.settings.sampler.name(),
                    s.run.settings.steps,
                    if s.done() { " · done" } else { "" }
                ));
                // Small enough that the differences and the followed pixel fit below.
                let width = ui.available_width().clamp(48.0, 200.0);
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
                        let id = format!("compare-{}-{i}", c.session.id);
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
        self.fraction = fraction;
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| self.differences(ui, m, fraction));
            ui.vertical(|ui| self.traces(ui, m, fraction));
        });
    }

    /// Each run's RMS distance from the first at this stage (x0_pred where there is one, else x_t),
    /// and for images the second run minus the first.
    fn differences(&mut self, ui: &mut egui::Ui, m: &GaussianModel, fraction: f32) {
        let shape = m.denoiser.sample_shape().to_vec();
        let per_sample: usize = shape.iter().product();
        let pick = |c: &Column| {
            at_fraction(&c.session, c.session.n * per_sample, fraction)
                .map(|(v, x, x0)| (v, x0.unwrap_or(x).to_vec()))
        };
        let views: Vec<Option<(usize, Vec<f32>)>> = self.columns.iter().map(pick).collect();
        let first = views.first().cloned().flatten();
        self.rms = views
            .iter()
            .map(|v| match (&first, v) {
                (Some((_, a)), Some((_, b))) => trace::rms_difference(b, a),
                _ => None,
            })
            .collect();
        if self.columns.len() < 2 {
            return;
        }
        let text: Vec<String> = self.columns[1..]
            .iter()
            .zip(&self.rms[1..])
            .map(|(c, r)| match r {
                Some(r) => format!("{} {r:.3}", c.label),
                None => format!("{} –", c.label),
            })
            .collect();
        ui.label(format!(
            "RMS distance from {} at this stage (x0_pred):\n{}",
            self.columns[0].label,
            text.join(", ")
        ));
        let (Some((va, a)), Some((vb, b)), &[ch, h, w]) = (&first, &views[1], shape.as_slice())
        else {
            return;
        };
        let n = self.columns[0].session.n;
        let diff: Vec<f32> = b.iter().zip(a).map(|(x, y)| x - y).collect();
        let key = (
            self.columns[0].session.id,
            self.columns[1].session.id,
            va + 1000 * vb,
        );
        let caption = format!(
            "{} − {}: x0_pred difference (grey = equal)",
            self.columns[1].label, self.columns[0].label
        );
        let width = (ui.available_width() / 2.0).clamp(64.0, 240.0);
        if self.diff_shown != Some(key) || self.diff_texture.is_none() {
            let cols = (n as f64).sqrt().ceil() as usize;
            let img = images::grid(
                &diff,
                [n, ch, h, w],
                cols,
                images::Scale::Range([-1.0, 1.0]),
            );
            self.diff_shown = Some(key);
            images::panel(
                ui,
                &mut self.diff_texture,
                "compare-diff",
                img,
                &caption,
                width,
            );
        } else if let Some(t) = &self.diff_texture {
            let sz = t.size_vec2();
            ui.label(caption);
            ui.image((t.id(), egui::vec2(width, width * sz.y / sz.x)));
        }
    }

    /// One pixel (image models) or particle (2-D models) through every run, coloured by column.
    fn traces(&mut self, ui: &mut egui::Ui, m: &GaussianModel, fraction: f32) {
        let shape = m.denoiser.sample_shape().to_vec();
        let per_sample: usize = shape.iter().product();
        let Some(first) = self.columns.first() else {
            return;
        };
        let n = first.session.n;
        let runs: Vec<Vec<[f32; 3]>>;
        if let &[_, h, w] = shape.as_slice() {
            if self.pixel[0] >= h || self.pixel[1] >= w {
                self.pixel = [h / 2, w / 2];
            }
            ui.horizontal(|ui| {
                ui.label("follow the pixel at row");
                ui.add(egui::DragValue::new(&mut self.pixel[0]).range(0..=h - 1));
                ui.label("column");
                ui.add(egui::DragValue::new(&mut self.pixel[1]).range(0..=w - 1));
            });
            ui.label("of the first image: its x_t through each run (white: this stage)");
            let idx = self.pixel[0] * w + self.pixel[1];
            runs = self
                .columns
                .iter()
                .map(|c| trace::follow(&c.session, n * per_sample, |x| Some([*x.get(idx)?, 0.0])))
                .collect();
            self.legend(ui);
            trace::draw_pixel(ui, &runs, fraction, m.data_range);
        } else if shape == [2] {
            self.particle = self.particle.min(n.saturating_sub(1));
            ui.horizontal(|ui| {
                ui.label("follow particle");
                ui.add(egui::DragValue::new(&mut self.particle).range(0..=n.saturating_sub(1)));
                ui.label("through each run: its path from x_T to the viewed stage");
            });
            let p = self.particle;
            runs = self
                .columns
                .iter()
                .map(|c| {
                    trace::follow(&c.session, n * per_sample, |x| {
                        Some([*x.get(2 * p)?, *x.get(2 * p + 1)?])
                    })
                })
                .collect();
            self.legend(ui);
            trace::draw_particle(ui, &runs, fraction, m.data_range);
        }
    }

    fn legend(&self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            for (i, c) in self.columns.iter().enumerate() {
                ui.colored_label(
                    trace::COLOURS[i % trace::COLOURS.len()],
                    format!("— {}", c.label),
                );
            }
        });
    }

    /// What is varied, the runs compared and how far each is (the status JSON).
    pub fn status(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    serde_json::json!({
                        "label": c.label,
                        "sampler": c.session.run.settings.sampler.name(),
                        "steps": c.session.run.settings.steps,
                        "guidance": c.session.run.settings.guidance,
                        "seed": c.session.run.settings.seed,
                        "recorded": c.session.states.len(),
                        "evaluations": c.session.run.plan.len(),
                        "rms_from_first": self.rms.get(i).copied().flatten(),
                        "stage": self.fraction,
                    })
                })
                .collect(),
        )
    }
}
