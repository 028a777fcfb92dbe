//! What the model pays at each step for the graph the forward explorer shows (a data graph or the
//! user's own): the ELBO's term `KL(q(G_(t−1) | G_t, G_0) ‖ p_θ(G_(t−1) | G_t))` over its nodes and
//! node pairs, in bits per graph, at a grid of timesteps (`pipelines::graph::elbo`). Each point
//! averages a few noisy copies drawn from the run's seed, so the curve is the same every time; its
//! posteriors are read back without waiting.

use crate::pipelines::graph::elbo::{self, StepPosteriors};
use crate::pipelines::graph::DigressModel;
use crate::process::graph::Graph;
use crate::tensor::{Tensor, TensorReadback};

/// Grid points over the steps 2..=T (each a network pass).
const GRID: usize = 16;
/// Noisy copies per grid point (the batch of its pass).
const DRAWS: usize = 4;

/// What a curve was computed for: the explorer's source (example or own graph) and the seed.
type Key = (usize, u64);

/// One grid point on its way: its timestep, node count, and the four posteriors' readbacks with
/// what has arrived of them.
struct Point {
    t: usize,
    nodes: usize,
    readbacks: Vec<TensorReadback>,
    got: Vec<Option<Vec<f32>>>,
}

#[derive(Default)]
pub(super) struct GraphLossCurve {
    pending: Option<(Key, Vec<Point>)>,
    /// (key, [(t, bits per graph)]).
    curve: crate::app::loss_plot::Kept<Key>,
}

impl GraphLossCurve {
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Curves asked of a lost device never land: forget them.
    pub fn forget(&mut self) {
        self.pending = None;
    }

    /// Collect a finished curve and, when none is on its way, compute the one for `graph` (records
    /// the grid's passes; never waits for them).
    pub fn pump(
        &mut self,
        m: &DigressModel,
        graph: Option<(usize, &Graph)>,
        seed: u64,
    ) -> crate::Result<()> {
        if let Some((key, points)) = &mut self.pending {
            let mut all = true;
            for p in points.iter_mut() {
                for (rb, got) in p.readbacks.iter_mut().zip(p.got.iter_mut()) {
                    if got.is_none() {
                        match rb.try_f32() {
                            Some(r) => *got = Some(r?),
                            None => all = false,
                        }
                    }
                }
            }
            if !all {
                return Ok(());
            }
            let key = *key;
            let dims = (m.process.dx, m.process.de);
            let curve = points
                .iter()
                .map(|p| {
                    let v = |i: usize| p.got[i].as_deref().unwrap_or_default();
                    let nats = elbo::step_kl_nats(p.nodes, dims, (v(0), v(1)), (v(2), v(3)));
                    (p.t, (nats / std::f64::consts::LN_2) as f32)
                })
                .collect();
            self.curve.set(key, curve);
            self.pending = None;
        }
        let Some((source, g)) = graph else {
            return Ok(());
        };
        let key = (source, seed);
        if self.curve.get(&key).is_some() || g.num_nodes == 0 {
            return Ok(());
        }
        let steps = m.process.steps();
        let all: Vec<usize> = (2..=steps).collect();
        let n = GRID.min(all.len());
        let mut points = Vec::with_capacity(n);
        for i in 0..n {
            let t = all[i * (all.len() - 1) / (n - 1).max(1)];
            let StepPosteriors {
                t,
                nodes,
                truth,
                model,
            } = elbo::step_posteriors(m, g, t, DRAWS, seed)?;
            let readbacks = Tensor::read_many(&[&truth.0, &truth.1, &model.0, &model.1]);
            points.push(Point {
                t,
                nodes,
                got: vec![None; readbacks.len()],
                readbacks,
            });
        }
        self.pending = Some((key, points));
        Ok(())
    }

    fn curve(&self, source: usize, seed: u64) -> Option<&[(usize, f32)]> {
        self.curve.get(&(source, seed))
    }

    /// The curve's estimate of the step terms' sum (t = 2..=T), bits per graph.
    fn total(m: &DigressModel, c: &[(usize, f32)]) -> f32 {
        c.iter().map(|p| p.1).sum::<f32>() / c.len().max(1) as f32
            * m.process.steps().saturating_sub(1) as f32
    }

    /// The curve (log scale) with the explorer's t marked, and its total over every step.
    pub fn draw(&self, ui: &mut egui::Ui, m: &DigressModel, source: usize, seed: u64, at: usize) {
        let Some(c) = self.curve(source, seed) else {
            crate::app::loss_plot::on_its_way(ui);
            return;
        };
        ui.label(format!(
            "The ELBO's term at each step for this graph: KL(q(G_(t−1) | G_t, G_0) || p_θ(G_(t−1) | \
             G_t)) over its nodes and node pairs, bits per graph (log scale; the mean of {DRAWS} \
             noisy copies per point). Summed over t = 2…{} ≈ {:.1} bits.",
            m.process.steps(),
            Self::total(m, c)
        ));
        crate::app::loss_plot::draw(ui, c, m.process.steps(), at);
    }

    pub fn status(&self, m: &DigressModel, source: usize, seed: u64) -> serde_json::Value {
        match self.curve(source, seed) {
            Some(c) => crate::app::loss_plot::status(c, Self::total(m, c)),
            None => serde_json::Value::Null,
        }
    }
}
