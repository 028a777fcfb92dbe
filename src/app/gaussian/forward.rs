//! The forward explorer for Gaussian models: a shipped example (the one for the chosen label), a
//! timestep, and a draw of q(x_t | x0), collected without blocking — under the model's own β
//! schedule or, to compare schedules, another one (the reverse run always uses the trained one).

use super::super::{images, points};
use super::stepping::model_device;
use crate::pipelines::gaussian::GaussianModel;
use crate::process::gaussian::Gaussian;
use crate::process::schedule::BetaSchedule;
use crate::tensor::{Tensor, TensorReadback};

pub(super) struct GaussianForward {
    /// The explorer is shown instead of the reverse run.
    pub shown: bool,
    pub t: usize,
    /// The β schedule drawn with: a name of `lessons::FORWARD_SCHEDULES`.
    pub schedule: &'static str,
    /// Its tables when it is not the trained one (made when chosen).
    other: Option<(&'static str, Gaussian)>,
    pending: Option<(usize, &'static str, TensorReadback)>,
    /// (t, schedule, x_t) of the newest draw.
    points: Option<(usize, &'static str, Vec<f32>)>,
    /// One example per label: a point set or a few images.
    examples: Vec<Vec<f32>>,
}

impl GaussianForward {
    pub fn new(t: usize, examples: Vec<Vec<f32>>) -> GaussianForward {
        GaussianForward {
            shown: false,
            t,
            schedule: "trained",
            other: None,
            pending: None,
            points: None,
            examples,
        }
    }

    /// The shipped example for `label` (a point set or a few images), if there is one.
    pub fn example(&self, label: u32) -> Option<&[f32]> {
        self.examples.get(label as usize).map(|v| v.as_slice())
    }

    /// A draw is on its way (keep frames coming to collect it).
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// A draw in flight on a lost device never lands: forget it.
    pub fn drop_pending(&mut self) {
        self.pending = None;
    }

    /// The tables of the chosen schedule: the model's own unless another was chosen.
    pub fn process<'a>(&'a self, m: &'a GaussianModel) -> &'a Gaussian {
        match &self.other {
            Some((name, g)) if *name == self.schedule => g,
            _ => &m.process,
        }
    }

    /// Choose the β schedule by name (`lessons::FORWARD_SCHEDULES`; an unknown name keeps the
    /// current one): its tables are made here, over the model's timesteps and β range.
    pub fn choose_schedule(&mut self, m: &GaussianModel, name: &str) -> crate::Result<()> {
        let Some(&name) = crate::lessons::FORWARD_SCHEDULES
            .iter()
            .find(|&&n| n == name)
        else {
            return Ok(());
        };
        self.schedule = name;
        let beta = match name {
            "linear" => BetaSchedule::Linear,
            "cosine" => BetaSchedule::SquaredCosCapV2,
            _ => return Ok(()),
        };
        if beta == m.process.config.beta_schedule {
            self.other = None;
            return Ok(());
        }
        let mut config = m.process.config.clone();
        config.beta_schedule = beta;
        self.other = Some((name, Gaussian::new(config)?));
        Ok(())
    }

    /// Collect a finished draw and, while shown, ask for one at the chosen t (never blocks).
    pub fn pump(&mut self, m: &GaussianModel, label: u32, seed: u64) -> crate::Result<()> {
        if let Some((t, sched, rb)) = &mut self.pending {
            if let Some(r) = rb.try_f32() {
                let (t, sched) = (*t, *sched);
                self.pending = None;
                self.points = Some((t, sched, r?));
            }
        }
        let want = (self.t, self.schedule);
        let have = self.points.as_ref().map(|p| (p.0, p.1));
        if !self.shown || self.pending.is_some() || have == Some(want) {
            return Ok(());
        }
        let want = want.0;
        let Some(ex) = self.examples.get(label as usize) else {
            return Ok(());
        };
        let per: usize = m.denoiser.sample_shape().iter().product();
        let mut shape = vec![ex.len() / per.max(1)];
        shape.extend_from_slice(m.denoiser.sample_shape());
        let (xt, _) = Tensor::from_f32(model_device(m), &shape, ex)
            .and_then(|x0| self.process(m).forward(&x0, want, seed))?;
        self.pending = Some((want, self.schedule, xt.read()));
        Ok(())
    }

    /// The newest draw: x_t as an image grid, or the point cloud.
    pub fn draw(
        &self,
        ui: &mut egui::Ui,
        m: &GaussianModel,
        texture: &mut Option<egui::TextureHandle>,
    ) {
        let Some((t, sched, pts)) = &self.points else {
            return;
        };
        let process = match &self.other {
            Some((name, g)) if name == sched => g,
            _ => &m.process,
        };
        let a = process.alphas_cumprod[*t];
        let which = match *sched {
            "trained" => String::new(),
            s => format!(" under the {s} β schedule (the forward explorer's choice; the model was trained on its own)"),
        };
        ui.label(format!(
            "Forward process at t = {t}{which}: x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε with ᾱ_t = {a:.4}. \
             ᾱ_t is the share of the signal's variance left after t noising steps; \
             as it falls to 0 every shape dissolves into the same Gaussian."
        ));
        if let &[c, h, w] = m.denoiser.sample_shape() {
            let n = pts.len() / (c * h * w).max(1);
            let img = images::grid(
                pts,
                [n, c, h, w],
                n.min(4),
                images::Scale::Range(m.data_range),
            );
            let width = ui.available_width().min(900.0);
            images::panel(ui, texture, "view0", img, "x_t ~ q(x_t | x0)", width);
        } else {
            points::draw(ui, &[pts.as_slice()], None, m.data_range);
        }
    }
}
