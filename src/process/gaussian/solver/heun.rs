//! `HeunDiscreteScheduler`: Heun's second-order method in σ. Each step but the last takes two model
//! evaluations — an Euler step from σ to σ' (kept: the state it started from and its x̂0), then at
//! σ' the average of both slopes applied from the kept state — so a run of n steps is 2n − 1
//! evaluations, as in diffusers (whose timesteps repeat each t after the first). The file's
//! `clip_sample` clamps x̂0 (the class default is off), and the class's own β defaults (0.00085 to
//! 0.012) apply where the file gives none.

use super::euler::{euler_init_scale, euler_pass, euler_tables};
use super::{default_unless, Ctx, Memory, Pass};
use crate::error::Result;
use crate::ops::update::StepOutput;
use crate::process::gaussian::Gaussian;
use crate::process::schedule::Spacing;
use crate::tensor::Tensor;

pub(super) struct Heun {
    /// σ per step (n) and 0 after the last.
    sigmas: Vec<f32>,
    timesteps: Vec<f32>,
    spacing: Spacing,
    clip: Option<f32>,
}

impl Heun {
    pub(super) fn new(g: &Gaussian, steps: usize, use_karras: bool) -> Result<Heun> {
        let c = &g.config;
        let mut cfg = c.clone();
        cfg.beta_start = default_unless(c, "beta_start", c.beta_start, 0.00085);
        cfg.beta_end = default_unless(c, "beta_end", c.beta_end, 0.012);
        let own = Gaussian::new(cfg)?;
        let (mut sigmas, timesteps, spacing) = euler_tables(&own, steps, use_karras)?;
        sigmas.push(0.0);
        let clip =
            default_unless(c, "clip_sample", c.clip_sample, false).then_some(c.clip_sample_range);
        Ok(Heun {
            sigmas,
            timesteps,
            spacing,
            clip,
        })
    }

    /// t_0, then every later t twice.
    pub(super) fn model_t(&self) -> Vec<f32> {
        let mut t = vec![self.timesteps[0]];
        for &v in &self.timesteps[1..] {
            t.extend([v, v]);
        }
        t
    }

    pub(super) fn init_scale(&self) -> f32 {
        euler_init_scale(&self.sigmas, self.spacing)
    }

    pub(super) fn step(
        &self,
        ctx: &Ctx<'_>,
        k: usize,
        x: &Tensor,
        memory: &Memory,
    ) -> Result<(StepOutput, Memory)> {
        // Even evaluations start a step (first order); odd ones correct it at σ'.
        let i = k.div_ceil(2);
        if k.is_multiple_of(2) {
            let (s, s_next) = (self.sigmas[i] as f64, self.sigmas[i + 1] as f64);
            let mut p = euler_pass(s, s_next, s_next, 0.0);
            p.clip = self.clip;
            let (out, x0) = ctx.pass_keeping_x0(x, p, &[])?;
            let memory = Memory {
                outputs: vec![x0],
                sample: Some(x.clone()),
                warm: memory.warm + 1,
                ..Memory::default()
            };
            return Ok((out, memory));
        }
        let (s, s_next) = (self.sigmas[i - 1] as f64, self.sigmas[i] as f64);
        let warm = Memory {
            warm: memory.warm + 1,
            ..Memory::default()
        };
        let (Some(start), Some(x0_first)) = (&memory.sample, memory.outputs.last()) else {
            // Resumed between the two evaluations: the Euler prediction stands.
            let p = Pass {
                read: read_at(s_next),
                clip: self.clip,
                c_xt: 1.0,
                ..Pass::default()
            };
            return Ok((ctx.pass(x, p, &[], ctx.extras)?, warm));
        };
        // s_start = √(σ²+1)·x_a, s_b = √(σ'²+1)·x_b, dt = σ' − σ:
        // s' = s_start + dt/2·((s_start − x̂0_a)/σ + (s_b − x̂0_b)/σ'), then x' = s'/√(σ'²+1).
        let (scale, scale_next) = ((s * s + 1.0).sqrt(), (s_next * s_next + 1.0).sqrt());
        let dt = s_next - s;
        let p = Pass {
            read: read_at(s_next),
            clip: self.clip,
            c_x0: -dt / (2.0 * s_next * scale_next),
            c_eps: 0.0,
            c_xt: dt / (2.0 * s_next),
            sigma: 0.0,
        };
        let hist = [
            ((scale + dt / 2.0 * scale / s) / scale_next, start),
            (-dt / (2.0 * s * scale_next), x0_first),
        ];
        Ok((ctx.pass(x, p, &hist, ctx.extras)?, warm))
    }
}

/// How a model output is read at σ: √ᾱ = 1/√(σ²+1), √(1−ᾱ) = σ/√(σ²+1).
fn read_at(s: f64) -> (f64, f64) {
    let scale = (s * s + 1.0).sqrt();
    (1.0 / scale, s / scale)
}
