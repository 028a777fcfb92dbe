//! Pointing at controls: a lesson step names the controls it is about (`lessons::HIGHLIGHTS`), and
//! wherever one is drawn its family calls [`mark`] with its response, which outlines it. The keys
//! live in the UI context's memory for the frame, so no family needs to know a lesson is open.

use egui::{Color32, Stroke};

/// The outline's colour: amber, readable on the dark theme and on a projector.
const OUTLINE: Color32 = Color32::from_rgb(255, 190, 40);

fn id() -> egui::Id {
    egui::Id::unique("diffscope-highlight")
}

/// Outline these controls from now on (an empty list clears the outlines).
pub fn set(ctx: &egui::Context, keys: &[String]) {
    ctx.data_mut(|d| d.insert_temp(id(), std::sync::Arc::new(keys.to_vec())));
}

/// Whether the control `key` is pointed at.
pub fn active(ctx: &egui::Context, key: &str) -> bool {
    ctx.data(|d| d.get_temp::<std::sync::Arc<Vec<String>>>(id()))
        .is_some_and(|keys| keys.iter().any(|k| k == key))
}

/// Outline `response`'s widget if the control `key` is pointed at; returns the response.
pub fn mark(ui: &egui::Ui, key: &str, response: egui::Response) -> egui::Response {
    if active(ui.ctx(), key) {
        ui.painter().rect_stroke(
            response.rect.expand(3.0),
            4.0,
            Stroke::new(2.0, OUTLINE),
            egui::StrokeKind::Outside,
        );
    }
    response
}

/// Outline everything `add` draws if the control `key` is pointed at.
pub fn mark_scope<R>(ui: &mut egui::Ui, key: &str, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    let r = ui.scope(add);
    mark(ui, key, r.response);
    r.inner
}
