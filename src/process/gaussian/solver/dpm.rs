//! `DPMSolverMultistepScheduler` with `dpmsolver++` (data prediction) and its SDE variant
//! `sde-dpmsolver++`: first order at the first step (and the last, since the final σ is zero), second
//! order from the x̂0 of this step and the previous one otherwise (`midpoint` or `heun` form).
//! Written for the variance-preserving state, which is diffusers' own `sample` here.

use super::{default_unless, multistep_settings, vp, Ctx, Memory, Pass};
use crate::error::Result;
use crate::ops::update::StepOutput;
use crate::process::gaussian::sigmas::{
    interp, karras, log_sigmas, multistep_timesteps, sigma_to_t, train_sigmas,
};
use crate::process::gaussian::Gaussian;
use crate::process::schedule::{BetaSchedule, Spacing};
use crate::tensor::Tensor;

pub(super) struct Dpm {
    /// σ per step and 0 after the last.
    sigmas: Vec<f32>,
    timesteps: Vec<f32>,
    sde: bool,
    order: usize,
    heun: bool,
}

/// σ tables shared by DPM-Solver multistep and UniPC: integer timesteps of the class's spacing and σ
/// at them, or Karras σ over the whole training range with timesteps back from σ (rounded, except
/// for DPM-Solver on a cosine schedule). Returns (σ per step, timesteps).
/// Multistep solvers divide by the log-SNR step between evaluations: a plan that repeats a timestep
/// (linspace spacing rounds two of them to one when the steps approach the training timesteps, as
/// do Karras σ rounded to integers) is refused with the reason. diffusers runs it and ends in NaN.
pub(super) fn distinct_steps(
    name: &str,
    timesteps: &[f32],
    steps: usize,
    train: usize,
) -> Result<()> {
    match timesteps.windows(2).position(|w| w[0] == w[1]) {
        None => Ok(()),
        Some(i) => Err(crate::error::Error::Invalid(format!(
            "{name}: {steps} steps over this model's {train} training timesteps visit timestep {} \
             twice (at steps {i} and {}): the solver would divide by a zero step (diffusers' own run \
             ends in NaN); use fewer steps",
            timesteps[i],
            i + 1
        ))),
    }
}

pub(super) fn multistep_tables(
    g: &Gaussian,
    steps: usize,
    use_karras: bool,
    round_karras_t: bool,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let c = &g.config;
    let spacing = default_unless(c, "timestep_spacing", c.timestep_spacing, Spacing::Linspace);
    let ts = multistep_timesteps(g.train_timesteps(), steps, spacing, c.steps_offset)?;
    let train = train_sigmas(&g.alphas_cumprod);
    if use_karras {
        let sig = karras(train[0] as f64, train[train.len() - 1] as f64, steps);
        let ls = log_sigmas(&train);
        let ts = sig
            .iter()
            .map(|&s| {
                let t = sigma_to_t(s, &ls);
                if round_karras_t {
                    crate::process::schedule::round_half_even(t)
                } else {
                    t
                }
            })
            .collect::<Vec<f64>>();
        return Ok((
            sig.iter().map(|&s| s as f32).collect(),
            ts.iter().map(|&t| t as f32).collect(),
        ));
    }
    Ok((
        ts.iter().map(|&t| interp(t, &train) as f32).collect(),
        ts.iter().map(|&t| t as f32).collect(),
    ))
}

/// λ = log α − log σ of a k-diffusion σ (+∞ at σ = 0).
pub(super) fn lambda(sigma: f64) -> f64 {
    let (a, s) = vp(sigma);
    a.ln() - s.ln()
}

impl Dpm {
    pub(super) fn new(g: &Gaussian, steps: usize, sde: bool, use_karras: bool) -> Result<Dpm> {
        let c = &g.config;
        let round = c.beta_schedule != BetaSchedule::SquaredCosCapV2;
        let (mut sigmas, timesteps) = multistep_tables(g, steps, use_karras, round)?;
        let name = if sde { "dpm++2m-sde" } else { "dpm++2m" };
        distinct_steps(name, &timesteps, steps, g.train_timesteps())?;
        sigmas.push(0.0);
        let (heun, order) = multistep_settings(
            c,
            "dpm++2m",
            ["midpoint", "heun"],
            &["logrho", "bh1", "bh2"],
        )?;
        Ok(Dpm {
            sigmas,
            timesteps,
            sde,
            order,
            heun,
        })
    }

    pub(super) fn model_t(&self) -> Vec<f32> {
        self.timesteps.clone()
    }

    pub(super) fn step(
        &self,
        ctx: &Ctx<'_>,
        k: usize,
        x: &Tensor,
        memory: &Memory,
    ) -> Result<(StepOutput, Memory)> {
        let n = self.timesteps.len();
        let (s0, t) = (self.sigmas[k] as f64, self.sigmas[k + 1] as f64);
        let ((a_t, s_t), (a_s0, s_s0)) = (vp(t), vp(s0));
        let h = lambda(t) - lambda(s0);
        // The final σ is zero (final_sigmas_type "zero"), so diffusers steps first order there
        // whatever lower_order_final and euler_at_final say.
        let lower_final = k == n - 1;
        let prev = memory.outputs.last();
        let first = self.order == 1 || memory.warm < 1 || lower_final || prev.is_none();
        let em = (-h).exp();
        let mut p = Pass {
            read: (a_s0, s_s0),
            ..Pass::default()
        };
        let mut hist = Vec::new();
        if self.sde {
            let e2 = (-2.0 * h).exp();
            let cc = a_t * (1.0 - e2);
            p.c_xt = s_t / s_s0 * em;
            p.sigma = s_t * (1.0 - e2).sqrt();
            if first {
                p.c_x0 = cc;
            } else {
                let r0 = (lambda(s0) - lambda(self.sigmas[k - 1] as f64)) / h;
                let d1 = if self.heun {
                    a_t * ((1.0 - e2) / (-2.0 * h) + 1.0)
                } else {
                    0.5 * cc
                };
                p.c_x0 = cc + d1 / r0;
                hist.push((-d1 / r0, prev.unwrap()));
            }
        } else {
            let a = a_t * (em - 1.0);
            p.c_xt = s_t / s_s0;
            if first {
                p.c_x0 = -a;
            } else {
                let r0 = (lambda(s0) - lambda(self.sigmas[k - 1] as f64)) / h;
                // x' = (σ_t/σ_s0)x − A·D0 + B·D1 with D1 = (m0 − m1)/r0.
                let b = if self.heun {
                    a_t * ((em - 1.0) / h + 1.0)
                } else {
                    -0.5 * a
                };
                p.c_x0 = -a + b / r0;
                hist.push((-b / r0, prev.unwrap()));
            }
        }
        let (out, x0) = ctx.pass_keeping_x0(x, p, &hist)?;
        Ok((
            out,
            Memory {
                outputs: vec![x0],
                warm: memory.warm + 1,
                ..Memory::default()
            },
        ))
    }
}
