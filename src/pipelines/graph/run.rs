//! The DiGress reverse loop: t = T … 1, each step the network's logits at z_t (structural features
//! from z_t's edges on the host) and the exact posterior draw of z_{t−1}. A [`GraphRun`] is the state
//! between steps; [`GraphRun::step`] records one step without submitting; [`sample`] is the blocking
//! loop of the CLI and the tests, which checks the device after every step.

use super::DigressModel;
use crate::error::{Error, Result};
use crate::models::graph_transformer::GraphOutput;
use crate::process::graph::{GraphBatch, GraphNoise};

/// A reverse run between steps. Cloning is cheap (tensors share storage): the app steps a clone on a
/// worker thread while the UI reads the original's plan and settings.
#[derive(Clone)]
pub struct GraphRun {
    pub seed: u64,
    z: GraphBatch,
    done: usize,
    steps: usize,
}

impl GraphRun {
    /// From the prior z_T for graphs of `counts` nodes.
    pub fn start(model: &DigressModel, counts: &[usize], seed: u64) -> Result<GraphRun> {
        let n = counts.iter().copied().max().unwrap_or(0);
        if n > model.max_nodes() {
            return Err(Error::Invalid(format!(
                "{} supports graphs of at most {} nodes, asked for {n}",
                model.name,
                model.max_nodes()
            )));
        }
        let z = model
            .process
            .prior(model.device(), counts, n, GraphNoise::Philox(seed))?;
        Ok(GraphRun {
            seed,
            z,
            done: 0,
            steps: model.process.steps(),
        })
    }

    /// Continue from host ids (nodes `[B, n]`, edges `[B, n, n]`) reached after `done` steps, with
    /// `seed` for the steps from here on (a fork's new seed, or the run's own to continue it).
    pub fn resume(
        model: &DigressModel,
        counts: &[usize],
        x: &[u32],
        e: &[u32],
        done: usize,
        seed: u64,
    ) -> Result<GraphRun> {
        let steps = model.process.steps();
        if done > steps {
            return Err(Error::NotReady(format!(
                "cannot resume after step {done} of {steps}"
            )));
        }
        let n = counts.iter().copied().max().unwrap_or(0);
        let p = &model.process;
        let z = GraphBatch::from_host(model.device(), counts, n, x, e, p.dx, p.de)?;
        Ok(GraphRun {
            seed,
            z,
            done,
            steps,
        })
    }

    /// The current graphs z_t.
    pub fn state(&self) -> &GraphBatch {
        &self.z
    }

    pub fn steps_done(&self) -> usize {
        self.done
    }

    pub fn done(&self) -> bool {
        self.done >= self.steps
    }

    /// Record the next reverse step from z_t to z_{t−1} (the caller submits). `host_e` is z_t's edge
    /// ids on the host (`[B·n·n]`), which the structural features are computed from. Returns the
    /// network's logits at z_t.
    pub fn step(&mut self, model: &DigressModel, host_e: &[u32]) -> Result<GraphOutput> {
        let device = model.device().clone();
        device.run_step(|| self.step_here(model, host_e))
    }

    fn step_here(&mut self, model: &DigressModel, host_e: &[u32]) -> Result<GraphOutput> {
        if self.done() {
            return Err(Error::NotReady(format!(
                "the run has finished its {} steps",
                self.steps
            )));
        }
        let t = self.steps - self.done;
        let out = model.predict(&self.z, host_e, t)?;
        let (z, _, _) = model.process.step(
            &out.x,
            &out.e,
            &self.z,
            t - 1,
            GraphNoise::Philox(self.seed),
        )?;
        self.z = z;
        self.done += 1;
        Ok(out)
    }
}

/// A whole reverse run for graphs of `counts` nodes, waiting for each step (native: CLI and tests),
/// calling `on_step(s, &z_s, host_x, host_e)` after every step (s = T−1 … 0). A validation error or a
/// lost device makes every later state wrong, so the device is checked after every step. Returns the
/// final batch.
#[cfg(not(target_arch = "wasm32"))]
pub fn sample(
    model: &DigressModel,
    counts: &[usize],
    seed: u64,
    mut on_step: impl FnMut(usize, &GraphBatch, &[u32], &[u32]) -> Result<()>,
) -> Result<GraphBatch> {
    let device = model.device().clone();
    let mut run = GraphRun::start(model, counts, seed)?;
    let mut host_e = run.state().e.to_u32()?;
    while !run.done() {
        run.step(model, &host_e)?;
        device.submit();
        device.check()?;
        host_e = run.state().e.to_u32()?;
        let host_x = run.state().x.to_u32()?;
        on_step(run.steps - run.done, run.state(), &host_x, &host_e)?;
    }
    device.check()?;
    Ok(run.z)
}
