//! Graph models (DiGress) in the app: a reverse run over a small batch of graphs, one step per frame
//! without blocking, and a node-link drawing whose layout stays stable across steps: nodes start on a
//! circle and a force-directed layout relaxes a little every frame from where they were, so when an
//! edge appears or vanishes the picture drifts instead of jumping.

use crate::gpu::Gpu;
use crate::ops::graph::NONE;
use crate::pipelines::graph::DigressModel;
use crate::process::graph::{GraphBatch, GraphNoise};
use crate::tensor::{Tensor, TensorReadback};
use egui::{Color32, Pos2, Sense, Stroke, Vec2};

/// Host copy of one step: node and edge classes of the whole batch.
pub struct GraphFrame {
    pub x: Vec<u32>,
    pub e: Vec<u32>,
    /// The network's probability that each pair is an edge of the clean graph, p_θ(e_ij ≠ 0 | G_t),
    /// `[B·n·n]` in 1/255 steps (none for z_T).
    pub p_edge: Option<Vec<u8>>,
}

/// Readbacks in flight: node ids, edge ids and (after z_T) the network's edge logits.
struct PendingIds {
    x: TensorReadback,
    e: TensorReadback,
    logits: Option<TensorReadback>,
    got: Arrived,
}

/// What has arrived so far: node ids, edge ids, edge logits.
type Arrived = (Option<Vec<u32>>, Option<Vec<u32>>, Option<Vec<f32>>);

impl PendingIds {
    fn new(x: TensorReadback, e: TensorReadback, logits: Option<TensorReadback>) -> PendingIds {
        PendingIds {
            x,
            e,
            logits,
            got: (None, None, None),
        }
    }

    /// Everything, once it has all arrived.
    fn poll(&mut self) -> crate::Result<bool> {
        if self.got.0.is_none() {
            if let Some(r) = self.x.try_u32() {
                self.got.0 = Some(r?);
            }
        }
        if self.got.1.is_none() {
            if let Some(r) = self.e.try_u32() {
                self.got.1 = Some(r?);
            }
        }
        if let (None, Some(l)) = (&self.got.2, &mut self.logits) {
            if let Some(r) = l.try_f32() {
                self.got.2 = Some(r?);
            }
        }
        Ok(self.got.0.is_some()
            && self.got.1.is_some()
            && (self.logits.is_none() || self.got.2.is_some()))
    }
}

/// Edge logits `[pairs, de]` → p(class ≠ 0) per pair, quantised to u8.
fn edge_probs(logits: &[f32], de: usize) -> Vec<u8> {
    logits
        .chunks(de.max(1))
        .map(|row| {
            let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z: f32 = row.iter().map(|v| (v - mx).exp()).sum();
            let p0 = (row[0] - mx).exp() / z;
            ((1.0 - p0).clamp(0.0, 1.0) * 255.0).round() as u8
        })
        .collect()
}

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
            pending: Some(PendingIds::new(rx, re, None)),
            frames: Vec::new(),
            started: web_time::Instant::now(),
            layout: counts.iter().map(|&c| circle(c)).collect(),
            counts,
        })
    }

    /// Continue from frame `at` with a new seed: later frames are dropped and the run goes on from
    /// that frame's graphs (same node counts; the steps' noise is keyed by the new seed).
    pub fn fork(
        &mut self,
        model: &DigressModel,
        gpu: &Gpu,
        at: usize,
        seed: u64,
    ) -> crate::Result<()> {
        let f = self
            .frames
            .get(at)
            .ok_or_else(|| crate::Error::Invalid(format!("no frame {at} to fork from")))?;
        let p = &model.process;
        self.z = GraphBatch::from_host(gpu, &self.counts, self.n, &f.x, &f.e, p.dx, p.de)?;
        self.frames.truncate(at + 1);
        self.pending = None;
        self.seed = seed;
        self.started = web_time::Instant::now();
        Ok(())
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
        if let Some(p) = &mut self.pending {
            // A failed readback is dropped: polling it again would only say "already taken".
            let ready = match p.poll() {
                Ok(ready) => ready,
                Err(e) => {
                    self.pending = None;
                    return Err(e);
                }
            };
            if !ready {
                return Ok(());
            }
            let Some(p) = self.pending.take() else {
                return Ok(());
            };
            let (x, e, logits) = p.got;
            let de = model.process.de;
            self.frames.push(GraphFrame {
                x: x.unwrap_or_default(),
                e: e.unwrap_or_default(),
                p_edge: logits.map(|l| edge_probs(&l, de)),
            });
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
        let mut it = Tensor::read_many(&[&self.z.x, &self.z.e, &out.e]).into_iter();
        if let (Some(rx), Some(re), rl) = (it.next(), it.next(), it.next()) {
            self.pending = Some(PendingIds::new(rx, re, rl));
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
            relax(
                pos,
                |i, j| {
                    let v = frame.e.get((g * n + i) * n + j).copied().unwrap_or(0);
                    v != 0 && v != NONE
                },
                iterations,
            );
        }
    }

    pub fn positions(&self, g: usize) -> &[[f32; 2]] {
        self.layout.get(g).map_or(&[], |v| v.as_slice())
    }
}

/// Fruchterman–Reingold iterations over the nodes at `pos` (in [-1, 1]²) with edges `edge(i, j)`.
pub fn relax(pos: &mut [[f32; 2]], edge: impl Fn(usize, usize) -> bool, iterations: usize) {
    let c = pos.len();
    if c < 2 {
        return;
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
                if edge(i, j) {
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

/// Nodes on a circle of radius 0.9: where every layout starts.
pub fn circle(c: usize) -> Vec<[f32; 2]> {
    (0..c)
        .map(|i| {
            let a = std::f32::consts::TAU * i as f32 / c.max(1) as f32;
            [0.9 * a.cos(), 0.9 * a.sin()]
        })
        .collect()
}

const EDGE_COLOURS: [Color32; 4] = [
    Color32::from_rgb(60, 60, 60),
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(44, 160, 44),
];

/// Draw every graph of `frame` in a grid of panels; with `predicted`, the network's belief about
/// each pair too (edges drawn by p_θ, likely edges that are not there yet dashed).
pub fn draw(ui: &mut egui::Ui, run: &GraphRun, frame: &GraphFrame, predicted: bool) {
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
                let one = OneGraph {
                    count: c,
                    node: &|i| frame.x.get(g * n + i).copied().unwrap_or(0),
                    edge: &|i, j| frame.e.get((g * n + i) * n + j).copied().unwrap_or(0),
                    p_edge: match (&frame.p_edge, predicted) {
                        (Some(p), true) => Some(&|i: usize, j: usize| {
                            p.get((g * n + i) * n + j).copied().unwrap_or(0) as f32 / 255.0
                        }),
                        _ => None,
                    },
                    at: run.positions(g),
                };
                one.paint(ui, side);
                if (g + 1) % cols == 0 {
                    ui.end_row();
                }
            }
        });
}

/// One graph to paint: node and edge classes by index, optional edge beliefs, node positions.
pub struct OneGraph<'a> {
    pub count: usize,
    pub node: &'a dyn Fn(usize) -> u32,
    pub edge: &'a dyn Fn(usize, usize) -> u32,
    pub p_edge: Option<&'a dyn Fn(usize, usize) -> f32>,
    pub at: &'a [[f32; 2]],
}

impl OneGraph<'_> {
    pub fn paint(&self, ui: &mut egui::Ui, side: f32) {
        let c = self.count;
        let (resp, painter) = ui.allocate_painter(Vec2::splat(side), Sense::hover());
        let r = resp.rect;
        painter.rect_filled(r, 4.0, Color32::from_gray(250));
        let centre = r.center();
        let radius = side * 0.44;
        let pos = |i: usize| {
            let p = self.at.get(i).copied().unwrap_or([0.0, 0.0]);
            Pos2::new(centre.x + radius * p[0], centre.y + radius * p[1])
        };
        let mut edges = 0;
        for i in 0..c {
            for j in i + 1..c {
                let v = (self.edge)(i, j);
                let p = self.p_edge.map(|f| f(i, j));
                if v != 0 && v != NONE {
                    edges += 1;
                    let col = EDGE_COLOURS[v as usize % EDGE_COLOURS.len()];
                    // An edge the network doubts fades out.
                    let col = p.map_or(col, |p| col.gamma_multiply(0.25 + 0.75 * p));
                    painter.line_segment([pos(i), pos(j)], Stroke::new(1.2, col));
                } else if let Some(p) = p.filter(|&p| p >= 0.3) {
                    painter.extend(egui::Shape::dashed_line(
                        &[pos(i), pos(j)],
                        Stroke::new(1.0, Color32::from_rgb(255, 127, 14).gamma_multiply(p)),
                        4.0,
                        3.0,
                    ));
                }
            }
        }
        for i in 0..c {
            // Node classes (one for planar and SBM graphs; atom types for molecules).
            let class = (self.node)(i) as usize;
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
    }
}

/// The forward explorer for graphs: a data graph, a timestep, and a draw of q(G_t | G_0) drawn in
/// the clean graph's layout, so edges visibly appear and vanish as t grows.
#[derive(Default)]
pub struct GraphForward {
    pub example: usize,
    pub t: usize,
    pending: Option<(usize, usize, TensorReadback)>,
    /// (example, t, edge ids `[c·c]`) of the newest draw.
    pub noisy: Option<(usize, usize, Vec<u32>)>,
    /// (example, positions) of the clean graph's layout.
    layout: Option<(usize, Vec<[f32; 2]>)>,
}

impl GraphForward {
    /// A draw is on its way (keep frames coming to collect it).
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    pub fn new(t: usize) -> GraphForward {
        GraphForward {
            t,
            ..Default::default()
        }
    }

    /// Collect a finished draw and ask for a new one when the example or t changed (never blocks).
    pub fn pump(
        &mut self,
        model: &DigressModel,
        gpu: &Gpu,
        examples: &[crate::process::graph::Graph],
        seed: u64,
    ) -> crate::Result<()> {
        let Some(g) = examples.get(self.example) else {
            return Ok(());
        };
        if self.layout.as_ref().map(|l| l.0) != Some(self.example) {
            let c = g.num_nodes;
            let mut adj = vec![false; c * c];
            for &(i, j, _) in &g.edges {
                if i < c && j < c {
                    adj[i * c + j] = true;
                    adj[j * c + i] = true;
                }
            }
            let mut pos = circle(c);
            relax(&mut pos, |i, j| adj[i * c + j], 200);
            self.layout = Some((self.example, pos));
        }
        if let Some((e, t, rb)) = &mut self.pending {
            match rb.try_u32() {
                None => return Ok(()),
                Some(r) => {
                    self.noisy = Some((*e, *t, r?));
                    self.pending = None;
                }
            }
        }
        if self.noisy.as_ref().map(|s| (s.0, s.1)) == Some((self.example, self.t)) {
            return Ok(());
        }
        let c = g.num_nodes;
        let x: Vec<u32> = g.node_classes.clone();
        let mut e = vec![0u32; c * c];
        for &(i, j, k) in &g.edges {
            if i < c && j < c && i != j {
                e[i * c + j] = k;
                e[j * c + i] = k;
            }
        }
        let p = &model.process;
        let clean = GraphBatch::from_host(gpu, &[c], c, &x, &e, p.dx, p.de)?;
        let z = p.apply_noise(&clean, &[self.t], GraphNoise::Philox(seed))?;
        self.pending = Some((self.example, self.t, z.e.read()));
        Ok(())
    }

    pub fn draw(
        &self,
        ui: &mut egui::Ui,
        model: &DigressModel,
        examples: &[crate::process::graph::Graph],
    ) {
        let (Some(g), Some((_, at))) = (examples.get(self.example), &self.layout) else {
            ui.label("this model ships no example graphs");
            return;
        };
        let p = &model.process;
        let ab = p.schedule.alphas_bar.get(self.t).copied().unwrap_or(0.0);
        let pi_edge = 1.0 - p.e_limit.first().copied().unwrap_or(1.0);
        ui.label(format!(
            "Forward process at t = {}: every node and every pair keeps its class with probability \
             ᾱ_t = {ab:.4} and is otherwise redrawn from the data's marginals (an edge with probability \
             {pi_edge:.3}). So an edge survives with probability {:.3} and a non-edge becomes one with \
             {:.3}; by t = T the graph is an Erdős–Rényi graph with the data's edge density.",
            self.t,
            ab + (1.0 - ab) * pi_edge,
            (1.0 - ab) * pi_edge,
        ));
        let c = g.num_nodes;
        let mut clean = vec![0u32; c * c];
        for &(i, j, k) in &g.edges {
            if i < c && j < c {
                clean[i * c + j] = k;
                clean[j * c + i] = k;
            }
        }
        let side = ((ui.available_width() - 12.0) / 2.0).clamp(120.0, 420.0);
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.label("G_0 (a data graph)");
                OneGraph {
                    count: c,
                    node: &|i| g.node_classes.get(i).copied().unwrap_or(0),
                    edge: &|i, j| clean[i * c + j],
                    p_edge: None,
                    at,
                }
                .paint(ui, side);
            });
            if let Some((e, t, ids)) = &self.noisy {
                if *e == self.example {
                    ui.vertical(|ui| {
                        ui.label(format!("G_t ~ q(G_t | G_0), t = {t}"));
                        OneGraph {
                            count: c,
                            node: &|i| g.node_classes.get(i).copied().unwrap_or(0),
                            edge: &|i, j| ids.get(i * c + j).copied().unwrap_or(0),
                            p_edge: None,
                            at,
                        }
                        .paint(ui, side);
                    });
                }
            }
        });
    }
}
