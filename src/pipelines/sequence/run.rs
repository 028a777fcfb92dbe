//! The sequence reverse loop (D3PM, multinomial): every training timestep, ancestrally. A
//! [`SequenceRun`] is the state between steps; [`SequenceRun::step`] records one step (network +
//! posterior + categorical draw) without submitting; [`sample`] is the blocking loop of the CLI and
//! the tests, which checks the device after every step.

use super::SequenceModel;
use crate::error::{Error, Result};
use crate::nn::Denoiser;
use crate::process::discrete::{Padding, StepDraw, StepOut, Unmasking};
use crate::tensor::Tensor;

/// A reverse run between steps. Cloning is cheap (tensors share storage): the app steps a clone on a
/// worker thread while the UI reads the original's plan and settings.
#[derive(Clone)]
pub struct SequenceRun {
    pub seed: u64,
    pub temperature: f32,
    /// Which masked positions a step reveals (absorbing models; random for the others).
    pub order: Unmasking,
    /// Where padding may go (models with a pad class and a D3PM process; ignored by the others).
    pub padding: Padding,
    /// u32 `[N, L]`: the state after [`Self::steps_done`] steps.
    x: Tensor,
    timesteps: Vec<usize>,
    done: usize,
}

impl SequenceRun {
    /// From the prior draw x_T of `n` sequences.
    pub fn start(m: &SequenceModel, n: usize, seed: u64, temperature: f32) -> Result<SequenceRun> {
        check_temperature(temperature)?;
        let x = m
            .process
            .prior_sample(m.denoiser.device(), n, m.config.seq_len, seed)?;
        Ok(SequenceRun {
            seed,
            temperature,
            order: Unmasking::Random,
            padding: Padding::default(),
            x,
            timesteps: m.process.timesteps(),
            done: 0,
        })
    }

    /// The same run with positions revealed in `order` (an error for a non-absorbing model).
    pub fn with_order(mut self, m: &SequenceModel, order: Unmasking) -> Result<SequenceRun> {
        if order != Unmasking::Random && !m.process.absorbing() {
            return Err(Error::Invalid(format!(
                "{}: the {} un-masking order needs an absorbing model ({} has no masks)",
                m.name,
                order.name(),
                m.process.describe()
            )));
        }
        self.order = order;
        Ok(self)
    }

    /// The same run with padding held where `padding` says.
    pub fn with_padding(mut self, padding: Padding) -> SequenceRun {
        self.padding = padding;
        self
    }

    /// The settings of this run's draws for model `m`.
    pub fn draw(&self, m: &SequenceModel) -> StepDraw {
        StepDraw {
            temperature: self.temperature,
            order: self.order,
            pad_suffix: match self.padding {
                Padding::Suffix => m.pad_suffix(),
                Padding::Free => None,
            },
        }
    }

    /// Continue from token ids `[n, L]` reached after `done` steps, with `seed` for the steps from
    /// here on (a fork draws a different future; the run's own seed continues it exactly).
    pub fn resume(
        m: &SequenceModel,
        ids: &[u32],
        done: usize,
        seed: u64,
        temperature: f32,
    ) -> Result<SequenceRun> {
        check_temperature(temperature)?;
        let timesteps = m.process.timesteps();
        let l = m.config.seq_len.max(1);
        if done > timesteps.len() || ids.is_empty() || !ids.len().is_multiple_of(l) {
            return Err(Error::NotReady(format!(
                "cannot resume after step {done} of {} from {} token ids",
                timesteps.len(),
                ids.len()
            )));
        }
        let x = Tensor::from_indices(
            m.denoiser.device(),
            &[ids.len() / l, l],
            ids,
            m.process.k() as u32,
            "token ids",
        )?;
        Ok(SequenceRun {
            seed,
            temperature,
            order: Unmasking::Random,
            padding: Padding::default(),
            x,
            timesteps,
            done,
        })
    }

    /// The current tokens x_t, u32 `[N, L]`.
    pub fn state(&self) -> &Tensor {
        &self.x
    }

    /// Reverse steps in a whole run.
    pub fn steps(&self) -> usize {
        self.timesteps.len()
    }

    pub fn steps_done(&self) -> usize {
        self.done
    }

    pub fn done(&self) -> bool {
        self.done >= self.timesteps.len()
    }

    /// The timestep of the state after `k` steps (x_T is k = 0), while there is a step from it.
    pub fn t_of(&self, k: usize) -> Option<usize> {
        self.timesteps.get(k).copied()
    }

    /// Record the next reverse step (the caller submits); the state moves on to x_{t−1}.
    pub fn step(&mut self, m: &SequenceModel) -> Result<StepOut> {
        let device = self.x.device().clone();
        device.run_step(|| self.step_here(m))
    }

    fn step_here(&mut self, m: &SequenceModel) -> Result<StepOut> {
        let t = self.t_of(self.done).ok_or_else(|| {
            Error::NotReady(format!("the run has finished its {} steps", self.steps()))
        })?;
        let out = m.process.step(
            &m.denoiser,
            &self.x,
            (t, self.done, self.seed),
            self.draw(m),
        )?;
        self.x = out.x_prev.clone();
        self.done += 1;
        Ok(out)
    }
}

fn check_temperature(temperature: f32) -> Result<()> {
    if temperature > 0.0 && temperature.is_finite() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "temperature {temperature} must be a finite number > 0"
        )))
    }
}

/// A whole reverse run of `n` sequences, waiting for each step (native: CLI and tests).
/// `on_step(x_t, out)` sees each step's input state and output before the next is recorded. A
/// validation error or a lost device makes every later state wrong, so the device is checked after
/// every step. Returns the final ids `[n, L]`.
#[cfg(not(target_arch = "wasm32"))]
pub fn sample(
    m: &SequenceModel,
    n: usize,
    seed: u64,
    (temperature, order, padding): (f32, Unmasking, Padding),
    mut on_step: impl FnMut(&Tensor, &StepOut) -> Result<()>,
) -> Result<Vec<u32>> {
    let device = m.denoiser.device().clone();
    let mut run = SequenceRun::start(m, n, seed, temperature)?
        .with_order(m, order)?
        .with_padding(padding);
    while !run.done() {
        let x_t = run.state().clone();
        let out = run.step(m)?;
        on_step(&x_t, &out)?;
        device.submit();
        device.check()?;
    }
    let ids = run.state().to_u32()?;
    device.check()?;
    Ok(ids)
}
