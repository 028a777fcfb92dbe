//! Embeddings: rows of a table gathered by index (token and class embeddings, node and edge types)
//! and diffusers' timestep embeddings: the sinusoidal one and the score-SDE models' Gaussian Fourier
//! projection of the noise level.

pub mod cpu;

use super::{check_u32_len, host_op, host_op_f32, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::params_layout;
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::tensor::{same_device, words_of_f32, DType, Device, Tensor};

pub(super) const SRC: &str = include_str!("../../../shaders/embedding.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct GatherParams {
    n: u32,
    d: u32,
    rows: u32,
    _pad: u32,
}
params_layout!(GatherParams { n, d, rows, _pad });

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct TimeParams {
    n: u32,
    dim: u32,
    half: u32,
    flip: u32,
    integer_t: u32,
    neg_log_period: f32,
    denom: f32,
    scale: f32,
}
params_layout!(TimeParams {
    n,
    dim,
    half,
    flip,
    integer_t,
    neg_log_period,
    denom,
    scale
});

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct FourierParams {
    n: u32,
    size: u32,
    flip: u32,
    log_t: u32,
}
params_layout!(FourierParams {
    n,
    size,
    flip,
    log_t
});

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct NearestParams {
    m: u32,
    d: u32,
    k: u32,
    _pad: u32,
}
params_layout!(NearestParams { m, d, k, _pad });

fn spec(entry: &'static str, bindings: &'static [Access]) -> KernelSpec<'static> {
    KernelSpec {
        family: "embedding",
        source: SRC,
        entry,
        defines: "",
        bindings,
    }
}

/// `table[ids]`: `table [V, D]` (f32 or u32), `ids` u32 of any shape → `[*ids.shape, D]`, same dtype
/// as the table. An id ≥ V yields a zero row rather than reading out of bounds; to have bad ids
/// refused instead, upload them with [`Tensor::from_indices`].
pub fn gather_rows(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    const OP: &str = "gather_rows";
    ids.expect_dtype(OP, DType::U32)?;
    if table.dims() != 2 {
        return Err(Error::shape(
            OP,
            format!("table must be [V, D], got {:?}", table.shape()),
        ));
    }
    check_u32_len(OP, table)?;
    let (rows, d) = (table.dim(0), table.dim(1));
    let mut shape = ids.shape().to_vec();
    shape.push(d);
    if let Device::Cpu(_) = same_device(OP, &[table, ids])? {
        let table_shape = table.shape().to_vec();
        return host_op(
            OP,
            table.device(),
            &shape,
            table.dtype(),
            &[table, ids],
            move |i| cpu::gather_rows(i[0], &table_shape, i[1]),
        );
    }
    let out = Tensor::empty(table.gpu()?, &shape, table.dtype())?;
    check_u32_len(OP, &out)?;
    if out.is_empty() {
        return Ok(out);
    }
    let p = GatherParams {
        n: out.len() as u32,
        d: d as u32,
        rows: rows.min(u32::MAX as usize) as u32,
        _pad: 0,
    };
    table.gpu()?.dispatch(
        &spec(
            "gather_rows",
            &[Access::Read, Access::Read, Access::ReadWrite],
        ),
        &p,
        &[table.buffer()?, ids.buffer()?, out.buffer()?],
        Gpu::grid_1d(out.len() as u64, WG),
    )?;
    Ok(out)
}

/// The checked settings of a timestep embedding: (half, half − downscale_freq_shift).
fn timestep_layout(
    t_shape: &[usize],
    dim: usize,
    downscale_freq_shift: f32,
    scale: f32,
    max_period: f32,
) -> Result<(usize, f32)> {
    const OP: &str = "timestep_embedding";
    if t_shape.len() != 1 {
        return Err(Error::shape(
            OP,
            format!("timesteps must be [B], got {t_shape:?}"),
        ));
    }
    let half = dim / 2;
    let denom = half as f32 - downscale_freq_shift;
    if half > 0 && (denom == 0.0 || !denom.is_finite()) {
        return Err(Error::Invalid(format!(
            "{OP}: half − downscale_freq_shift = {half} − {downscale_freq_shift} must be nonzero"
        )));
    }
    if !(max_period > 0.0 && max_period.is_finite() && scale.is_finite()) {
        return Err(Error::Invalid(format!(
            "{OP}: max_period must be positive and scale finite, got {max_period} and {scale}"
        )));
    }
    Ok((half, denom))
}

/// diffusers' `get_timestep_embedding(t, dim, flip_sin_to_cos, downscale_freq_shift, scale,
/// max_period)`: `t` is `[B]` (f32, or u32 converted like `.float()`), the result `[B, dim]`.
///
/// With `half = dim / 2` and `f_j = exp(−ln(max_period)·j / (half − downscale_freq_shift))`, row b is
/// `[sin(scale·t_b·f_j)]_j ++ [cos(scale·t_b·f_j)]_j` (cos first when `flip_sin_to_cos`), plus a zero
/// column when `dim` is odd. Take both flags from the model's config: `UNet2DModel` defaults to
/// `flip_sin_to_cos = true, freq_shift = 0`, while the google/ddpm-* checkpoints set false and 1.
pub fn timestep_embedding(
    t: &Tensor,
    dim: usize,
    flip_sin_to_cos: bool,
    downscale_freq_shift: f32,
    scale: f32,
    max_period: f32,
) -> Result<Tensor> {
    const OP: &str = "timestep_embedding";
    let integer_t = match t.dtype() {
        DType::F32 => 0,
        DType::U32 => 1,
    };
    let (half, denom) = timestep_layout(t.shape(), dim, downscale_freq_shift, scale, max_period)?;
    if let Device::Cpu(_) = t.device() {
        let dtype = t.dtype();
        return host_op(
            OP,
            t.device(),
            &[t.len(), dim],
            DType::F32,
            &[t],
            move |i| {
                let times: Vec<f32> = match dtype {
                    DType::F32 => bytemuck::cast_slice(i[0]).to_vec(),
                    DType::U32 => i[0].iter().map(|&v| v as f32).collect(),
                };
                cpu::timestep_embedding(
                    &times,
                    dim,
                    flip_sin_to_cos,
                    downscale_freq_shift,
                    scale,
                    max_period,
                )
                .map(words_of_f32)
            },
        );
    }
    let out = Tensor::empty(t.gpu()?, &[t.len(), dim], DType::F32)?;
    check_u32_len(OP, &out)?;
    if out.is_empty() {
        return Ok(out);
    }
    let p = TimeParams {
        n: out.len() as u32,
        dim: dim as u32,
        half: half as u32,
        flip: flip_sin_to_cos as u32,
        integer_t,
        neg_log_period: -(max_period as f64).ln() as f32,
        denom,
        scale,
    };
    t.gpu()?.dispatch(
        &spec("timestep_embedding", &[Access::Read, Access::ReadWrite]),
        &p,
        &[t.buffer()?, out.buffer()?],
        Gpu::grid_1d(out.len() as u64, WG),
    )?;
    Ok(out)
}

/// diffusers' `GaussianFourierProjection(size, log=log_t, flip_sin_to_cos=flip)` with its fixed random
/// frequencies `weight` `[size]`: `t` `[B]` (f32 noise levels) → `[B, 2·size]`, row b
/// `[sin(2π·w_j·ln t_b)]_j ++ [cos(2π·w_j·ln t_b)]_j` (cos first when `flip`; `t_b` itself when not
/// `log_t`). `UNet2DModel(time_embedding_type="fourier")` uses `log_t = true, flip = false`.
pub fn fourier_embedding(t: &Tensor, weight: &Tensor, flip: bool, log_t: bool) -> Result<Tensor> {
    const OP: &str = "fourier_embedding";
    t.expect_dtype(OP, DType::F32)?;
    weight.expect_dtype(OP, DType::F32)?;
    if t.dims() != 1 || weight.dims() != 1 {
        return Err(Error::shape(
            OP,
            format!(
                "t must be [B] and weight [size], got {:?} and {:?}",
                t.shape(),
                weight.shape()
            ),
        ));
    }
    let (b, size) = (t.len(), weight.len());
    if let Device::Cpu(_) = same_device(OP, &[t, weight])? {
        return host_op_f32(OP, t.device(), &[b, 2 * size], &[t, weight], move |i| {
            Ok(cpu::fourier_embedding(i[0], i[1], flip, log_t))
        });
    }
    let out = Tensor::empty(t.gpu()?, &[b, 2 * size], DType::F32)?;
    check_u32_len(OP, &out)?;
    if out.is_empty() {
        return Ok(out);
    }
    let p = FourierParams {
        n: out.len() as u32,
        size: size as u32,
        flip: flip as u32,
        log_t: log_t as u32,
    };
    t.gpu()?.dispatch(
        &spec(
            "fourier_embedding",
            &[Access::Read, Access::Read, Access::ReadWrite],
        ),
        &p,
        &[t.buffer()?, weight.buffer()?, out.buffer()?],
        Gpu::grid_1d(out.len() as u64, WG),
    )?;
    Ok(out)
}

/// Vector quantisation (diffusers' `VectorQuantizer` lookup): for each row of `z` `[M, D]`, the index
/// of the nearest row of `table` `[K, D]` in Euclidean distance (the first of equal ones), as u32
/// `[M]`. With [`gather_rows`] it gives the quantised vectors.
pub fn nearest_rows(z: &Tensor, table: &Tensor) -> Result<Tensor> {
    const OP: &str = "nearest_rows";
    z.expect_dtype(OP, DType::F32)?;
    table.expect_dtype(OP, DType::F32)?;
    if z.dims() != 2
        || table.dims() != 2
        || z.dim(1) != table.dim(1)
        || table.dim(0) == 0
        || table.dim(1) == 0
    {
        return Err(Error::shape(
            OP,
            format!(
                "expects z [M, D] and a non-empty table [K, D] (D > 0), got {:?} and {:?}",
                z.shape(),
                table.shape()
            ),
        ));
    }
    check_u32_len(OP, table)?;
    let m = z.dim(0);
    if let Device::Cpu(_) = same_device(OP, &[z, table])? {
        let d = z.dim(1);
        return host_op(OP, z.device(), &[m], DType::U32, &[z, table], move |i| {
            Ok(cpu::nearest_rows(
                bytemuck::cast_slice(i[0]),
                bytemuck::cast_slice(i[1]),
                d,
            ))
        });
    }
    let out = Tensor::empty(z.gpu()?, &[m], DType::U32)?;
    if out.is_empty() {
        return Ok(out);
    }
    let p = NearestParams {
        m: m as u32,
        d: z.dim(1) as u32,
        k: table.dim(0) as u32,
        _pad: 0,
    };
    z.gpu()?.dispatch(
        &spec(
            "nearest_rows",
            &[Access::Read, Access::Read, Access::ReadWrite],
        ),
        &p,
        &[z.buffer()?, table.buffer()?, out.buffer()?],
        Gpu::grid_1d(m as u64, WG),
    )?;
    Ok(out)
}
