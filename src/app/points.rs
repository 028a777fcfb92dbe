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

/// How long a trail segment may be drawn, as a share of the view's side. At high noise a reverse step
/// moves a particle by a large random jump; drawn whole, a thousand such jumps are a hairball of lines
/// that hides the particles. Longer moves keep only their newest part (a short tail that shows which
/// way the particle went), and older segments are drawn only while the motion is smooth.
const TRAIL_MAX_SHARE: f32 = 0.035;

/// Opacity of the newest trail segment; older ones fade towards 0.
const TRAIL_OPACITY: f32 = 0.45;

/// Where the data point (x, y) is drawn in a plot of `rect` over data range `range`.
pub fn to_screen(rect: egui::Rect, range: [f32; 2], x: f32, y: f32) -> Pos2 {
    let [lo, hi] = crate::picture::points_frame(range);
    Pos2::new(
        rect.left() + (x - lo) / (hi - lo) * rect.width(),
        rect.bottom() - (y - lo) / (hi - lo) * rect.height(),
    )
}

/// `states`: oldest first, each `[N·2]`; the last is drawn as dots, the others as trail segments that
/// fade with age and stay short (see [`TRAIL_MAX_SHARE`]). Returns the plot's rectangle (for
/// drawing over it).
pub fn draw(
    ui: &mut egui::Ui,
    states: &[&[f32]],
    labels: Option<&[u32]>,
    range: [f32; 2],
) -> egui::Rect {
    let side = ui.available_width().min(ui.available_height()).max(100.0);
    let (resp, painter) = ui.allocate_painter(Vec2::splat(side), Sense::hover());
    let r = resp.rect;
    painter.rect_filled(r, 4.0, Color32::from_gray(250));
    let to = |x: f32, y: f32| to_screen(r, range, x, y);
    let Some(last) = states.last() else { return r };
    let colour = |i: usize| {
        COLOURS[labels.map_or(0, |l| l.get(i).copied().unwrap_or(0) as usize) % COLOURS.len()]
    };
    let max_len = side * TRAIL_MAX_SHARE;
    let segments = states.len().saturating_sub(1);
    for (k, w) in states.windows(2).enumerate() {
        let newest = k + 1 == segments;
        let fade = TRAIL_OPACITY * (k + 1) as f32 / segments as f32;
        for (i, (a, b)) in w[0].chunks_exact(2).zip(w[1].chunks_exact(2)).enumerate() {
            let (pa, pb) = (to(a[0], a[1]), to(b[0], b[1]));
            let d = pb - pa;
            let len = d.length();
            if !len.is_finite() || len == 0.0 || (len > max_len && !newest) {
                continue;
            }
            let pa = if len > max_len {
                pb - d * (max_len / len)
            } else {
                pa
            };
            painter.line_segment([pa, pb], Stroke::new(1.0, colour(i).gamma_multiply(fade)));
        }
    }
    for (i, p) in last.chunks_exact(2).enumerate() {
        if p[0].is_finite() && p[1].is_finite() {
            painter.circle_filled(to(p[0], p[1]), 1.8, colour(i));
        }
    }
    r
}
