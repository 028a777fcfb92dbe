//! Convolution on host memory, for the CPU backend: conv2d as an im2col GEMM, in one of two layouts
//! ([`ConvOrder`]: the patches as the GEMM's right operand per image, or channels last, patches a
//! pixel per row, for layers with enough output channels), bias per output channel in the GEMM;
//! nearest-neighbour 2× upsampling and FIR resampling; with the same shape rules and typed errors
//! as the GPU drivers.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{ConvLayout, Padding};
use crate::cpu::alloc::reserved;
use crate::cpu::gemm::{conv, Bias, Patches, Strided};
use crate::cpu::parallel;
use crate::error::{Error, Result};
use crate::ops::check_host_len;

// Native only: on the page (no AVX transposes) channels last measured no faster, and the app
// bundle has no room to spare.
#[cfg(not(target_arch = "wasm32"))]
mod channels_last;
#[cfg(not(target_arch = "wasm32"))]
use channels_last::{channels_last, Layer};

/// The most patch-matrix elements one band of [`ConvOrder::ChannelsLast`] holds (f32: 4 MiB).
pub const BAND_ELEMENTS: usize = 1 << 20;

/// How [`conv2d_via`] lays a layer out for the GEMM (both give the same convolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvOrder {
    /// Per image, weight `[cout, cin·kh·kw]` @ patches `[cin·kh·kw, pixels]` straight into the
    /// output planes: the patches are the GEMM's right operand, which it packs
    /// ([`crate::cpu::gemm::conv`]).
    PatchesRight,
    /// Patches a pixel per row @ the weights packed once, the output transposed into its planes,
    /// at most `band` patch values at a time (`channels_last.rs`; native only: in the browser this
    /// order runs as [`ConvOrder::PatchesRight`]).
    ChannelsLast { band: usize },
}

impl ConvOrder {
    /// The layout for `n` images of `pixels` output pixels each, `cout` output channels, `stride`
    /// (`cargo bench --bench conv` measures both on the shipped UNets' layers). Channels last saves
    /// the packing of every patch, but costs a reordering and packing of the weights per call, which
    /// needs about six output pixels per output channel to pay back; and its output channels are the
    /// product's columns, which the kernel takes in panels (32 wide with AVX-512): 16 channels leave
    /// half of every panel empty, which only a strided layer's patches (gathered element by element
    /// when they go right) make worth it.
    /// In the browser, always [`ConvOrder::PatchesRight`] (channels last is native only).
    pub fn for_layer(n: usize, pixels: usize, cout: usize, stride: usize) -> ConvOrder {
        if cfg!(target_arch = "wasm32") {
            return ConvOrder::PatchesRight;
        }
        let panel = crate::cpu::gemm::panel_cols().max(1);
        let fills_panels = cout.next_multiple_of(panel) * 8 <= cout * 9;
        if n * pixels >= 6 * cout && (fills_panels || stride > 1) {
            ConvOrder::ChannelsLast {
                band: BAND_ELEMENTS,
            }
        } else {
            ConvOrder::PatchesRight
        }
    }
}

/// PyTorch's `conv2d(x, weight, bias, stride, padding)` (zero padding per side); returns the output
/// `[N, Cout, ho, wo]` and its shape.
pub fn conv2d(
    x: (&[f32], &[usize]),
    weight: (&[f32], &[usize]),
    bias: Option<&[f32]>,
    stride: usize,
    padding: Padding,
) -> Result<(Vec<f32>, Vec<usize>)> {
    conv2d_via(x, weight, bias, stride, padding, None)
}

/// [`conv2d`] laid out as `order` says (`None`: [`ConvOrder::for_layer`]).
pub fn conv2d_via(
    x: (&[f32], &[usize]),
    weight: (&[f32], &[usize]),
    bias: Option<&[f32]>,
    stride: usize,
    padding: Padding,
    order: Option<ConvOrder>,
) -> Result<(Vec<f32>, Vec<usize>)> {
    let bias_shape = bias.map(|b| [b.len()]);
    let layout = ConvLayout::new(
        x.1,
        weight.1,
        bias_shape.as_ref().map(|s| &s[..]),
        stride,
        padding,
    )?;
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
    } = layout;
    check_host_len("conv2d", "x", x.0, x.1)?;
    check_host_len("conv2d", "weight", weight.0, weight.1)?;
    let (k, pixels) = (cin * kh * kw, ho * wo);
    let shape = vec![n, cout, ho, wo];
    let len = n * cout * pixels;
    let mut out: Vec<f32> = reserved(len, &|| format!("conv2d output {shape:?}"))?;
    // The GEMM addresses an image's taps with i32 offsets.
    if cin * h * w > i32::MAX as usize {
        return Err(Error::shape(
            "conv2d",
            format!("one image of {:?} has more than 2^31 elements", x.1),
        ));
    }
    #[cfg(not(target_arch = "wasm32"))]
    let order = order.unwrap_or_else(|| ConvOrder::for_layer(n, ho * wo, cout, stride));
    #[cfg(target_arch = "wasm32")]
    let _ = order;
    #[cfg(not(target_arch = "wasm32"))]
    if let (true, ConvOrder::ChannelsLast { band }) = (len > 0, order) {
        let layer = Layer {
            conv: layout,
            stride,
            pad_top: padding.top,
            pad_left: padding.left,
        };
        let spare = &mut out.spare_capacity_mut()[..len];
        channels_last(spare, x.0, n, weight.0, bias, &layer, band);
        // SAFETY: `channels_last` wrote every element.
        unsafe { out.set_len(len) };
        return Ok((out, shape));
    }
    if len > 0 {
        let patches = Patches {
            cin,
            h,
            w,
            kh,
            kw,
            ho,
            wo,
            stride,
            pad_top: padding.top,
            pad_left: padding.left,
        };
        let weight = Strided::rows(weight.0, cout, k);
        let bias = bias.map(Bias::PerRow);
        // Per image: weight `[Cout, K]` @ its patches `[K, pixels]` (+ the bias per output channel)
        // straight into its `[Cout, pixels]` block of the output. Images are independent, so a large
        // batch splits across threads by image.
        let image = |(i, block): (usize, &mut [MaybeUninit<f32>])| {
            conv(
                block,
                weight,
                &x.0[i * cin * h * w..][..cin * h * w],
                &patches,
                bias,
            );
        };
        let blocks = &mut out.spare_capacity_mut()[..len];
        let block = cout * pixels;
        if n > 1 && n * cout * k * pixels >= PARALLEL_MIN_MACS {
            parallel::in_pool(true, || {
                blocks.par_chunks_mut(block).enumerate().for_each(image)
            });
        } else {
            blocks.chunks_mut(block).enumerate().for_each(image);
        }
        // SAFETY: every image's block was written by `conv` above.
        unsafe { out.set_len(len) };
    }
    Ok((out, shape))
}

/// Multiply-adds above which a batch's images are convolved on several threads.
pub(super) const PARALLEL_MIN_MACS: usize = 1 << 22;

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

/// diffusers' FIR resampling with the (1, 3, 3, 1) kernel (see [`super::Fir`]), zero outside the
/// image; each tap's weight is the product of two per-axis weights, as in the GPU kernel.
pub fn fir_resample(x: &[f32], shape: &[usize], dir: super::Fir) -> Result<Vec<f32>> {
    let [_, _, ho, wo] = dir.out_shape(shape)?;
    check_host_len(
        match dir {
            super::Fir::Up => "fir_upsample2x",
            super::Fir::Down => "fir_downsample2x",
        },
        "x",
        x,
        shape,
    )?;
    let (h, w) = (shape[2], shape[3]);
    let planes = shape[0] * shape[1];
    // (input index, weight) of the taps an output coordinate reads along one axis.
    let taps = |o: usize, side: usize| -> Vec<(usize, f32)> {
        let cand: Vec<(isize, f32)> = match dir {
            super::Fir::Up => {
                let m = (o / 2) as isize;
                let d = if o % 2 == 1 { 1 } else { -1 };
                vec![(m, 0.75), (m + d, 0.25)]
            }
            super::Fir::Down => {
                let m = 2 * o as isize;
                vec![(m - 1, 1.0), (m, 3.0), (m + 1, 3.0), (m + 2, 1.0)]
            }
        };
        cand.into_iter()
            .filter(|&(i, _)| i >= 0 && (i as usize) < side)
            .map(|(i, wt)| (i as usize, wt))
            .collect()
    };
    let ys: Vec<Vec<(usize, f32)>> = (0..ho).map(|o| taps(o, h)).collect();
    let xs: Vec<Vec<(usize, f32)>> = (0..wo).map(|o| taps(o, w)).collect();
    // Down's per-axis weights are (1, 3, 3, 1); their product is scaled by 1/64 once.
    let norm = match dir {
        super::Fir::Up => 1.0,
        super::Fir::Down => 0.015625,
    };
    let mut out = Vec::with_capacity(planes * ho * wo);
    for plane in x.chunks_exact((h * w).max(1)).take(planes) {
        for ty in &ys {
            for tx in &xs {
                let mut acc = 0.0f32;
                for &(y, wy) in ty {
                    for &(xi, wx) in tx {
                        acc += (wy * wx * norm) * plane[y * w + xi];
                    }
                }
                out.push(acc);
            }
        }
    }
    if h * w == 0 {
        out.resize(planes * ho * wo, 0.0);
    }
    Ok(out)
}
