//! The σ-space schedules of diffusers' k-diffusion-style schedulers, reproduced from their
//! `set_timesteps`: σ = √((1−ᾱ)/ᾱ) of the training table in float32 (as torch forms it), the
//! inference timesteps of each class's spacing rule, σ interpolated at them (numpy `interp`, float64),
//! Karras et al.'s ρ = 7 ramp, and σ → timestep by interpolating log σ (`_sigma_to_t`). Each class
//! rounds and casts at its own places; these functions do so at the same places, so the tables match
//! diffusers' bit for bit where diffusers computes in float32 and to float64 rounding elsewhere.

use super::super::schedule::{round_half_even, Spacing};
use crate::error::{Error, Result};

/// σ_t = √((1−ᾱ_t)/ᾱ_t) for every training timestep, in float32.
pub fn train_sigmas(alphas_cumprod: &[f32]) -> Vec<f32> {
    alphas_cumprod
        .iter()
        .map(|&a| ((1.0 - a) / a).sqrt())
        .collect()
}

/// numpy `interp(x, arange(len(fp)), fp)` in float64.
pub fn interp(x: f64, fp: &[f32]) -> f64 {
    let last = fp.len() - 1;
    if x <= 0.0 {
        return fp[0] as f64;
    }
    if x >= last as f64 {
        return fp[last] as f64;
    }
    let j = x.floor() as usize;
    let slope = fp[j + 1] as f64 - fp[j] as f64;
    slope * (x - j as f64) + fp[j] as f64
}

/// Karras et al. (2022): `n` σ from `max` down to `min`, evenly spaced in σ^(1/ρ), ρ = 7 (float64).
pub fn karras(min: f64, max: f64, n: usize) -> Vec<f64> {
    let rho = 7.0;
    let (lo, hi) = (min.powf(1.0 / rho), max.powf(1.0 / rho));
    (0..n)
        .map(|i| {
            let ramp = if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64
            };
            (hi + ramp * (lo - hi)).powf(rho)
        })
        .collect()
}

/// diffusers `_sigma_to_t`: the fractional timestep whose log σ interpolates to `sigma`'s.
pub fn sigma_to_t(sigma: f64, log_sigmas: &[f64]) -> f64 {
    let ls = sigma.max(1e-10).ln();
    let n = log_sigmas.len();
    // The last index whose log σ is ≤ ls (0 when none is), at most n − 2.
    let low = log_sigmas
        .iter()
        .rposition(|&l| ls - l >= 0.0)
        .unwrap_or(0)
        .min(n - 2);
    let (lo, hi) = (log_sigmas[low], log_sigmas[low + 1]);
    let w = ((lo - ls) / (lo - hi)).clamp(0.0, 1.0);
    (1.0 - w) * low as f64 + w * (low + 1) as f64
}

/// The float32 log σ table `_sigma_to_t` interpolates (numpy `log` of the float32 σ, in float64).
pub fn log_sigmas(train: &[f32]) -> Vec<f64> {
    train.iter().map(|&s| (s as f64).ln()).collect()
}

/// The descending float timesteps of Euler, Euler ancestral and Heun (`n` of `train_t`).
pub fn euler_timesteps(
    train_t: usize,
    n: usize,
    spacing: Spacing,
    offset: usize,
) -> Result<Vec<f64>> {
    check_steps(train_t, n)?;
    let ts: Vec<f64> = match spacing {
        // np.linspace(0, T−1, n, dtype=float32)[::-1]: float64 values cast to float32.
        Spacing::Linspace => linspace((train_t - 1) as f64, n)
            .into_iter()
            .rev()
            .map(|v| v as f32 as f64)
            .collect(),
        Spacing::Leading => {
            let ratio = train_t / n;
            (0..n).rev().map(|i| (i * ratio + offset) as f64).collect()
        }
        Spacing::Trailing => trailing(train_t, n),
    };
    check_range(&ts, train_t, offset)?;
    Ok(ts)
}

/// The descending integer timesteps of DPM-Solver multistep and UniPC (which space `n + 1` points and
/// drop the last).
pub fn multistep_timesteps(
    train_t: usize,
    n: usize,
    spacing: Spacing,
    offset: usize,
) -> Result<Vec<f64>> {
    check_steps(train_t, n)?;
    let ts: Vec<f64> = match spacing {
        // np.linspace(0, T−1, n + 1).round()[::-1][:-1]
        Spacing::Linspace => linspace((train_t - 1) as f64, n + 1)
            .into_iter()
            .skip(1)
            .rev()
            .map(round_half_even)
            .collect(),
        Spacing::Leading => {
            let ratio = train_t / (n + 1);
            (1..=n).rev().map(|i| (i * ratio + offset) as f64).collect()
        }
        Spacing::Trailing => trailing(train_t, n),
    };
    check_range(&ts, train_t, offset)?;
    Ok(ts)
}

/// numpy `linspace(0, stop, n)` in float64 (the last point exactly `stop`).
pub fn linspace(stop: f64, n: usize) -> Vec<f64> {
    let step = stop / (n.max(2) - 1) as f64;
    (0..n)
        .map(|i| {
            if n == 1 {
                0.0
            } else if i == n - 1 {
                stop
            } else {
                i as f64 * step
            }
        })
        .collect()
}

/// diffusers' "trailing" spacing: `np.round(np.arange(T, 0, −T/n)) − 1`, descending.
pub fn trailing(train_t: usize, n: usize) -> Vec<f64> {
    let ratio = train_t as f64 / n as f64;
    let len = (train_t as f64 / ratio).ceil() as usize;
    (0..len)
        .map(|i| round_half_even(train_t as f64 - i as f64 * ratio) - 1.0)
        .collect()
}

fn check_steps(train_t: usize, n: usize) -> Result<()> {
    if n == 0 || n > train_t {
        return Err(Error::Invalid(format!(
            "{n} sampling steps requested, but the model was trained with {train_t} timesteps \
             (use 1..={train_t})"
        )));
    }
    Ok(())
}

fn check_range(ts: &[f64], train_t: usize, offset: usize) -> Result<()> {
    if let Some(&bad) = ts
        .iter()
        .find(|&&t| !(t >= 0.0 && t <= (train_t - 1) as f64))
    {
        return Err(Error::Invalid(format!(
            "timestep {bad} (steps_offset {offset}) is outside the training range 0..{train_t}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_to_t_inverts_the_table_and_clamps_outside_it() {
        let train: Vec<f32> = (0..10).map(|i| 0.1 * (i + 1) as f32).collect();
        let ls = log_sigmas(&train);
        for (t, &s) in train.iter().enumerate() {
            assert!(
                (sigma_to_t(s as f64, &ls) - t as f64).abs() < 1e-9,
                "t = {t}"
            );
        }
        let mid = ((ls[2] + ls[3]) / 2.0).exp();
        assert!((sigma_to_t(mid, &ls) - 2.5).abs() < 1e-9);
        assert_eq!(sigma_to_t(1e-3, &ls), 0.0);
        assert_eq!(sigma_to_t(50.0, &ls), 9.0);
    }

    #[test]
    fn karras_ramp_runs_from_max_to_min() {
        let k = karras(0.03, 80.0, 5);
        assert!((k[0] - 80.0).abs() < 1e-9 && (k[4] - 0.03).abs() < 1e-12);
        assert!(k.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn interp_is_exact_at_integers() {
        let fp = [1.0f32, 3.0, 7.0];
        assert_eq!(interp(1.0, &fp), 3.0);
        assert_eq!(interp(1.5, &fp), 5.0);
        assert_eq!(interp(9.0, &fp), 7.0);
    }
}
