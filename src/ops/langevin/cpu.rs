//! The Langevin corrector on host memory (see the GPU driver for the formula).

use super::Langevin;

/// `x + c_eps·ε̂ + c_z·z` with the batch-coupled coefficients of `ScoreSdeVeScheduler.step_correct`.
pub fn langevin_correct(x: &[f32], eps: &[f32], z: &[f32], rows: usize, l: &Langevin) -> Vec<f32> {
    let len = x.len() / rows.max(1);
    let (mut a, mut b) = (0f32, 0f32);
    for (e, w) in eps.chunks(len.max(1)).zip(z.chunks(len.max(1))) {
        a += e.iter().map(|v| v * v).sum::<f32>().sqrt();
        b += w.iter().map(|v| v * v).sum::<f32>().sqrt();
    }
    let grad_norm = a / rows as f32 / l.sigma;
    let noise_norm = b / rows as f32;
    let r = l.snr * noise_norm / grad_norm;
    let step = r * r * 2.0;
    let (ce, cz) = (-l.alpha * step / l.sigma, l.alpha * (step * 2.0).sqrt());
    x.iter()
        .zip(eps)
        .zip(z)
        .map(|((&xi, &e), &w)| xi + ce * e + cz * w)
        .collect()
}
