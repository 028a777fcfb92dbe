//! [`super::matmul`] on host memory, for the CPU backend: the same batched
//! `out = act(alpha·(op(a) @ op(b)) + bias) + residual` with the same shape rules and typed errors
//! (both backends check through [`Plan`]). The product and the bias are [`crate::cpu::gemm`] —
//! strided, so the transposes cost nothing — and the activation and residual one pass over each
//! output matrix. The activations are the GPU kernel's (GELU through the same erf approximation), so the two
//! backends agree to f32 rounding.

use super::{Act, Plan, MAX_RANK};
use std::mem::MaybeUninit;

use multiversion::multiversion;

use crate::cpu::alloc::reserved;
use crate::cpu::gemm::{gemm, gemm_packed_b, Bias, PackedB, Strided};
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
    // The GEMM writes every element without reading it, so the output gets no zeroing pass.
    let mut out: Vec<f32> = reserved(len, &what)?;
    if len == 0 {
        return Ok((out, plan.out_shape));
    }
    let spare = &mut out.spare_capacity_mut()[..len];
    let mut coord = [0usize; MAX_RANK];
    for (z, block) in spare.chunks_exact_mut(m * n).enumerate() {
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
        // op(a) is M×K and op(b) K×N (`Plan::new` checked both for every batch entry, and
        // `check_host_len` that the slices hold them); a transpose is a swap of strides.
        let am = op(&a.data[ao..ao + m * k], m, k, opts.trans_a);
        let bm = op(&b.data[bo..bo + k * n], k, n, opts.trans_b);
        // The bias rides in the GEMM's own epilogue; the activation and residual follow.
        gemm(block, am, bm, opts.alpha, opts.bias.map(Bias::PerColumn));
        // SAFETY: `gemm` initialised every element of the block.
        let c = unsafe { written(block) };
        let res = opts.residual.map(|r| &r.data[ro..ro + m * n]);
        // Split by rows across the pool when large: after a threaded GEMM, a GELU over a wide
        // hidden layer on one thread was ~10 % of a sequence model's step.
        crate::cpu::parallel::for_each_chunk(c, n, |row, part| {
            epilogue(part, opts.act, res.map(|r| &r[row * n..][..part.len()]))
        });
    }
    // SAFETY: every block of the `len` values was initialised above.
    unsafe { out.set_len(len) };
    Ok((out, plan.out_shape))
}

/// `act(x @ weightᵀ + bias) + residual`, with the weight packed beforehand ([`PackedB`] of `weightᵀ`,
/// `in × out`): `x` is `rows × in`, row-major. The GEMM and the activation run in one hand-over to
/// the threads.
pub fn linear_packed(
    x: &[f32],
    rows: usize,
    weight_t: &PackedB,
    bias: Option<&[f32]>,
    act: Act,
    residual: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let (k, n) = (weight_t.rows(), weight_t.cols());
    check_host_len("linear", "x", x, &[rows, k])?;
    if let Some(b) = bias {
        check_host_len("linear", "bias", b, &[n])?;
    }
    if let Some(r) = residual {
        check_host_len("linear", "residual", r, &[rows, n])?;
    }
    let len = rows * n;
    let mut out: Vec<f32> = reserved(len, &|| format!("linear output [{rows}, {n}]"))?;
    let spare = &mut out.spare_capacity_mut()[..len];
    let large = rows * k * n >= crate::cpu::gemm::PARALLEL_MIN_MACS;
    crate::cpu::parallel::in_pool(large, || {
        let xm = Strided::rows(&x[..rows * k], rows, k);
        gemm_packed_b(spare, xm, weight_t, bias.map(Bias::PerColumn));
        // SAFETY: the GEMM initialised every element.
        let c = unsafe { written(spare) };
        if act != Act::None || residual.is_some() {
            crate::cpu::parallel::for_each_chunk(c, n.max(1), |row, part| {
                epilogue(part, act, residual.map(|r| &r[row * n..][..part.len()]))
            });
        }
    });
    // SAFETY: every element was written above.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// A GEMM's output once it has written it.
///
/// # Safety
/// Every element of `out` must be initialised.
unsafe fn written(out: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: the caller's promise; f32 and MaybeUninit<f32> have one layout.
    unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// `op(x)` as an M×K operand: `x` itself when stored M×K row-major, or read transposed from K×M.
fn op(data: &[f32], rows: usize, cols: usize, trans: bool) -> Strided<'_> {
    if trans {
        Strided::rows(data, cols, rows).t()
    } else {
        Strided::rows(data, rows, cols)
    }
}

/// `act(c) + residual` over one M×N output matrix (the bias is already in), in place: one pass per
/// part that is there, each a loop the compiler vectorises (the activation's match is outside it).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx512bw+fma", "x86_64+avx2+fma"))]
fn epilogue(c: &mut [f32], act: Act, res: Option<&[f32]>) {
    // GELU's erf is two polynomials: fused multiply-adds halve its instructions (it was 11 % of a
    // words model's batch-64 step).
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    match act {
        Act::None => {}
        Act::Relu => c.iter_mut().for_each(|v| *v = v.max(0.0)),
        Act::Silu => c
            .iter_mut()
            .for_each(|v| *v = activate_with::<FMA>(Act::Silu, *v)),
        Act::Gelu => c
            .iter_mut()
            .for_each(|v| *v = activate_with::<FMA>(Act::Gelu, *v)),
    }
    if let Some(r) = res {
        c.iter_mut().zip(r).for_each(|(v, &r)| *v += r);
    }
}

/// The GPU kernel's activations, in f32. Inlined: callers loop over it with `act` fixed, and the
/// loop vectorises only once the match folds away.
#[inline(always)]
pub fn activate(act: Act, x: f32) -> f32 {
    activate_with::<false>(act, x)
}

/// [`activate`] with its polynomials in fused multiply-adds when `FMA` ([`math::mad`]).
#[inline(always)]
pub fn activate_with<const FMA: bool>(act: Act, x: f32) -> f32 {
    match act {
        Act::None => x,
        Act::Silu => x * sigmoid::<FMA>(x),
        Act::Gelu => 0.5 * x * (1.0 + erf_approx::<FMA>(x * std::f32::consts::FRAC_1_SQRT_2)),
        Act::Relu => x.max(0.0),
    }
}

#[inline(always)]
fn sigmoid<const FMA: bool>(x: f32) -> f32 {
    // Branch-free (it vectorises): e^−x overflowing to +∞ for x < −88 gives 1/∞ = 0, as it should.
    1.0 / (1.0 + math::exp_with::<FMA>(-x))
}

/// erf with |error| < 1.2e-7 (a Chebyshev fit of erfc), the approximation the shaders use, in f32 as
/// they evaluate it (an f64 `exp` per element made GELU layers the CPU backend's slowest epilogue).
#[inline(always)]
fn erf_approx<const FMA: bool>(x: f32) -> f32 {
    const C: [f32; 10] = [
        0.170_872_77,
        -0.822_152_23,
        1.488_515_9,
        -1.135_204,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_7,
        -1.265_512_2,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    // Horner from the highest coefficient: c9 + t·(c8 + t·(… + t·c0)).
    let poly = C[1..].iter().fold(C[0], |p, &c| math::mad::<FMA>(p, t, c));
    let e = 1.0 - t * math::exp_with::<FMA>(math::mad::<FMA>(-z, z, poly));
    if x >= 0.0 {
        e
    } else {
        -e
    }
}
