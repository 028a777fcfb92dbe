//! The Gaussian reverse loop. A [`GaussianRun`] is the state between steps — x_t, the plan and the
//! settings — and [`GaussianRun::step`] records one reverse step (network + fused update) without
//! submitting, so the app can read the step's frame back in the same submission; [`sample`] is the
//! blocking loop of the CLI and the tests, which checks the device after every step.

use super::GaussianModel;
use crate::error::{Error, Result};
use crate::ops::update::{Extras, StepOutput};
use crate::ops::{elementwise as ew, random};
use crate::process::gaussian::solver::{Memory, Solver};
use crate::process::gaussian::{PlannedStep, SampleSettings};
use crate::rng::{Philox, Substream};
use crate::tensor::Tensor;
#[cfg(not(target_arch = "wasm32"))]
use crate::trajectory::Trajectory;
use std::sync::Arc;

/// A reverse run between steps. Cloning is cheap (tensors share storage): the app steps a clone on a
/// worker thread while the UI reads the original's plan and settings.
#[derive(Clone)]
pub struct GaussianRun {
    pub settings: SampleSettings,
    /// One entry per model evaluation.
    pub plan: Vec<PlannedStep>,
    /// The state after [`Self::steps_done`] steps: the one the next step starts from.
    x: Tensor,
    done: usize,
    /// A σ-space or multistep sampler (`None`: DDPM/DDIM, which remember nothing) and what it
    /// remembers after [`Self::steps_done`] steps.
    solver: Option<Arc<Solver>>,
    memory: Memory,
    /// Inpainting: the known image and the region kept from it.
    inpaint: Option<Inpaint>,
}

/// Inpainting by replacement (RePaint without its resampling loop): after every step the kept
/// region of x is overwritten by the known image taken to the step's destination timestep through
/// q(x_t | x0) — √ᾱ·known + √(1−ᾱ)·z, z from Philox (seed, step, `Inpaint`) — so the network only
/// ever fills in the rest, and at the end the kept region is the known image exactly.
#[derive(Clone)]
struct Inpaint {
    /// `[n, ..sample shape]`.
    known: Tensor,
    /// `[1, ..sample shape]`: 1 where the known image is kept, 0 where the model draws.
    keep: Tensor,
}

impl GaussianRun {
    /// From x_T: `init` (host values, `[n, ..sample shape]`, unit variance) or the process's own
    /// Philox draw, scaled by the sampler's initial noise σ as diffusers' pipelines do.
    pub fn start(
        model: &GaussianModel,
        settings: &SampleSettings,
        n: usize,
        init: Option<&[f32]>,
    ) -> Result<GaussianRun> {
        // Refuse a batch the device cannot hold before anything is allocated (guidance doubles it).
        let guided = settings.guidance.is_some_and(|w| w != 1.0);
        let batch = if guided { 2 * n } else { n };
        if let Some(f) = model.denoiser.footprint(batch) {
            f.check(model.denoiser.device(), &model.name, batch)?;
        }
        let solver = Solver::new(&model.process, settings.sampler, settings.steps)?.map(Arc::new);
        let plan = match &solver {
            Some(s) => s.plan(),
            None => model.process.plan(settings.sampler, settings.steps)?,
        };
        let device = model.denoiser.device();
        let mut x = match init {
            Some(v) => Tensor::from_f32(device, &model.batch_shape(n), v)?,
            None => {
                model
                    .process
                    .initial(device, n, model.denoiser.sample_shape(), settings.seed)?
            }
        };
        if let Some(s) = solver.as_ref().filter(|s| s.init_scale() != 1.0) {
            x = crate::ops::elementwise::affine(&x, s.init_scale(), 0.0)?;
        }
        Ok(GaussianRun {
            settings: settings.clone(),
            plan,
            x,
            done: 0,
            solver,
            memory: Memory::default(),
            inpaint: None,
        })
    }

    /// Inpaint from the next step on: after each, the region where `keep` (one sample's shape, 0/1)
    /// is 1 comes from `known` (host values, the batch's shape) and the model draws the rest. The
    /// current state is left as it is (x_T is noise everywhere; an SDEdit start is already the known
    /// image noised to its t).
    pub fn with_inpaint(
        mut self,
        model: &GaussianModel,
        known: &[f32],
        keep: &[f32],
    ) -> Result<GaussianRun> {
        let device = model.denoiser.device();
        let n = self.batch();
        let mut one = model.batch_shape(1);
        if keep.len() != model.sample_len() || known.len() != n * model.sample_len() {
            return Err(Error::Invalid(format!(
                "inpainting needs a known image of {} values per sample for {n} samples and a \
                 mask of {} (got {} and {})",
                model.sample_len(),
                model.sample_len(),
                known.len(),
                keep.len()
            )));
        }
        one[0] = 1;
        self.inpaint = Some(Inpaint {
            known: Tensor::from_f32(device, &model.batch_shape(n), known)?,
            keep: Tensor::from_f32(device, &one, keep)?,
        });
        Ok(self)
    }

    /// `x` with its kept region replaced by the known image at timestep `t` (`None`: clean), noise
    /// from stream `stream`; `x` itself without inpainting.
    fn replace_kept(
        &self,
        model: &GaussianModel,
        t: Option<usize>,
        stream: u32,
        x: &Tensor,
    ) -> Result<Tensor> {
        let Some(ip) = &self.inpaint else {
            return Ok(x.clone());
        };
        let a = t.map_or(1.0, |t| model.process.alphas_cumprod[t]);
        let z = random::normal(
            x.device(),
            x.shape(),
            Philox::new(self.settings.seed, stream, Substream::Inpaint),
        )?;
        let known_t = ew::axpby(a.sqrt(), &ip.known, (1.0 - a).sqrt(), &z)?;
        // x + keep·(known_t − x): keep is 0/1, so each element is one or the other exactly.
        let moved = ew::mul(&ew::sub(&known_t, x)?, &ip.keep)?;
        ew::add(x, &moved)
    }

    /// Continue a run from a state it reached after `done` steps (a fork, or a run moved onto a new
    /// device): the same plan, the given settings (a fork's new seed), x from the host.
    pub fn resume(
        model: &GaussianModel,
        settings: &SampleSettings,
        plan: Vec<PlannedStep>,
        done: usize,
        state: &[f32],
    ) -> Result<GaussianRun> {
        if done > plan.len() {
            return Err(Error::NotReady(format!(
                "cannot resume after step {done} of a {}-step plan",
                plan.len()
            )));
        }
        let n = state.len() / model.sample_len().max(1);
        let x = Tensor::from_f32(model.denoiser.device(), &model.batch_shape(n), state)?;
        let solver = Solver::new(&model.process, settings.sampler, settings.steps)?.map(Arc::new);
        if solver.as_ref().is_some_and(|s| s.evals() != plan.len()) {
            return Err(Error::NotReady(format!(
                "a {}-step plan is not {}'s plan for {} steps",
                plan.len(),
                settings.sampler.name(),
                settings.steps
            )));
        }
        Ok(GaussianRun {
            settings: settings.clone(),
            plan,
            x,
            done,
            solver,
            memory: Memory::default(),
            inpaint: None,
        })
    }

    /// [`Self::resume`] with what a multistep sampler remembered rebuilt exactly: its memory after
    /// step `done` is a function of the states it stepped from, so the solver's evaluations are
    /// replayed from `earlier(j)` (the host copy of the state after `j` steps, for `j < done`),
    /// keeping only the memory — the resumed run is then bit for bit the uninterrupted one (same
    /// device kind). Costs `done` network evaluations; where a state is missing (thinned by a memory
    /// cap) the solver warms up afresh instead, as [`Self::resume`] does.
    pub fn resume_replayed(
        model: &GaussianModel,
        settings: &SampleSettings,
        plan: Vec<PlannedStep>,
        done: usize,
        state: &[f32],
        earlier: &dyn Fn(usize) -> Option<Vec<f32>>,
    ) -> Result<GaussianRun> {
        let mut run = GaussianRun::resume(model, settings, plan, done, state)?;
        let Some(solver) = run.solver.clone() else {
            return Ok(run);
        };
        let device = model.denoiser.device();
        let shape = run.x.shape().to_vec();
        let mut memory = Memory::default();
        for j in 0..done {
            let Some(x) = earlier(j) else {
                return Ok(run);
            };
            let x = Tensor::from_f32(device, &shape, &x)?;
            let (_, next) = solver.step(
                model.denoiser.as_ref(),
                &x,
                j,
                settings,
                &memory,
                None,
                Extras::default(),
            )?;
            device.submit();
            memory = next;
        }
        device.check()?;
        run.memory = memory;
        Ok(run)
    }

    /// The current state x (after [`Self::steps_done`] steps).
    pub fn state(&self) -> &Tensor {
        &self.x
    }

    /// Samples in the batch.
    pub fn batch(&self) -> usize {
        self.x.dim(0)
    }

    pub fn steps_done(&self) -> usize {
        self.done
    }

    pub fn done(&self) -> bool {
        self.done >= self.plan.len()
    }

    /// Record the next reverse step (the caller submits); the state moves on to x_{t−1}. `extras`
    /// asks for the step's x̂0 and ε̂ as well.
    pub fn step(&mut self, model: &GaussianModel, extras: Extras) -> Result<StepOutput> {
        let device = self.x.device().clone();
        device.run_step(|| self.step_here(model, extras))
    }

    fn step_here(&mut self, model: &GaussianModel, extras: Extras) -> Result<StepOutput> {
        let mut out = match &self.solver {
            None => model.process.step(
                model.denoiser.as_ref(),
                &self.x,
                &self.plan,
                self.done,
                &self.settings,
                extras,
            )?,
            Some(solver) => {
                let (out, memory) = solver.step(
                    model.denoiser.as_ref(),
                    &self.x,
                    self.done,
                    &self.settings,
                    &self.memory,
                    None,
                    extras,
                )?;
                self.memory = memory;
                out
            }
        };
        if self.inpaint.is_some() {
            let to = self.plan[self.done].prev;
            out.x_prev = self.replace_kept(model, to, self.done as u32, &out.x_prev)?;
        }
        self.x = out.x_prev.clone();
        self.done += 1;
        Ok(out)
    }
}

/// Run a whole reverse trajectory, waiting for each step (native: CLI and tests). With `record`,
/// every state and prediction is read back; otherwise only the final state is. A validation error or
/// a lost device makes every later state wrong, so the device is checked after every step.
#[cfg(not(target_arch = "wasm32"))]
pub fn sample(
    model: &GaussianModel,
    settings: &SampleSettings,
    n: usize,
    init: Option<&[f32]>,
    record: bool,
) -> Result<Trajectory> {
    sample_observed(model, settings, n, init, record, |_, _| {})
}

/// [`sample`], calling `on_step(done, total)` after each step (the CLI's progress line).
#[cfg(not(target_arch = "wasm32"))]
pub fn sample_observed(
    model: &GaussianModel,
    settings: &SampleSettings,
    n: usize,
    init: Option<&[f32]>,
    record: bool,
    mut on_step: impl FnMut(usize, usize),
) -> Result<Trajectory> {
    let mut run = GaussianRun::start(model, settings, n, init)?;
    let device = model.denoiser.device().clone();
    let mut traj = Trajectory {
        settings: settings.clone(),
        shape: model.batch_shape(n),
        plan: run.plan.clone(),
        states: Vec::new(),
        x0: Vec::new(),
        eps: Vec::new(),
    };
    if record {
        traj.states.push(run.state().to_f32()?);
    }
    let extras = Extras {
        x0: record,
        eps: record,
    };
    while !run.done() {
        let out = run.step(model, extras)?;
        device.submit();
        device.check()?;
        on_step(run.steps_done(), run.plan.len());
        if record {
            traj.states.push(out.x_prev.to_f32()?);
            if let Some(t) = out.x0 {
                traj.x0.push(t.to_f32()?);
            }
            if let Some(t) = out.eps {
                traj.eps.push(t.to_f32()?);
            }
        }
    }
    if !record {
        traj.states.push(run.state().to_f32()?);
    }
    device.check()?;
    Ok(traj)
}
