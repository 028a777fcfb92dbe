//! The reverse run's view: the step's x_t, x0_pred and ε_pred as image grids (a latent model's also
//! decoded), or the particles with their fading trails and the score field for 2-D points.

use super::captions::step_rule;
use super::stepping::split_frame;
use super::OpenGaussian;
use crate::app::{images, points, thumbnail};
use egui::{Color32, RichText};

impl OpenGaussian {
    /// The viewed step of the reverse run (nothing before its first state).
    pub(super) fn reverse_view(&mut self, ui: &mut egui::Ui, viewed: usize) {
        let m = &self.model;
        let Some(s) = &self.session else { return };
        if s.states.is_empty() {
            ui.spinner();
            return;
        }
        if self.input.active {
            // Wrapped, button first: a long unwrapped row would widen the panels below it.
            ui.horizontal_wrapped(|ui| {
                if ui.button("start from noise again").clicked() {
                    self.input.active = false;
                    self.input.restart = true;
                }
                let inpaint = match self.input.keep_label() {
                    Some(part) => format!(
                        " Inpainting: after every step {part} of your drawing is put back, \
                         noised to that step's t, so the model draws only the rest."
                    ),
                    None => String::new(),
                };
                ui.label(
                    RichText::new(format!(
                        "Denoised from your input at t = {}: the steps before the first the model \
                         took show your input through the forward process.{inpaint}",
                        self.input.t0
                    ))
                    .color(Color32::LIGHT_BLUE),
                );
            });
        }
        let want = viewed.min(s.states.len() - 1);
        // A step thinned out by the memory cap is shown as the nearest kept one, and said so.
        let Some((v, _)) = s.states.nearest(want) else {
            return;
        };
        if v != want {
            ui.label(
                RichText::new(format!(
                    "step {want} was not kept (memory cap: older steps are kept every {} steps); showing step {v}",
                    s.states.stride()
                ))
                .color(Color32::YELLOW),
            );
        }
        // After the last step the state is the sample itself: x_0, no timestep left.
        let t = if v < s.run.plan.len() {
            s.run.plan[v].t.to_string()
        } else {
            "0, done".to_string()
        };
        ui.label(format!(
            "Reverse process, step {v}: the network predicts the noise ε_pred in x_t (t = {t}) and each \
             step removes part of it: {}",
            step_rule(s.run.settings.sampler)
        ));
        let shape = m.denoiser.sample_shape();
        if let &[c, h, w] = shape {
            let n = s.n;
            let (fx, fx0, feps) = split_frame(s.states.get(v).unwrap_or(&[]), n * c * h * w);
            let cols = (n as f64).sqrt().ceil() as usize;
            let key = (s.id, v);
            let grids = (self.textures_show != Some(key)).then(|| {
                let dims = [n, c, h, w];
                // A latent model's x_t lives in latent units, not the images' range.
                let range = match m.decoder {
                    Some(_) => images::Scale::Noise,
                    None => images::Scale::Range(m.data_range),
                };
                [
                    Some(images::grid(fx, dims, cols, range)),
                    fx0.map(|x0| images::grid(x0, dims, cols, range)),
                    feps.map(|e| images::grid(e, dims, cols, images::Scale::Noise)),
                ]
            });
            self.textures_show = Some(key);
            let captions = [
                format!("x_t (t = {t})"),
                "x0_pred: the network's guess of the clean image".to_string(),
                "ε_pred: the noise it sees in x_t".to_string(),
            ];
            let width = ((ui.available_width() - 24.0) / 3.0).max(64.0);
            let textures = &mut self.textures;
            ui.horizontal_top(|ui| {
                let mut grids = grids;
                for (i, cap) in captions.iter().enumerate() {
                    let img = grids.as_mut().and_then(|g| g[i].take());
                    let drawn = match img {
                        Some(img) => images::panel(
                            ui,
                            &mut textures[i],
                            &format!("view{i}"),
                            img,
                            cap,
                            width,
                        ),
                        None if grids.is_some() => {
                            // A step without this prediction (x_T): drop the stale picture.
                            textures[i] = None;
                            None
                        }
                        None => textures[i].as_ref().map(|tex| {
                            let sz = tex.size_vec2();
                            ui.vertical(|ui| {
                                ui.label(cap.as_str());
                                ui.image((tex.id(), egui::vec2(width, width * sz.y / sz.x)))
                                    .rect
                            })
                            .inner
                        }),
                    };
                    // x_t is what the run makes (its thumbnail, once done).
                    if let (0, Some(r)) = (i, drawn) {
                        thumbnail::mark(ui, r);
                    }
                }
            });
            if m.decoder.is_some() {
                self.decoded.ui(ui, width);
            }
            ui.label(
                "x0_pred = (x_t − √(1−ᾱ_t)·ε_pred) / √ᾱ_t: early on it is a blurry average of plausible images; \
                 it sharpens as the noise is removed. The step mixes x0_pred and x_t to get x_(t−1).",
            );
        } else {
            let per = s.n * shape.iter().product::<usize>();
            let trail: Vec<&[f32]> = (v.saturating_sub(4)..=v)
                .filter_map(|k| s.states.get(k))
                .map(|f| split_frame(f, per).0)
                .collect();
            ui.horizontal(|ui| {
                ui.checkbox(&mut self.score.shown, "score field")
                    .on_hover_text(
                    "arrows along −ε_pred on a grid at this step's t: the direction of the score \
                     grad log p_t = −ε_pred/√(1−ᾱ_t), where the reverse process pushes a particle",
                );
                if self.score.shown {
                    ui.weak(match self.score.latest() {
                        Some((t, _)) => format!(
                            "red arrows: the field at t = {t} (ᾱ_t = {:.3}); lengths relative to \
                             the longest",
                            m.process.alphas_cumprod[t]
                        ),
                        None if s.run.plan.get(v).is_none() => {
                            "the run is done: view an earlier step to see its field".into()
                        }
                        None => "computing…".into(),
                    });
                }
            });
            let rect = points::draw(ui, &trail, s.run.settings.labels.as_deref(), m.data_range);
            thumbnail::mark(ui, rect);
            if self.score.shown {
                self.score.draw(&ui.painter_at(rect), rect, m.data_range);
            }
        }
    }
}
