//! 2-D particles with short trails (the last few states, fading).

use egui::{Color32, Pos2, Sense, Stroke, Vec2};

const COLOURS: [Color32; 6] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
];

/// `states`: oldest first, each `[N·2]`; the last is drawn as dots, the others as trail segments.
pub fn draw(ui: &mut egui::Ui, states: &[&[f32]], labels: Option<&[u32]>, range: [f32; 2]) {
    let side = ui.available_width().min(ui.available_height()).max(100.0);
    let (resp, painter) = ui.allocate_painter(Vec2::splat(side), Sense::hover());
    let r = resp.rect;
    painter.rect_filled(r, 4.0, Color32::from_gray(250));
    let [lo, hi] = crate::picture::points_frame(range);
    let to = |x: f32, y: f32| {
        Pos2::new(
            r.left() + (x - lo) / (hi - lo) * r.width(),
            r.bottom() - (y - lo) / (hi - lo) * r.height(),
        )
    };
    let Some(last) = states.last() else { return };
    let colour = |i: usize| {
        COLOURS[labels.map_or(0, |l| l.get(i).copied().unwrap_or(0) as usize) % COLOURS.len()]
    };
    for w in states.windows(2) {
        for (i, (a, b)) in w[0].chunks_exact(2).zip(w[1].chunks_exact(2)).enumerate() {
            painter.line_segment(
                [to(a[0], a[1]), to(b[0], b[1])],
                Stroke::new(1.0, colour(i).gamma_multiply(0.35)),
            );
        }
    }
    for (i, p) in last.chunks_exact(2).enumerate() {
        if p[0].is_finite() && p[1].is_finite() {
            painter.circle_filled(to(p[0], p[1]), 1.8, colour(i));
        }
    }
}
