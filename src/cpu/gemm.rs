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

use rten_gemm::{BiasVector, GemmExecutor, GemmInputA, GemmInputB, GemmUninitOptions};
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

/// The kernel the GEMM runs here (for `info` and bench records).
pub fn kernel_name() -> String {
    EXECUTOR.with(|e| e.kernel_name().to_string())
}

/// `out = alpha · (a @ b) + bias`, written into `out` (`a.rows × b.cols`, row-major; its previous
/// contents are never read). Panics only on a caller's broken invariant (operand shapes that do not
/// chain, slices too short, a bias of the wrong length), which the ops' shape checks rule out before
/// any call.
pub fn gemm(out: &mut [MaybeUninit<f32>], a: Strided, b: Strided, alpha: f32, bias: Option<Bias>) {
    assert_eq!(a.cols, b.rows, "gemm: inner dimensions");
    assert_eq!(out.len(), a.rows * b.cols, "gemm: output size");
    if out.is_empty() {
        return;
    }
    if a.cols == 0 {
        // An empty sum: the product is zeros, plus the bias.
        for (i, row) in out.chunks_exact_mut(b.cols).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                v.write(bias.map_or(0.0, |b| b.at(i, j)));
            }
        }
        return;
    }
    let large = a.rows * a.cols * b.cols >= PARALLEL_MIN_MACS;
    crate::cpu::parallel::in_pool(large, || {
        EXECUTOR.with(|e| {
            e.gemm_uninit(
                out,
                GemmInputA::Unpacked(view(a)),
                GemmInputB::Unpacked(view(b)),
                GemmUninitOptions {
                    alpha,
                    bias: bias.map(|b| match b {
                        Bias::PerColumn(b) => BiasVector::Row(b),
                        Bias::PerRow(b) => BiasVector::Column(b),
                    }),
                    ..Default::default()
                },
            )
            .map(|_| ())
            .expect("gemm: operands checked by the caller")
        })
    });
}

/// Multiply-adds from which a product runs on the pool's threads. Measured on the 2-core machine
/// (`diffscope --backend cpu bench --steps-only` at 2^21 … 2^26): below ~2^22 a second thread costs
/// more than it saves; between 2^22 and 2^26 the steps differ within the machine's noise.
const PARALLEL_MIN_MACS: usize = 1 << 22;

fn view(m: Strided<'_>) -> NdTensorView<'_, f32, 2> {
    NdTensorView::from_data_with_strides([m.rows, m.cols], m.data, [m.row_stride, m.col_stride])
        .expect("gemm: an operand's strides reach past its data")
}

/// [`gemm`] into an initialised slice (its contents are overwritten, never read).
pub fn gemm_into(out: &mut [f32], a: Strided, b: Strided, alpha: f32, bias: Option<Bias>) {
    // SAFETY: f32 and MaybeUninit<f32> have one layout, and `gemm` only writes initialised values.
    let out = unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) };
    gemm(out, a, b, alpha, bias);
}
