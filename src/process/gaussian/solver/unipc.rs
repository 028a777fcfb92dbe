//! `UniPCMultistepScheduler` (predict_x0, `bh1`/`bh2`, order ≤ 2): at every evaluation after the
//! first, the corrector UniC refines the state the model just saw using its new x̂0, then the
//! predictor UniP steps on from the corrected state. Both are linear in the kept tensors, so a step
//! is two fused passes (one at the first evaluation, where there is nothing to correct).

use super::dpm::{lambda, multistep_tables};
use super::{multistep_settings, vp, Ctx, Memory, Pass};
use crate::error::{Error, Result};
use crate::ops::update::{Extras, ModelOutput, StepOutput};
use crate::process::gaussian::{Gaussian, Prediction};
use crate::tensor::Tensor;

pub(super) struct UniPc {
    sigmas: Vec<f32>,
    timesteps: Vec<f32>,
    order: usize,
    bh2: bool,
    lower_order_final: bool,
    disable_corrector: Vec<usize>,
}

impl UniPc {
    pub(super) fn new(g: &Gaussian, steps: usize, use_karras: bool) -> Result<UniPc> {
        let c = &g.config;
        let (mut sigmas, timesteps) = multistep_tables(g, steps, use_karras, true)?;
        super::dpm::distinct_steps("unipc", &timesteps, steps, g.train_timesteps())?;
        sigmas.push(0.0);
        let (bh1, order) =
            multistep_settings(c, "unipc", ["bh2", "bh1"], &["midpoint", "heun", "logrho"])?;
        Ok(UniPc {
            sigmas,
            timesteps,
            order,
            bh2: !bh1,
            lower_order_final: c.solver.lower_order_final,
            disable_corrector: c.solver.disable_corrector.clone(),
        })
    }

    pub(super) fn model_t(&self) -> Vec<f32> {
        self.timesteps.clone()
    }

    /// The bh coefficients of a step from σ_s0 to σ_t: (h·φ1 = e^{−h} − 1, B(h), b_1 = φ2·1!/B,
    /// b_2) as diffusers' loop forms them (hh = −h for the data prediction).
    fn coefficients(&self, s0: f64, t: f64) -> (f64, f64, f64, f64, f64) {
        let h = lambda(t) - lambda(s0);
        let hh = -h;
        let h_phi_1 = hh.exp_m1();
        let b_h = if self.bh2 { hh.exp_m1() } else { hh };
        let mut h_phi_k = h_phi_1 / hh - 1.0;
        let mut factorial = 1.0;
        let mut b = [0.0; 2];
        for (i, bi) in b.iter_mut().enumerate() {
            *bi = h_phi_k * factorial / b_h;
            factorial *= (i + 2) as f64;
            h_phi_k = h_phi_k / hh - 1.0 / factorial;
        }
        (h, h_phi_1, b_h, b[0], b[1])
    }

    pub(super) fn step(
        &self,
        ctx: &Ctx<'_>,
        k: usize,
        x: &Tensor,
        memory: &Memory,
    ) -> Result<(StepOutput, Memory)> {
        let n = self.timesteps.len();
        let sk = self.sigmas[k] as f64;
        let (a_k, s_k) = vp(sk);
        let read = (a_k, s_k);
        let prev_m = memory.outputs.last();
        let corrector = k > 0
            && !self.disable_corrector.contains(&(k - 1))
            && memory.sample.is_some()
            && prev_m.is_some();
        // The corrector: x_c = (σ_t/σ_s0)·last − α_t·hφ1·m0 − α_t·B·(ρ·(m_new − m0)), at order 1
        // with ρ = 0.5 and at order 2 from the 2×2 system; here t = σ_k, s0 = σ_{k−1}.
        let ((mut out, m_new), corrected) = if corrector {
            let s_prev = self.sigmas[k - 1] as f64;
            let ((a_t, s_t), (_, s_s0)) = (vp(sk), vp(s_prev));
            let (h, h_phi_1, b_h, b1, b2) = self.coefficients(s_prev, sk);
            let last = memory.sample.as_ref().unwrap();
            let m0 = prev_m.unwrap();
            let order = memory.order.max(1);
            let mut p = Pass {
                read,
                ..Pass::default()
            };
            let mut hist: Vec<(f64, &Tensor)> = vec![(s_t / s_s0, last)];
            if order == 1 {
                let rho = 0.5;
                p.c_x0 = -a_t * b_h * rho;
                hist.push((-a_t * h_phi_1 + a_t * b_h * rho, m0));
            } else {
                // rks = [r1, 1]; R = [[1, 1], [r1, 1]]; ρ = R⁻¹ b.
                let m1 = memory.outputs.get(memory.outputs.len().wrapping_sub(2));
                let Some(m1) = m1 else {
                    return Err(Error::Internal("unipc: order 2 without two outputs".into()));
                };
                let s1 = self.sigmas[k - 2] as f64;
                let r1 = (lambda(s1) - lambda(s_prev)) / h;
                let (rho0, rho1) = solve2(1.0, 1.0, r1, 1.0, b1, b2);
                // corr = ρ0·(m1 − m0)/r1 + ρ1·(m_new − m0)
                p.c_x0 = -a_t * b_h * rho1;
                hist.push((-a_t * h_phi_1 + a_t * b_h * (rho0 / r1 + rho1), m0));
                hist.push((-a_t * b_h * rho0 / r1, m1));
            }
            let (out, m_new) = ctx.pass_keeping_x0(x, p, &hist)?;
            let xc = out.x_prev.clone();
            ((out, m_new), Some(xc))
        } else {
            let p = Pass {
                read,
                c_xt: 1.0,
                ..Pass::default()
            };
            (ctx.pass_keeping_x0(x, p, &[])?, None)
        };
        let sample = corrected.unwrap_or_else(|| x.clone());
        // The predictor's order: warm-up, and first order at the end of the run.
        let warm = memory.warm.min(self.order);
        let capped = if self.lower_order_final {
            self.order.min(n - k)
        } else {
            self.order
        };
        let order = capped.min(warm + 1);
        let t = self.sigmas[k + 1] as f64;
        let ((a_t, s_t), (_, s_s0)) = (vp(t), vp(sk));
        let (h, h_phi_1, b_h, _, _) = self.coefficients(sk, t);
        let mut p = Pass {
            read: (1.0, 1.0),
            c_xt: s_t / s_s0,
            c_x0: -a_t * h_phi_1,
            ..Pass::default()
        };
        let mut hist: Vec<(f64, &Tensor)> = Vec::new();
        if order == 2 {
            let Some(m_prev) = prev_m else {
                return Err(Error::Internal(
                    "unipc: order 2 without an earlier output".into(),
                ));
            };
            let r1 = (lambda(self.sigmas[k - 1] as f64) - lambda(sk)) / h;
            let rho = 0.5;
            // − α_t·B·ρ·(m_prev − m_new)/r1
            p.c_x0 += a_t * b_h * rho / r1;
            hist.push((-a_t * b_h * rho / r1, m_prev));
        }
        let step = ctx.pass_over(
            &sample,
            ModelOutput::Plain(&m_new),
            Prediction::Sample,
            p,
            &hist,
            Extras::default(),
        )?;
        out.x_prev = step.x_prev;
        let mut outputs: Vec<Tensor> = memory.outputs.clone();
        outputs.push(m_new);
        let keep = outputs.len().saturating_sub(self.order);
        outputs.drain(..keep);
        Ok((
            out,
            Memory {
                outputs,
                sample: Some(sample),
                warm: memory.warm + 1,
                order,
                ..Memory::default()
            },
        ))
    }
}

/// The solution of [[a, b], [c, d]]·[u, v] = [e, f].
fn solve2(a: f64, b: f64, c: f64, d: f64, e: f64, f: f64) -> (f64, f64) {
    let det = a * d - b * c;
    ((e * d - b * f) / det, (a * f - e * c) / det)
}
