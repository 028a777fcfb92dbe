//! Philox fills on host memory, for the CPU backend: the same draws as `shaders/random.wgsl` for the
//! same key and indices, with the same checks and typed errors as the GPU driver.
//!
//! Raw words and uniforms are bit-identical to the GPU (and to [`Philox::words`] /
//! [`Philox::uniform`]). Normals and Gumbel draws use the shaders' formulas (`philox.wgsl`): `−log u`
//! through the atanh series for u ≥ 0.75, `cos 2πu` as `−cos(2π(u − ½))`; they differ from the GPU
//! only by the GPU's `log`/`cos`/`sqrt` rounding, and from [`Philox::normal`] / [`Philox::gumbel`]
//! (plain `ln` and `cos`) by a few f32 ulps.

use super::{check_index_range, count, words_shape, Distribution};
use crate::error::Result;
use crate::rng::{to_uniform, Philox};

/// `−log u` for u in (0, 1], as `rng_neg_log` in `shaders/philox.wgsl`: for u ≥ 0.75 the atanh series
/// of `−log(1 − v)` with v = 1 − u (exact in f32), elsewhere `−ln u`.
pub fn neg_log(u: f32) -> f32 {
    let v = 1.0 - u;
    if v < 0.25 {
        let s = v / (2.0 - v);
        let s2 = s * s;
        return 2.0
            * s
            * (1.0
                + s2 * (1.0 / 3.0
                    + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0))))));
    }
    -u.ln()
}

/// `cos 2πu` for u in (0, 1) with the argument in [−π, π], as `rng_cos_2pi`.
pub fn cos_2pi(u: f32) -> f32 {
    -(std::f32::consts::TAU * (u - 0.5)).cos()
}

/// Box–Muller on words 0 and 1 of a draw, as `rng_normal`.
pub fn normal_from_words(w: [u32; 4]) -> f32 {
    (2.0 * neg_log(to_uniform(w[0]))).sqrt() * cos_2pi(to_uniform(w[1]))
}

/// `−log(−log u)`, as `rng_gumbel`.
pub fn gumbel_from_uniform(u: f32) -> f32 {
    -neg_log(u).ln()
}

/// Draw `index` of `key` from `dist`, as one element of the GPU fill.
pub fn draw(key: Philox, dist: Distribution, index: u32) -> f32 {
    let w = key.words(index);
    match dist {
        Distribution::Uniform => to_uniform(w[0]),
        Distribution::Normal => normal_from_words(w),
        Distribution::Gumbel => gumbel_from_uniform(to_uniform(w[0])),
    }
}

/// `shape.iter().product()` values whose element `i` is draw `first + i` of `key` from `dist`
/// (the GPU's [`super::fill`]).
pub fn fill(shape: &[usize], key: Philox, dist: Distribution, first: u32) -> Result<Vec<f32>> {
    let n = count(shape)?;
    check_index_range(n, first)?;
    // n + first ≤ 2^32, so `first + i` never wraps (and n itself may be 2^32).
    Ok((0..n)
        .map(|i| draw(key, dist, first.wrapping_add(i as u32)))
        .collect())
}

/// Uniforms in (0, 1), bit-identical to [`Philox::uniform`] and the GPU.
pub fn uniform(shape: &[usize], key: Philox) -> Result<Vec<f32>> {
    fill(shape, key, Distribution::Uniform, 0)
}

/// Standard normals, the GPU's formula.
pub fn normal(shape: &[usize], key: Philox) -> Result<Vec<f32>> {
    fill(shape, key, Distribution::Normal, 0)
}

/// Standard Gumbel noise, the GPU's formula.
pub fn gumbel(shape: &[usize], key: Philox) -> Result<Vec<f32>> {
    fill(shape, key, Distribution::Gumbel, 0)
}

/// All four raw Philox words per element, row-major with shape `[shape.., 4]`, bit-identical to
/// [`Philox::words`] at indices `first..` and to the GPU's [`super::words`].
pub fn words(shape: &[usize], key: Philox, first: u32) -> Result<Vec<u32>> {
    let (n, _) = words_shape(shape)?;
    check_index_range(n, first)?;
    Ok((0..n)
        .flat_map(|i| key.words(first.wrapping_add(i as u32)))
        .collect())
}
