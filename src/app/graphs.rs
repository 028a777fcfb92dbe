//! Graph models (DiGress) in the app: a reverse run over a small batch of graphs, one step per frame
//! without blocking, and a node-link drawing whose layout stays stable across steps: nodes start on a
//! circle and a force-directed layout relaxes a little every frame from where they were, so when an
//! edge appears or vanishes the picture drifts instead of jumping.

use crate::gpu::Gpu;
use crate::models::digress::DigressModel;
use crate::ops::graph::NONE;
use crate::process::graph::{GraphBatch, GraphNoise};
use crate::tensor::{Tensor, TensorReadback};
use egui::{Color32, Pos2, Sense, Stroke, Vec2};

/// Host copy of one step: node and edge classes of the whole batch.
pub struct GraphFrame {
    pub x: Vec<u32>,
    pub e: Vec<u32>,
}

/// Readbacks of node and edge ids in flight, and what has arrived.
type PendingIds = (TensorReadback, TensorReadback, [Option<Vec<u32>>; 2]);

pub struct GraphRun {
    pub counts: Vec<usize>,
    pub n: usize,
    pub seed: u64,
    z: GraphBatch,
    pending: Option<PendingIds>,
    pub frames: Vec<GraphFrame>,
    pub started: web_time::Instant,
    /// Node positions per graph in [-1, 1]², carried from frame to frame.
    layout: Vec<Vec<[f32; 2]>>,
}

impl GraphRun {
    /// Start from the prior z_T for `graphs` graphs with node counts drawn like the training set.
    pub fn start(
        model: &DigressModel,
        gpu: &Gpu,
        graphs: usize,
        seed: u64,
    ) -> crate::Result<GraphRun> {
        let counts = model.sample_counts(graphs, seed)?;
        let n = counts.iter().copied().max().unwrap_or(1);
        let z = model
            .process
            .prior(gpu, &counts, n, GraphNoise::Philox(seed))?;
        let rbs = Tensor::read_many(&[&z.x, &z.e]);
        let mut it = rbs.into_iter();
        let (Some(rx), Some(re)) = (it.next(), it.next()) else {
            return Err(crate::Error::Readback("no readback".into()));
        };
        Ok(GraphRun {
            n,
            seed,
            z,
            pending: Some((rx, re, [None, None])),
            frames: Vec::new(),
            started: web_time::Instant::now(),
            layout: counts
                .iter()
                .map(|&c| {
                    (0..c)
                        .map(|i| {
                            let a = std::f32::consts::TAU * i as f32 / c.max(1) as f32;
                            [0.9 * a.cos(), 0.9 * a.sin()]
                        })
                        .collect()
                })
                .collect(),
            counts,
        })
    }

    /// Steps started: recorded frames plus the one in flight.
    pub fn launched(&self) -> usize {
        self.frames.len() + self.pending.is_some() as usize
    }

    pub fn total(&self, model: &DigressModel) -> usize {
        model.process.steps() + 1
    }

    pub fn done(&self, model: &DigressModel) -> bool {
        self.frames.len() >= self.total(model)
    }

    /// Collect a finished readback, then (if `play`) record the next step. Never waits.
    pub fn pump(&mut self, model: &DigressModel, play: bool) -> crate::Result<()> {
        if let Some((rx, re, got)) = &mut self.pending {
            for (slot, rb) in got.iter_mut().zip([rx, re]) {
                if slot.is_none() {
                    if let Some(r) = rb.try_u32() {
                        *slot = Some(r?);
                    }
                }
            }
            if got.iter().any(Option::is_none) {
                return Ok(());
            }
            let [x, e] = std::mem::take(got);
            self.frames.push(GraphFrame {
                x: x.unwrap_or_default(),
                e: e.unwrap_or_default(),
            });
            self.pending = None;
        }
        if !play || self.done(model) {
            return Ok(());
        }
        // Frame k holds z at t = T − k; the step from t goes to s = t − 1.
        let t = model.process.steps() - (self.frames.len() - 1);
        let host_e = &self.frames.last().map(|f| f.e.as_slice()).unwrap_or(&[]);
        let out = model.predict(&self.z, host_e, t)?;
        let (z, _, _) = model.process.step(
            &out.x,
            &out.e,
            &self.z,
            t - 1,
            GraphNoise::Philox(self.seed),
        )?;
        self.z = z;
        let mut it = Tensor::read_many(&[&self.z.x, &self.z.e]).into_iter();
        if let (Some(rx), Some(re)) = (it.next(), it.next()) {
            self.pending = Some((rx, re, [None, None]));
        }
        Ok(())
    }
}

impl GraphRun {
    /// A few Fruchterman–Reingold iterations on the edges of `frame`, from the current positions.
    pub fn relax_layout(&mut self, frame_index: usize, iterations: usize) {
        let Some(frame) = self.frames.get(frame_index) else {
            return;
        };
        let n = self.n;
        for (g, pos) in self.layout.iter_mut().enumerate() {
            let c = pos.len();
            if c < 2 {
                continue;
            }
            let k = (4.0 / c as f32).sqrt();
            for it in 0..iterations {
                let temp = 0.05 * (1.0 - it as f32 / iterations as f32) + 0.01;
                let mut disp = vec![[0.0f32; 2]; c];
                for i in 0..c {
                    for j in 0..c {
                        if i == j {
                            continue;
                        }
                        let d = [pos[i][0] - pos[j][0], pos[i][1] - pos[j][1]];
                        let dist = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-3);
                        let mut f = k * k / dist;
                        let v = frame.e.get((g * n + i) * n + j).copied().unwrap_or(0);
                        if v != 0 && v != NONE {
                            f -= dist * dist / k;
                        }
                        disp[i][0] += d[0] / dist * f;
                        disp[i][1] += d[1] / dist * f;
                    }
                    // A weak pull to the centre keeps disconnected pieces in view.
                    disp[i][0] -= pos[i][0] * 0.5;
                    disp[i][1] -= pos[i][1] * 0.5;
                }
                for i in 0..c {
                    let len = (disp[i][0] * disp[i][0] + disp[i][1] * disp[i][1])
                        .sqrt()
                        .max(1e-6);
                    let step = len.min(temp);
                    pos[i][0] = (pos[i][0] + disp[i][0] / len * step).clamp(-1.0, 1.0);
                    pos[i][1] = (pos[i][1] + disp[i][1] / len * step).clamp(-1.0, 1.0);
                }
            }
        }
    }

    pub fn positions(&self, g: usize) -> &[[f32; 2]] {
        self.layout.get(g).map_or(&[], |v| v.as_slice())
    }
}

const EDGE_COLOURS: [Color32; 4] = [
    Color32::from_rgb(60, 60, 60),
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(44, 160, 44),
];

/// Draw every graph of `frame` in a grid of panels.
pub fn draw(ui: &mut egui::Ui, run: &GraphRun, frame: &GraphFrame) {
    let (counts, n) = (&run.counts, run.n);
    let b = counts.len().max(1);
    let cols = (b as f64).sqrt().ceil() as usize;
    let rows = b.div_ceil(cols);
    let side = ((ui.available_width() / cols as f32).min(ui.available_height() / rows as f32)
        - 6.0)
        .max(80.0);
    egui::Grid::new("graphs")
        .spacing([6.0, 6.0])
        .show(ui, |ui| {
            for (g, &c) in counts.iter().enumerate() {
                let (resp, painter) = ui.allocate_painter(Vec2::splat(side), Sense::hover());
                let r = resp.rect;
                painter.rect_filled(r, 4.0, Color32::from_gray(250));
                let centre = r.center();
                let radius = side * 0.44;
                let at = run.positions(g);
                let pos = |i: usize| {
                    let p = at.get(i).copied().unwrap_or([0.0, 0.0]);
                    Pos2::new(centre.x + radius * p[0], centre.y + radius * p[1])
                };
                let mut edges = 0;
                for i in 0..c {
                    for j in i + 1..c {
                        let v = frame.e.get((g * n + i) * n + j).copied().unwrap_or(0);
                        if v != 0 && v != NONE {
                            edges += 1;
                            let col = EDGE_COLOURS[v as usize % EDGE_COLOURS.len()];
                            painter.line_segment([pos(i), pos(j)], Stroke::new(1.2, col));
                        }
                    }
                }
                for i in 0..c {
                    // Node classes (one for planar and SBM graphs; atom types for molecules).
                    let class = frame.x.get(g * n + i).copied().unwrap_or(0) as usize;
                    let col = [
                        Color32::from_rgb(255, 127, 14),
                        Color32::from_rgb(148, 103, 189),
                        Color32::from_rgb(140, 86, 75),
                        Color32::from_rgb(23, 190, 207),
                    ][class % 4];
                    painter.circle_filled(pos(i), 4.0, col);
                }
                painter.text(
                    r.left_top() + Vec2::new(6.0, 4.0),
                    egui::Align2::LEFT_TOP,
                    format!("{c} nodes, {edges} edges"),
                    egui::FontId::proportional(11.0),
                    Color32::from_gray(60),
                );
                if (g + 1) % cols == 0 {
                    ui.end_row();
                }
            }
        });
}
