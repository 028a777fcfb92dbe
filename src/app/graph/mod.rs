//! A graph model open in the app (DiGress): its controls, the reverse run over a small batch of
//! graphs (see [`stepping`]), the node-link view with the network's edge beliefs, the forward
//! explorer, and the JSON export.

mod draw;
mod forward;
mod loss_curve;
mod stepping;

use std::sync::Arc;

use super::export::{self, Export};
use super::open_run::{seed_row, Carried, OpenRun, Progress, RunStatus};
use super::{heatmap, highlight, schedule};
use crate::pipelines::graph::DigressModel;
use crate::pipelines::zoo::Family;
use crate::process::graph::Graph;
use crate::tensor::Device;
use draw::Layout;
use egui::RichText;
use forward::{GraphForward, OwnGraph};
use loss_curve::GraphLossCurve;
use stepping::GraphRun;

pub struct OpenGraphs {
    /// Shared with a step computing on a worker thread (CPU backend).
    model: Arc<DigressModel>,
    device: Device,
    run: Option<GraphRun>,
    /// Where the run's nodes are drawn (kept across forks).
    layout: Layout,
    seed: u64,
    /// Graphs per run.
    n: usize,
    /// Draw the network's edge beliefs p_θ over the sampled graphs.
    predicted: bool,
    /// The viewed step (for the status).
    viewed: usize,
    /// The forward explorer's examples: the held-out split the model was not trained on.
    examples: Vec<Graph>,
    forward: GraphForward,
    /// The ELBO's term per step for the explorer's graph.
    loss: GraphLossCurve,
    /// A G_t (node ids, edge ids, t) the next restart denoises instead of drawing from the prior
    /// ("denoise G_t from t"); taken by that restart.
    from_noised: Option<(Vec<u32>, Vec<u32>, usize)>,
}

impl OpenGraphs {
    pub fn open(device: &Device, name: &str, carried: &Carried) -> crate::Result<OpenGraphs> {
        let m = crate::pipelines::graph::load_graph_shipped(device, name)?;
        let examples = crate::pipelines::graph::dataset::shipped_dataset(name)
            .map(|d| d.test.into_iter().take(32).collect())
            .unwrap_or_default();
        let forward = GraphForward::new(m.process.steps() / 4);
        Ok(OpenGraphs {
            model: Arc::new(m),
            device: device.clone(),
            run: None,
            layout: Layout::new(&[]),
            seed: carried.seed,
            n: carried.graphs,
            predicted: carried.graph_predicted,
            viewed: 0,
            examples,
            forward,
            loss: GraphLossCurve::default(),
            from_noised: None,
        })
    }
}

impl OpenRun for OpenGraphs {
    fn model_name(&self) -> &str {
        &self.model.name
    }

    fn family(&self) -> Family {
        Family::Graph
    }

    fn remember(&self, carried: &mut Carried) {
        carried.seed = self.seed;
        carried.graphs = self.n;
        carried.graph_predicted = self.predicted;
    }

    fn link(&self) -> crate::app::Link {
        crate::app::Link {
            model: Some(self.model.name.clone()),
            seed: Some(self.seed),
            n: Some(self.n),
            ..Default::default()
        }
    }

    fn apply_link(&mut self, link: &crate::app::Link) {
        if let Some(v) = link.seed {
            self.seed = v;
        }
        if let Some(v) = link.n.filter(|v| (1..=16).contains(v)) {
            self.n = v;
        }
    }

    fn restart(&mut self) -> crate::Result<()> {
        let run = match self.from_noised.take() {
            Some((x, e, t)) => GraphRun::from_noised(&self.model, self.n, (&x, &e), t, self.seed)?,
            None => GraphRun::start(&self.model, self.n, self.seed)?,
        };
        self.layout = Layout::new(&run.counts);
        self.run = Some(run);
        Ok(())
    }

    fn controls(&mut self, ui: &mut egui::Ui) -> bool {
        ui.separator();
        let mut changed = ui
            .add(egui::Slider::new(&mut self.n, 1..=16).text("graphs"))
            .changed();
        changed |= seed_row(ui, &mut self.seed);
        changed || self.from_noised.is_some()
    }

    fn process_notes(&mut self, ui: &mut egui::Ui, viewed: usize) {
        ui.checkbox(&mut self.predicted, "the network's p_θ(edge)")
            .on_hover_text(
            "fade each edge by the network's belief that it belongs to the clean graph, and dash \
                 pairs it expects to become edges (p_θ ≥ 0.3)",
        );
        let m = &self.model;
        ui.separator();
        ui.label(
            RichText::new(format!(
                "DiGress, T = {}: nodes and edges are categories. Each step the graph transformer \
                 predicts the clean graph p(G0 | Gt); the step mixes it with the marginal-preserving \
                 noise q(Gt | Gt−1) into p(Gt−1 | Gt) and samples every node and every edge pair \
                 (upper triangle, mirrored) from it.",
                m.process.steps()
            ))
            .small(),
        );
        ui.separator();
        ui.label("Noise schedule (ᾱ_t: chance a node or pair keeps its class)");
        let t = if self.forward.shown {
            self.forward.t
        } else {
            m.process.steps().saturating_sub(viewed)
        };
        highlight::mark_scope(ui, "schedule", |ui| {
            schedule::draw(ui, &m.process.schedule.alphas_bar, Some(t), None)
        });
        // Qbar_t for edges: marginal transitions keep the edge density of the data at every t.
        let ab = m.process.schedule.alphas_bar.get(t).copied().unwrap_or(0.0);
        let q = crate::process::discrete::transition_matrix(ab, &m.process.e_limit);
        let names: Vec<String> = (0..m.process.de)
            .map(|i| {
                if i == 0 {
                    "none".into()
                } else {
                    format!("edge{i}")
                }
            })
            .collect();
        ui.label(format!(
            "Qbar_t for edges at t = {t} (rows: from, columns: to)"
        ));
        let short: Vec<String> = (0..m.process.de).map(|i| i.to_string()).collect();
        heatmap::draw(ui, &q, m.process.de, m.process.de, &names, &short, 28.0);
    }

    fn pump(&mut self, step: bool) -> crate::Result<()> {
        match &mut self.run {
            Some(r) => r.pump(&self.model, step),
            None => Ok(()),
        }
    }

    fn pump_forward(&mut self) -> crate::Result<()> {
        if !self.forward.shown {
            return Ok(());
        }
        let (m, device) = (&self.model, &self.device);
        self.forward.pump(m, device, &self.examples, self.seed)?;
        self.loss
            .pump(m, self.forward.graph(&self.examples), self.seed)
    }

    fn animate(&mut self, viewed: usize) {
        self.viewed = viewed;
        if let Some(r) = &self.run {
            // Relaxes on every frame drawn; frames keep coming while sampling (and on interaction).
            self.layout
                .relax(r, viewed.min(r.frames.len().saturating_sub(1)), 8);
        }
    }

    fn wants_repaint(&self, playing: bool) -> bool {
        self.run
            .as_ref()
            .is_some_and(|r| !r.done(&self.model) && playing)
            || self.forward.busy()
            || self.loss.busy()
    }

    fn progress(&self) -> Option<Progress> {
        self.run.as_ref().map(|r| Progress {
            recorded: r.frames.len(),
            launched: r.launched(),
            total: r.total(&self.model),
            started: r.started,
        })
    }

    fn fork(&mut self, viewed: usize) -> crate::Result<bool> {
        let Some(r) = &mut self.run else {
            return Ok(false);
        };
        let seed = self.seed.wrapping_add(1);
        let at = viewed.min(r.frames.len().saturating_sub(1));
        r.fork(&self.model, at, seed)?;
        self.seed = seed;
        Ok(true)
    }

    fn central(&mut self, ui: &mut egui::Ui, viewed: usize) {
        let m = &self.model;
        if self.forward.shown {
            egui::ScrollArea::vertical().show(ui, |ui| {
                self.forward.draw(ui, m, &self.examples);
                if let Some((source, _)) = self.forward.graph(&self.examples) {
                    self.loss.draw(ui, m, source, self.seed, self.forward.t);
                }
            });
            return;
        }
        let Some(r) = &self.run else { return };
        let Some(f) = r.frames.get(viewed.min(r.frames.len().saturating_sub(1))) else {
            ui.spinner();
            return;
        };
        let t = m.process.steps().saturating_sub(viewed);
        let structure = if m.name.contains("planar") {
            "planarity: no two edges cross in some drawing"
        } else if m.name.contains("sbm") {
            "communities: dense blocks, sparse links between them"
        } else {
            "the training graphs' structure"
        };
        ui.label(format!(
            "Reverse process at t = {t}: at t = T every node and edge is drawn from the data's \
             marginals; by t = 0 the structure ({structure}) must have emerged."
        ));
        if let Some(h) = draw::edge_entropy(r, f) {
            ui.label(format!(
                "The network's uncertainty at this step: the entropy of p_θ(edge) over every node \
                 pair is {h:.3} bits on average (1 = a coin flip, 0 = decided)."
            ));
        }
        let drawn = ui
            .scope(|ui| draw::draw(ui, r, &self.layout, f, self.predicted))
            .response
            .rect;
        super::thumbnail::mark(ui, drawn);
    }

    fn forward_row(&mut self, ui: &mut egui::Ui) {
        let steps = self.model.process.steps();
        let r = ui.checkbox(&mut self.forward.shown, "forward process q(G_t | G_0)");
        highlight::mark(ui, "forward", r);
        if !self.forward.shown {
            return;
        }
        let fw = &mut self.forward;
        let mut yours = fw.own.is_some();
        if ui
            .checkbox(&mut yours, "your own graph")
            .on_hover_text("draw G_0 yourself, starting from the data graph shown")
            .changed()
        {
            fw.own = yours.then(|| OwnGraph::new(self.examples.get(fw.example), 12));
        }
        let max = self.model.max_nodes().max(2);
        match &mut fw.own {
            Some(o) => {
                let mut nodes = o.graph.num_nodes;
                if ui
                    .add(egui::Slider::new(&mut nodes, 2..=max).text("nodes"))
                    .changed()
                {
                    o.resize(nodes);
                }
                if ui.button("clear edges").clicked() {
                    o.clear_edges();
                }
            }
            None if !self.examples.is_empty() => {
                ui.add(
                    egui::Slider::new(&mut fw.example, 0..=self.examples.len() - 1)
                        .text("data graph"),
                );
            }
            None => {}
        }
        let r = ui.add(egui::Slider::new(&mut fw.t, 0..=steps).text("t"));
        highlight::mark(ui, "forward-t", r);
        // SDEdit for graphs: the reverse process from this very G_t.
        let ready = fw.noisy.as_ref().filter(|z| z.t == fw.t);
        if ui
            .add_enabled(ready.is_some(), egui::Button::new("denoise G_t from t"))
            .on_hover_text("start the reverse process from the G_t drawn here (a batch of copies)")
            .clicked()
        {
            if let Some(z) = ready {
                // The next frame's controls ask for a restart, which starts from it.
                self.from_noised = Some((z.x.clone(), z.e.clone(), z.t));
                fw.shown = false;
            }
        }
    }

    fn show_forward(&mut self, t: Option<usize>) {
        self.forward.shown = t.is_some();
        if let Some(t) = t {
            self.forward.t = t.min(self.model.process.steps());
        }
    }

    fn forward_shown(&self) -> Option<usize> {
        self.forward.shown.then_some(self.forward.t)
    }

    fn export_buttons(
        &mut self,
        ui: &mut egui::Ui,
        viewed: usize,
    ) -> Option<crate::Result<Export>> {
        ui.button("graphs (viewed step, JSON)")
            .on_hover_text("node classes and edges (i, j, class) of every graph")
            .clicked()
            .then(|| self.export(viewed))
    }

    fn status(&self) -> RunStatus {
        RunStatus {
            input: self
                .forward
                .own
                .as_ref()
                .map_or(serde_json::Value::Null, |o| o.status()),
            entropy: self.run.as_ref().and_then(|r| {
                let f = r
                    .frames
                    .get(self.viewed.min(r.frames.len().saturating_sub(1)))?;
                draw::edge_entropy(r, f)
            }),
            loss_curve: match self.forward.graph(&self.examples) {
                Some((source, _)) if self.forward.shown => {
                    self.loss.status(&self.model, source, self.seed)
                }
                _ => serde_json::Value::Null,
            },
            ..Default::default()
        }
    }

    fn recorded_state(&self, k: usize) -> Option<Vec<f32>> {
        let f = self.run.as_ref()?.frames.get(k)?;
        Some(f.x.iter().chain(&f.e).map(|&i| i as f32).collect())
    }

    fn resume_on(&mut self, device: &Device) -> crate::Result<()> {
        // The run keeps every frame on the host: a fork from the newest one with the run's own
        // seed is its continuation. `fork` changes nothing when it fails.
        let model = Arc::new(crate::pipelines::graph::load_graph_shipped(
            device,
            &self.model.name,
        )?);
        match &mut self.run {
            Some(r) => r.fork(&model, r.frames.len().saturating_sub(1), r.run.seed)?,
            None => {
                let run = GraphRun::start(&model, self.n, self.seed)?;
                self.layout = Layout::new(&run.counts);
                self.run = Some(run);
            }
        }
        self.model = model;
        self.device = device.clone();
        self.forward.forget_draws();
        self.loss.forget();
        Ok(())
    }
}

impl OpenGraphs {
    /// The viewed step's graphs as JSON.
    fn export(&self, viewed: usize) -> crate::Result<Export> {
        let (m, Some(r)) = (&self.model, &self.run) else {
            return Err(crate::Error::NotReady("nothing to export yet".into()));
        };
        let v = viewed.min(r.frames.len().saturating_sub(1));
        let f = r
            .frames
            .get(v)
            .ok_or_else(|| crate::Error::NotReady("no step recorded yet".into()))?;
        let graphs = crate::process::graph::graphs_from_ids(&r.counts, r.n, &f.x, &f.e);
        let json = serde_json::json!({
            "model": m.name,
            "seed": r.run.seed,
            "step": v,
            "t": m.process.steps().saturating_sub(v),
            "graphs": graphs,
        });
        Ok(Export {
            file_name: export::file_name(&m.name, &format!("seed{}-step{v}", r.run.seed), "json"),
            mime: "application/json",
            bytes: serde_json::to_vec_pretty(&json).map_err(|e| crate::Error::Encode {
                what: "JSON",
                detail: e.to_string(),
            })?,
        })
    }
}
