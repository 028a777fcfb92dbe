//! The frame the app's line plots draw in (noise schedules, loss curves, a pixel's trace): a box of
//! `size` points with a grey border, and the area inside its margin for the plot itself.

use egui::{Color32, Sense, Stroke, Vec2};

/// Allocate a framed plot of `size` and return its painter and the inner rectangle (`margin` in).
pub fn framed(ui: &mut egui::Ui, size: Vec2, margin: f32) -> (egui::Painter, egui::Rect) {
    let (resp, painter) = ui.allocate_painter(size, Sense::hover());
    painter.rect_stroke(
        resp.rect,
        2.0,
        Stroke::new(1.0, Color32::from_gray(90)),
        egui::StrokeKind::Inside,
    );
    (painter, resp.rect.shrink(margin))
}
