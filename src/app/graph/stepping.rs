//! The engine-facing part of a graph run (DiGress) in the app: start from the prior z_T, record one
//! reverse step and submit it with its readbacks, poll them without waiting, and fork from a host
//! copy. Nothing here touches the UI; everything the app does with a graph model's sampling loop goes
//! through [`GraphRun`].

use std::sync::Arc;

use super::super::worker::Stepping;
use crate::pipelines::graph::run as engine;
use crate::pipelines::graph::DigressModel;
use crate::tensor::{Tensor, TensorReadback};

/// Host copy of one step: node and edge classes of the whole batch.
#[derive(Clone)]
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

/// A graph run in the app: the engine's run and every frame so far on the host.
pub struct GraphRun {
    pub counts: Vec<usize>,
    pub n: usize,
    /// The state after the newest launched step.
    pub run: engine::GraphRun,
    /// A step computing off the UI thread (CPU backend): the run after it, with its readbacks.
    computing: Stepping<engine::GraphRun, PendingIds>,
    pending: Option<PendingIds>,
    pub frames: Vec<GraphFrame>,
    pub started: web_time::Instant,
}

impl GraphRun {
    /// Start from the prior z_T for `graphs` graphs with node counts drawn like the training set.
    pub fn start(model: &DigressModel, graphs: usize, seed: u64) -> crate::Result<GraphRun> {
        let counts = model.sample_counts(graphs, seed)?;
        let n = counts.iter().copied().max().unwrap_or(1);
        let run = engine::GraphRun::start(model, &counts, seed)?;
        let z = run.state();
        let rbs = Tensor::read_many(&[&z.x, &z.e]);
        let mut it = rbs.into_iter();
        let (Some(rx), Some(re)) = (it.next(), it.next()) else {
            return Err(crate::Error::Readback("no readback".into()));
        };
        Ok(GraphRun {
            n,
            run,
            computing: Stepping::default(),
            pending: Some(PendingIds::new(rx, re, None)),
            frames: Vec::new(),
            started: web_time::Instant::now(),
            counts,
        })
    }

    /// `graphs` copies of one noised graph G_t (node ids `[c]`, edge ids `[c·c]`) denoised from t
    /// (SDEdit): the run resumes after T − t steps with `seed`, and the frames before hold G_t, so
    /// the timeline starts where the noised graph entered the reverse process.
    pub fn from_noised(
        model: &DigressModel,
        graphs: usize,
        (x, e): (&[u32], &[u32]),
        t: usize,
        seed: u64,
    ) -> crate::Result<GraphRun> {
        let c = x.len();
        if e.len() != c * c || graphs == 0 {
            return Err(crate::Error::Invalid(format!(
                "a noised graph of {c} nodes needs {} edge ids, got {}",
                c * c,
                e.len()
            )));
        }
        let steps = model.process.steps();
        let done = steps.saturating_sub(t.min(steps));
        let counts = vec![c; graphs];
        let (xs, es) = (x.repeat(graphs), e.repeat(graphs));
        let run = engine::GraphRun::resume(model, &counts, &xs, &es, done, seed)?;
        let frame = GraphFrame {
            x: xs,
            e: es,
            p_edge: None,
        };
        Ok(GraphRun {
            n: c,
            run,
            computing: Stepping::default(),
            pending: None,
            frames: vec![frame; done + 1],
            started: web_time::Instant::now(),
            counts,
        })
    }

    /// Continue from frame `at` with `seed` on `model` (the open model, or the same one reloaded on
    /// a new device): later frames are dropped and the run goes on from that frame's graphs (same
    /// node counts). A new seed draws a different future; the run's own seed continues it exactly.
    /// Changes nothing when it fails.
    pub fn fork(&mut self, model: &DigressModel, at: usize, seed: u64) -> crate::Result<()> {
        let f = self
            .frames
            .get(at)
            .ok_or_else(|| crate::Error::NotReady(format!("no frame {at} to fork from")))?;
        self.run = engine::GraphRun::resume(model, &self.counts, &f.x, &f.e, at, seed)?;
        self.frames.truncate(at + 1);
        self.computing.clear();
        self.pending = None;
        self.started = web_time::Instant::now();
        Ok(())
    }

    /// Steps started: recorded frames plus the one in flight.
    pub fn launched(&self) -> usize {
        self.frames.len() + (self.computing.busy() || self.pending.is_some()) as usize
    }

    pub fn total(&self, model: &DigressModel) -> usize {
        model.process.steps() + 1
    }

    pub fn done(&self, model: &DigressModel) -> bool {
        self.frames.len() >= self.total(model)
    }

    /// Collect a finished readback, then (if `play`) record the next step. Never waits.
    pub fn pump(&mut self, model: &Arc<DigressModel>, play: bool) -> crate::Result<()> {
        if self.computing.land(&mut self.run, &mut self.pending)? {
            return Ok(());
        }
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
        // Frame k holds z at t = T − k, and its host edges are what the step's features need.
        debug_assert_eq!(self.run.steps_done(), self.frames.len() - 1);
        let host_e = self.frames.last().map(|f| f.e.clone()).unwrap_or_default();
        let (mut run, m) = (self.run.clone(), Arc::clone(model));
        let device = model.net.device().clone();
        let step = move || {
            let out = run.step(&m, &host_e)?;
            let z = run.state();
            let mut it = Tensor::read_many(&[&z.x, &z.e, &out.e]).into_iter();
            let (Some(rx), Some(re), rl) = (it.next(), it.next(), it.next()) else {
                return Err(crate::Error::Readback("no readback".into()));
            };
            let p = PendingIds::new(rx, re, rl);
            Ok((run, p))
        };
        self.computing
            .launch(&device, step, &mut self.run, &mut self.pending)
    }
}
