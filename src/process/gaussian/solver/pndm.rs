//! `PNDMScheduler`: pseudo linear multistep on ε. By default (as diffusers' class) the first three
//! steps are Runge–Kutta warm-ups of four evaluations each (timesteps t, t − r/2, t − r/2, t − r),
//! then PLMS with up to four earlier outputs; `skip_prk_steps` runs PLMS from the start, whose second
//! evaluation re-steps from the first state with the average of both outputs. Every step is
//! diffusers' `_get_prev_sample(S, t, t', M)` — `x' = √(ᾱ'/ᾱ)·S − (ᾱ'−ᾱ)/(ᾱ√(1−ᾱ') + √(ᾱ(1−ᾱ)ᾱ'))·M`
//! with M a fixed combination of raw model outputs (v outputs turned into ε at t after combining) —
//! and so one fused pass.

use super::{default_unless, Ctx, Memory, Pass};
use crate::error::Result;
use crate::ops::update::StepOutput;
use crate::process::gaussian::sigmas::{linspace, trailing};
use crate::process::gaussian::{Gaussian, Prediction};
use crate::process::schedule::round_half_even;
use crate::process::schedule::Spacing;
use crate::tensor::Tensor;

/// What one evaluation does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Runge–Kutta evaluation `stage` (0..4) of a warm-up step from `t` (the group's first
    /// timestep) to `prev`.
    Prk { stage: usize, t: i64, prev: i64 },
    /// PLMS from `t` to `prev`; `second` is skip_prk's re-step of the first state.
    Plms { t: i64, prev: i64, second: bool },
}

pub(super) struct Pndm {
    kinds: Vec<Kind>,
    model_t: Vec<f32>,
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f32,
}

impl Pndm {
    pub(super) fn new(g: &Gaussian, steps: usize, plms_only: bool) -> Result<Pndm> {
        let c = &g.config;
        let tt = g.train_timesteps();
        if steps == 0 || steps > tt {
            return Err(crate::error::Error::Invalid(format!(
                "{steps} sampling steps requested, but the model was trained with {tt} timesteps \
                 (use 1..={tt})"
            )));
        }
        let spacing = default_unless(c, "timestep_spacing", c.timestep_spacing, Spacing::Leading);
        let set_one = default_unless(c, "set_alpha_to_one", c.set_alpha_to_one, false);
        // Ascending `_timesteps`.
        let ts: Vec<i64> = match spacing {
            Spacing::Linspace => linspace((tt - 1) as f64, steps)
                .into_iter()
                .map(|v| round_half_even(v) as i64)
                .collect(),
            Spacing::Leading => (0..steps)
                .map(|i| (i * (tt / steps) + c.steps_offset) as i64)
                .collect(),
            Spacing::Trailing => trailing(tt, steps)
                .into_iter()
                .rev()
                .map(|v| v as i64)
                .collect(),
        };
        let ratio = (tt / steps) as i64;
        let mut kinds = Vec::new();
        let mut model_t = Vec::new();
        if plms_only {
            // [t_{n−1}, t_{n−2}, t_{n−2}, t_{n−3}, …, t_0]
            let mut order: Vec<i64> = ts[..ts.len() - 1].to_vec();
            if ts.len() >= 2 {
                order.push(ts[ts.len() - 2]);
            }
            order.push(ts[ts.len() - 1]);
            order.reverse();
            for (counter, &t) in order.iter().enumerate() {
                let kind = if counter == 1 {
                    Kind::Plms {
                        t: t + ratio,
                        prev: t,
                        second: true,
                    }
                } else {
                    Kind::Plms {
                        t,
                        prev: t - ratio,
                        second: false,
                    }
                };
                kinds.push(kind);
                model_t.push(t as f32);
            }
        } else {
            // The last four timesteps, each with its midpoint, as diffusers orders them.
            let tail = &ts[ts.len().saturating_sub(4)..];
            let mut pairs = Vec::new();
            for &t in tail {
                pairs.extend([t, t + ratio / 2]);
            }
            pairs.pop();
            let mut prk: Vec<i64> = pairs.iter().flat_map(|&t| [t, t]).collect();
            prk = prk[1..prk.len() - 1].to_vec();
            prk.reverse();
            for (counter, &timestep) in prk.iter().enumerate() {
                let diff = if counter % 2 == 1 { 0 } else { ratio / 2 };
                kinds.push(Kind::Prk {
                    stage: counter % 4,
                    t: prk[counter / 4 * 4],
                    prev: timestep - diff,
                });
                model_t.push(timestep as f32);
            }
            for &t in ts[..ts.len().saturating_sub(3)].iter().rev() {
                kinds.push(Kind::Plms {
                    t,
                    prev: t - ratio,
                    second: false,
                });
                model_t.push(t as f32);
            }
        }
        let final_alpha_cumprod = if set_one { 1.0 } else { g.alphas_cumprod[0] };
        Ok(Pndm {
            kinds,
            model_t,
            alphas_cumprod: g.alphas_cumprod.clone(),
            final_alpha_cumprod,
        })
    }

    pub(super) fn model_t(&self) -> Vec<f32> {
        self.model_t.clone()
    }

    fn alpha(&self, t: i64) -> f64 {
        if t >= 0 {
            self.alphas_cumprod[t as usize] as f64
        } else {
            self.final_alpha_cumprod as f64
        }
    }

    pub(super) fn step(
        &self,
        ctx: &Ctx<'_>,
        k: usize,
        x: &Tensor,
        memory: &Memory,
    ) -> Result<(StepOutput, Memory)> {
        let m = ctx.eval.combined()?;
        let t_model = self.model_t[k] as i64;
        let a_model = self.alpha(t_model);
        let read = (a_model.sqrt(), (1.0 - a_model).sqrt());
        let warm = memory.warm + 1;
        // The sample S the update starts from (x itself unless kept), the raw-output combination
        // M = Σ w_j·e_j (the current output's weight first), and the memory after.
        let mut earlier: Vec<(f64, &Tensor)> = Vec::new();
        let (s_kept, w_now, t, prev, next) = match self.kinds[k] {
            Kind::Plms { t, prev, second } => {
                let ets = &memory.outputs;
                if second {
                    match (&memory.sample, ets.last()) {
                        (Some(cur), Some(e0)) => {
                            earlier.push((0.5, e0));
                            (
                                Some(cur),
                                0.5,
                                t,
                                prev,
                                Memory {
                                    outputs: ets.clone(),
                                    warm,
                                    ..Memory::default()
                                },
                            )
                        }
                        // Resumed between the two: the first step stands.
                        _ => {
                            let p = Pass {
                                read,
                                c_xt: 1.0,
                                ..Pass::default()
                            };
                            let out = ctx.pass(x, p, &[], ctx.extras)?;
                            let memory = Memory {
                                outputs: vec![m],
                                warm,
                                ..Memory::default()
                            };
                            return Ok((out, memory));
                        }
                    }
                } else {
                    let n = ets.len().min(3);
                    let w: &[f64] = match n {
                        0 => &[1.0],
                        1 => &[1.5, -0.5],
                        2 => &[23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0],
                        _ => &[55.0 / 24.0, -59.0 / 24.0, 37.0 / 24.0, -9.0 / 24.0],
                    };
                    let recent = &ets[ets.len() - n..];
                    for (j, e) in recent.iter().rev().enumerate() {
                        earlier.push((w[j + 1], e));
                    }
                    let mut outputs: Vec<Tensor> = recent.to_vec();
                    outputs.push(m.clone());
                    let first = k == 0 || memory.is_empty();
                    (
                        None,
                        w[0],
                        t,
                        prev,
                        Memory {
                            outputs,
                            // skip_prk's first step keeps its state for the re-step.
                            sample: first.then(|| x.clone()),
                            warm,
                            ..Memory::default()
                        },
                    )
                }
            }
            Kind::Prk { stage, t, prev } => {
                let start = match stage {
                    0 => None,
                    _ => memory.sample.as_ref(),
                };
                let mut outputs = memory.outputs.clone();
                let (w_now, partial) = match stage {
                    0 => {
                        outputs.push(m.clone());
                        (
                            1.0,
                            Some(crate::ops::elementwise::affine(&m, 1.0 / 6.0, 0.0)?),
                        )
                    }
                    1 | 2 => {
                        let acc = match &memory.partial {
                            Some(a) => crate::ops::elementwise::axpby(1.0, a, 1.0 / 3.0, &m)?,
                            None => crate::ops::elementwise::affine(&m, 1.0 / 3.0, 0.0)?,
                        };
                        (1.0, Some(acc))
                    }
                    _ => {
                        if let Some(a) = &memory.partial {
                            earlier.push((1.0, a));
                        }
                        (1.0 / 6.0, None)
                    }
                };
                let sample = match stage {
                    0 => Some(x.clone()),
                    3 => None,
                    _ => memory.sample.clone(),
                };
                (
                    start,
                    w_now,
                    t,
                    prev,
                    Memory {
                        outputs,
                        sample,
                        partial,
                        warm,
                        ..Memory::default()
                    },
                )
            }
        };
        // _get_prev_sample(S, t, prev, M): x' = c·S − k·M_ε with M_ε = √ᾱ·M + √(1−ᾱ)·S for v.
        let (a_t, a_p) = (self.alpha(t), self.alpha(prev));
        let coeff = (a_p / a_t).sqrt();
        let denom = a_t * (1.0 - a_p).sqrt() + (a_t * (1.0 - a_t) * a_p).sqrt();
        let kk = (a_p - a_t) / denom;
        let (s_weight, m_weight) = match ctx.prediction {
            Prediction::V => (coeff - kk * (1.0 - a_t).sqrt(), -kk * a_t.sqrt()),
            _ => (coeff, -kk),
        };
        // The current raw output through the fused read: ε = m for ε-prediction; for v,
        // ε̂ = √ᾱ_m·m + √(1−ᾱ_m)·x, so m = (ε̂ − √(1−ᾱ_m)·x)/√ᾱ_m.
        let mut p = Pass {
            read,
            ..Pass::default()
        };
        let wm = m_weight * w_now;
        match ctx.prediction {
            Prediction::V => {
                p.c_eps = wm / read.0;
                p.c_xt = -wm * read.1 / read.0;
            }
            _ => p.c_eps = wm,
        }
        let mut hist: Vec<(f64, &Tensor)> =
            earlier.iter().map(|&(w, e)| (m_weight * w, e)).collect();
        match s_kept {
            Some(s) => hist.push((s_weight, s)),
            None => p.c_xt += s_weight,
        }
        let out = ctx.pass(x, p, &hist, ctx.extras)?;
        Ok((out, next))
    }
}
