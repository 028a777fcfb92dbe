//! The CPU backend's one GEMM: `rten-gemm`'s f32 sgemm (AVX-512 / AVX2+FMA / NEON / wasm SIMD128
//! kernels picked at run time, threaded on rayon's pool natively). Every host product — matmul,
//! conv's im2col columns, attention's two products per head — goes through [`gemm`], so swapping the
//! crate is one file.
//!
//! Chosen by measurement (1024³, 64×1024×1024 and 784×64×128 f32 on this project's 2-core machine,
//! against numpy/OpenBLAS in one sitting): `rten-gemm` held ≥ 0.97× OpenBLAS at every shape and thread
//! count; `matrixmultiply` fell to 0.57× at the batch-64 linear shape with two threads, and `gemm`
//! needed a `target-cpu` build to keep up.

use std::mem::MaybeUninit;

use rten_gemm::{
    BiasVector, ColOffsets, GemmExecutor, GemmInputA, GemmInputB, GemmUninitOptions, Im2Col,
    PackedBMatrix, RowOffsets,
};
use rten_tensor::NdTensorView;

/// One operand: `rows × cols` elements of `data` at `data[r·row_stride + c·col_stride]` (so a
/// transpose is a swap of strides, and costs no copy).
#[derive(Clone, Copy, Debug)]
pub struct Strided<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Strided<'a> {
    /// A row-major `rows × cols` matrix at the start of `data`.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Strided<'a> {
        Strided {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// `rows × cols` row-major with rows `row_stride` apart (a slice of a wider matrix's columns).
    pub fn rows_strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Strided<'a> {
        Strided {
            row_stride,
            ..Strided::rows(data, rows, cols)
        }
    }

    /// The same elements read as the transpose.
    pub fn t(self) -> Strided<'a> {
        Strided {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// A bias added to the product: one value per output column (a linear layer's) or per output row
/// (a convolution's, per output channel).
#[derive(Clone, Copy, Debug)]
pub enum Bias<'a> {
    PerColumn(&'a [f32]),
    PerRow(&'a [f32]),
}

impl Bias<'_> {
    /// The same bias for the transposed product.
    fn t(self) -> Self {
        match self {
            Bias::PerColumn(v) => Bias::PerRow(v),
            Bias::PerRow(v) => Bias::PerColumn(v),
        }
    }

    fn at(self, row: usize, col: usize) -> f32 {
        match self {
            Bias::PerColumn(b) => b[col],
            Bias::PerRow(b) => b[row],
        }
    }
}

thread_local! {
    /// The executor picks its kernel from the CPU's features when a thread first multiplies (one per
    /// calling thread: the crate's kernel handle is not `Send`; building one costs a feature check).
    static EXECUTOR: GemmExecutor<f32> = GemmExecutor::default();
}

/// How many columns of the right operand the kernel multiplies at once (its packed panels' width:
/// 32 with AVX-512, 16 with AVX2): a product whose columns are not a multiple wastes the rest of the
/// last panel.
pub fn panel_cols() -> usize {
    EXECUTOR.with(|e| e.im2col_col_count_step())
}

/// The kernel the GEMM runs here (for `info` and bench records).
pub fn kernel_name() -> String {
    EXECUTOR.with(|e| e.kernel_name().to_string())
}

/// One image of a convolution read as its im2col matrix: `[cin, h, w]` row-major, whose column
/// (oy, ox) holds the patch under output pixel (oy, ox) — `cin·kh·kw` rows, taps in the padding
/// reading zero.
#[derive(Clone, Copy, Debug)]
pub struct Patches {
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
    pub stride: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl Patches {
    pub fn rows(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    pub fn cols(&self) -> usize {
        self.ho * self.wo
    }
}

/// How [`conv`] hands the patches to the GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchPacking {
    /// Written out as a `[cin·kh·kw, ho·wo]` matrix first, each row a few contiguous copies of
    /// image rows, which the GEMM then packs as a plain matrix. Where a layer has few output
    /// channels the GEMM reuses each packed patch element only `cout` times, so the packing is a
    /// large share of the work: the GEMM's own im2col packing gathers element by element with a
    /// bounds mask (mnist-unet at batch 16: 31 % of a step), where these are row copies and fills.
    Written,
    /// Packed by the GEMM straight from the image (no scratch: for images whose patch matrix
    /// would not fit [`PATCH_SCRATCH_MAX`]).
    Implicit,
}

/// The largest patch matrix [`conv`] writes out (f32 elements: 16 MiB).
pub const PATCH_SCRATCH_MAX: usize = 1 << 22;

thread_local! {
    /// Each thread's patch matrix, kept between convolutions (a fresh multi-MiB allocation per
    /// layer and image would page-fault its way in every time).
    static PATCH_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `out = weight @ patches(image) + bias`: a convolution of one image (`weight` is
/// `[cout, cin·kh·kw]`, `out` `[cout, ho·wo]`), the patches [`PatchPacking::Written`] when they fit.
pub fn conv(
    out: &mut [MaybeUninit<f32>],
    weight: Strided,
    image: &[f32],
    p: &Patches,
    bias: Option<Bias>,
) {
    let packing = if p.rows() * p.cols() <= PATCH_SCRATCH_MAX {
        PatchPacking::Written
    } else {
        PatchPacking::Implicit
    };
    conv_packed(out, weight, image, p, bias, packing);
}

/// [`conv`] with the patches handed over as `packing` says (both give the same product).
pub fn conv_packed(
    out: &mut [MaybeUninit<f32>],
    weight: Strided,
    image: &[f32],
    p: &Patches,
    bias: Option<Bias>,
    packing: PatchPacking,
) {
    assert_eq!(weight.cols, p.rows(), "conv: weight columns");
    assert_eq!(image.len(), p.cin * p.h * p.w, "conv: image size");
    assert_eq!(out.len(), weight.rows * p.cols(), "conv: output size");
    if out.is_empty() {
        return;
    }
    if image.is_empty() || p.rows() == 0 {
        // Every tap reads zero (or there are none): the bias alone.
        bias_only(out, p.cols(), bias);
        return;
    }
    let large = weight.rows * p.rows() * p.cols() >= PARALLEL_MIN_MACS;
    if packing == PatchPacking::Written {
        // Taken out of the thread's cell for the product, not borrowed across it: while the GEMM
        // waits on the pool, this thread may run another image's convolution, which then finds the
        // cell empty and brings its own.
        let mut scratch = PATCH_SCRATCH.take();
        scratch.resize(p.rows() * p.cols(), 0.0);
        write_patches(&mut scratch, image, p);
        let patches = Strided::rows(&scratch, p.rows(), p.cols());
        gemm(out, weight, patches, 1.0, bias);
        PATCH_SCRATCH.set(scratch);
        return;
    }
    crate::cpu::parallel::in_pool(large, || {
        EXECUTOR.with(|e| {
            let patches = im2col(
                image,
                p,
                e.im2col_row_count_step(),
                e.im2col_col_count_step(),
            );
            e.gemm_uninit(
                out,
                GemmInputA::Unpacked(view(weight)),
                GemmInputB::Im2Col(&patches),
                GemmUninitOptions {
                    bias: bias.map(rten_bias),
                    ..Default::default()
                },
            )
            .map(|_| ())
            .expect("conv: operands checked by the caller")
        })
    });
}

/// The patch matrix of one image, written into `dst` (`[cin·kh·kw, ho·wo]`): row (c, dy, dx),
/// column (oy, ox) holds `image[c, oy·s − top + dy, ox·s − left + dx]`, zero outside the image.
/// Per row and output row, the columns inside the image are one run of the image row (a copy at
/// stride 1), the rest zeros.
fn write_patches(dst: &mut [f32], image: &[f32], p: &Patches) {
    let (h, w, s) = (p.h, p.w, p.stride.max(1));
    let (ho, wo) = (p.ho, p.wo);
    let mut rows = dst.chunks_exact_mut((ho * wo).max(1));
    for plane in image.chunks_exact((h * w).max(1)).take(p.cin) {
        for dy in 0..p.kh {
            for dx in 0..p.kw {
                let Some(row) = rows.next() else { return };
                // The output columns whose tap x = ox·s + dx − left falls inside [0, w).
                let first = p.pad_left.saturating_sub(dx).div_ceil(s);
                let end = (w + p.pad_left).saturating_sub(dx).div_ceil(s).min(wo);
                let first = first.min(end);
                for (oy, out) in row.chunks_exact_mut(wo.max(1)).enumerate() {
                    let y = (oy * s + dy).checked_sub(p.pad_top).filter(|&y| y < h);
                    let Some(y) = y else {
                        out.fill(0.0);
                        continue;
                    };
                    let src = &plane[y * w..][..w];
                    out[..first].fill(0.0);
                    out[end..].fill(0.0);
                    if first == end {
                        continue;
                    }
                    let x0 = first * s + dx - p.pad_left;
                    if s == 1 {
                        out[first..end].copy_from_slice(&src[x0..x0 + (end - first)]);
                    } else {
                        for (o, v) in out[first..end].iter_mut().zip(src[x0..].iter().step_by(s)) {
                            *o = *v;
                        }
                    }
                }
            }
        }
    }
}

/// The crate's view of [`Patches`]: each row's and column's offset into the image, premultiplied by
/// the strides (a tap's offset is their sum), padded to the kernel's steps with offsets that fall
/// outside the image.
fn im2col<'a>(image: &'a [f32], p: &Patches, row_step: usize, col_step: usize) -> Im2Col<'a, f32> {
    let (h, w) = (p.h as i32, p.w as i32);
    let mut row_offsets = RowOffsets {
        chan: Vec::new(),
        y: Vec::new(),
        x: Vec::new(),
    };
    for c in 0..p.cin as i32 {
        for dy in 0..p.kh as i32 {
            for dx in 0..p.kw as i32 {
                row_offsets.chan.push(c * h * w);
                row_offsets.y.push(dy * w);
                row_offsets.x.push(dx);
            }
        }
    }
    let rows = p.rows();
    for v in [
        &mut row_offsets.chan,
        &mut row_offsets.y,
        &mut row_offsets.x,
    ] {
        v.resize(rows.next_multiple_of(row_step), i32::MAX);
    }
    let mut col_offsets = ColOffsets {
        y: Vec::new(),
        x: Vec::new(),
    };
    let (s, top, left) = (p.stride as i32, p.pad_top as i32, p.pad_left as i32);
    for oy in 0..p.ho as i32 {
        for ox in 0..p.wo as i32 {
            col_offsets.y.push((oy * s - top) * w);
            col_offsets.x.push(ox * s - left);
        }
    }
    let cols = p.cols();
    for v in [&mut col_offsets.y, &mut col_offsets.x] {
        v.resize(cols.next_multiple_of(col_step), i32::MAX);
    }
    Im2Col {
        image: NdTensorView::from_data([p.cin, p.h, p.w], image),
        row_offsets,
        col_offsets,
        n_cols: cols,
        n_rows: rows,
        max_y_offset: (h - 1) * w,
        max_x_offset: w - 1,
    }
}

/// An output whose product is all zeros (an empty sum, or taps that all fall in the padding):
/// `cols`-wide rows of the bias alone.
fn bias_only(out: &mut [MaybeUninit<f32>], cols: usize, bias: Option<Bias>) {
    for (i, row) in out.chunks_exact_mut(cols).enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            v.write(bias.map_or(0.0, |b| b.at(i, j)));
        }
    }
}

fn rten_bias(b: Bias<'_>) -> BiasVector<'_, f32> {
    match b {
        Bias::PerColumn(b) => BiasVector::Row(b),
        Bias::PerRow(b) => BiasVector::Column(b),
    }
}

/// `out = alpha · (a @ b) + bias`, written into `out` (`a.rows × b.cols`, row-major; its previous
/// contents are never read). Panics only on a caller's broken invariant (operand shapes that do not
/// chain, slices too short, a bias of the wrong length), which the ops' shape checks rule out before
/// any call.
pub fn gemm(out: &mut [MaybeUninit<f32>], a: Strided, b: Strided, alpha: f32, bias: Option<Bias>) {
    if written_without_product(out, a, (b.rows, b.cols), bias) {
        return;
    }
    if a.rows == 1 && b.cols > 1 {
        // The crate's vector × matrix path splits the columns by the thread count, and the columns
        // past its vectors round differently: a layer with one output channel (a UNet's last conv)
        // came out 1 ulp apart in places on and off the pool. The same product as matrix × vector
        // (bᵀ·aᵀ, the same memory as the row) goes through the blocked GEMM, whose every element is
        // one sum in one order wherever it runs.
        gemm(out, b.t(), a.t(), alpha, bias.map(Bias::t));
        return;
    }
    product(out, a, GemmInputB::Unpacked(view(b)), b.cols, alpha, bias);
}

/// Checks that `a` and a `rows × cols` right operand chain into `out`, and writes the outputs that
/// need no product: none (an empty output), or the bias alone (an empty sum). Whether it did.
fn written_without_product(
    out: &mut [MaybeUninit<f32>],
    a: Strided,
    (rows, cols): (usize, usize),
    bias: Option<Bias>,
) -> bool {
    assert_eq!(a.cols, rows, "gemm: inner dimensions");
    assert_eq!(out.len(), a.rows * cols, "gemm: output size");
    if a.cols == 0 {
        bias_only(out, cols, bias);
    }
    out.is_empty() || a.cols == 0
}

/// `out = alpha · (a @ b) + bias` for `b` as the crate takes it (`cols` wide), the inner dimension
/// checked to be non-zero by the caller; on the pool's threads when large.
fn product(
    out: &mut [MaybeUninit<f32>],
    a: Strided,
    b: GemmInputB<'_, f32>,
    cols: usize,
    alpha: f32,
    bias: Option<Bias>,
) {
    let large = a.rows * a.cols * cols >= PARALLEL_MIN_MACS;
    crate::cpu::parallel::in_pool(large, || {
        EXECUTOR.with(|e| {
            e.gemm_uninit(
                out,
                GemmInputA::Unpacked(view(a)),
                b,
                GemmUninitOptions {
                    alpha,
                    bias: bias.map(rten_bias),
                    ..Default::default()
                },
            )
            .map(|_| ())
            .expect("gemm: operands checked by the caller (a packed B by this machine's kernel)")
        })
    });
}

/// A right-hand operand packed once for several products with it (a convolution's weights, used by
/// every band of a batch's patches): the GEMM packs an unpacked B for every call.
pub struct PackedB {
    packed: PackedBMatrix<f32>,
    rows: usize,
    cols: usize,
}

impl PackedB {
    /// Its rows (the product's inner dimension).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Its columns (the product's).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `b` packed for this machine's kernel (every thread's executor picks the same one).
    pub fn new(b: Strided) -> PackedB {
        PackedB {
            packed: EXECUTOR.with(|e| e.prepack_b(view(b))),
            rows: b.rows,
            cols: b.cols,
        }
    }
}

/// [`gemm`] with a B packed beforehand: `out = a @ b + bias`.
pub fn gemm_packed_b(out: &mut [MaybeUninit<f32>], a: Strided, b: &PackedB, bias: Option<Bias>) {
    if written_without_product(out, a, (b.rows, b.cols), bias) {
        return;
    }
    product(out, a, GemmInputB::Packed(&b.packed), b.cols, 1.0, bias);
}

/// Multiply-adds from which a product runs on the pool's threads. Measured on the 2-core machine
/// (`diffscope --backend cpu bench --steps-only` at 2^21 … 2^26): below ~2^22 a second thread costs
/// more than it saves; between 2^22 and 2^26 the steps differ within the machine's noise.
pub const PARALLEL_MIN_MACS: usize = 1 << 22;

fn view(m: Strided<'_>) -> NdTensorView<'_, f32, 2> {
    NdTensorView::from_data_with_strides([m.rows, m.cols], m.data, [m.row_stride, m.col_stride])
        .expect("gemm: an operand's strides reach past its data")
}

/// An initialised output seen as the GEMM's uninitialised one (it overwrites every value).
pub fn as_uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: f32 and MaybeUninit<f32> have one layout, and the GEMM only writes initialised values.
    unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// [`gemm`] into an initialised slice (its contents are overwritten, never read).
pub fn gemm_into(out: &mut [f32], a: Strided, b: Strided, alpha: f32, bias: Option<Bias>) {
    gemm(as_uninit(out), a, b, alpha, bias);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written patches and the GEMM's own im2col packing give the same convolution, on shapes that
    /// are no tile multiples, with stride 2, asymmetric and oversized padding, and 1×1 kernels.
    #[test]
    fn written_patches_convolve_as_the_implicit_ones() {
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        // (cin, h, w, cout, kh, kw, stride, pad_top, pad_left)
        for &(cin, h, w, cout, kh, kw, s, top, left) in &[
            (3, 28, 28, 32, 3, 3, 1, 1, 1),
            (5, 7, 9, 3, 3, 3, 2, 1, 1),
            (2, 6, 5, 7, 3, 3, 2, 0, 0),
            (4, 5, 4, 6, 1, 1, 1, 0, 0),
            (1, 3, 3, 2, 5, 5, 1, 2, 2),
            (3, 4, 6, 5, 3, 3, 1, 3, 4),
            (6, 11, 13, 17, 3, 2, 2, 1, 0),
            (1, 1, 1, 2, 9, 9, 1, 4, 4),
            (2, 1, 2, 3, 3, 3, 2, 3, 3),
        ] {
            let ho = (h + 2 * top - kh) / s + 1;
            let wo = (w + 2 * left - kw) / s + 1;
            let p = Patches {
                cin,
                h,
                w,
                kh,
                kw,
                ho,
                wo,
                stride: s,
                pad_top: top,
                pad_left: left,
            };
            let image: Vec<f32> = (0..cin * h * w).map(|_| rnd()).collect();
            let weight: Vec<f32> = (0..cout * p.rows()).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..cout).map(|_| rnd()).collect();
            let run = |packing| {
                let mut out = vec![MaybeUninit::<f32>::uninit(); cout * ho * wo];
                let wm = Strided::rows(&weight, cout, p.rows());
                conv_packed(&mut out, wm, &image, &p, Some(Bias::PerRow(&bias)), packing);
                out.iter()
                    .map(|v| unsafe { v.assume_init() })
                    .collect::<Vec<f32>>()
            };
            let (a, b) = (run(PatchPacking::Written), run(PatchPacking::Implicit));
            // A plain reference for one output element in three.
            for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{p:?} element {i}: {x} vs {y}"
                );
                if i % 3 == 0 {
                    let (co, oy, ox) = (i / (ho * wo), i / wo % ho, i % wo);
                    let mut want = bias[co];
                    for c in 0..cin {
                        for dy in 0..kh {
                            for dx in 0..kw {
                                let (y, x) = (
                                    (oy * s + dy) as isize - top as isize,
                                    (ox * s + dx) as isize - left as isize,
                                );
                                if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
                                    want += weight[co * p.rows() + (c * kh + dy) * kw + dx]
                                        * image[(c * h + y as usize) * w + x as usize];
                                }
                            }
                        }
                    }
                    assert!(
                        (x - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{p:?} element {i}: {x} vs {want}"
                    );
                }
            }
        }
    }
}
