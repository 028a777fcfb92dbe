//! The transition kernels on the CPU: `shaders/transition.wgsl`'s entry points, line for line, over
//! the same [`Params`] block, so that both backends read one set of flags and coefficients. The
//! shader's comments explain the arithmetic; these say only where the host differs.

use super::{
    Kernel, Params, FORM_D3PM, FORM_DIGRESS, FORM_DIGRESS_BETA, FORM_MULTINOMIAL, F_COMPLEMENT,
    F_PER_BATCH, F_TRANSPOSE, F_X0_IDS, PRIOR_ABSORBING, PRIOR_UNIFORM,
};

/// A finite stand-in for log 0, as in the shader.
const LOG_ZERO: f32 = -1.0e30;
/// Hoogeboom's index_to_log_onehot clamps the one-hot at 1e-30.
const LOG_TINY: f32 = -69.077_55;

/// What one launch reads: the bound tensors as words, in the shader's binding order (1..), an empty
/// slice where the driver bound a placeholder.
pub(super) fn run(kernel: Kernel, p: &Params, inputs: &[&[u32]], out: &mut [u32]) {
    let f = |i: usize| -> &[f32] { bytemuck::cast_slice(inputs[i]) };
    let out: &mut [f32] = bytemuck::cast_slice_mut(out);
    match kernel {
        Kernel::Matrices => matrices(&Reader::new(p, f(0), f(1)), out),
        Kernel::ForwardIds => forward_ids(&Reader::new(p, f(0), f(1)), inputs[2], out),
        Kernel::ForwardProbs => forward_probs(&Reader::new(p, f(0), f(1)), f(2), out),
        Kernel::ProbsMatmul => probs_matmul(p, f(0), f(1), out),
        Kernel::Posterior => {
            let rd = Reader::new(p, f(0), f(1));
            posterior(&rd, &X0Rows { p, x0: inputs[2] }, inputs[3], out)
        }
        Kernel::PosteriorMatrices => {
            let rd = Reader::new(p, &[], f(1));
            let x0 = X0Rows { p, x0: inputs[2] };
            posterior_matrices(&rd, &x0, inputs[3], f(0), f(4), out)
        }
    }
}

/// The prior and the coefficients of a launch (the shader's `prior_pi`, `coef`, `one_minus`).
struct Reader<'a> {
    p: &'a Params,
    pi: &'a [f32],
    coef: &'a [f32],
}

impl<'a> Reader<'a> {
    fn new(p: &'a Params, pi: &'a [f32], coef: &'a [f32]) -> Self {
        Reader { p, pi, coef }
    }

    fn prior_pi(&self, j: usize) -> f32 {
        match self.p.prior {
            PRIOR_UNIFORM => 1.0 / self.p.k as f32,
            PRIOR_ABSORBING => {
                if j == self.p.absorb as usize {
                    1.0
                } else {
                    0.0
                }
            }
            _ => self.pi[j],
        }
    }

    fn coef(&self, b: usize, j: usize) -> f32 {
        let p = self.p;
        if p.flags & F_PER_BATCH != 0 {
            return self.coef[b * p.coef_stride as usize + j];
        }
        match j {
            0..=3 => p.c[j],
            4 => p.c4,
            _ => p.c5,
        }
    }

    fn one_minus(&self, b: usize, j: usize) -> f32 {
        if self.p.flags & F_COMPLEMENT != 0 {
            return self.coef(b, j + 4);
        }
        1.0 - self.coef(b, j)
    }
}

fn matrices(rd: &Reader, out: &mut [f32]) {
    let k = rd.p.k as usize;
    for (e, o) in out.iter_mut().enumerate() {
        let (b, i, j) = (e / (k * k), (e / k) % k, e % k);
        // The shader reads α from the coefficient binding directly (one per matrix).
        let a = rd.coef[b];
        *o = if i == j { a } else { 0.0 } + (1.0 - a) * rd.prior_pi(j);
    }
}

fn forward_ids(rd: &Reader, x0: &[u32], out: &mut [f32]) {
    let k = rd.p.k as usize;
    let per = rd.p.rows_per_batch as usize;
    for (e, o) in out.iter_mut().enumerate() {
        let (r, j) = (e / k, e % k);
        let ab = rd.coef(r / per, 0);
        *o = if x0[r] as usize == j { ab } else { 0.0 } + (1.0 - ab) * rd.prior_pi(j);
    }
}

fn forward_probs(rd: &Reader, x: &[f32], out: &mut [f32]) {
    let k = rd.p.k as usize;
    let per = rd.p.rows_per_batch as usize;
    for (r, (row, o)) in x.chunks_exact(k).zip(out.chunks_exact_mut(k)).enumerate() {
        let ab = rd.coef(r / per, 0);
        let s: f32 = row.iter().sum();
        for (j, (&v, o)) in row.iter().zip(o.iter_mut()).enumerate() {
            *o = ab * v + (1.0 - ab) * s * rd.prior_pi(j);
        }
    }
}

fn probs_matmul(p: &Params, x: &[f32], m: &[f32], out: &mut [f32]) {
    let k = p.k as usize;
    let per = p.rows_per_batch as usize;
    let tr = p.flags & F_TRANSPOSE != 0;
    for (r, (row, o)) in x.chunks_exact(k).zip(out.chunks_exact_mut(k)).enumerate() {
        let mb = &m[(r / per) * p.mat_stride_a as usize..];
        for (j, o) in o.iter_mut().enumerate() {
            let mut s = 0.0;
            for (i, &xi) in row.iter().enumerate() {
                s += xi * if tr { mb[j * k + i] } else { mb[i * k + j] };
            }
            *o = s;
        }
    }
}

/// x0 as logits (f32 bits) or class ids, read as each reference reads them (the shader's `x0_logit`).
struct X0Rows<'a> {
    p: &'a Params,
    x0: &'a [u32],
}

/// Softmax statistics of one row of x0 logits: max, Σ exp(l − max), and that sum without class x_t.
struct RowStats {
    m: f32,
    z: f32,
    z_not: f32,
}

impl X0Rows<'_> {
    fn logit(&self, r: usize, c: usize) -> f32 {
        let p = self.p;
        if p.flags & F_X0_IDS != 0 {
            let hit = self.x0[r] as usize == c;
            return match p.form {
                FORM_D3PM => (if hit { 1.0 + 1e-6f32 } else { 1e-6 }).ln(),
                FORM_MULTINOMIAL => {
                    if hit {
                        0.0
                    } else {
                        LOG_TINY
                    }
                }
                _ => {
                    if hit {
                        0.0
                    } else {
                        LOG_ZERO
                    }
                }
            };
        }
        f32::from_bits(self.x0[r * p.k as usize + c])
    }

    fn stats(&self, r: usize, xt: usize) -> RowStats {
        let k = self.p.k as usize;
        let m = (0..k).fold(LOG_ZERO, |m, c| m.max(self.logit(r, c)));
        let (mut z, mut z_not) = (0.0, 0.0);
        for c in 0..k {
            let e = (self.logit(r, c) - m).exp();
            z += e;
            if c != xt {
                z_not += e;
            }
        }
        RowStats { m, z, z_not }
    }
}

/// log(exp(la) + b) for b ≥ 0 given in linear space.
fn log_add_lin(la: f32, b: f32) -> f32 {
    // NaN or ≤ 0 adds nothing, as the shader's `!(b > 0.0)`.
    if b.is_nan() || b <= 0.0 {
        return la;
    }
    let lb = b.ln();
    let hi = la.max(lb);
    hi + ((la - hi).exp() + (lb - hi).exp()).ln()
}

fn posterior(rd: &Reader, x0: &X0Rows, xt_ids: &[u32], out: &mut [f32]) {
    let p = rd.p;
    let k = p.k as usize;
    let per = p.rows_per_batch as usize;
    for (r, o) in out.chunks_exact_mut(k).enumerate() {
        let b = r / per;
        let (a_t, ab_prev, ab_t) = (rd.coef(b, 0), rd.coef(b, 1), rd.coef(b, 2));
        let last = rd.coef(b, 3) != 0.0;
        if p.form == FORM_DIGRESS_BETA && xt_ids[r] as usize >= k {
            o.fill(1.0 / k as f32);
            continue;
        }
        let xt = (xt_ids[r] as usize).min(k - 1);
        let pi_xt = rd.prior_pi(xt);
        let one_minus_a = if p.form == FORM_DIGRESS_BETA {
            rd.coef(b, 3)
        } else {
            rd.one_minus(b, 0)
        };
        let lik_other = one_minus_a * pi_xt;
        let om_ab_prev = rd.one_minus(b, 1);
        let lik_xt = a_t + lik_other;
        let lik = |i: usize| if i == xt { lik_xt } else { lik_other };

        if p.form == FORM_D3PM {
            if last {
                for (i, o) in o.iter_mut().enumerate() {
                    *o = x0.logit(r, i);
                }
                continue;
            }
            let st = x0.stats(r, xt);
            for (i, o) in o.iter_mut().enumerate() {
                let pr = (x0.logit(r, i) - st.m).exp() / st.z;
                let bi = ab_prev * pr + om_ab_prev * rd.prior_pi(i);
                *o = (lik(i) + 1e-6).ln() + (bi + 1e-6).ln();
            }
            continue;
        }

        let st = x0.stats(r, xt);
        if p.form == FORM_DIGRESS || p.form == FORM_DIGRESS_BETA {
            let mut d_other = (1.0 - ab_t) * pi_xt;
            let mut d_xt = ab_t + d_other;
            if d_other == 0.0 {
                d_other = 1e-6;
            }
            if d_xt == 0.0 {
                d_xt = 1e-6;
            }
            let p_xt = (x0.logit(r, xt) - st.m).exp() / st.z;
            let s = p_xt / d_xt + (st.z_not / st.z) / d_other;
            let mut tot = 0.0;
            for (i, o) in o.iter_mut().enumerate() {
                let pr = (x0.logit(r, i) - st.m).exp() / st.z;
                let den = if i == xt { d_xt } else { d_other };
                let u = lik(i) * (ab_prev * pr / den + om_ab_prev * rd.prior_pi(i) * s);
                *o = u;
                tot += u;
            }
            for o in o.iter_mut() {
                *o = if tot == 0.0 { 1.0 / k as f32 } else { *o / tot };
            }
            continue;
        }

        debug_assert_eq!(p.form, FORM_MULTINOMIAL);
        let lse = st.m + st.z.ln();
        let log_ab = if ab_prev > 0.0 {
            ab_prev.ln()
        } else {
            LOG_ZERO
        };
        let (mut hi, mut acc) = (LOG_ZERO, 0.0f32);
        for (i, o) in o.iter_mut().enumerate() {
            let lp = x0.logit(r, i) - lse;
            let la = log_add_lin(log_ab + lp, om_ab_prev * rd.prior_pi(i));
            let l = if i == xt {
                lik_xt
            } else {
                a_t * 1e-30 + lik_other
            };
            let u = (la + l.ln()).max(LOG_ZERO);
            *o = u;
            if u > hi {
                acc = acc * (hi - u).exp() + 1.0;
                hi = u;
            } else {
                acc += (u - hi).exp();
            }
        }
        let norm = hi + acc.ln();
        for o in o.iter_mut() {
            *o -= norm;
        }
    }
}

fn posterior_matrices(
    rd: &Reader,
    x0: &X0Rows,
    xt_ids: &[u32],
    q_t: &[f32],
    q_bar_prev: &[f32],
    out: &mut [f32],
) {
    let p = rd.p;
    let k = p.k as usize;
    let per = p.rows_per_batch as usize;
    for (r, o) in out.chunks_exact_mut(k).enumerate() {
        let b = r / per;
        if rd.coef(b, 3) != 0.0 {
            for (i, o) in o.iter_mut().enumerate() {
                *o = x0.logit(r, i);
            }
            continue;
        }
        let xt = (xt_ids[r] as usize).min(k - 1);
        let st = x0.stats(r, xt);
        let qa = &q_t[b * p.mat_stride_a as usize..];
        let qb = &q_bar_prev[b * p.mat_stride_b as usize..];
        for (i, o) in o.iter_mut().enumerate() {
            let mut bi = 0.0;
            for c in 0..k {
                bi += (x0.logit(r, c) - st.m).exp() / st.z * qb[c * k + i];
            }
            *o = (qa[i * k + xt] + 1e-6).ln() + (bi + 1e-6).ln();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_add_lin_matches_the_direct_sum() {
        for (la, b) in [(-3.0f32, 0.25f32), (2.0, 5.0), (-80.0, 1e-3), (0.0, 0.0)] {
            let want = (la.exp() + b).ln();
            assert!((log_add_lin(la, b) - want).abs() < 1e-5, "{la} {b}");
        }
    }
}
