//! The forward explorer for Gaussian models: a shipped example (the one for the chosen label), a
//! timestep, and a draw of q(x_t | x0), collected without blocking.

use super::super::{images, points};
use super::stepping::model_device;
use crate::pipelines::gaussian::GaussianModel;
use crate::tensor::{Tensor, TensorReadback};

pub(super) struct GaussianForward {
    /// The explorer is shown instead of the reverse run.
    pub shown: bool,
    pub t: usize,
    pending: Option<(usize, TensorReadback)>,
    /// (t, x_t) of the newest draw.
    points: Option<(usize, Vec<f32>)>,
    /// One example per label: a point set or a few images.
    examples: Vec<Vec<f32>>,
}

impl GaussianForward {
    pub fn new(t: usize, examples: Vec<Vec<f32>>) -> GaussianForward {
        GaussianForward {
            shown: false,
            t,
            pending: None,
            points: None,
            examples,
        }
    }

    /// A draw is on its way (keep frames coming to collect it).
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// A draw in flight on a lost device never lands: forget it.
    pub fn drop_pending(&mut self) {
        self.pending = None;
    }

    /// Collect a finished draw and, while shown, ask for one at the chosen t (never blocks).
    pub fn pump(&mut self, m: &GaussianModel, label: u32, seed: u64) -> crate::Result<()> {
        if let Some((t, rb)) = &mut self.pending {
            if let Some(r) = rb.try_f32() {
                let t = *t;
                self.pending = None;
                self.points = Some((t, r?));
            }
        }
        let want = self.t;
        let have = self.points.as_ref().map(|p| p.0);
        if !self.shown || self.pending.is_some() || have == Some(want) {
            return Ok(());
        }
        let Some(ex) = self.examples.get(label as usize) else {
            return Ok(());
        };
        let per: usize = m.denoiser.sample_shape().iter().product();
        let mut shape = vec![ex.len() / per.max(1)];
        shape.extend_from_slice(m.denoiser.sample_shape());
        let (xt, _) = Tensor::from_f32(model_device(m), &shape, ex)
            .and_then(|x0| m.process.forward(&x0, want, seed))?;
        self.pending = Some((want, xt.read()));
        Ok(())
    }

    /// The newest draw: x_t as an image grid, or the point cloud.
    pub fn draw(
        &self,
        ui: &mut egui::Ui,
        m: &GaussianModel,
        texture: &mut Option<egui::TextureHandle>,
    ) {
        let Some((t, pts)) = &self.points else { return };
        let a = m.process.alphas_cumprod[*t];
        ui.label(format!(
            "Forward process at t = {t}: x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε with ᾱ_t = {a:.4}. \
             ᾱ_t is the share of the signal's variance left after t noising steps; \
             as it falls to 0 every shape dissolves into the same Gaussian."
        ));
        if let &[c, h, w] = m.denoiser.sample_shape() {
            let n = pts.len() / (c * h * w).max(1);
            let img = images::grid(
                pts,
                [n, c, h, w],
                n.min(8),
                images::Scale::Range(m.data_range),
            );
            let width = ui.available_width().min(900.0);
            images::panel(ui, texture, "view0", img, "x_t ~ q(x_t | x0)", width);
        } else {
            points::draw(ui, &[pts.as_slice()], None, m.data_range);
        }
    }
}
