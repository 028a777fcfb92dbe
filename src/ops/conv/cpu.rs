//! Convolution on host memory, for the CPU backend: conv2d as im2col over the CPU matmul (one GEMM
//! per image: weight `[Cout, Cin·kh·kw]` @ columns `[Cin·kh·kw, ho·wo]`), and nearest-neighbour 2×
//! upsampling, with the same shape rules and typed errors as the GPU drivers.

use super::{ConvLayout, Padding};
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
    let mut out = Vec::with_capacity(n * cout * pixels);
    let mut col = vec![0f32; k * pixels];
    let chw = cin * h * w;
    for i in 0..n {
        let img = &x.0[i * chw..(i + 1) * chw];
        // Row (c, dy, dx) of the columns holds input channel c at offset (dy, dx) for every output
        // pixel; taps that fall in the padding stay zero.
        for c in 0..cin {
            for dy in 0..kh {
                for dx in 0..kw {
                    let row = &mut col[((c * kh + dy) * kw + dx) * pixels..][..pixels];
                    for oy in 0..ho {
                        let iy = (oy * stride + dy) as isize - padding.top as isize;
                        for ox in 0..wo {
                            let ix = (ox * stride + dx) as isize - padding.left as isize;
                            row[oy * wo + ox] =
                                if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                                    img[(c * h + iy as usize) * w + ix as usize]
                                } else {
                                    0.0
                                };
                        }
                    }
                }
            }
        }
        let (y, _) = mm::matmul(
            HostMatrix {
                data: weight.0,
                shape: &[cout, k],
            },
            HostMatrix {
                data: &col,
                shape: &[k, pixels],
            },
            &HostMatmul::default(),
        )?;
        match bias {
            Some(b) => out.extend(
                y.chunks_exact(pixels.max(1))
                    .zip(b)
                    .flat_map(|(row, &bv)| row.iter().map(move |&v| v + bv)),
            ),
            None => out.extend(y),
        }
    }
    Ok((out, shape))
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
