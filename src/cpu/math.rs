//! f32 `exp` for the CPU kernels' hot loops (SiLU, GELU, softmax): libm's `expf` is a call per
//! element that no loop vectorises, and it was the CPU backend's largest single cost after the GEMM
//! (16–18 % of a toy2d-mlp or words-absorb reverse step). This one is branch-free arithmetic — Cody
//! and Waite's range reduction and Cephes' degree-6 polynomial — so loops over it vectorise; its
//! error is within 2 ulp of the exact value on the normal range (`tests` below), close to a GPU's own
//! `exp`. Beside it, row reductions over independent lanes ([`lane_sum`], [`lane_max`]): a sum in
//! element order is one dependent add after another, which no loop vectorises (it was most of a
//! softmax row's time).

/// `e^x` in f32: 0 below −87.33 (where e^x leaves the normal range), +∞ above 88.37, NaN for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_with::<false>(x)
}

/// `a·b + c`: one fused multiply-add when `FMA` (the caller was compiled for a target that has the
/// instruction: a multiversioned function passes
/// `multiversion::target::target_cfg_f!(target_feature = "fma")`), else a multiply and an add. Not `mul_add` everywhere: without
/// the instruction (baseline x86-64, wasm32) it is a libm call per element that stops a loop
/// vectorising.
#[inline(always)]
pub fn mad<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// [`exp`], its polynomial and reduction in fused multiply-adds when `FMA` (about half the
/// instructions, and the result as accurate or more).
#[inline(always)]
pub fn exp_with<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for the n that occur.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const LO: f32 = -87.336_55;
    const HI: f32 = 88.376_26;
    let xc = x.clamp(LO, HI);
    // Round to nearest by the 1.5·2²³ trick: `f32::round` is a libm call on the baseline x86-64
    // target (no SSE4.1), which would stop the loop vectorising.
    const ROUND: f32 = 12_582_912.0;
    let shifted = mad::<FMA>(xc, LOG2E, ROUND);
    let n = shifted - ROUND;
    let r = mad::<FMA>(-n, LN2_LO, mad::<FMA>(-n, LN2_HI, xc));
    let mut p = 1.987_569_1e-4f32;
    p = mad::<FMA>(p, r, 1.398_199_9e-3);
    p = mad::<FMA>(p, r, 8.333_452e-3);
    p = mad::<FMA>(p, r, 4.166_579_6e-2);
    p = mad::<FMA>(p, r, 1.666_666_5e-1);
    p = mad::<FMA>(p, r, 0.5);
    let y = mad::<FMA>(p * r, r, r) + 1.0;
    // 2^n for n in [−126, 127]: the exponent field directly. n as an integer is the difference of
    // the bit patterns of `shifted` and ROUND (both in [2²³, 2²⁴), one binade), not `n as i32`: Rust's
    // float-to-int cast saturates and maps NaN to 0, a per-lane compare-and-select that kept this
    // loop half scalar.
    let ni = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let v = y * f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        v
    }
}

/// Lanes of the row reductions: an AVX-512 register of f32 (two AVX2 ones).
const LANES: usize = 16;

/// The sum of `x`, over [`LANES`] running sums (vectorises; rounds differently from a sum in order,
/// within f32 rounding of the exact sum).
#[inline(always)]
pub fn lane_sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

/// The largest of `x` (−∞ when empty; NaN ignored, as `f32::max` does), over [`LANES`] running
/// maxima so the loop vectorises.
#[inline(always)]
pub fn lane_max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    acc.iter().fold(tail, |a, &v| a.max(v))
}

#[cfg(test)]
mod tests {
    use super::{exp, exp_with, lane_max, lane_sum};

    #[test]
    fn lane_reductions_agree_with_the_plain_ones() {
        for n in [0usize, 1, 15, 16, 17, 196, 1000] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 9.0)
                .collect();
            let exact: f64 = x.iter().map(|&v| f64::from(v)).sum();
            let tol = 1e-6 * x.iter().map(|v| f64::from(v.abs())).sum::<f64>() + 1e-6;
            assert!((f64::from(lane_sum(&x)) - exact).abs() <= tol, "sum of {n}");
            let max = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
            assert_eq!(lane_max(&x), max, "max of {n}");
        }
        assert_eq!(lane_max(&[f32::NAN, 1.0, f32::NAN]), 1.0);
        assert_eq!(lane_max(&[]), f32::NEG_INFINITY);
    }

    #[test]
    fn exp_fused_or_not_is_within_two_ulp_of_libm_and_keeps_the_edges() {
        let ulp = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let mut worst = 0;
        // Every 997th f32 bit pattern in the normal output range, positive and negative.
        for bits in (0u32..0x42b0_0000).step_by(997) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                if (-87.3..=88.3).contains(&x) {
                    let want = f64::from(x).exp() as f32;
                    worst = worst.max(ulp(exp(x), want));
                    // The fused form (`mul_add` is exact everywhere, an instruction or not).
                    worst = worst.max(ulp(exp_with::<true>(x), want));
                }
            }
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        for x in [0.0, f32::NEG_INFINITY, -200.0, f32::INFINITY] {
            assert_eq!(exp_with::<true>(x), exp(x));
        }
        assert!(exp_with::<true>(f32::NAN).is_nan());
    }
}
