//! The embedding lookups on host memory, for the CPU backend: table rows gathered by id (an id past
//! the table gives a zero row, as on the GPU) and diffusers' sinusoidal timestep embedding in
//! torch's float32 order (exponent, exp, times t, times scale), with the same checks and typed
//! errors as the GPU drivers.

use super::timestep_layout;
use crate::error::{Error, Result};

/// `table[ids]`: `table` is `[V, D]` (f32 or u32 data); returns `[ids.len(), D]` row-major.
pub fn gather_rows<T: Copy + Default>(
    table: &[T],
    table_shape: &[usize],
    ids: &[u32],
) -> Result<Vec<T>> {
    const OP: &str = "gather_rows";
    if table_shape.len() != 2 {
        return Err(Error::shape(
            OP,
            format!("table must be [V, D], got {table_shape:?}"),
        ));
    }
    let (rows, d) = (table_shape[0], table_shape[1]);
    if table.len() != rows * d {
        return Err(Error::shape(
            OP,
            format!(
                "table holds {} values, its shape {table_shape:?} needs {}",
                table.len(),
                rows * d
            ),
        ));
    }
    let mut out = Vec::with_capacity(ids.len() * d);
    for &id in ids {
        let id = id as usize;
        // Checked before any product: `id · d` of a bad id could overflow on a 32-bit target.
        if id < rows {
            out.extend_from_slice(&table[id * d..(id + 1) * d]);
        } else {
            out.extend(std::iter::repeat_n(T::default(), d));
        }
    }
    Ok(out)
}

/// diffusers' `get_timestep_embedding(t, dim, flip_sin_to_cos, downscale_freq_shift, scale,
/// max_period)` of timesteps `t` (`[B]`): `[B, dim]` row-major (see the GPU driver for the formula).
pub fn timestep_embedding(
    t: &[f32],
    dim: usize,
    flip_sin_to_cos: bool,
    downscale_freq_shift: f32,
    scale: f32,
    max_period: f32,
) -> Result<Vec<f32>> {
    let (half, denom) = timestep_layout(&[t.len()], dim, downscale_freq_shift, scale, max_period)?;
    let neg_log_period = -f64::from(max_period).ln() as f32;
    // f32 exp and sin/cos of the f32 angle, rounded once from f64: torch's float32 result.
    let freqs: Vec<f32> = (0..half)
        .map(|j| f64::from(neg_log_period * j as f32 / denom).exp() as f32)
        .collect();
    let mut out = Vec::with_capacity(t.len() * dim);
    for (b, &tb) in t.iter().enumerate() {
        // A batch usually shares one timestep: its row is the previous row, bit for bit.
        if b > 0 && tb.to_bits() == t[b - 1].to_bits() {
            out.extend_from_within((b - 1) * dim..b * dim);
            continue;
        }
        let angle = |f: f32| f64::from(scale * (tb * f));
        let sin = freqs.iter().map(|&f| angle(f).sin() as f32);
        let cos = freqs.iter().map(|&f| angle(f).cos() as f32);
        if flip_sin_to_cos {
            out.extend(cos.chain(sin));
        } else {
            out.extend(sin.chain(cos));
        }
        if dim % 2 == 1 {
            out.push(0.0);
        }
    }
    Ok(out)
}

/// diffusers' `GaussianFourierProjection` (see the GPU driver): `[B, 2·size]` row-major, in torch's
/// float32 order — `ln t` rounded to f32, `((ln t · w) · 2) · π` in f32, its sin and cos rounded once.
pub fn fourier_embedding(t: &[f32], weight: &[f32], flip: bool, log_t: bool) -> Vec<f32> {
    let mut out = Vec::with_capacity(t.len() * 2 * weight.len());
    for &tb in t {
        let x = if log_t { f64::from(tb).ln() as f32 } else { tb };
        let angle = |w: f32| f64::from(((x * w) * 2.0) * std::f32::consts::PI);
        let sin = weight.iter().map(|&w| angle(w).sin() as f32);
        let cos = weight.iter().map(|&w| angle(w).cos() as f32);
        if flip {
            out.extend(cos.chain(sin));
        } else {
            out.extend(sin.chain(cos));
        }
    }
    out
}

/// The index of the row of `table` nearest each `d`-wide row of `z` (see the GPU driver).
pub fn nearest_rows(z: &[f32], table: &[f32], d: usize) -> Vec<u32> {
    z.chunks(d.max(1))
        .map(|q| {
            let mut best = (0u32, f32::INFINITY);
            for (r, row) in table.chunks(d.max(1)).enumerate() {
                let dist: f32 = q.iter().zip(row).map(|(a, b)| (a - b) * (a - b)).sum();
                if dist < best.1 {
                    best = (r as u32, dist);
                }
            }
            best.0
        })
        .collect()
}
