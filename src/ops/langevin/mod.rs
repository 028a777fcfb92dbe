//! The Langevin corrector of the score-SDE (variance-exploding) sampler — diffusers'
//! `ScoreSdeVeScheduler.step_correct` — on the run's variance-preserving state `x = α·x_VE`
//! (`α = 1/√(1+σ²)`), with the model's output read as `ε̂ = −σ·score`:
//! `step = 2·(snr·mean_b‖z_b‖ / mean_b‖score_b‖)²`, `x' = x + α·step·score + α·√(2·step)·z`.
//! The step size couples the whole batch (diffusers averages the norms over it), so the GPU computes
//! it in passes (`shaders/langevin.wgsl`): per-row sums of squares, the two coefficients in one
//! workgroup, the update — nothing is read back.

pub mod cpu;

use super::{check_u32_len, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::params_layout;
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::tensor::{same_device, DType, Device, Tensor};

pub(super) const SRC: &str = include_str!("../../../shaders/langevin.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    n: u32,
    rows: u32,
    len: u32,
    _pad: u32,
    alpha: f32,
    sigma: f32,
    snr: f32,
    _pad1: u32,
}
params_layout!(Params {
    n,
    rows,
    len,
    _pad,
    alpha,
    sigma,
    snr,
    _pad1
});

/// The corrector's scalars: the state's α and σ, and the scheduler's `snr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Langevin {
    pub alpha: f32,
    pub sigma: f32,
    pub snr: f32,
}

/// One Langevin correction of `x` `[B, ..]` with the model's `eps` (ε̂ = −σ·score) and the noise
/// `z`, all of one shape.
pub fn langevin_correct(x: &Tensor, eps: &Tensor, z: &Tensor, l: &Langevin) -> Result<Tensor> {
    const OP: &str = "langevin_correct";
    for t in [x, eps, z] {
        t.expect_dtype(OP, DType::F32)?;
        check_u32_len(OP, t)?;
    }
    if eps.shape() != x.shape() || z.shape() != x.shape() || x.dims() == 0 {
        return Err(Error::shape(
            OP,
            format!(
                "x {:?}, ε̂ {:?} and z {:?} must share one shape with a batch axis",
                x.shape(),
                eps.shape(),
                z.shape()
            ),
        ));
    }
    if ![l.alpha, l.sigma, l.snr].iter().all(|v| v.is_finite()) || l.sigma <= 0.0 || l.alpha <= 0.0
    {
        return Err(Error::Invalid(format!(
            "{OP}: α and σ must be positive and snr finite, got {l:?}"
        )));
    }
    let rows = x.dim(0);
    let len = x.len() / rows.max(1);
    if let Device::Cpu(_) = same_device(OP, &[x, eps, z])? {
        let l = *l;
        return crate::ops::host_op_f32(OP, x.device(), x.shape(), &[x, eps, z], move |i| {
            Ok(cpu::langevin_correct(i[0], i[1], i[2], rows, &l))
        });
    }
    let gpu = x.gpu()?;
    let out = Tensor::empty(gpu, x.shape(), DType::F32)?;
    if out.is_empty() {
        return Ok(out);
    }
    let sums = Tensor::empty(gpu, &[2 * rows], DType::F32)?;
    let coefs = Tensor::empty(gpu, &[2], DType::F32)?;
    let p = Params {
        n: x.len() as u32,
        rows: rows as u32,
        len: len as u32,
        _pad: 0,
        alpha: l.alpha,
        sigma: l.sigma,
        snr: l.snr,
        _pad1: 0,
    };
    let spec = |entry| KernelSpec {
        family: "langevin",
        source: SRC,
        entry,
        defines: "",
        bindings: &[
            Access::Read,
            Access::Read,
            Access::Read,
            Access::ReadWrite,
            Access::ReadWrite,
            Access::ReadWrite,
        ],
    };
    let bufs = [
        x.buffer()?,
        eps.buffer()?,
        z.buffer()?,
        sums.buffer()?,
        coefs.buffer()?,
        out.buffer()?,
    ];
    gpu.dispatch(
        &spec("langevin_sumsq"),
        &p,
        &bufs,
        Gpu::grid_1d(rows as u64, 1),
    )?;
    gpu.dispatch(&spec("langevin_coefs"), &p, &bufs, [1, 1, 1])?;
    gpu.dispatch(
        &spec("langevin_step"),
        &p,
        &bufs,
        Gpu::grid_1d(x.len() as u64, WG),
    )?;
    Ok(out)
}
