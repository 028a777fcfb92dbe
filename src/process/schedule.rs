//! Gaussian β schedules and timestep spacings with diffusers' exact conventions (float32 tables,
//! index 0 already noised: ᾱ_0 = α_0 < 1).

use crate::error::{Error, Result};

/// Which β schedule (diffusers' `beta_schedule` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    /// `linspace(β0, β1, T)`
    Linear,
    /// `linspace(√β0, √β1, T)²`
    ScaledLinear,
    /// `β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999)`, `ᾱ(t) = cos²((t + 0.008)/1.008 · π/2)`
    #[serde(rename = "squaredcos_cap_v2")]
    SquaredCosCapV2,
}

impl BetaSchedule {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "linear" => Ok(BetaSchedule::Linear),
            "scaled_linear" => Ok(BetaSchedule::ScaledLinear),
            "squaredcos_cap_v2" | "cosine" => Ok(BetaSchedule::SquaredCosCapV2),
            other => Err(Error::Invalid(format!(
                "unknown beta_schedule \"{other}\" (expected linear, scaled_linear or squaredcos_cap_v2)"
            ))),
        }
    }
}

/// torch.linspace in float32: the first half counts up from `start`, the second half down from `end`,
/// which is what makes torch's endpoints exact.
pub fn linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start as f32];
    }
    let (s, e) = (start as f32, end as f32);
    let step = (e - s) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                s + step * i as f32
            } else {
                e - step * (n - 1 - i) as f32
            }
        })
        .collect()
}

/// β table for `t = 0..T-1` in float32.
pub fn betas(schedule: BetaSchedule, t: usize, beta_start: f64, beta_end: f64) -> Result<Vec<f32>> {
    if t == 0 {
        return Err(Error::Invalid(
            "num_train_timesteps must be at least 1".into(),
        ));
    }
    Ok(match schedule {
        BetaSchedule::Linear => linspace_f32(beta_start, beta_end, t),
        BetaSchedule::ScaledLinear => linspace_f32(beta_start.sqrt(), beta_end.sqrt(), t)
            .into_iter()
            .map(|b| b * b)
            .collect(),
        BetaSchedule::SquaredCosCapV2 => {
            let abar = |x: f64| {
                ((x + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                    .cos()
                    .powi(2)
            };
            (0..t)
                .map(|i| {
                    let (t1, t2) = (i as f64 / t as f64, (i + 1) as f64 / t as f64);
                    (1.0 - abar(t2) / abar(t1)).min(0.999) as f32
                })
                .collect()
        }
    })
}

/// `cumprod(1 − β)` accumulated in float32, as torch does.
pub fn alphas_cumprod(betas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f32;
    betas
        .iter()
        .map(|b| {
            acc *= 1.0 - b;
            acc
        })
        .collect()
}

/// How inference timesteps are picked from the training range (diffusers `timestep_spacing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    Leading,
    Trailing,
    Linspace,
}

impl Spacing {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "leading" => Ok(Spacing::Leading),
            "trailing" => Ok(Spacing::Trailing),
            "linspace" => Ok(Spacing::Linspace),
            other => Err(Error::Invalid(format!(
                "unknown timestep_spacing \"{other}\" (expected leading, trailing or linspace)"
            ))),
        }
    }
}

/// The descending inference timesteps for `n` steps out of `train_t` (diffusers `set_timesteps`).
pub fn timesteps(
    train_t: usize,
    n: usize,
    spacing: Spacing,
    steps_offset: usize,
) -> Result<Vec<usize>> {
    if n == 0 || n > train_t {
        return Err(Error::Invalid(format!(
            "{n} sampling steps requested, but the model was trained with {train_t} timesteps \
             (use 1..={train_t})"
        )));
    }
    let ts: Vec<usize> = match spacing {
        Spacing::Linspace => {
            // np.linspace(0, T-1, n).round()[::-1] in float64
            (0..n)
                .rev()
                .map(|i| {
                    let v = if n == 1 {
                        0.0
                    } else {
                        i as f64 * (train_t - 1) as f64 / (n - 1) as f64
                    };
                    round_half_even(v) as usize
                })
                .collect()
        }
        Spacing::Leading => {
            let ratio = train_t / n;
            (0..n).rev().map(|i| i * ratio + steps_offset).collect()
        }
        Spacing::Trailing => {
            // np.round(np.arange(T, 0, -T/n)) - 1
            let ratio = train_t as f64 / n as f64;
            (0..n)
                .map(|i| round_half_even(train_t as f64 - i as f64 * ratio) as usize - 1)
                .collect()
        }
    };
    if let Some(&bad) = ts.iter().find(|&&t| t >= train_t) {
        return Err(Error::Invalid(format!(
            "timestep {bad} (steps_offset {steps_offset}) is outside the training range 0..{train_t}"
        )));
    }
    Ok(ts)
}

/// numpy rounds half to even.
pub(crate) fn round_half_even(v: f64) -> f64 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - v.signum()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f64, rtol: f64) -> bool {
        ((a as f64) - b).abs() <= rtol * b.abs()
    }

    /// Golden values from ANCHOR_MATH §7.1 (diffusers linear schedule, float32).
    #[test]
    fn linear_schedule_matches_diffusers() {
        let b = betas(BetaSchedule::Linear, 1000, 1e-4, 0.02).unwrap();
        let ac = alphas_cumprod(&b);
        assert!(close(ac[0], 0.999899983, 1e-7), "{}", ac[0]);
        assert!(close(ac[1], 0.999780059, 1e-7), "{}", ac[1]);
        assert!(close(ac[499], 0.0785872415, 2e-6), "{}", ac[499]);
        assert!(close(ac[999], 4.03583254e-05, 2e-5), "{}", ac[999]);
        assert!(close(b[1], 1.199199e-4, 1e-5), "{}", b[1]);
    }

    #[test]
    fn timestep_spacings_match_diffusers() {
        let lead = timesteps(1000, 50, Spacing::Leading, 0).unwrap();
        assert_eq!(lead.len(), 50);
        assert_eq!((lead[0], lead[1], lead[48], lead[49]), (980, 960, 20, 0));
        let trail = timesteps(1000, 50, Spacing::Trailing, 0).unwrap();
        assert_eq!((trail[0], trail[1], trail[49]), (999, 979, 19));
        let lin = timesteps(1000, 50, Spacing::Linspace, 0).unwrap();
        assert_eq!(
            (lin[0], lin[1], lin[2], lin[48], lin[49]),
            (999, 979, 958, 20, 0)
        );
        assert!(timesteps(1000, 1001, Spacing::Leading, 0).is_err());
        assert!(timesteps(1000, 0, Spacing::Leading, 0).is_err());
        let off = timesteps(1000, 10, Spacing::Leading, 1).unwrap();
        assert_eq!((off[0], off[9]), (901, 1));
    }

    #[test]
    fn cosine_schedule_is_capped_and_monotone() {
        let b = betas(BetaSchedule::SquaredCosCapV2, 1000, 0.0, 0.0).unwrap();
        assert!(b.iter().all(|&x| x > 0.0 && x <= 0.999));
        assert_eq!(*b.last().unwrap(), 0.999);
        assert!(b.windows(2).all(|w| w[1] >= w[0]));
        assert!(BetaSchedule::parse("nope").is_err());
    }
}
