//! A labelled heatmap of probabilities in [0, 1]: transition matrices Q_t / Qbar_t (rows = from, columns
//! = to) and per-position categorical distributions (rows = classes, columns = positions). Hovering a
//! cell shows its value, so the picture can be read exactly.

use egui::{Color32, FontId, Sense, Vec2};

/// A dark-to-bright ramp (black → blue → teal → yellow): 0 is background, near-certainty glows.
pub fn color(p: f32) -> Color32 {
    let p = p.clamp(0.0, 1.0);
    let stops = [
        (0.0, [12.0, 12.0, 20.0]),
        (0.25, [40.0, 50.0, 140.0]),
        (0.6, [30.0, 160.0, 150.0]),
        (1.0, [250.0, 230.0, 60.0]),
    ];
    let mut i = 0;
    while i + 2 < stops.len() && p > stops[i + 1].0 {
        i += 1;
    }
    let (a, ca) = stops[i];
    let (b, cb) = stops[i + 1];
    let f = ((p - a) / (b - a)).clamp(0.0, 1.0);
    let c = |k: usize| (ca[k] + f * (cb[k] - ca[k])) as u8;
    Color32::from_rgb(c(0), c(1), c(2))
}

/// `values` is `rows × cols`, row-major. Labels are drawn left of rows and above columns when given
/// (one character or a short number each). `cell` is the side of a cell in points.
pub fn draw(
    ui: &mut egui::Ui,
    values: &[f32],
    rows: usize,
    cols: usize,
    row_labels: &[String],
    col_labels: &[String],
    cell: f32,
) {
    let longest = row_labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let margin = if longest == 0 {
        0.0
    } else {
        8.0 + 7.0 * longest as f32
    };
    let top = if col_labels.is_empty() { 0.0 } else { 14.0 };
    let size = Vec2::new(margin + cell * cols as f32, top + cell * rows as f32);
    let (resp, painter) = ui.allocate_painter(size, Sense::hover());
    let origin = resp.rect.min + Vec2::new(margin, top);
    let font = FontId::monospace((cell * 0.8).clamp(7.0, 12.0));
    let text = ui.visuals().text_color();
    for (r, l) in row_labels.iter().enumerate().take(rows) {
        painter.text(
            origin + Vec2::new(-3.0, (r as f32 + 0.5) * cell),
            egui::Align2::RIGHT_CENTER,
            l,
            font.clone(),
            text,
        );
    }
    for (c, l) in col_labels.iter().enumerate().take(cols) {
        painter.text(
            origin + Vec2::new((c as f32 + 0.5) * cell, -2.0),
            egui::Align2::CENTER_BOTTOM,
            l,
            font.clone(),
            text,
        );
    }
    for r in 0..rows {
        for c in 0..cols {
            let v = values.get(r * cols + c).copied().unwrap_or(0.0);
            let rect = egui::Rect::from_min_size(
                origin + Vec2::new(c as f32 * cell, r as f32 * cell),
                Vec2::splat(cell),
            );
            painter.rect_filled(rect.shrink(0.5), 0.0, color(v));
        }
    }
    legend(ui, margin);
    if let Some(pos) = resp.hover_pos() {
        let d = pos - origin;
        let (c, r) = ((d.x / cell).floor(), (d.y / cell).floor());
        if c >= 0.0 && r >= 0.0 && (c as usize) < cols && (r as usize) < rows {
            let (r, c) = (r as usize, c as usize);
            let name = |l: &[String], i: usize| l.get(i).cloned().unwrap_or_else(|| i.to_string());
            let v = values.get(r * cols + c).copied().unwrap_or(0.0);
            resp.on_hover_text(format!(
                "{} → {}: {v:.4}",
                name(row_labels, r),
                name(col_labels, c)
            ));
        }
    }
}

/// The colour scale under every heatmap: the ramp from 0 to 1 with its ends and middle marked.
fn legend(ui: &mut egui::Ui, margin: f32) {
    let (w, h) = (150.0, 8.0);
    let (resp, painter) =
        ui.allocate_painter(Vec2::new(margin + w + 90.0, h + 12.0), Sense::hover());
    let left = resp.rect.min + Vec2::new(margin, 0.0);
    let steps = 60;
    for i in 0..steps {
        let x = i as f32 / steps as f32;
        let r = egui::Rect::from_min_size(
            left + Vec2::new(x * w, 0.0),
            Vec2::new(w / steps as f32 + 0.5, h),
        );
        painter.rect_filled(r, 0.0, color(x + 0.5 / steps as f32));
    }
    let font = FontId::proportional(9.0);
    let text = ui.visuals().weak_text_color();
    for (x, l) in [(0.0, "0"), (0.5, "0.5"), (1.0, "1 (probability)")] {
        let align = if x == 1.0 {
            egui::Align2::LEFT_TOP
        } else {
            egui::Align2::CENTER_TOP
        };
        let at = left + Vec2::new(x * w - if x == 1.0 { 4.0 } else { 0.0 }, h + 1.0);
        painter.text(at, align, l, font.clone(), text);
    }
}

/// Printable labels for a vocabulary (the pad token, often a space or `_`, is shown as `·`).
pub fn vocab_labels(vocab: &[char], pad: Option<usize>) -> Vec<String> {
    vocab
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if Some(i) == pad {
                "·".to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::color;

    #[test]
    fn ramp_is_monotone_in_brightness_and_clamped() {
        let lum = |p: f32| {
            let c = color(p);
            c.r() as u32 + c.g() as u32 + c.b() as u32
        };
        let mut last = 0;
        for i in 0..=20 {
            let l = lum(i as f32 / 20.0);
            assert!(l >= last, "brightness fell at {}", i as f32 / 20.0);
            last = l;
        }
        assert_eq!(color(-1.0), color(0.0));
        assert_eq!(color(2.0), color(1.0));
        assert_ne!(color(0.0), color(1.0));
    }
}
