//! Convolution on host memory, for the CPU backend: conv2d as im2col over the CPU matmul (one GEMM
//! per image: weight `[Cout, Cin·kh·kw]` @ columns `[Cin·kh·kw, ho·wo]`), and nearest-neighbour 2×
//! upsampling, with the same shape rules and typed errors as the GPU drivers.

use super::{ConvLayout, Padding};
use crate::cpu::alloc::zeroed;
use crate::error::{Error, Result};
use crate::ops::check_host_len;
use crate::ops::matmul::cpu::{self as mm, HostMatmul, HostMatrix};

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
    // The columns of every image side by side, `[K, N·pixels]`, so one GEMM covers the batch: a
    // GEMM per image left the threads idle between small products.
    let cols = n * pixels;
    let len = k
        .checked_mul(cols)
        .ok_or_else(|| Error::shape("conv2d", format!("im2col of {:?} overflows", x.1)))?;
    let mut col: Vec<f32> = zeroed(len, &|| format!("conv2d columns for {:?}", x.1))?;
    let chw = cin * h * w;
    // Row (c, dy, dx) of the columns holds input channel c at offset (dy, dx) for every output pixel
    // of every image; taps that fall in the padding stay zero. Per output row, the valid ox form one
    // range, so the inner loop is a strided (for stride 1, contiguous) copy without bounds tests.
    // Threads take whole rows.
    crate::cpu::parallel::for_each_chunk(&mut col, cols, |first, rows| {
        for (j, crow) in rows.chunks_exact_mut(cols.max(1)).enumerate() {
            let r = first + j;
            let (c, dy, dx) = (r / (kh * kw), (r / kw) % kh, r % kw);
            let (ox0, ox1) = valid_range(wo, w, stride, dx, padding.left);
            if ox0 >= ox1 {
                continue;
            }
            for i in 0..n {
                let plane = &x.0[i * chw + c * h * w..][..h * w];
                let row = &mut crow[i * pixels..][..pixels];
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
        }
    });
    let (y, _) = mm::matmul(
        HostMatrix {
            data: weight.0,
            shape: &[cout, k],
        },
        HostMatrix {
            data: &col,
            shape: &[k, cols],
        },
        &HostMatmul::default(),
    )?;
    // `[Cout, N, pixels]` → `[N, Cout, pixels]`, adding the bias on the way.
    let mut out = Vec::with_capacity(n * cout * pixels);
    for i in 0..n {
        for o in 0..cout {
            let src = &y[o * cols + i * pixels..][..pixels];
            match bias {
                Some(b) => out.extend(src.iter().map(|&v| v + b[o])),
                None => out.extend_from_slice(src),
            }
        }
    }
    Ok((out, shape))
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
