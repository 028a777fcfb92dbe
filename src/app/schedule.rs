//! The noise schedule as a small plot: ᾱ_t (signal kept), 1 − ᾱ_t (noise) and the log signal-to-noise
//! ratio, with the step being viewed marked and its exact values (β_t, ᾱ_t, SNR) below, so the reverse
//! run can be read against the schedule.

use egui::{Color32, Pos2, Stroke, Vec2};

/// `other`: the model's own ᾱ and the shown schedule's name, when the forward explorer draws with
/// another schedule (the model's curve is then drawn grey behind it, to compare).
pub fn draw(
    ui: &mut egui::Ui,
    alphas_cumprod: &[f32],
    current_t: Option<usize>,
    other: Option<(&[f32], &str)>,
) {
    let w = ui.available_width().min(260.0);
    let (painter, r) = super::plot_frame::framed(ui, Vec2::new(w, 110.0), 4.0);
    let n = alphas_cumprod.len().max(2);
    let at = |i: usize, v: f32| {
        Pos2::new(
            r.left() + i as f32 / (n - 1) as f32 * r.width(),
            r.bottom() - v * r.height(),
        )
    };
    if let Some((own, _)) = other {
        let n_own = own.len().max(2);
        let line: Vec<Pos2> = own
            .iter()
            .enumerate()
            .map(|(i, &a)| at(i * (n - 1) / (n_own - 1), a))
            .collect();
        painter.add(egui::Shape::line(
            line,
            Stroke::new(1.5, Color32::from_gray(140)),
        ));
    }
    let signal: Vec<Pos2> = alphas_cumprod
        .iter()
        .enumerate()
        .map(|(i, &a)| at(i, a))
        .collect();
    let noise: Vec<Pos2> = alphas_cumprod
        .iter()
        .enumerate()
        .map(|(i, &a)| at(i, 1.0 - a))
        .collect();
    painter.add(egui::Shape::line(
        signal,
        Stroke::new(1.5, Color32::from_rgb(90, 170, 255)),
    ));
    painter.add(egui::Shape::line(
        noise,
        Stroke::new(1.5, Color32::from_rgb(255, 140, 60)),
    ));
    // log SNR spans tens of nats: drawn on its own scale, from its minimum (bottom) to maximum (top).
    let snr: Vec<f32> = alphas_cumprod.iter().map(|&a| log_snr(a)).collect();
    let (lo, hi) = snr
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    if hi > lo {
        let snr_line: Vec<Pos2> = snr
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| at(i, (v - lo) / (hi - lo)))
            .collect();
        painter.add(egui::Shape::line(
            snr_line,
            Stroke::new(1.0, Color32::from_rgb(120, 200, 120)),
        ));
    }
    if let Some(t) = current_t.filter(|&t| t < alphas_cumprod.len()) {
        let x = at(t, 0.0).x;
        painter.line_segment(
            [Pos2::new(x, r.top()), Pos2::new(x, r.bottom())],
            Stroke::new(1.0, Color32::WHITE),
        );
    }
    ui.label(
        egui::RichText::new(
            "blue: ᾱ_t, the share of signal variance kept · orange: 1 − ᾱ_t, the noise · green: \
             log SNR = log(ᾱ_t / (1 − ᾱ_t)), rescaled",
        )
        .small(),
    );
    if let Some((_, name)) = other {
        ui.label(
            egui::RichText::new(format!(
                "showing the {name} schedule; grey: ᾱ_t of the schedule the model was trained on"
            ))
            .small(),
        );
    }
    if let Some(t) = current_t.filter(|&t| t < alphas_cumprod.len()) {
        let a = alphas_cumprod[t];
        let prev = if t == 0 { 1.0 } else { alphas_cumprod[t - 1] };
        let beta = 1.0 - a / prev;
        ui.label(
            egui::RichText::new(format!(
                "t = {t}: β_t = {beta:.4}, ᾱ_t = {a:.4}, SNR = {:.3} (log {:.2})",
                a / (1.0 - a),
                log_snr(a)
            ))
            .small(),
        );
    }
}

fn log_snr(a: f32) -> f32 {
    (a / (1.0 - a)).ln()
}
