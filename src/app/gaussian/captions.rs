//! What each sampler does, in words: the reverse view's caption for a step and the sampler menu's
//! hover text.

use crate::process::gaussian::Sampler;

/// How the viewed sampler turns x_t and x0_pred into the next state (the view's caption).
pub(super) fn step_rule(sampler: Sampler) -> &'static str {
    match sampler {
        Sampler::Ddpm => "x_(t−1) = posterior mean(x_t, x0_pred) + σ_t·z.",
        Sampler::Ddim { eta: 0.0 } => {
            "x_(t−1) = √ᾱ_(t−1)·x0_pred + √(1−ᾱ_(t−1))·ε_pred, no fresh noise (DDIM, η = 0)."
        }
        Sampler::Ddim { .. } => {
            "x_(t−1) = √ᾱ_(t−1)·x0_pred + √(1−ᾱ_(t−1)−σ²)·ε_pred + σ·z (DDIM with η)."
        }
        Sampler::DpmSolver { sde: false, .. } => {
            "DPM-Solver++ 2M extrapolates from this step's x0_pred and the previous one's (a \
             second-order step of the probability-flow ODE in log-SNR)."
        }
        Sampler::DpmSolver { sde: true, .. } => {
            "DPM-Solver++ 2M SDE: the second-order data-prediction step plus fresh noise."
        }
        Sampler::Euler { .. } => {
            "one Euler step of the ODE in σ: x moves along (x − x0_pred)/σ to the next σ."
        }
        Sampler::EulerAncestral => {
            "an Euler step to σ_down, then fresh noise σ_up·z (Euler ancestral)."
        }
        Sampler::Heun { .. } => {
            "Heun: an Euler step to the next σ, then the network again there and the average of \
             both slopes (two evaluations per step)."
        }
        Sampler::UniPc { .. } => {
            "UniPC: the new x0_pred first corrects the state it was computed from, then predicts \
             the next one from the last two x0_pred."
        }
        Sampler::Pndm { .. } => {
            "PNDM: a DDIM-like step with ε_pred replaced by a linear-multistep blend of the last \
             four network outputs (Runge–Kutta steps first, unless PLMS)."
        }
        Sampler::ScoreSdeVe => {
            "score-SDE: Langevin corrections x += ε·score + √(2ε)·z at this σ, then a \
             reverse-diffusion step to the next σ along the score, plus noise."
        }
    }
}

/// What each sampler is, in a sentence (the menu's hover text).
pub(super) fn sampler_help(name: &str) -> &'static str {
    match name {
        "ddpm" => "DDPM: ancestral sampling, fresh noise every step (diffusers DDPMScheduler)",
        "ddim" => "DDIM: deterministic at η = 0, DDPM-like at η = 1 (DDIMScheduler)",
        "dpm++2m" => "DPM-Solver++ 2M: second-order multistep ODE solver, good at 15–25 steps",
        "dpm++2m-sde" => "DPM-Solver++ 2M SDE: the stochastic form, fresh noise every step",
        "euler" => "Euler: first-order ODE step in σ (EulerDiscreteScheduler)",
        "euler-a" => {
            "Euler ancestral: an Euler step, then fresh noise (EulerAncestralDiscreteScheduler)"
        }
        "heun" => "Heun: second order, two network evaluations per step (HeunDiscreteScheduler)",
        "unipc" => "UniPC: predictor–corrector multistep solver (UniPCMultistepScheduler)",
        "pndm" => "PNDM: Runge–Kutta warm-up, then pseudo linear multistep (PNDMScheduler)",
        "plms" => "PLMS: PNDM's linear multistep from the first step (skip_prk_steps)",
        "sde-ve" => {
            "score-SDE predictor–corrector for variance-exploding (NCSN++) models \
             (ScoreSdeVeScheduler)"
        }
        _ => "",
    }
}
