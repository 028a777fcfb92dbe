//! The learned score field of a 2-D model: at the viewed step's timestep, the network's ε_pred on a
//! grid over the view, drawn as arrows along −ε_pred — the direction of the score
//! ∇ log p_t(x) = −ε_pred / √(1 − ᾱ_t), which is where the reverse process pushes a particle. It is
//! computed on the device like a reverse step (with the run's label and guidance) and collected
//! without blocking.

use super::super::points;
use crate::pipelines::gaussian::GaussianModel;
use crate::process::gaussian::{evaluate, SampleSettings};
use crate::tensor::{Tensor, TensorReadback};
use egui::{Color32, Pos2, Stroke};

/// Grid points per side.
pub const GRID: usize = 21;

/// What a field was computed for: the timestep, the label and the guidance weight (its bits).
type Key = (usize, Option<u32>, Option<u32>);

#[derive(Default)]
pub(super) struct ScoreField {
    pub shown: bool,
    pending: Option<(Key, TensorReadback)>,
    /// ε_pred at every grid point, `[GRID², 2]`, and what it was computed for.
    field: Option<(Key, Vec<f32>)>,
}

/// The grid's points in data units, row by row from the bottom left, covering the view.
pub fn grid(range: [f32; 2]) -> Vec<f32> {
    let [lo, hi] = crate::picture::points_frame(range);
    let at = |i: usize| lo + (i as f32 + 0.5) / GRID as f32 * (hi - lo);
    (0..GRID * GRID)
        .flat_map(|k| [at(k % GRID), at(k / GRID)])
        .collect()
}

impl ScoreField {
    /// A field is on its way.
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Collect a finished field and, while shown, ask for the one at `t` (never blocks).
    pub fn pump(
        &mut self,
        m: &GaussianModel,
        t: Option<usize>,
        settings: &SampleSettings,
    ) -> crate::Result<()> {
        if let Some((key, rb)) = &mut self.pending {
            match rb.try_f32() {
                None => return Ok(()),
                Some(r) => {
                    self.field = Some((*key, r?));
                    self.pending = None;
                }
            }
        }
        let Some(t) = t.filter(|_| self.shown) else {
            return Ok(());
        };
        let label = settings.labels.as_ref().and_then(|l| l.first().copied());
        let key = (t, label, settings.guidance.map(f32::to_bits));
        if self.field.as_ref().is_some_and(|f| f.0 == key) {
            return Ok(());
        }
        let n = GRID * GRID;
        let x = Tensor::from_f32(m.denoiser.device(), &[n, 2], &grid(m.data_range))?;
        let grid_settings = SampleSettings {
            labels: label.map(|l| vec![l; n]),
            ..settings.clone()
        };
        let eps = evaluate(m.denoiser.as_ref(), &x, t as f32, &grid_settings)?.combined()?;
        self.pending = Some((key, eps.read()));
        Ok(())
    }

    /// The field for timestep `t`, if it has arrived.
    pub fn field(&self, t: usize) -> Option<&[f32]> {
        self.field
            .as_ref()
            .filter(|f| f.0 .0 == t)
            .map(|f| f.1.as_slice())
    }

    /// The newest field that has arrived and its timestep (while a run plays, the viewed t moves on
    /// every frame and the field follows a step or two behind).
    pub fn latest(&self) -> Option<(usize, &[f32])> {
        self.field.as_ref().map(|f| (f.0 .0, f.1.as_slice()))
    }

    /// Arrows over the plot `rect`: each grid point's −ε_pred in the newest field, scaled so the
    /// longest spans most of a grid cell.
    pub fn draw(&self, painter: &egui::Painter, rect: egui::Rect, range: [f32; 2]) {
        let Some((_, eps)) = self.latest() else {
            return;
        };
        let pts = grid(range);
        let longest = eps
            .chunks_exact(2)
            .map(|e| e[0].hypot(e[1]))
            .filter(|l| l.is_finite())
            .fold(0.0f32, f32::max);
        if longest <= 0.0 {
            return;
        }
        let cell = rect.width() / GRID as f32;
        let colour = Color32::from_rgb(200, 60, 60).gamma_multiply(0.8);
        for (p, e) in pts.chunks_exact(2).zip(eps.chunks_exact(2)) {
            let from = points::to_screen(rect, range, p[0], p[1]);
            // −ε in data units is (−e0, −e1); the screen's y axis points down.
            let d = egui::vec2(-e[0], e[1]) / longest * cell * 0.9;
            if !d.x.is_finite() || !d.y.is_finite() {
                continue;
            }
            let to: Pos2 = from + d;
            painter.line_segment([from, to], Stroke::new(1.2, colour));
            let back = -d.normalized() * (3.0f32).min(d.length() * 0.5);
            let side = egui::vec2(-back.y, back.x) * 0.6;
            painter.line_segment([to, to + back + side], Stroke::new(1.2, colour));
            painter.line_segment([to, to + back - side], Stroke::new(1.2, colour));
        }
    }

    /// The share of the grid's border points whose arrow points inwards (towards the middle of the
    /// view): far from the data the score pulls points back towards it.
    pub fn inward_share(&self, range: [f32; 2], t: usize) -> Option<f32> {
        let eps = self.field(t)?;
        let pts = grid(range);
        let mid = (range[0] + range[1]) / 2.0;
        let border = |k: usize| {
            let (i, j) = (k % GRID, k / GRID);
            i == 0 || j == 0 || i == GRID - 1 || j == GRID - 1
        };
        let (mut inward, mut all) = (0, 0);
        for k in (0..GRID * GRID).filter(|&k| border(k)) {
            let (p, e) = (&pts[2 * k..2 * k + 2], &eps[2 * k..2 * k + 2]);
            let dot = -e[0] * (mid - p[0]) - e[1] * (mid - p[1]);
            inward += (dot > 0.0) as usize;
            all += 1;
        }
        Some(inward as f32 / all as f32)
    }
}
