//! Sequences drawn as rows of tokens. Each cell is shaded by the model's probability for the token it
//! shows, tokens that changed at the viewed step are outlined, and the mask token is drawn as an
//! empty slot — so absorbing noise visibly un-masks letter by letter.

use super::super::heatmap;
use super::stepping::SeqRun;
use crate::pipelines::sequence::SequenceModel;
use egui::{Color32, RichText, Sense, Stroke, Vec2};

/// One row of token cells per sequence (`ids` is `[rows, L]`). `shade(i)` is the confidence of flat
/// position `i` (light = sure), `changed(i)` outlines the cell. Returns the row that was clicked.
pub(super) fn token_rows(
    ui: &mut egui::Ui,
    m: &SequenceModel,
    ids: &[u32],
    shade: impl Fn(usize) -> f32,
    changed: impl Fn(usize) -> bool,
    selected: Option<usize>,
) -> Option<usize> {
    let vocab = m.vocab();
    let l = m.config.seq_len.max(1);
    let cell = ((ui.available_width() - 20.0) / l as f32).clamp(12.0, 28.0);
    let font = egui::FontId::monospace(cell * 0.6);
    let mut clicked = None;
    for s in 0..ids.len() / l {
        let (resp, painter) =
            ui.allocate_painter(Vec2::new(cell * l as f32 + 6.0, cell + 2.0), Sense::click());
        if resp.clicked() {
            clicked = Some(s);
        }
        if selected == Some(s) {
            painter.rect_filled(
                egui::Rect::from_min_size(resp.rect.min, Vec2::new(3.0, cell)),
                1.0,
                Color32::WHITE,
            );
        }
        for p in 0..l {
            let i = s * l + p;
            let id = ids[i] as usize;
            let r = egui::Rect::from_min_size(
                resp.rect.min + Vec2::new(6.0 + p as f32 * cell, 1.0),
                Vec2::splat(cell - 2.0),
            );
            let masked = m.config.mask_token == Some(id);
            let pad = m.config.pad_token == Some(id);
            let shaded = shade(i);
            let bg = if masked {
                Color32::from_gray(60)
            } else if shaded.is_nan() {
                // No distribution behind this token (x_T, an input's noised steps): neutral.
                Color32::from_gray(205)
            } else {
                // Light for confident tokens, dark for coin flips.
                let g = (80.0 + 175.0 * shaded.clamp(0.0, 1.0)) as u8;
                Color32::from_rgb(g / 2, g, g / 2 + 40)
            };
            // Dark cells (coin flips) get light letters, so every token stays readable.
            let ink = if !shaded.is_nan() && shaded < 0.35 {
                Color32::WHITE
            } else {
                Color32::BLACK
            };
            painter.rect_filled(r, 3.0, bg);
            if changed(i) {
                painter.rect_stroke(
                    r,
                    3.0,
                    Stroke::new(2.0, Color32::YELLOW),
                    egui::StrokeKind::Inside,
                );
            }
            let ch = if masked {
                ' '
            } else if pad {
                '·'
            } else {
                vocab.get(id).copied().unwrap_or('?')
            };
            painter.text(
                r.center(),
                egui::Align2::CENTER_CENTER,
                ch,
                font.clone(),
                ink,
            );
        }
    }
    clicked
}

/// Rows of token cells for frame `v` (the previous frame marks what changed); a click selects a row
/// for [`detail`].
pub fn draw(ui: &mut egui::Ui, m: &SequenceModel, run: &SeqRun, v: usize, selected: &mut usize) {
    let Some(f) = run.frames.get(v) else { return };
    let prev = v.checked_sub(1).and_then(|p| run.frames.get(p));
    let k = m.process.k();
    let clicked = token_rows(
        ui,
        m,
        &f.ids,
        // NaN: this frame has no distribution (x_T, or an input's forward-process steps).
        |i| {
            if f.probs.is_some() {
                f.prob_of_shown(i, k)
            } else {
                f32::NAN
            }
        },
        |i| prev.is_some_and(|pf| pf.ids.get(i) != f.ids.get(i)),
        Some(*selected),
    );
    if let Some(c) = clicked {
        *selected = c;
    }
}

/// For each position of sequence `row`, the frame (≤ `v`) at which its token last changed: for
/// absorbing noise, when it was un-masked. `None` where it has not changed since x_T.
pub fn settled_at(run: &SeqRun, v: usize, row: usize, l: usize) -> Vec<Option<usize>> {
    let mut at = vec![None; l];
    let end = v.min(run.frames.len().saturating_sub(1));
    for f in 1..=end {
        let (a, b) = (&run.frames[f - 1].ids, &run.frames[f].ids);
        for (p, slot) in at.iter_mut().enumerate() {
            let i = row * l + p;
            if a.get(i) != b.get(i) {
                *slot = Some(f);
            }
        }
    }
    at
}

/// The selected sequence at frame `v`: the distribution its step drew from at every position (a
/// class × position heatmap), and when each position settled.
pub fn detail(
    ui: &mut egui::Ui,
    m: &SequenceModel,
    run: &SeqRun,
    v: usize,
    row: usize,
    show_x0: &mut bool,
) {
    let Some(f) = run.frames.get(v) else { return };
    let (k, l) = (m.process.k(), m.config.seq_len);
    let labels = heatmap::vocab_labels(&m.vocab(), m.config.pad_token);
    let ids = &f.ids[(row * l).min(f.ids.len())..((row + 1) * l).min(f.ids.len())];
    let cols: Vec<String> = ids
        .iter()
        .map(|&i| labels.get(i as usize).cloned().unwrap_or_default())
        .collect();
    let cell = heatmap_cell(ui, k, l);
    ui.horizontal(|ui| {
        ui.label(format!("Sequence {}:", row + 1));
        ui.radio_value(show_x0, true, "the model's x0_pred: p_θ(x0 | x_t)");
        ui.radio_value(show_x0, false, "the step's p(x_(t−1) | x_t)");
    });
    match if *show_x0 { &f.x0_probs } else { &f.probs } {
        Some(p) => {
            ui.label(
                RichText::new(if *show_x0 {
                    "What the network believes the clean sequence is, at each position (columns; the \
                     token now shown is on top) over every class (rows). Hover a cell for its value."
                } else {
                    "The distribution the step drew from: the model's x0_pred pushed through the posterior \
                     q(x_(t−1) | x_t, x0). Masked positions mostly stay masked until their turn."
                })
                .small(),
            );
            // [L, K] → [K, L]: classes as rows.
            let mut grid = vec![0.0; k * l];
            for pos in 0..l {
                for c in 0..k {
                    grid[c * l + pos] = p.get((row * l + pos) * k + c).copied().unwrap_or(0.0);
                }
            }
            heatmap::draw(ui, &grid, k, l, &labels, &cols, cell);
            let h: Vec<f32> = (0..l)
                .map(|pos| entropy_bits(p.get((row * l + pos) * k..(row * l + pos + 1) * k)))
                .collect();
            entropy_row(ui, &h, (k as f32).log2(), cell, *show_x0);
        }
        None => {
            ui.label("x_T: a draw from the prior; the first step shows the first distribution.");
        }
    }
    let at = settled_at(run, v, row, l);
    let mut order: Vec<(usize, usize)> = at
        .iter()
        .enumerate()
        .filter_map(|(p, s)| s.map(|s| (s, p)))
        .collect();
    order.sort();
    let text: Vec<String> = order
        .iter()
        .map(|(s, p)| format!("{}@{s}", p + 1))
        .collect();
    ui.label(
        RichText::new(format!(
            "Settling order (position@step of its last change): {}",
            if text.is_empty() {
                "nothing has changed yet".to_string()
            } else {
                text.join(" ")
            }
        ))
        .small(),
    );
}

/// A cell size that fits `l` columns across and keeps `k` rows to a few hundred points.
pub(super) fn heatmap_cell(ui: &egui::Ui, k: usize, l: usize) -> f32 {
    ((ui.available_width() - 40.0) / l.max(1) as f32)
        .min(320.0 / k.max(1) as f32)
        .clamp(5.0, 22.0)
}

/// Q_t and Qbar_t at timestep `t` as heatmaps (rows: from, columns: to).
pub fn matrices(ui: &mut egui::Ui, m: &SequenceModel, t: usize) {
    let k = m.process.k();
    let labels = heatmap::vocab_labels(&m.vocab(), m.config.pad_token);
    let cell = (220.0 / k as f32).clamp(5.0, 40.0);
    ui.horizontal_top(|ui| {
        for (bar, name) in [(false, "Q_t"), (true, "Qbar_t")] {
            if let Ok((a, pi)) = m.process.transition(t, bar) {
                ui.vertical(|ui| {
                    ui.label(format!(
                        "{name} (t = {t}, {} = {a:.3})",
                        if bar { "ᾱ_t" } else { "α_t" }
                    ));
                    let q = crate::process::discrete::transition_matrix(a, &pi);
                    heatmap::draw(ui, &q, k, k, &labels, &labels, cell);
                });
            }
        }
    });
    ui.label(
        RichText::new(
            "Row i is where a token of class i goes: Q_t is one step, Qbar_t = Q_1···Q_t all steps from \
             x0. Absorbing noise fills one column (the mask), uniform noise spreads each row evenly.",
        )
        .small(),
    );
}

/// The entropy of one categorical distribution in bits (0 for a missing or empty one).
pub fn entropy_bits(p: Option<&[f32]>) -> f32 {
    p.unwrap_or(&[])
        .iter()
        .filter(|&&q| q > 0.0 && q.is_finite())
        .map(|&q| -q * q.log2())
        .sum()
}

/// One bar per position under the heatmap: the entropy of its distribution, from 0 (certain) to
/// log2 K bits (uniform), with the mean.
fn entropy_row(ui: &mut egui::Ui, h: &[f32], max_bits: f32, cell: f32, x0: bool) {
    let margin = 8.0 + 7.0;
    let size = Vec2::new(margin + cell * h.len() as f32, 24.0);
    let (resp, painter) = ui.allocate_painter(size, Sense::hover());
    let origin = resp.rect.min + Vec2::new(margin, 0.0);
    for (i, &bits) in h.iter().enumerate() {
        let share = (bits / max_bits.max(1e-6)).clamp(0.0, 1.0);
        let bar = egui::Rect::from_min_max(
            origin + Vec2::new(i as f32 * cell + 1.0, 22.0 * (1.0 - share)),
            origin + Vec2::new((i + 1) as f32 * cell - 1.0, 22.0),
        );
        painter.rect_filled(bar, 0.0, Color32::from_rgb(230, 150, 60));
    }
    let mean = h.iter().sum::<f32>() / h.len().max(1) as f32;
    ui.label(
        RichText::new(format!(
            "entropy of {} per position (bars, 0 to {max_bits:.2} bits = uniform): mean {mean:.2} \
             bits — where the model is still unsure",
            if x0 {
                "x0_pred"
            } else {
                "the step's distribution"
            }
        ))
        .small(),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn entropy_is_zero_for_a_certain_token_and_log2_k_for_a_uniform_one() {
        assert_eq!(super::entropy_bits(Some(&[0.0, 1.0, 0.0])), 0.0);
        assert!((super::entropy_bits(Some(&[0.25; 4])) - 2.0).abs() < 1e-6);
        assert_eq!(super::entropy_bits(None), 0.0);
    }
}
