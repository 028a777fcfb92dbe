//! A per-step loss curve as the forward explorers draw it: one value per grid timestep on a log
//! scale, the explorer's t marked, the extremes labelled. Shared by the Gaussian, sequence and graph
//! curves; each computes its own terms.

use egui::{Color32, Pos2, Sense, Stroke, Vec2};

/// `points` as (timestep, value > 0) over timesteps `0..=last`, with `at` marked.
pub fn draw(ui: &mut egui::Ui, points: &[(usize, f32)], last: usize, at: usize) {
    let tt = last.max(1) as f32;
    let w = ui.available_width().clamp(160.0, 520.0);
    let (resp, painter) = ui.allocate_painter(Vec2::new(w, 110.0), Sense::hover());
    let r = resp.rect.shrink(6.0);
    painter.rect_stroke(
        resp.rect,
        2.0,
        Stroke::new(1.0, Color32::from_gray(90)),
        egui::StrokeKind::Inside,
    );
    if points.is_empty() {
        return;
    }
    let logs: Vec<f32> = points.iter().map(|p| p.1.max(1e-6).log10()).collect();
    let lo = logs.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = logs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let span = (hi - lo).max(1e-3);
    let to = |t: usize, l: f32| {
        Pos2::new(
            r.left() + t as f32 / tt * r.width(),
            r.bottom() - (l - lo) / span * r.height(),
        )
    };
    let line: Vec<Pos2> = points.iter().zip(&logs).map(|(p, &l)| to(p.0, l)).collect();
    painter.add(egui::Shape::line(
        line,
        Stroke::new(1.5, Color32::from_rgb(240, 170, 80)),
    ));
    let x = r.left() + at as f32 / tt * r.width();
    painter.vline(x, r.y_range(), Stroke::new(1.0, Color32::WHITE));
    for (pos, align, v) in [
        (r.left_top(), egui::Align2::LEFT_TOP, hi),
        (r.left_bottom(), egui::Align2::LEFT_BOTTOM, lo),
    ] {
        painter.text(
            pos,
            align,
            format!("{:.2e}", 10f32.powf(v)),
            egui::FontId::proportional(10.0),
            Color32::GRAY,
        );
    }
    painter.text(
        r.right_bottom(),
        egui::Align2::RIGHT_BOTTOM,
        format!("t = {last}"),
        egui::FontId::proportional(10.0),
        Color32::GRAY,
    );
}

/// For the status JSON: the grid's size, whether every term is finite and non-negative, its ends,
/// and `total` (the curve's estimate of the sum over every step).
pub fn status(points: &[(usize, f32)], total: f32) -> serde_json::Value {
    serde_json::json!({
        "points": points.len(),
        "finite_non_negative": points.iter().all(|p| p.1.is_finite() && p.1 >= 0.0),
        "first": points.first().map(|p| p.1),
        "last": points.last().map(|p| p.1),
        "total": total,
    })
}
