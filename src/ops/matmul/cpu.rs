//! [`super::matmul`] on host memory, for the CPU backend: the same batched
//! `out = act(alpha·(op(a) @ op(b)) + bias) + residual` with the same shape rules and typed errors
//! (both backends check through [`Plan`]). The product is `matrixmultiply`'s sgemm — strided, so the
//! transposes cost nothing, and threaded natively — and the epilogue one pass over each output
//! matrix. The activations are the GPU kernel's (GELU through the same erf approximation), so the two
//! backends agree to f32 rounding.

use super::{Act, Plan, MAX_RANK};
use crate::cpu::alloc::{reserved, zeroed};
use crate::cpu::math;
use crate::error::Result;
use crate::ops::check_host_len;

/// A row-major f32 operand on the host.
#[derive(Clone, Copy, Debug)]
pub struct HostMatrix<'a> {
    pub data: &'a [f32],
    pub shape: &'a [usize],
}

/// The options of [`matmul`], as [`super::Matmul`]'s on host operands.
#[derive(Clone, Copy, Debug)]
pub struct HostMatmul<'a> {
    pub trans_a: bool,
    pub trans_b: bool,
    pub bias: Option<&'a [f32]>,
    pub act: Act,
    pub residual: Option<HostMatrix<'a>>,
    pub alpha: f32,
}

impl Default for HostMatmul<'_> {
    fn default() -> Self {
        HostMatmul {
            trans_a: false,
            trans_b: false,
            bias: None,
            act: Act::None,
            residual: None,
            alpha: 1.0,
        }
    }
}

/// Batched `a @ b` with the fused epilogue of `opts`; returns the output and its shape.
pub fn matmul(a: HostMatrix, b: HostMatrix, opts: &HostMatmul) -> Result<(Vec<f32>, Vec<usize>)> {
    check_host_len("matmul", "a", a.data, a.shape)?;
    check_host_len("matmul", "b", b.data, b.shape)?;
    if let Some(bias) = opts.bias {
        check_host_len("matmul", "bias", bias, &[bias.len()])?;
    }
    if let Some(r) = opts.residual {
        check_host_len("matmul", "residual", r.data, r.shape)?;
    }
    let bias_shape = opts.bias.map(|b| [b.len()]);
    let plan = Plan::new(
        a.shape,
        b.shape,
        opts.trans_a,
        opts.trans_b,
        bias_shape.as_ref().map(|s| &s[..]),
        opts.residual.map(|r| r.shape),
    )?;
    let (m, n, k) = (plan.m, plan.n, plan.k);
    let nb: usize = plan.batch.iter().product();
    let len = nb * m * n;
    let what = || format!("matmul output {:?}", plan.out_shape);
    // With K = 0 the product is zeros; otherwise sgemm (β = 0) writes every element without reading
    // it, so the output gets no zeroing pass.
    let mut out: Vec<f32> = if k == 0 {
        zeroed(len, &what)?
    } else {
        reserved(len, &what)?
    };
    if len == 0 {
        return Ok((out, plan.out_shape));
    }
    let base = out.as_mut_ptr();
    // Element strides of op(a) (M×K) and op(b) (K×N) within one matrix.
    let (rsa, csa) = if opts.trans_a { (1, m) } else { (k, 1) };
    let (rsb, csb) = if opts.trans_b { (1, k) } else { (n, 1) };
    let mut coord = [0usize; MAX_RANK];
    for z in 0..nb {
        // The batch coordinate of entry z, and each operand's offset at it.
        let mut r = z;
        for i in (0..plan.batch.len()).rev() {
            coord[i] = r % plan.batch[i];
            r /= plan.batch[i];
        }
        let offset = |s: &[u32; MAX_RANK]| -> usize {
            (0..plan.batch.len())
                .map(|i| coord[i] * s[i] as usize)
                .sum()
        };
        let (ao, bo, ro) = (offset(&plan.sa), offset(&plan.sb), offset(&plan.sr));
        // SAFETY: block z, [z·M·N, (z+1)·M·N), lies inside the allocation of `len` values.
        let c_ptr = unsafe { base.add(z * m * n) };
        if k > 0 {
            let (am, bm) = (&a.data[ao..ao + m * k], &b.data[bo..bo + k * n]);
            // SAFETY: `Plan::new` checked that op(a) is M×K and op(b) is K×N for every batch entry,
            // and `check_host_len` that the slices hold the shapes, so every strided index sgemm forms
            // lies inside `am`, `bm` and block z (an M×N row-major block at `c_ptr`).
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    opts.alpha,
                    am.as_ptr(),
                    rsa as isize,
                    csa as isize,
                    bm.as_ptr(),
                    rsb as isize,
                    csb as isize,
                    0.0,
                    c_ptr,
                    n as isize,
                    1,
                );
            }
        }
        // SAFETY: block z is initialised: sgemm wrote it just now (or, for K = 0, it was zeroed), and
        // no other reference to it exists.
        let c = unsafe { std::slice::from_raw_parts_mut(c_ptr, m * n) };
        let res = opts.residual.map(|r| &r.data[ro..ro + m * n]);
        epilogue(c, n, opts.bias, opts.act, res);
    }
    // SAFETY: every block of the `len` values was initialised above.
    unsafe { out.set_len(len) };
    Ok((out, plan.out_shape))
}

/// `act(c + bias) + residual` over one M×N output matrix, in place: one pass per part that is
/// there, each a loop the compiler vectorises (the activation's match is outside it).
fn epilogue(c: &mut [f32], n: usize, bias: Option<&[f32]>, act: Act, res: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in c.chunks_exact_mut(n) {
            row.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
        }
    }
    match act {
        Act::None => {}
        Act::Relu => c.iter_mut().for_each(|v| *v = v.max(0.0)),
        Act::Silu => c.iter_mut().for_each(|v| *v = activate(Act::Silu, *v)),
        Act::Gelu => c.iter_mut().for_each(|v| *v = activate(Act::Gelu, *v)),
    }
    if let Some(r) = res {
        c.iter_mut().zip(r).for_each(|(v, &r)| *v += r);
    }
}

/// The GPU kernel's activations, in f32. Inlined: callers loop over it with `act` fixed, and the
/// loop vectorises only once the match folds away.
#[inline(always)]
pub fn activate(act: Act, x: f32) -> f32 {
    match act {
        Act::None => x,
        Act::Silu => x * sigmoid(x),
        Act::Gelu => 0.5 * x * (1.0 + erf_approx(x * std::f32::consts::FRAC_1_SQRT_2)),
        Act::Relu => x.max(0.0),
    }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    // Branch-free (it vectorises): e^−x overflowing to +∞ for x < −88 gives 1/∞ = 0, as it should.
    1.0 / (1.0 + math::exp(-x))
}

/// erf with |error| < 1.2e-7 (a Chebyshev fit of erfc), the approximation the shaders use, in f32 as
/// they evaluate it (an f64 `exp` per element made GELU layers the CPU backend's slowest epilogue).
#[inline(always)]
fn erf_approx(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let e = 1.0 - t * math::exp(-z * z + poly);
    if x >= 0.0 {
        e
    } else {
        -e
    }
}
