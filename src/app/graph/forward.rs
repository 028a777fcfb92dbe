//! The forward explorer for graphs: a data graph — or one the user draws (click a node, then
//! another, to add or remove the edge between them) — a timestep, and a draw of q(G_t | G_0) drawn
//! in the clean graph's layout, so edges visibly appear and vanish as t grows.

use super::draw::{circle, relax, OneGraph};
use crate::pipelines::graph::DigressModel;
use crate::process::graph::{Graph, GraphBatch, GraphNoise};
use crate::tensor::Device;
use crate::tensor::TensorReadback;

#[derive(Default)]
pub struct GraphForward {
    /// The explorer is shown instead of the reverse run.
    pub shown: bool,
    pub example: usize,
    pub t: usize,
    /// A draw on its way.
    pending: Option<PendingDraw>,
    /// The newest draw of G_t.
    pub noisy: Option<Noisy>,
    /// (source, positions) of the clean graph's layout.
    layout: Option<(usize, Vec<[f32; 2]>)>,
    /// The user's own graph, when they draw one instead of taking a data graph.
    pub own: Option<OwnGraph>,
}

/// A draw of q(G_t | G_0) on its way: (source, t, node ids, edge ids, the node ids once arrived —
/// a readback gives its data once).
type PendingDraw = (
    usize,
    usize,
    TensorReadback,
    TensorReadback,
    Option<Vec<u32>>,
);

/// A draw of q(G_t | G_0).
pub struct Noisy {
    /// The example's index or, for the user's graph, [`OWN`] + its version.
    pub source: usize,
    pub t: usize,
    /// Node ids `[c]` and edge ids `[c·c]`.
    pub x: Vec<u32>,
    pub e: Vec<u32>,
}

/// G_0: the user's graph when they draw one, else data graph `example`; with its source key.
fn source<'a>(
    own: &'a Option<OwnGraph>,
    example: usize,
    examples: &'a [Graph],
) -> Option<(usize, &'a Graph)> {
    match own {
        Some(o) => Some((OWN + o.version, &o.graph)),
        None => examples.get(example).map(|g| (example, g)),
    }
}

/// Sources at or above this are the user's graph (versions count up from it).
const OWN: usize = usize::MAX / 2;

/// A graph the user draws: nodes on a circle (they keep their places while edited), one node class
/// and edge class 1 (the shipped graph models' "edge").
pub struct OwnGraph {
    pub graph: Graph,
    /// Bumped by every edit, so the layout and the draw follow.
    version: usize,
    /// The node clicked first, waiting for the second.
    selected: Option<usize>,
    /// Where each node was drawn last frame, in points (status: tests click them).
    drawn: Vec<egui::Pos2>,
}

impl OwnGraph {
    /// Starts from `from` (a data graph) or, without one, a ring of `nodes`.
    pub fn new(from: Option<&Graph>, nodes: usize) -> OwnGraph {
        let graph = from.cloned().unwrap_or_else(|| Graph {
            num_nodes: nodes,
            node_classes: vec![0; nodes],
            edges: (0..nodes).map(|i| (i, (i + 1) % nodes, 1)).collect(),
        });
        OwnGraph {
            graph,
            version: 0,
            selected: None,
            drawn: Vec::new(),
        }
    }

    fn edited(&mut self) {
        self.version += 1;
        self.selected = None;
    }

    /// Adds the edge i–j, or removes it when there.
    pub fn toggle(&mut self, i: usize, j: usize) {
        let c = self.graph.num_nodes;
        if i == j || i >= c || j >= c {
            return;
        }
        let same = |&(a, b, _): &(usize, usize, u32)| (a, b) == (i, j) || (a, b) == (j, i);
        let before = self.graph.edges.len();
        self.graph.edges.retain(|e| !same(e));
        if self.graph.edges.len() == before {
            self.graph.edges.push((i.min(j), i.max(j), 1));
        }
        self.edited();
    }

    /// `nodes` nodes: new ones come without edges; edges to removed ones go.
    pub fn resize(&mut self, nodes: usize) {
        let g = &mut self.graph;
        g.num_nodes = nodes;
        g.node_classes.resize(nodes, 0);
        g.edges.retain(|&(i, j, _)| i < nodes && j < nodes);
        self.edited();
    }

    pub fn clear_edges(&mut self) {
        self.graph.edges.clear();
        self.edited();
    }

    /// A click at `at` on the drawn graph whose nodes are at `nodes`: select the nearest node (or
    /// join it to the one selected), or drop the selection off any node.
    fn click(&mut self, at: egui::Pos2, nodes: &[egui::Pos2]) {
        let hit = nodes
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.distance(at)))
            .filter(|&(_, d)| d <= 14.0)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i);
        match (self.selected, hit) {
            (Some(a), Some(b)) if a != b => self.toggle(a, b),
            (_, hit) => self.selected = hit,
        }
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "nodes": self.graph.num_nodes,
            "edges": self.graph.edges.len(),
            "selected": self.selected,
            "drawn": self.drawn.iter().map(|p| [p.x, p.y]).collect::<Vec<_>>(),
        })
    }
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

    /// A draw made on a lost device never lands: forget it (the example, t and switch stay).
    pub fn forget_draws(&mut self) {
        self.pending = None;
        self.noisy = None;
        self.layout = None;
    }

    /// Collect a finished draw and ask for a new one when the example or t changed (never blocks).
    pub fn pump(
        &mut self,
        model: &DigressModel,
        device: &Device,
        examples: &[crate::process::graph::Graph],
        seed: u64,
    ) -> crate::Result<()> {
        let Some((source, g)) = source(&self.own, self.example, examples) else {
            return Ok(());
        };
        let own = self.own.is_some();
        if self.layout.as_ref().map(|l| l.0) != Some(source) {
            let c = g.num_nodes;
            let mut adj = vec![false; c * c];
            for &(i, j, _) in &g.edges {
                if i < c && j < c {
                    adj[i * c + j] = true;
                    adj[j * c + i] = true;
                }
            }
            let mut pos = circle(c);
            // The user's nodes stay on their circle while edited; a data graph is relaxed.
            if !own {
                relax(&mut pos, |i, j| adj[i * c + j], 200);
            }
            self.layout = Some((source, pos));
        }
        if let Some((s, t, rx, re, got_x)) = &mut self.pending {
            // Node ids first (kept once they land: a readback gives its data once), then edges.
            if got_x.is_none() {
                match rx.try_u32() {
                    None => return Ok(()),
                    Some(x) => *got_x = Some(x?),
                }
            }
            let Some(e) = re.try_u32() else {
                return Ok(());
            };
            self.noisy = Some(Noisy {
                source: *s,
                t: *t,
                x: got_x.take().unwrap_or_default(),
                e: e?,
            });
            self.pending = None;
        }
        if self.noisy.as_ref().map(|s| (s.source, s.t)) == Some((source, self.t)) {
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
        let clean = GraphBatch::from_host(device, &[c], c, &x, &e, p.dx, p.de)?;
        let z = p.apply_noise(&clean, &[self.t], GraphNoise::Philox(seed))?;
        let mut rbs = crate::tensor::Tensor::read_many(&[&z.x, &z.e]).into_iter();
        if let (Some(rx), Some(re)) = (rbs.next(), rbs.next()) {
            self.pending = Some((source, self.t, rx, re, None));
        }
        Ok(())
    }

    /// The graph shown: (its source — the example's index, or the user's graph's version above
    /// [`OWN`] — and the graph).
    pub fn graph<'a>(&'a self, examples: &'a [Graph]) -> Option<(usize, &'a Graph)> {
        source(&self.own, self.example, examples)
    }

    pub fn draw(&mut self, ui: &mut egui::Ui, model: &DigressModel, examples: &[Graph]) {
        let (Some((source, g)), Some((laid, at))) =
            (source(&self.own, self.example, examples), &self.layout)
        else {
            ui.label("this model ships no example graphs");
            return;
        };
        if *laid != source {
            return; // the layout of an edit lands with the next pump
        }
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
        let selected = self.own.as_ref().and_then(|o| o.selected);
        let mut click = None;
        if self.own.is_some() {
            ui.label(if selected.is_some() {
                "Now click another node of G_0 to add or remove the edge between them."
            } else {
                "Click a node of G_0, then another, to add or remove the edge between them."
            });
        }
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.label(if self.own.is_some() {
                    "G_0 (yours)"
                } else {
                    "G_0 (a data graph)"
                });
                let sense = if self.own.is_some() {
                    egui::Sense::click()
                } else {
                    egui::Sense::hover()
                };
                let (r, nodes) = OneGraph {
                    count: c,
                    node: &|i| g.node_classes.get(i).copied().unwrap_or(0),
                    edge: &|i, j| clean[i * c + j],
                    p_edge: None,
                    at,
                }
                .paint_editable(ui, side, selected, sense);
                click = Some((
                    r.clicked().then(|| r.interact_pointer_pos()).flatten(),
                    nodes,
                ));
            });
            if let Some(Noisy {
                source: s,
                t,
                e: ids,
                ..
            }) = &self.noisy
            {
                if *s == source {
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
        if let (Some(o), Some((at, nodes))) = (&mut self.own, click) {
            if let Some(at) = at {
                o.click(at, &nodes);
            }
            o.drawn = nodes;
        }
    }
}
