//! Compared runs read side by side as numbers: one pixel of the first image followed through every
//! recorded step of each run (its x_t over the fraction of the run done), or for a 2-D model one
//! particle's path in the plane; and how far two runs' pictures are apart at the viewed stage.

use super::stepping::{split_frame, Session};
use crate::app::points;
use egui::{Color32, Pos2, Sense, Stroke, Vec2};

/// One colour per compared run, in column order.
pub const COLOURS: [Color32; 6] = [
    Color32::from_rgb(90, 160, 255),
    Color32::from_rgb(255, 140, 60),
    Color32::from_rgb(120, 210, 120),
    Color32::from_rgb(230, 90, 200),
    Color32::from_rgb(240, 220, 80),
    Color32::from_rgb(160, 160, 160),
];

/// `value(x)` of every recorded state of `s` (x = the state's floats), as (fraction of the run, value).
pub fn follow(
    s: &Session,
    per: usize,
    value: impl Fn(&[f32]) -> Option<[f32; 2]>,
) -> Vec<[f32; 3]> {
    let total = s.run.plan.len().max(1) as f32;
    (0..s.states.len())
        .filter_map(|k| {
            let x = split_frame(s.states.get(k)?, per).0;
            let [a, b] = value(x)?;
            Some([k as f32 / total, a, b])
        })
        .collect()
}

/// Root-mean-square of `a − b` (NaN-free inputs), or `None` when their lengths differ.
pub fn rms_difference(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let ss: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum();
    Some((ss / a.len() as f64).sqrt() as f32)
}

/// A pixel's value against the fraction of the run, one line per run, the viewed stage marked.
pub fn draw_pixel(ui: &mut egui::Ui, runs: &[Vec<[f32; 3]>], fraction: f32, range: [f32; 2]) {
    let w = ui.available_width().clamp(120.0, 420.0);
    let (painter, r) = crate::app::plot_frame::framed(ui, Vec2::new(w, 120.0), 6.0);
    // The data range, widened to what the runs reach (x_T is unit noise).
    let (mut lo, mut hi) = (range[0], range[1]);
    for p in runs.iter().flatten() {
        if p[1].is_finite() {
            lo = lo.min(p[1]);
            hi = hi.max(p[1]);
        }
    }
    let span = (hi - lo).max(1e-6);
    let at = |f: f32, v: f32| {
        Pos2::new(
            r.left() + f * r.width(),
            r.bottom() - (v - lo) / span * r.height(),
        )
    };
    let zero = at(0.0, 0.0).y;
    if zero > r.top() && zero < r.bottom() {
        painter.hline(r.x_range(), zero, Stroke::new(0.5, Color32::from_gray(80)));
    }
    for (i, run) in runs.iter().enumerate() {
        let line: Vec<Pos2> = run
            .iter()
            .filter(|p| p[1].is_finite())
            .map(|p| at(p[0], p[1]))
            .collect();
        painter.add(egui::Shape::line(
            line,
            Stroke::new(1.5, COLOURS[i % COLOURS.len()]),
        ));
    }
    let x = r.left() + fraction.clamp(0.0, 1.0) * r.width();
    painter.vline(x, r.y_range(), Stroke::new(1.0, Color32::WHITE));
}

/// A particle's path in the plane, one polyline per run, ending in a dot at the viewed stage.
pub fn draw_particle(ui: &mut egui::Ui, runs: &[Vec<[f32; 3]>], fraction: f32, range: [f32; 2]) {
    let side = ui.available_width().clamp(120.0, 260.0);
    let (resp, painter) = ui.allocate_painter(Vec2::splat(side), Sense::hover());
    let r = resp.rect;
    painter.rect_filled(r, 4.0, Color32::from_gray(250));
    for (i, run) in runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let seen: Vec<Pos2> = run
            .iter()
            .filter(|p| p[0] <= fraction + 1e-6 && p[1].is_finite() && p[2].is_finite())
            .map(|p| points::to_screen(r, range, p[1], p[2]))
            .filter(|p| r.expand(20.0).contains(*p))
            .collect();
        if let Some(&last) = seen.last() {
            painter.circle_filled(last, 3.5, colour);
        }
        painter.add(egui::Shape::line(seen, Stroke::new(1.5, colour)));
    }
}
