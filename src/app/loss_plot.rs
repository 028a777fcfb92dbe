//! A per-step loss curve as the forward explorers draw it: one value per grid timestep on a log
//! scale, the explorer's t marked, the extremes labelled. Shared by the Gaussian, sequence and graph
//! curves; each computes its own terms.

use egui::{Color32, Pos2, Stroke, Vec2};

/// `points` as (timestep, value > 0) over timesteps `0..=last`, with `at` marked.
pub fn draw(ui: &mut egui::Ui, points: &[(usize, f32)], last: usize, at: usize) {
    let tt = last.max(1) as f32;
    let w = ui.available_width().clamp(160.0, 520.0);
    let (painter, r) = super::plot_frame::framed(ui, Vec2::new(w, 110.0), 6.0);
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

/// The newest curve and what it was computed for (`K`: the example or graph and the seed): kept
/// until a curve for another key replaces it.
pub struct Kept<K>(Option<(K, Vec<(usize, f32)>)>);

impl<K> Default for Kept<K> {
    fn default() -> Self {
        Kept(None)
    }
}

impl<K: PartialEq> Kept<K> {
    /// The curve for `key`, if it is the one kept.
    pub fn get(&self, key: &K) -> Option<&[(usize, f32)]> {
        self.0
            .as_ref()
            .filter(|c| &c.0 == key)
            .map(|c| c.1.as_slice())
    }

    pub fn set(&mut self, key: K, points: Vec<(usize, f32)>) {
        self.0 = Some((key, points));
    }
}

/// What a forward explorer shows while its curve is computed.
pub fn on_its_way(ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.weak("the loss per step is on its way");
    });
}
