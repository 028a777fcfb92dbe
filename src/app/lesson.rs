//! A lesson open in the app: its panel (the step's title, text and formula, back and next) and
//! carrying each step out on the real app — opening its model with its settings, showing the forward
//! explorer at t or playing the reverse run up to step k and pausing there, and outlining the
//! controls the step is about. Between steps everything stays live: the user can change any
//! setting, and the next step changes only what it asks for.

use super::{highlight, DiffscopeApp};
use crate::lessons::{Lesson, Settings, View};
use egui::{Color32, RichText};

pub struct OpenLesson {
    pub lesson: Lesson,
    /// The step shown (from 0).
    pub step: usize,
    /// The model and settings this lesson last set the app to: a step asking for the same ones
    /// leaves the run (and whatever the user changed since) alone; another reopens the model, so
    /// a step looks the same however it was reached.
    applied: Option<(String, Settings)>,
    /// The step's view waits for its model to open (in the browser its files may be on the way).
    pending_view: bool,
}

impl OpenLesson {
    pub fn step(&self) -> &crate::lessons::Step {
        &self.lesson.steps[self.step]
    }
}

/// What the panel's buttons asked for.
enum Go {
    Back,
    Next,
    Close,
}

impl DiffscopeApp {
    /// Open `lesson` at `step` (from 0; a larger one is its last step).
    pub fn with_lesson(mut self, lesson: Lesson, step: usize) -> Self {
        self.start_lesson(lesson, step);
        self
    }

    pub(super) fn start_lesson(&mut self, lesson: Lesson, step: usize) {
        let step = step.min(lesson.steps.len() - 1);
        self.lesson = Some(OpenLesson {
            lesson,
            step,
            applied: None,
            pending_view: false,
        });
        self.enter_lesson_step();
    }

    /// Carry out the lesson's current step: its model and settings now (unless they are what the
    /// lesson last set), its view once that model is open.
    fn enter_lesson_step(&mut self) {
        let Some(l) = &mut self.lesson else { return };
        let step = l.step().clone();
        let wanted = (step.model.clone(), step.settings.clone());
        l.pending_view = true;
        if let Some(ctx) = &self.ctx {
            highlight::set(ctx, &step.highlight);
        }
        let open = self.run.as_ref().map(|r| r.model_name().to_string());
        if l.applied.as_ref() == Some(&wanted) && open.as_deref() == Some(step.model.as_str()) {
            return;
        }
        l.applied = Some(wanted);
        let mut link = super::Link::from(&step.settings);
        link.model = Some(step.model.clone());
        self.link = Some(link);
        self.open_shipped(&step.model);
    }

    /// Per frame: once the step's model is open, show its view; keep the outlines set.
    pub(super) fn drive_lesson(&mut self, ctx: &egui::Context) {
        let Some(l) = &mut self.lesson else { return };
        highlight::set(ctx, &l.step().highlight);
        if !l.pending_view {
            return;
        }
        let Some(run) = &mut self.run else { return };
        if run.model_name() != l.step().model || run.progress().is_none() {
            return;
        }
        l.pending_view = false;
        match l.step().view {
            View::Forward(t) => run.show_forward(Some(t)),
            View::Reverse => {
                run.show_forward(None);
                self.timeline.play_on();
            }
            View::ReverseAt(k) => {
                run.show_forward(None);
                let recorded = run.progress().map_or(0, |p| p.recorded);
                self.timeline.hold_at(k, recorded);
            }
        }
        ctx.request_repaint();
    }

    /// The lesson's panel (right of the view), when one is open.
    pub(super) fn lesson_panel(&mut self, ui: &mut egui::Ui) {
        let Some(l) = &self.lesson else { return };
        let mut go = None;
        // A presenter's clicker sends Page Down / Page Up.
        ui.input(|i| {
            if i.key_pressed(egui::Key::PageDown) {
                go = Some(Go::Next);
            } else if i.key_pressed(egui::Key::PageUp) {
                go = Some(Go::Back);
            }
        });
        egui::Panel::right("lesson")
            .default_size(320.0)
            .min_size(240.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.weak(format!(
                            "Lesson · step {} of {}",
                            l.step + 1,
                            l.lesson.steps.len()
                        ));
                        if ui.small_button("close lesson").clicked() {
                            go = Some(Go::Close);
                        }
                    });
                    ui.label(RichText::new(&l.lesson.title).strong());
                    ui.separator();
                    let s = l.step();
                    ui.heading(&s.title);
                    ui.add_space(4.0);
                    ui.label(&s.text);
                    if let Some(f) = &s.formula {
                        ui.add_space(6.0);
                        egui::Frame::group(ui.style()).show(ui, |ui| {
                            ui.label(
                                RichText::new(f)
                                    .size(17.0)
                                    .color(ui.visuals().strong_text_color()),
                            );
                        });
                    }
                    if !s.highlight.is_empty() {
                        ui.add_space(6.0);
                        let names: Vec<&str> = s
                            .highlight
                            .iter()
                            .filter_map(|k| {
                                crate::lessons::HIGHLIGHTS
                                    .iter()
                                    .find(|(h, _)| h == k)
                                    .map(|(_, what)| *what)
                            })
                            .collect();
                        ui.label(
                            RichText::new(format!("Look at (outlined): {}", names.join("; ")))
                                .small()
                                .color(Color32::from_rgb(255, 190, 40)),
                        );
                    }
                    ui.add_space(8.0);
                    ui.horizontal(|ui| {
                        let first = l.step == 0;
                        let last = l.step + 1 == l.lesson.steps.len();
                        if ui.add_enabled(!first, egui::Button::new("Back")).clicked() {
                            go = Some(Go::Back);
                        }
                        if ui.add_enabled(!last, egui::Button::new("Next")).clicked() {
                            go = Some(Go::Next);
                        }
                    });
                    ui.weak("Page Down / Page Up also move between steps.");
                });
            });
        let Some(go) = go else { return };
        let Some(l) = &mut self.lesson else { return };
        let n = l.lesson.steps.len();
        match go {
            Go::Close => {
                self.lesson = None;
                highlight::set(ui.ctx(), &[]);
                return;
            }
            Go::Back if l.step > 0 => l.step -= 1,
            Go::Next if l.step + 1 < n => l.step += 1,
            _ => return,
        }
        self.enter_lesson_step();
    }

    /// The list of lessons in the side panel: one click starts one.
    pub(super) fn lessons_list(&mut self, ui: &mut egui::Ui) {
        let mut start = None;
        // Closed at first: open, its eight entries push the model's controls down a laptop screen.
        egui::CollapsingHeader::new(format!(
            "Lessons ({})",
            crate::lessons::shipped_files().len()
        ))
        .default_open(false)
        .show(ui, |ui| {
            for l in crate::lessons::shipped() {
                let open = self
                    .lesson
                    .as_ref()
                    .is_some_and(|o| o.lesson.name == l.name);
                if ui
                    .selectable_label(open, &l.title)
                    .on_hover_text(&l.summary)
                    .clicked()
                {
                    start = Some(l);
                }
            }
            let mut large = ui.ctx().zoom_factor() > 1.2;
            if ui
                .checkbox(&mut large, "presentation mode (large text)")
                .on_hover_text("everything 1.5× larger, for a projector")
                .changed()
            {
                ui.ctx().set_zoom_factor(if large { 1.5 } else { 1.0 });
            }
        });
        if let Some(l) = start {
            self.start_lesson(l.clone(), 0);
        }
    }

    /// A lesson step that holds the run at a step has got there (nothing more will happen until
    /// the user acts). The native self-check waits for it.
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn lesson_settled(&self) -> bool {
        self.lesson.as_ref().is_some_and(|l| {
            !l.pending_view && matches!(l.step().view, View::ReverseAt(_)) && !self.timeline.playing
        })
    }

    /// The lesson's part of the status JSON (null when none is open).
    pub(super) fn lesson_status(&self) -> serde_json::Value {
        match &self.lesson {
            Some(l) => serde_json::json!({
                "name": l.lesson.name,
                "step": l.step + 1,
                "steps": l.lesson.steps.len(),
                "title": l.step().title,
                "waiting": l.pending_view,
            }),
            None => serde_json::Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    /// A glyph the app's fonts lack is drawn as an empty box: a formula with one is unreadable.
    #[test]
    fn every_character_of_every_shipped_lesson_has_a_glyph() {
        let ctx = egui::Context::default();
        let mut out = ctx.run_ui(Default::default(), |_| {});
        out.textures_delta.clear();
        let font = egui::FontId::proportional(14.0);
        let mut missing = std::collections::BTreeSet::new();
        ctx.fonts_mut(|f| {
            for l in crate::lessons::shipped() {
                let texts = l.steps.iter().flat_map(|s| {
                    [Some(&s.title), Some(&s.text), s.formula.as_ref()]
                        .into_iter()
                        .flatten()
                });
                for t in texts.chain([&l.title, &l.summary]) {
                    for c in t.chars().filter(|&c| !f.has_glyph(&font, c)) {
                        missing.insert((l.name.clone(), c));
                    }
                }
            }
        });
        assert!(missing.is_empty(), "no glyph for {missing:?}");
    }
}
