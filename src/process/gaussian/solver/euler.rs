//! `EulerDiscreteScheduler` and `EulerAncestralDiscreteScheduler`: one Euler step of the probability
//! flow ODE in σ (ancestral: to σ_down, then fresh noise of σ_up). In diffusers' σ-space sample
//! `s = √(σ²+1)·x`, `s' = s + (σ'−σ)·(s − x̂0)/σ`; for the variance-preserving state this is
//! `x' = (σ'/σ)·(√(σ²+1)/√(σ'²+1))·x + (1 − σ'/σ)/√(σ'²+1)·x̂0`.

use super::{default_unless, Ctx, Memory, Pass};
use crate::error::Result;
use crate::process::gaussian::sigmas::{
    euler_timesteps, interp, karras, log_sigmas, sigma_to_t, train_sigmas,
};
use crate::process::gaussian::Gaussian;
use crate::process::schedule::Spacing;
use crate::tensor::Tensor;

pub(super) struct Euler {
    /// σ at each evaluation and 0 after the last (float32, as diffusers stores them).
    sigmas: Vec<f32>,
    timesteps: Vec<f32>,
    spacing: Spacing,
    ancestral: bool,
}

/// The σ tables of Euler-family schedulers (Euler, Euler ancestral, Heun): σ interpolated at the
/// class's float timesteps, optionally Karras σ between the first and last of them, timesteps back
/// from σ. Returns (σ per step, timesteps, spacing).
pub(super) fn euler_tables(
    g: &Gaussian,
    steps: usize,
    use_karras: bool,
) -> Result<(Vec<f32>, Vec<f32>, Spacing)> {
    let c = &g.config;
    let spacing = default_unless(c, "timestep_spacing", c.timestep_spacing, Spacing::Linspace);
    let ts = euler_timesteps(g.train_timesteps(), steps, spacing, c.steps_offset)?;
    let train = train_sigmas(&g.alphas_cumprod);
    let mut sig: Vec<f64> = ts.iter().map(|&t| interp(t, &train)).collect();
    let mut ts = ts;
    if use_karras {
        sig = karras(sig[sig.len() - 1], sig[0], steps);
        let ls = log_sigmas(&train);
        ts = sig.iter().map(|&s| sigma_to_t(s, &ls)).collect();
    }
    Ok((
        sig.iter().map(|&s| s as f32).collect(),
        ts.iter().map(|&t| t as f32).collect(),
        spacing,
    ))
}

/// diffusers' `init_noise_sigma` of the Euler family for the variance-preserving state: σ_max with
/// linspace/trailing spacing (then x_T = σ_max/√(σ_max²+1)·z), √(σ_max²+1) with leading (x_T = z).
pub(super) fn euler_init_scale(sigmas: &[f32], spacing: Spacing) -> f32 {
    let max = sigmas.iter().copied().fold(0.0f32, f32::max) as f64;
    match spacing {
        Spacing::Linspace | Spacing::Trailing => (max / (max * max + 1.0).sqrt()) as f32,
        Spacing::Leading => 1.0,
    }
}

impl Euler {
    pub(super) fn new(
        g: &Gaussian,
        steps: usize,
        use_karras: bool,
        ancestral: bool,
    ) -> Result<Euler> {
        let (mut sigmas, timesteps, spacing) = euler_tables(g, steps, use_karras)?;
        sigmas.push(0.0);
        Ok(Euler {
            sigmas,
            timesteps,
            spacing,
            ancestral,
        })
    }

    pub(super) fn model_t(&self) -> Vec<f32> {
        self.timesteps.clone()
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
    ) -> Result<(crate::ops::update::StepOutput, Memory)> {
        let (s, s_next) = (self.sigmas[k] as f64, self.sigmas[k + 1] as f64);
        let (to, up) = if self.ancestral {
            let up = (s_next * s_next * (s * s - s_next * s_next) / (s * s)).sqrt();
            ((s_next * s_next - up * up).sqrt(), up)
        } else {
            (s_next, 0.0)
        };
        let out = ctx.pass(x, euler_pass(s, to, s_next, up), &[], ctx.extras)?;
        Ok((
            out,
            Memory {
                warm: memory.warm + 1,
                ..Memory::default()
            },
        ))
    }
}

/// An Euler step from σ to σ_to with the state landing at σ_next's scale (σ_to = σ_next except for
/// the ancestral step, which adds noise of σ_up after it).
pub(super) fn euler_pass(s: f64, to: f64, s_next: f64, up: f64) -> Pass {
    let (scale, scale_next) = ((s * s + 1.0).sqrt(), (s_next * s_next + 1.0).sqrt());
    Pass {
        read: (1.0 / scale, s / scale),
        clip: None,
        c_x0: (1.0 - to / s) / scale_next,
        c_eps: 0.0,
        c_xt: to / s * scale / scale_next,
        sigma: up / scale_next,
    }
}
