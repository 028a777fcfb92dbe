//! Latent diffusion in the app: the viewed step's latent decoded to an image by the model's
//! autoencoder (VQModel or AutoencoderKL), beside the latent x_t, x0_pred and ε_pred panels. One
//! decode at a time, for the step being viewed: on a GPU it is recorded and collected through a
//! readback; on the CPU backend natively it runs on a worker thread (a 256² decoder pass takes
//! seconds), so the window keeps drawing and the newest finished picture stays up meanwhile.

use super::super::images;
use super::super::worker::Worker;
use crate::models::vae::LatentDecoder;
use crate::pipelines::gaussian::GaussianModel;
use crate::tensor::TensorReadback;
use std::sync::Arc;

/// Which latent of the viewed step is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    Xt,
    X0,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Xt => "x_t",
            Source::X0 => "x0_pred",
        }
    }
}

/// What a picture was decoded from: the run, its step, and which latent.
type Key = (u64, usize, Source);

// The page never decodes (see `start`), so there nothing is ever pending.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
enum Pending {
    Working(Worker<crate::Result<TensorReadback>>),
    Reading(TensorReadback),
}

pub(super) struct Decoded {
    pub source: Source,
    pending: Option<(Key, Vec<usize>, Pending)>,
    /// The newest decoded picture: its key, `[N, C, H, W]` and values.
    pub image: Option<(Key, [usize; 4], Vec<f32>)>,
    pub error: Option<String>,
    texture: Option<egui::TextureHandle>,
    /// The key of the picture in `texture`.
    shown: Option<Key>,
}

impl Default for Decoded {
    fn default() -> Self {
        Decoded {
            source: Source::Xt,
            pending: None,
            image: None,
            error: None,
            texture: None,
            shown: None,
        }
    }
}

impl Decoded {
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Collect a finished picture and, when none is on its way, decode `latent` (the viewed step's,
    /// `[N, ..sample shape]`) unless that picture is the newest already. Never blocks.
    pub fn pump(
        &mut self,
        m: &GaussianModel,
        key: (u64, usize),
        latent: Option<&[f32]>,
    ) -> crate::Result<()> {
        let Some(dec) = m.decoder.clone() else {
            return Ok(());
        };
        if let Some((k, shape, p)) = &mut self.pending {
            let done = match p {
                Pending::Working(w) => match w.poll() {
                    None => return Ok(()),
                    Some(Err(e)) => Some(Err(e)),
                    Some(Ok(rb)) => {
                        *p = Pending::Reading(rb);
                        None
                    }
                },
                Pending::Reading(_) => None,
            };
            let done = match (done, p) {
                (Some(r), _) => r,
                (None, Pending::Reading(rb)) => match rb.try_f32() {
                    None => return Ok(()),
                    Some(r) => r,
                },
                (None, Pending::Working(_)) => return Ok(()),
            };
            let (k, shape) = (*k, shape.clone());
            self.pending = None;
            match done {
                Ok(v) => {
                    self.image = Some((k, [shape[0], shape[1], shape[2], shape[3]], v));
                    self.error = None;
                }
                // A failed decode is shown, not fatal: the run goes on.
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        let key = (key.0, key.1, self.source);
        let Some(latent) = latent else { return Ok(()) };
        self.start(m, dec, key, latent);
        Ok(())
    }

    /// The browser opens no latent models (their folders are several models' files, loaded from
    /// disk), so the page carries no decoder.
    #[cfg(target_arch = "wasm32")]
    fn start(&mut self, _: &GaussianModel, _: Arc<LatentDecoder>, _: Key, _: &[f32]) {}

    #[cfg(not(target_arch = "wasm32"))]
    fn start(&mut self, m: &GaussianModel, dec: Arc<LatentDecoder>, key: Key, latent: &[f32]) {
        use super::super::worker::run_step;
        use crate::tensor::Tensor;
        if self.image.as_ref().is_some_and(|i| i.0 == key) || self.error.is_some() {
            return;
        }
        let shape = m.batch_shape(latent.len() / m.sample_len().max(1));
        let (n, sample) = (shape[0], shape[1..].to_vec());
        let side = |s: usize| s << dec.config.upsamplings();
        let out_shape = vec![n, dec.config.out_channels, side(sample[1]), side(sample[2])];
        let device = m.denoiser.device().clone();
        let data = latent.to_vec();
        let work = run_step(&device.clone(), move || {
            let z = Tensor::from_f32(&device, &shape, &data)?;
            Ok(dec.decode(&z)?.read())
        });
        self.pending = Some((key, out_shape, Pending::Working(work)));
    }
}

impl Decoded {
    /// The decoded panel: which latent to decode, and the newest picture (the decoder's range is
    /// about [−1, 1]), its caption naming the step it shows.
    pub fn ui(&mut self, ui: &mut egui::Ui, width: f32) {
        ui.horizontal(|ui| {
            ui.label("decode:");
            for src in [Source::Xt, Source::X0] {
                if ui
                    .selectable_label(self.source == src, src.label())
                    .on_hover_text(
                        "the autoencoder's decoder turns the latent into an image (diffusers' \
                         vae.decode after dividing by scaling_factor)",
                    )
                    .clicked()
                    && self.source != src
                {
                    self.source = src;
                    self.error = None;
                }
            }
            if self.busy() {
                ui.spinner();
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::LIGHT_RED, format!("decoding failed: {e}"));
        }
        let Some((key, shape, values)) = &self.image else {
            return;
        };
        let caption = format!(
            "decoded {} of step {}: the latent the sampler works on, as the decoder draws it",
            key.2.label(),
            key.1
        );
        if self.shown != Some(*key) || self.texture.is_none() {
            let cols = (shape[0] as f64).sqrt().ceil() as usize;
            let img = images::grid(values, *shape, cols, images::Scale::Range([-1.0, 1.0]));
            self.shown = Some(*key);
            images::panel(ui, &mut self.texture, "decoded", img, &caption, width);
        } else if let Some(tex) = &self.texture {
            let sz = tex.size_vec2();
            ui.vertical(|ui| {
                ui.label(caption);
                ui.image((tex.id(), egui::vec2(width, width * sz.y / sz.x)));
            });
        }
    }

    /// For the status JSON: which latent, the step shown, the picture's shape and value range.
    pub fn status(&self) -> serde_json::Value {
        match &self.image {
            Some((key, shape, v)) => serde_json::json!({
                "source": key.2.label(),
                "step": key.1,
                "shape": shape,
                "min": v.iter().copied().fold(f32::INFINITY, f32::min),
                "max": v.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                "busy": self.busy(),
                "error": self.error,
            }),
            None => serde_json::json!({"busy": self.busy(), "error": self.error}),
        }
    }
}
