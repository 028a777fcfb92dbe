//! The forward explorer for graphs: a data graph, a timestep, and a draw of q(G_t | G_0) drawn in
//! the clean graph's layout, so edges visibly appear and vanish as t grows.

use super::draw::{circle, relax, OneGraph};
use crate::pipelines::graph::DigressModel;
use crate::process::graph::{GraphBatch, GraphNoise};
use crate::tensor::Device;
use crate::tensor::TensorReadback;

#[derive(Default)]
pub struct GraphForward {
    /// The explorer is shown instead of the reverse run.
    pub shown: bool,
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
        let clean = GraphBatch::from_host(device, &[c], c, &x, &e, p.dx, p.de)?;
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
