//! Compare sequence runs side by side: the same x_T (the run's seed) under several temperatures or
//! un-masking orders (`pipelines::sequence::variation`), stepping together, one column each, with
//! how the runs differ — the share of positions where each differs from the first run at the viewed
//! step, and how many distinct sequences each has (greedier sampling repeats itself).

use std::sync::Arc;

use super::draw::token_rows;
use super::stepping::SeqRun;
use crate::app::vary::VaryChoice;
use crate::pipelines::sequence::variation::SeqVariation;
use crate::pipelines::sequence::SequenceModel;
use crate::process::discrete::{Padding, Unmasking};
use egui::RichText;

struct Column {
    label: String,
    run: SeqRun,
}

pub(super) struct SeqComparison {
    /// What the runs differ in, and its values in column order.
    pub vary: VaryChoice<SeqVariation>,
    columns: Vec<Column>,
    /// Why the runs could not start (shown in place of the columns).
    refused: Option<String>,
    /// The step last drawn.
    viewed: usize,
}

impl Default for SeqComparison {
    fn default() -> Self {
        SeqComparison::of(SeqVariation::default())
    }
}

/// The switch and, while it is on, what to vary; true when either changed.
pub(super) fn switch(
    ui: &mut egui::Ui,
    compare: &mut Option<SeqComparison>,
    absorbing: bool,
) -> bool {
    let mut on = compare.is_some();
    let r = ui.checkbox(&mut on, "compare runs side by side");
    let mut changed = false;
    if crate::app::highlight::mark(ui, "compare", r)
        .on_hover_text("the same x_T under several temperatures or un-masking orders, at once")
        .changed()
    {
        *compare = on.then(SeqComparison::default);
        changed = true;
    }
    if let Some(c) = compare {
        changed |= c.controls(ui, absorbing);
    }
    changed
}

impl SeqComparison {
    pub fn of(varied: SeqVariation) -> SeqComparison {
        SeqComparison {
            vary: VaryChoice::new(varied),
            columns: Vec::new(),
            refused: None,
            viewed: 0,
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui, absorbing: bool) -> bool {
        let changed = self
            .vary
            .kind_menu(ui, "seq-compare-vary", |k| absorbing || k != "unmask");
        changed | self.vary.values_field(ui)
    }

    /// One run per value, all from the run's seed (so the same x_T), the rest of the run's settings.
    pub fn start(
        &mut self,
        m: &SequenceModel,
        n: usize,
        seed: u64,
        (temperature, order, padding): (f32, Unmasking, Padding),
    ) -> crate::Result<()> {
        self.columns.clear();
        self.refused = None;
        let variants = match self
            .vary
            .varied
            .variants(temperature, order, m.process.absorbing())
        {
            Ok(v) => v,
            Err(crate::Error::Invalid(why)) => {
                self.refused = Some(why);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for v in variants {
            let run = SeqRun::start(m, n, seed, v.temperature)?.drawing(m, (v.order, padding))?;
            self.columns.push(Column {
                label: v.label,
                run,
            });
        }
        Ok(())
    }

    /// Something to show in place of the single run.
    pub fn running(&self) -> bool {
        !self.columns.is_empty() || self.refused.is_some()
    }

    pub fn pump(&mut self, m: &Arc<SequenceModel>, play: bool) -> crate::Result<()> {
        for c in &mut self.columns {
            c.run.pump(m, play)?;
        }
        Ok(())
    }

    pub fn busy(&self) -> bool {
        self.columns.iter().any(|c| !c.run.done())
    }

    /// Each run's viewed frame: (share of positions that differ from the first run's, distinct
    /// sequences).
    fn differences(&self, viewed: usize) -> Vec<Option<(f32, usize)>> {
        fn frame(c: &Column, viewed: usize) -> Option<&super::stepping::SeqFrame> {
            let f = c.run.frames.len().checked_sub(1)?;
            c.run.frames.get(viewed.min(f))
        }
        let first = self.columns.first().and_then(|c| frame(c, viewed));
        self.columns
            .iter()
            .map(|c| {
                let f = frame(c, viewed)?;
                let a = first?;
                let differ = f.ids.iter().zip(&a.ids).filter(|(x, y)| x != y).count();
                let l = (f.ids.len() / c.run.n.max(1)).max(1);
                let distinct = f
                    .ids
                    .chunks(l)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                Some((differ as f32 / f.ids.len().max(1) as f32, distinct))
            })
            .collect()
    }

    pub fn draw(&mut self, ui: &mut egui::Ui, m: &SequenceModel, viewed: usize) {
        self.viewed = viewed;
        if let Some(why) = &self.refused {
            ui.colored_label(egui::Color32::YELLOW, format!("not compared: {why}"));
            return;
        }
        ui.label(
            "The same x_T through each run, at the same step. Outlined: where a run differs from \
             the first at this step.",
        );
        let diffs = self.differences(viewed);
        let first = self
            .columns
            .first()
            .and_then(|c| {
                c.run
                    .frames
                    .get(viewed.min(c.run.frames.len().checked_sub(1)?))
            })
            .map(|f| f.ids.clone());
        // Side by side where every column's rows fit (words), else one above the other (DNA).
        let k = self.columns.len().max(1);
        let l = m.config.seq_len.max(1) as f32;
        let side_by_side = ui.available_width() / k as f32 >= l * 16.0 + 24.0;
        egui::ScrollArea::vertical()
            .id_salt("seq-compare")
            .show(ui, |ui| {
                let one = |ui: &mut egui::Ui, c: &Column, d: &Option<(f32, usize)>| {
                    let Some(f) = c
                        .run
                        .frames
                        .get(viewed.min(c.run.frames.len().saturating_sub(1)))
                    else {
                        ui.label(&c.label);
                        return;
                    };
                    ui.label(RichText::new(&c.label).strong());
                    if let Some((share, distinct)) = d {
                        ui.label(format!(
                            "differs from the first at {:.0} % of positions · {distinct} of {} \
                             sequences distinct",
                            share * 100.0,
                            c.run.n
                        ));
                    }
                    let ids = &f.ids;
                    token_rows(
                        ui,
                        m,
                        ids,
                        |_| 1.0,
                        |i| first.as_ref().is_some_and(|a| a.get(i) != ids.get(i)),
                        None,
                    );
                    ui.add_space(6.0);
                };
                if side_by_side {
                    ui.columns(k, |cols| {
                        for ((ui, c), d) in cols.iter_mut().zip(&self.columns).zip(&diffs) {
                            one(ui, c, d);
                        }
                    });
                } else {
                    for (c, d) in self.columns.iter().zip(&diffs) {
                        one(ui, c, d);
                    }
                }
            });
    }

    pub fn status(&self) -> serde_json::Value {
        let diffs = self.differences(self.viewed);
        serde_json::Value::Array(
            self.columns
                .iter()
                .zip(diffs)
                .map(|(c, d)| {
                    serde_json::json!({
                        "label": c.label,
                        "temperature": c.run.run.temperature,
                        "unmask": c.run.run.order.name(),
                        "recorded": c.run.frames.len(),
                        "evaluations": c.run.total() - 1,
                        "differs_from_first": d.map(|d| d.0),
                        "distinct": d.map(|d| d.1),
                    })
                })
                .collect(),
        )
    }
}
