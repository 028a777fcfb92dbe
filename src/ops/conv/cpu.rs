//! Convolution on host memory, for the CPU backend: conv2d as im2col over the CPU GEMM (one GEMM
//! per image: weight `[Cout, Cin·kh·kw]` @ columns `[Cin·kh·kw, ho·wo]`, bias per output channel in
//! the GEMM, written straight into the image's output block), and nearest-neighbour 2× upsampling,
//! with the same shape rules and typed errors as the GPU drivers.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{ConvLayout, Padding};
use crate::cpu::alloc::{reserved, zeroed};
use crate::cpu::gemm::{gemm, Bias, Strided};
use crate::cpu::parallel;
use crate::error::{Error, Result};
use crate::ops::check_host_len;

/// PyTorch's `conv2d(x, weight, bias, stride, padding)` (zero padding per side); returns the output
/// `[N, Cout, ho, wo]` and its shape.
pub fn conv2d(
    x: (&[f32], &[usize]),
    weight: (&[f32], &[usize]),
    bias: Option<&[f32]>,
    stride: usize,
    padding: Padding,
) -> Result<(Vec<f32>, Vec<usize>)> {
    let bias_shape = bias.map(|b| [b.len()]);
    let ConvLayout {
        n,
        cin,
        h,
        w,
        cout,
        kh,
        kw,
        ho,
        wo,
    } = ConvLayout::new(
        x.1,
        weight.1,
        bias_shape.as_ref().map(|s| &s[..]),
        stride,
        padding,
    )?;
    check_host_len("conv2d", "x", x.0, x.1)?;
    check_host_len("conv2d", "weight", weight.0, weight.1)?;
    let (k, pixels) = (cin * kh * kw, ho * wo);
    let shape = vec![n, cout, ho, wo];
    let len = n * cout * pixels;
    let mut out: Vec<f32> = reserved(len, &|| format!("conv2d output {shape:?}"))?;
    // One image's columns, `[K, pixels]`.
    let col_len = k
        .checked_mul(pixels)
        .ok_or_else(|| Error::shape("conv2d", format!("im2col of {:?} overflows", x.1)))?;
    if len > 0 {
        let geometry = Im2col {
            cin,
            h,
            w,
            kh,
            kw,
            ho,
            wo,
            stride,
            padding,
        };
        let weight = Strided::rows(weight.0, cout, k);
        let bias = bias.map(Bias::PerRow);
        // Per image: its columns, then weight `[Cout, K]` @ columns `[K, pixels]` (+ the bias per
        // output channel) straight into its `[Cout, pixels]` block of the output. Images are
        // independent, so a large batch splits across threads by image.
        let image = |(i, block): (usize, &mut [MaybeUninit<f32>])| -> Result<()> {
            let mut col: Vec<f32> = zeroed(col_len, &|| format!("conv2d columns for {:?}", x.1))?;
            geometry.fill(&x.0[i * cin * h * w..][..cin * h * w], &mut col);
            gemm(block, weight, Strided::rows(&col, k, pixels), 1.0, bias);
            Ok(())
        };
        let blocks = &mut out.spare_capacity_mut()[..len];
        let block = cout * pixels;
        if n > 1 && n * cout * k * pixels >= PARALLEL_MIN_MACS {
            parallel::in_pool(true, || {
                blocks.par_chunks_mut(block).enumerate().try_for_each(image)
            })?;
        } else {
            blocks.chunks_mut(block).enumerate().try_for_each(image)?;
        }
        // SAFETY: every image's block was written by `gemm` above.
        unsafe { out.set_len(len) };
    }
    Ok((out, shape))
}

/// Multiply-adds above which a batch's images are convolved on several threads.
const PARALLEL_MIN_MACS: usize = 1 << 22;

/// The im2col geometry of one image.
struct Im2col {
    cin: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    stride: usize,
    padding: Padding,
}

impl Im2col {
    /// Row (c, dy, dx) of `col` (`[cin·kh·kw, ho·wo]`, zeroed) gets input channel c at offset
    /// (dy, dx) for every output pixel; taps in the padding stay zero. Per output row the valid ox
    /// form one range, so the inner loop is a strided (for stride 1, contiguous) copy without
    /// bounds tests.
    fn fill(&self, image: &[f32], col: &mut [f32]) {
        let &Im2col {
            h,
            w,
            kh,
            kw,
            ho,
            wo,
            stride,
            padding,
            ..
        } = self;
        let pixels = ho * wo;
        for (r, row) in col.chunks_exact_mut(pixels.max(1)).enumerate() {
            let (c, dy, dx) = (r / (kh * kw), (r / kw) % kh, r % kw);
            let (ox0, ox1) = valid_range(wo, w, stride, dx, padding.left);
            if ox0 >= ox1 {
                continue;
            }
            let plane = &image[c * h * w..][..h * w];
            for oy in 0..ho {
                let iy = (oy * stride + dy) as isize - padding.top as isize;
                if !(0..h as isize).contains(&iy) {
                    continue;
                }
                let src = &plane[iy as usize * w..][..w];
                let dst = &mut row[oy * wo..][ox0..ox1];
                let ix0 = ox0 * stride + dx - padding.left;
                if stride == 1 {
                    dst.copy_from_slice(&src[ix0..ix0 + dst.len()]);
                } else {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = src[ix0 + j * stride];
                    }
                }
            }
        }
        debug_assert_eq!(col.len(), self.cin * kh * kw * pixels);
    }
}

/// The output columns `[ox0, ox1)` whose tap `dx` lands inside a row of `w` input pixels
/// (`ox·stride + dx − pad ∈ [0, w)`).
fn valid_range(wo: usize, w: usize, stride: usize, dx: usize, pad: usize) -> (usize, usize) {
    // First ox with ox·stride + dx ≥ pad.
    let ox0 = pad.saturating_sub(dx).div_ceil(stride.max(1));
    // One past the last ox with ox·stride + dx − pad ≤ w − 1.
    let ox1 = if w + pad > dx {
        ((w + pad - dx - 1) / stride.max(1) + 1).min(wo)
    } else {
        0
    };
    (ox0.min(ox1), ox1)
}

/// Nearest-neighbour 2× upsampling of `[N, C, H, W]` (diffusers' `Upsample2D` interpolation).
pub fn upsample_nearest2x(x: &[f32], shape: &[usize]) -> Result<(Vec<f32>, Vec<usize>)> {
    if shape.len() != 4 {
        return Err(Error::shape(
            "upsample_nearest2x",
            format!("expects [N, C, H, W], got {shape:?}"),
        ));
    }
    check_host_len("upsample_nearest2x", "x", x, shape)?;
    let (h, w) = (shape[2], shape[3]);
    let mut out = Vec::with_capacity(x.len() * 4);
    for plane in x.chunks_exact((h * w).max(1)).take(shape[0] * shape[1]) {
        for y in 0..2 * h {
            let row = &plane[(y / 2) * w..][..w];
            out.extend(row.iter().flat_map(|&v| [v, v]));
        }
    }
    Ok((out, vec![shape[0], shape[1], 2 * h, 2 * w]))
}
