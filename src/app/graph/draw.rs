//! Graphs drawn as node-link pictures whose layout stays stable across steps: nodes start on a circle
//! and a force-directed layout relaxes a little every frame from where they were, so when an edge
//! appears or vanishes the picture drifts instead of jumping.

use super::stepping::{GraphFrame, GraphRun};
use crate::ops::graph::NONE;
use egui::{Color32, Pos2, Sense, Stroke, Vec2};

/// Node positions per graph of a run in [-1, 1]², carried from frame to frame (a fork keeps them).
pub struct Layout(Vec<Vec<[f32; 2]>>);

impl Layout {
    /// Every graph's nodes on a circle: where a run's layout starts.
    pub fn new(counts: &[usize]) -> Layout {
        Layout(counts.iter().map(|&c| circle(c)).collect())
    }

    /// A few Fruchterman–Reingold iterations on the edges of frame `frame_index` of `run`, from the
    /// current positions.
    pub fn relax(&mut self, run: &GraphRun, frame_index: usize, iterations: usize) {
        let Some(frame) = run.frames.get(frame_index) else {
            return;
        };
        let n = run.n;
        for (g, pos) in self.0.iter_mut().enumerate() {
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
        self.0.get(g).map_or(&[], |v| v.as_slice())
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
pub fn draw(
    ui: &mut egui::Ui,
    run: &GraphRun,
    layout: &Layout,
    frame: &GraphFrame,
    predicted: bool,
) {
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
                    at: layout.positions(g),
                };
                one.paint(ui, side);
                if (g + 1) % cols == 0 {
                    ui.end_row();
                }
            }
        });
}

/// How undecided the network is about the viewed step's graphs: the mean binary entropy of its
/// p_θ(edge) over every pair i < j of every graph, in bits (0: every pair decided, 1: coin flips);
/// `None` before the network has run (x_T).
pub fn edge_entropy(run: &GraphRun, frame: &GraphFrame) -> Option<f32> {
    let p = frame.p_edge.as_ref()?;
    let n = run.n;
    let (mut sum, mut pairs) = (0.0f64, 0usize);
    for (g, &c) in run.counts.iter().enumerate() {
        for i in 0..c {
            for j in i + 1..c {
                let q = p.get((g * n + i) * n + j).copied().unwrap_or(0) as f64 / 255.0;
                sum += [q, 1.0 - q]
                    .iter()
                    .filter(|&&v| v > 0.0)
                    .map(|&v| -v * v.log2())
                    .sum::<f64>();
                pairs += 1;
            }
        }
    }
    Some((sum / pairs.max(1) as f64) as f32)
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
        self.paint_editable(ui, side, None, Sense::hover());
    }

    /// [`OneGraph::paint`] sensing `sense`, with node `selected` ringed; returns the response and
    /// where each node was drawn (for an editor's hit test).
    pub fn paint_editable(
        &self,
        ui: &mut egui::Ui,
        side: f32,
        selected: Option<usize>,
        sense: Sense,
    ) -> (egui::Response, Vec<Pos2>) {
        let c = self.count;
        let (resp, painter) = ui.allocate_painter(Vec2::splat(side), sense);
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
            if selected == Some(i) {
                painter.circle_stroke(
                    pos(i),
                    9.0,
                    Stroke::new(2.0, Color32::from_rgb(31, 119, 180)),
                );
            }
        }
        painter.text(
            r.left_top() + Vec2::new(6.0, 4.0),
            egui::Align2::LEFT_TOP,
            format!("{c} nodes, {edges} edges"),
            egui::FontId::proportional(11.0),
            Color32::from_gray(60),
        );
        (resp, (0..c).map(pos).collect())
    }
}
