//! diffusers' FIR resampling with the (1, 3, 3, 1) kernel — `upsample_2d` and `downsample_2d`, used
//! by the score-SDE (NCSN++) UNets' skip blocks and `ResnetBlock2D(kernel="fir")`: a 2× upsampling
//! that blends each output pixel from its 2 × 2 nearest inputs (3/4 and 1/4 per axis), and a 2×
//! downsampling by a 4 × 4 window at stride 2 ((1, 3, 3, 1)/8 per axis); zero outside the image.

use super::{cpu, spec, UpParams};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu};
use crate::ops::{check_u32_len, WG};
use crate::tensor::{DType, Device, Tensor};

/// Which way a FIR resampling goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fir {
    /// `[N, C, H, W] → [N, C, 2H, 2W]`.
    Up,
    /// `[N, C, H, W] → [N, C, ⌊H/2⌋, ⌊W/2⌋]`.
    Down,
}

impl Fir {
    fn name(self) -> &'static str {
        match self {
            Fir::Up => "fir_upsample2x",
            Fir::Down => "fir_downsample2x",
        }
    }

    /// The output's `[N, C, H, W]` for an input of `[n, c, h, w]`.
    pub fn out_shape(self, shape: &[usize]) -> Result<[usize; 4]> {
        let [n, c, h, w] = shape else {
            return Err(Error::shape(
                self.name(),
                format!("expects [N, C, H, W], got {shape:?}"),
            ));
        };
        Ok(match self {
            Fir::Up => [*n, *c, h.saturating_mul(2), w.saturating_mul(2)],
            Fir::Down => [*n, *c, h / 2, w / 2],
        })
    }
}

/// diffusers' `upsample_2d(x, kernel=(1, 3, 3, 1))` or `downsample_2d(x, kernel=(1, 3, 3, 1))`.
pub fn fir_resample(x: &Tensor, dir: Fir) -> Result<Tensor> {
    let op = dir.name();
    x.expect_dtype(op, DType::F32)?;
    let out_shape = dir.out_shape(x.shape())?;
    if let Device::Cpu(_) = x.device() {
        let shape = x.shape().to_vec();
        return crate::ops::host_op_f32(op, x.device(), &out_shape, &[x], move |i| {
            cpu::fir_resample(i[0], &shape, dir)
        });
    }
    let out = Tensor::empty(x.gpu()?, &out_shape, DType::F32)?;
    check_u32_len(op, x)?;
    check_u32_len(op, &out)?;
    if out.is_empty() {
        return Ok(out);
    }
    let p = UpParams {
        n: out.len() as u32,
        h: x.dim(2) as u32,
        w: x.dim(3) as u32,
        _pad: 0,
    };
    x.gpu()?.dispatch(
        &spec(op, &[Access::Read, Access::ReadWrite]),
        &p,
        &[x.buffer()?, out.buffer()?],
        Gpu::grid_1d(out.len() as u64, WG),
    )?;
    Ok(out)
}

/// `fir_resample(x, Fir::Up)`.
pub fn fir_upsample2x(x: &Tensor) -> Result<Tensor> {
    fir_resample(x, Fir::Up)
}

/// `fir_resample(x, Fir::Down)`.
pub fn fir_downsample2x(x: &Tensor) -> Result<Tensor> {
    fir_resample(x, Fir::Down)
}
