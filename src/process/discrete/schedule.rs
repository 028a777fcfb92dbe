//! The discrete noise schedules, each computed in the precision and order of its reference: moco's
//! cosine and linear schedules in float32, Hoogeboom's cosine schedule in float64.

/// bionemo-moco's `DiscreteCosineNoiseSchedule(nsteps, nu, s).generate_schedule()`: the per-step keep
/// factors α (index 0 least noisy), computed in float32 in torch's order, with β clipped to
/// [1e-3, 0.999].
pub fn moco_cosine_alphas(nsteps: usize, nu: f32, s: f32) -> Vec<f32> {
    let n = nsteps as f32;
    let x = crate::process::schedule::linspace_f32(0.0, nsteps as f64, nsteps + 1);
    let one_s = (1.0f64 + s as f64) as f32;
    let ac: Vec<f32> = x
        .iter()
        .map(|&xi| {
            let c = (((xi / n).powf(nu) + s) / one_s * std::f32::consts::PI * 0.5).cos();
            c * c
        })
        .collect();
    let a0 = ac[0];
    let ac: Vec<f32> = ac.iter().map(|&v| v / a0).collect();
    (0..nsteps)
        .map(|i| 1.0 - (1.0 - ac[i + 1] / ac[i]).clamp(0.001, 0.999))
        .collect()
}

/// bionemo-moco's `DiscreteLinearNoiseSchedule`: `α = 1 − linspace(β_start, β_end, n)` in float32.
pub fn moco_linear_alphas(nsteps: usize, beta_start: f64, beta_end: f64) -> Vec<f32> {
    crate::process::schedule::linspace_f32(beta_start, beta_end, nsteps)
        .into_iter()
        .map(|b| 1.0 - b)
        .collect()
}

/// Hoogeboom's `cosine_beta_schedule` for multinomial diffusion, in float64: `linspace(0, T+1, T+1)`
/// spacing, α = ᾱ_{t+1}/ᾱ_t clipped to ≥ 1e-3, then **√α** ("alpha in our paper is alpha_sqrt of Ho").
pub fn hoogeboom_cosine_alphas(t: usize, s: f64) -> Vec<f64> {
    let steps = t + 1;
    let ac: Vec<f64> = (0..steps)
        .map(|i| {
            // numpy linspace(0, steps, steps): i·steps/(steps−1).
            let x = if steps > 1 {
                i as f64 * steps as f64 / (steps - 1) as f64
            } else {
                0.0
            };
            let c = ((x / steps as f64 + s) / (1.0 + s) * std::f64::consts::PI * 0.5).cos();
            c * c
        })
        .collect();
    let a0 = ac[0];
    (0..t)
        .map(|i| ((ac[i + 1] / a0) / (ac[i] / a0)).clamp(0.001, 1.0).sqrt())
        .collect()
}

/// ᾱ_t = Π_{s ≤ t} α_s (the closed form of moco's sequential `Q̄` products), accumulated in f64.
pub(super) fn cumprod(alphas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    alphas
        .iter()
        .map(|&a| {
            acc *= a as f64;
            acc as f32
        })
        .collect()
}
