//! conv2d channels last, for the CPU backend's layers with many output channels: see
//! [`channels_last`].

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::PARALLEL_MIN_MACS;
use crate::cpu::gemm::{as_uninit, gemm_packed_b, Bias, PackedB, Strided};
use crate::cpu::parallel;
use crate::cpu::transpose::transpose;
use crate::ops::conv::ConvLayout;

/// One convolution's sizes, for [`channels_last`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Layer {
    pub(super) conv: ConvLayout,
    pub(super) stride: usize,
    pub(super) pad_top: usize,
    pub(super) pad_left: usize,
}

/// The most rows of a band (at most [`super::BAND_ELEMENTS`] patch values): a band of 512 rows and
/// its output stay in a core's L2 cache while the GEMM reads them.
const BAND_ROWS: usize = 512;

thread_local! {
    /// Each thread's images channels last, band of patches and band of outputs, kept between
    /// convolutions.
    static BAND: std::cell::RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new()))
    };
}

/// conv2d of `n` images `x` (`[n, cin, h, w]`) into `out` (`[n, cout, ho, wo]`), channels last:
/// the images transposed to `[h, w, cin]`, so the taps of one kernel row under an output pixel are
/// one contiguous run of `kw·cin` values, and the patch matrix is written a pixel per row
/// (`[pixels, kh·kw·cin]`). That matrix is the GEMM's left operand, which its kernel reads in
/// place (the right operand is always packed: as the right operand, every patch was written and
/// then packed again — 35 % of a mnist-unet batch-16 step between the two). The weights, reordered
/// to `[kh·kw·cin, cout]`, are packed once for the whole batch; each band's `[rows, cout]` product
/// is transposed into the output planes. Bands hold at most `band_elements` patch values; images
/// smaller than a band share one, so a 7×7 layer still makes products of hundreds of rows.
pub(super) fn channels_last(
    out: &mut [MaybeUninit<f32>],
    x: &[f32],
    n: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    l: &Layer,
    band_elements: usize,
) {
    let (k, pixels) = (l.conv.cin * l.conv.kh * l.conv.kw, l.conv.ho * l.conv.wo);
    let plane = l.conv.h * l.conv.w;
    // The weights as `[kh, kw, cin] × cout`, packed: transposed to `[cin, kh, kw] × cout`, then
    // their rows reordered.
    let taps = l.conv.kh * l.conv.kw;
    let mut by_channel = Vec::with_capacity(k * l.conv.cout);
    transpose(
        weight,
        k,
        (l.conv.cout, k),
        by_channel.spare_capacity_mut(),
        l.conv.cout,
    );
    // SAFETY: the transpose wrote all `k × cout` values.
    unsafe { by_channel.set_len(k * l.conv.cout) };
    let mut wt = Vec::with_capacity(k * l.conv.cout);
    for t in 0..taps {
        for c in 0..l.conv.cin {
            wt.extend_from_slice(&by_channel[(c * taps + t) * l.conv.cout..][..l.conv.cout]);
        }
    }
    let packed = PackedB::new(Strided::rows(&wt, k, l.conv.cout));
    let bias = bias.map(Bias::PerColumn);
    let band_rows = (band_elements / k.max(1)).clamp(1, BAND_ROWS);
    // Images per unit of work: enough to fill a band, but no fewer units than threads.
    let per_unit = (band_rows / pixels.max(1))
        .min(n.div_ceil(parallel::threads()))
        .max(1);
    let image = l.conv.cin * plane;
    let unit = |(u, out): (usize, &mut [MaybeUninit<f32>])| {
        let images = out.len() / (l.conv.cout * pixels);
        // The scratch is taken out of the thread's cell for the unit, not borrowed across it: while
        // a product waits on the pool, this thread may run another unit, which then finds the cell
        // empty and brings its own.
        let (mut xt, mut a, mut o) = BAND.take();
        {
            let (xt, a, o) = (&mut xt, &mut a, &mut o);
            // The unit's images, channels last.
            xt.clear();
            xt.reserve(images * image);
            let x = &x[u * per_unit * image..][..images * image];
            for (src, dst) in x
                .chunks_exact(image.max(1))
                .zip(xt.spare_capacity_mut().chunks_exact_mut(image.max(1)))
            {
                transpose(src, plane, (l.conv.cin, plane), dst, l.conv.cin);
            }
            // SAFETY: every image was transposed in whole.
            unsafe { xt.set_len(images * image) };
            let rows = images * pixels;
            for r0 in (0..rows).step_by(band_rows) {
                let r1 = (r0 + band_rows).min(rows);
                a.resize((r1 - r0) * k, 0.0);
                write_patch_rows(a, xt, l, r0..r1);
                o.resize((r1 - r0) * l.conv.cout, 0.0);
                let am = Strided::rows(a, r1 - r0, k);
                gemm_packed_b(as_uninit(o), am, &packed, bias);
                // Each image's rows of the band into its `[cout, pixels]` planes.
                let mut r = r0;
                while r < r1 {
                    let (i, p) = (r / pixels, r % pixels);
                    let m = (pixels - p).min(r1 - r);
                    let src = &o[(r - r0) * l.conv.cout..];
                    let dst = &mut out[i * l.conv.cout * pixels + p..];
                    transpose(src, l.conv.cout, (m, l.conv.cout), dst, pixels);
                    r += m;
                }
            }
        }
        BAND.set((xt, a, o));
    };
    let blocks = out.chunks_mut(per_unit * l.conv.cout * pixels).enumerate();
    if n > per_unit && n * l.conv.cout * k * pixels >= PARALLEL_MIN_MACS {
        let blocks: Vec<_> = blocks.collect();
        parallel::in_pool(true, || blocks.into_par_iter().for_each(unit));
    } else {
        blocks.for_each(unit);
    }
}

/// Rows `rows` of the patch matrix of channels-last images `xt` into `a` (`rows.len() × kh·kw·cin`):
/// row r is output pixel (oy, ox) = (r mod pixels) of image r / pixels, and holds, kernel row by
/// kernel row, the `kw·cin` values under it — one copy of the image's run where it lies inside,
/// zeros where it falls in the padding.
fn write_patch_rows(a: &mut [f32], xt: &[f32], l: &Layer, rows: std::ops::Range<usize>) {
    let (pixels, cin, s) = (l.conv.ho * l.conv.wo, l.conv.cin, l.stride.max(1));
    let run = l.conv.kw * cin;
    let k = l.conv.kh * run;
    for (r, row) in rows.zip(a.chunks_exact_mut(k.max(1))) {
        let (img, p) = (r / pixels, r % pixels);
        let (oy, ox) = (p / l.conv.wo, p % l.conv.wo);
        let image = &xt[img * l.conv.h * l.conv.w * cin..][..l.conv.h * l.conv.w * cin];
        // The kernel columns whose x = ox·s + dx − left falls inside [0, w).
        let x0 = ox * s;
        let dx_lo = l.pad_left.saturating_sub(x0).min(l.conv.kw);
        let dx_hi = (l.conv.w + l.pad_left)
            .saturating_sub(x0)
            .min(l.conv.kw)
            .max(dx_lo);
        for (dy, seg) in row.chunks_exact_mut(run.max(1)).enumerate() {
            let y = (oy * s + dy)
                .checked_sub(l.pad_top)
                .filter(|&y| y < l.conv.h);
            let Some(y) = y else {
                seg.fill(0.0);
                continue;
            };
            seg[..dx_lo * cin].fill(0.0);
            seg[dx_hi * cin..].fill(0.0);
            if dx_hi > dx_lo {
                let start = (y * l.conv.w + x0 + dx_lo - l.pad_left) * cin;
                let len = (dx_hi - dx_lo) * cin;
                seg[dx_lo * cin..dx_hi * cin].copy_from_slice(&image[start..][..len]);
            }
        }
    }
}
