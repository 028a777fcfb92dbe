//! Batched matrix multiplication with a fused epilogue, `out = act(alpha·(a@b) + bias) + residual`,
//! and the `linear` layer built on it.
//!
//! Several kernels implement it (`shaders/matmul.wgsl`): the textbook shared-memory kernel, kept as
//! the yardstick, and register-blocked ones — straight from storage (`matmul_reg`) or through
//! shared-memory tiles (`matmul_smem`) — configured by WGSL constants prepended to the source, their
//! TM×TN block written out here as straight-line WGSL (see the shader's header for why). Which one is
//! fastest depends on the device: on lavapipe shared memory only costs and the biggest register
//! block wins; on real GPUs shared-memory tiles usually do. So [`matmul`] times the
//! [`tile_candidates`] once per device at first use and remembers the winner (see
//! [`device_kernel`]).

mod codegen;
pub mod cpu;
mod kernel;
mod tune;

pub use kernel::{
    describe, kernel_for, tile_candidates, MatmulKernel, SOFTWARE_LARGE, SOFTWARE_MEDIUM,
    WEB_DEFAULT,
};
#[cfg(not(target_arch = "wasm32"))]
pub use tune::{bench_gflops, tune};
pub use tune::{device_kernel, tuning_order, ENV_FORCE, TUNE_KEY};

use super::{broadcast_shape, broadcast_strides, check_u32_len, pad_shape, MAX_RANK};
use crate::error::{Error, Result};
use crate::gpu::wgsl::params_layout;
use crate::gpu::{Access, KernelSpec, MAX_GROUPS_PER_DIM};
use crate::tensor::{same_device, DType, Device, Tensor};
use codegen::{kernel_source_cached, Layout};

const SRC: &str = include_str!("../../../shaders/matmul.wgsl");

/// The WGSL `kernel` compiles for an aligned, untransposed problem (for checking the parameter
/// block against the Rust one).
pub(super) fn wgsl_of(kernel: MatmulKernel) -> String {
    let layout = Layout {
        trans_a: false,
        trans_b: false,
        vec_a: true,
        vec_b: true,
        vec_n: true,
        k_tail: true,
        k_main: true,
    };
    let (_, _, _, defines) = kernel_source_cached(kernel, layout);
    format!("{defines}\n{SRC}")
}

/// The activation of the fused epilogue. GELU is the exact erf form (PyTorch's default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Act {
    #[default]
    None = 0,
    Silu = 1,
    Gelu = 2,
    Relu = 3,
}

/// Options of [`matmul`]: `out = act(alpha·(op(a) @ op(b)) + bias) + residual`.
///
/// `a` is `[.., M, K]` (`[.., K, M]` with `trans_a`), `b` is `[.., K, N]` (`[.., N, K]` with `trans_b`,
/// PyTorch's `Linear` weight layout). The leading (batch) dimensions broadcast numpy-style.
/// `bias` is `[N]`; `residual` is `[.., M, N]` and its batch dimensions must broadcast to the output's.
#[derive(Clone, Copy, Debug)]
pub struct Matmul<'a> {
    pub trans_a: bool,
    pub trans_b: bool,
    pub bias: Option<&'a Tensor>,
    pub act: Act,
    pub residual: Option<&'a Tensor>,
    pub alpha: f32,
}

impl Default for Matmul<'_> {
    fn default() -> Self {
        Matmul {
            trans_a: false,
            trans_b: false,
            bias: None,
            act: Act::None,
            residual: None,
            alpha: 1.0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    m: u32,
    n: u32,
    k: u32,
    rank: u32,
    m0: u32,
    n0: u32,
    b0: u32,
    act: u32,
    has_bias: u32,
    has_res: u32,
    alpha: f32,
    _pad: u32,
    bshape: [u32; 8],
    sa: [u32; 8],
    sb: [u32; 8],
    sr: [u32; 8],
}
params_layout!(Params {
    m,
    n,
    k,
    rank,
    m0,
    n0,
    b0,
    act,
    has_bias,
    has_res,
    alpha,
    _pad,
    bshape,
    sa,
    sb,
    sr
});

const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
];

fn f32_checked(op: &'static str, t: &Tensor) -> Result<()> {
    t.expect_dtype(op, DType::F32)?;
    check_u32_len(op, t)
}

fn strides_times(src: &[usize], out: &[usize], scale: usize) -> [u32; MAX_RANK] {
    let mut s = broadcast_strides(src, out);
    for v in &mut s {
        *v = (*v as usize * scale) as u32;
    }
    s
}

/// The shapes of one `a @ b` with its epilogue operands, checked: what every backend needs to run it.
/// Strides are per batch entry of the broadcast batch shape, in elements (0 where an operand is
/// broadcast).
pub(super) struct Plan {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: Vec<usize>,
    pub out_shape: Vec<usize>,
    pub sa: [u32; MAX_RANK],
    pub sb: [u32; MAX_RANK],
    pub sr: [u32; MAX_RANK],
}

impl Plan {
    /// The plan of `a @ b` with `opts`' transposes, bias and residual.
    fn of(a: &Tensor, b: &Tensor, opts: &Matmul) -> Result<Plan> {
        Plan::new(
            a.shape(),
            b.shape(),
            opts.trans_a,
            opts.trans_b,
            opts.bias.map(|t| t.shape()),
            opts.residual.map(|t| t.shape()),
        )
    }

    pub fn new(
        a: &[usize],
        b: &[usize],
        trans_a: bool,
        trans_b: bool,
        bias: Option<&[usize]>,
        residual: Option<&[usize]>,
    ) -> Result<Plan> {
        const OP: &str = "matmul";
        if a.len() < 2 || b.len() < 2 {
            return Err(Error::shape(
                OP,
                format!(
                    "operands need at least 2 dimensions, got {:?} and {:?}",
                    a, b
                ),
            ));
        }
        let (ar, br) = (a.len(), b.len());
        let (m, ka) = if trans_a {
            (a[ar - 1], a[ar - 2])
        } else {
            (a[ar - 2], a[ar - 1])
        };
        let (kb, n) = if trans_b {
            (b[br - 1], b[br - 2])
        } else {
            (b[br - 2], b[br - 1])
        };
        if ka != kb {
            return Err(Error::shape(
                OP,
                format!(
                    "inner dimensions differ: a {:?}{} has K = {ka}, b {:?}{} has K = {kb}",
                    a,
                    if trans_a { " (transposed)" } else { "" },
                    b,
                    if trans_b { " (transposed)" } else { "" },
                ),
            ));
        }
        let k = ka;
        let (a_batch, b_batch) = (&a[..ar - 2], &b[..br - 2]);
        let batch = broadcast_shape(OP, a_batch, b_batch)?;
        if batch.len() + 2 > MAX_RANK {
            return Err(Error::shape(
                OP,
                format!("rank {} exceeds {MAX_RANK}", batch.len() + 2),
            ));
        }
        let mut out_shape = batch.clone();
        out_shape.extend_from_slice(&[m, n]);

        if let Some(bias) = bias {
            if bias != [n] {
                return Err(Error::shape(
                    OP,
                    format!("bias must be [{n}] (N), got {bias:?}"),
                ));
            }
        }
        let mut sr = [0u32; MAX_RANK];
        if let Some(res) = residual {
            let rr = res.len();
            let ok = rr >= 2
                && res[rr - 2..] == [m, n]
                && broadcast_shape(OP, &res[..rr - 2], &batch).is_ok_and(|s| s == batch);
            if !ok {
                return Err(Error::shape(
                    OP,
                    format!("residual {res:?} does not broadcast to the output {out_shape:?}"),
                ));
            }
            sr = strides_times(&res[..rr - 2], &batch, m * n);
        }

        Ok(Plan {
            m,
            n,
            k,
            sa: strides_times(a_batch, &batch, m * k),
            sb: strides_times(b_batch, &batch, k * n),
            sr,
            batch,
            out_shape,
        })
    }
}

/// Batched `a @ b` with the fused epilogue of `opts`, on the device's chosen kernel
/// ([`device_kernel`]; the first call on a device may spend a moment tuning).
pub fn matmul(a: &Tensor, b: &Tensor, opts: &Matmul) -> Result<Tensor> {
    if let Device::Cpu(_) = a.device() {
        return host_matmul(a, b, opts);
    }
    let kernel = match problem_size(a, b, opts) {
        Some((m, n, k, batch)) => kernel_for(a.gpu()?, m, n, k, batch)?,
        // Malformed operands: `matmul_with` says what is wrong.
        None => device_kernel(a.gpu()?)?,
    };
    matmul_with(kernel, a, b, opts)
}

/// (M, N, K, number of batch entries) of `a @ b`, if the operands are matrices.
fn problem_size(a: &Tensor, b: &Tensor, opts: &Matmul) -> Option<(usize, usize, usize, usize)> {
    let (ar, br) = (a.dims(), b.dims());
    if ar < 2 || br < 2 {
        return None;
    }
    let (m, k) = if opts.trans_a {
        (a.dim(ar - 1), a.dim(ar - 2))
    } else {
        (a.dim(ar - 2), a.dim(ar - 1))
    };
    let n = if opts.trans_b {
        b.dim(br - 2)
    } else {
        b.dim(br - 1)
    };
    let batch = a.shape()[..ar - 2]
        .iter()
        .product::<usize>()
        .max(b.shape()[..br - 2].iter().product::<usize>());
    Some((m, n, k, batch))
}

/// [`matmul`] on a given kernel (tests, benchmarks).
pub fn matmul_with(kernel: MatmulKernel, a: &Tensor, b: &Tensor, opts: &Matmul) -> Result<Tensor> {
    const OP: &str = "matmul";
    f32_checked(OP, a)?;
    f32_checked(OP, b)?;
    if let Some(bias) = opts.bias {
        f32_checked(OP, bias)?;
    }
    if let Some(res) = opts.residual {
        f32_checked(OP, res)?;
    }
    if let Device::Cpu(_) = a.device() {
        // One GEMM on the host: there is no kernel choice to make.
        return host_matmul(a, b, opts);
    }
    let plan = Plan::of(a, b, opts)?;
    let Plan {
        m,
        n,
        k,
        ref batch,
        ref out_shape,
        sa,
        sb,
        sr,
    } = plan;
    let gpu = a.gpu()?;
    kernel.validate(gpu)?;
    let out = Tensor::empty(gpu, out_shape, DType::F32)?;
    check_u32_len(OP, &out)?;
    let nb: usize = batch.iter().product();
    if out.is_empty() {
        return Ok(out);
    }

    let p = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        rank: batch.len() as u32,
        m0: 0,
        n0: 0,
        b0: 0,
        act: opts.act as u32,
        has_bias: opts.bias.is_some() as u32,
        has_res: opts.residual.is_some() as u32,
        alpha: opts.alpha,
        _pad: 0,
        bshape: pad_shape(batch),
        sa,
        sb,
        sr,
    };

    let layout = Layout {
        trans_a: opts.trans_a,
        trans_b: opts.trans_b,
        vec_a: if opts.trans_a { m % 4 == 0 } else { k % 4 == 0 },
        vec_b: if opts.trans_b { k % 4 == 0 } else { n % 4 == 0 },
        vec_n: n % 4 == 0,
        k_tail: k % 4 != 0,
        k_main: k >= 4,
    };
    let (entry, bm, bn, defines) = kernel_source_cached(kernel, layout);
    let spec = KernelSpec {
        family: "matmul",
        source: SRC,
        entry,
        defines: &defines,
        bindings: BINDINGS,
    };
    // Absent bias/residual bind `a` as a placeholder; the kernel never reads it then.
    let bias_buf = opts.bias.unwrap_or(a).buffer()?;
    let res_buf = opts.residual.unwrap_or(a).buffer()?;
    let bufs = [a.buffer()?, b.buffer()?, bias_buf, res_buf, out.buffer()?];

    // Grids past 65535 workgroups in a dimension become several dispatches, each told where it starts.
    let max = MAX_GROUPS_PER_DIM as usize;
    let (gx, gy) = (n.div_ceil(bn as usize), m.div_ceil(bm as usize));
    for bz in (0..nb).step_by(max) {
        for by in (0..gy).step_by(max) {
            for bx in (0..gx).step_by(max) {
                let mut pc = p;
                pc.b0 = bz as u32;
                pc.m0 = (by * bm as usize) as u32;
                pc.n0 = (bx * bn as usize) as u32;
                let groups = [
                    (gx - bx).min(max) as u32,
                    (gy - by).min(max) as u32,
                    (nb - bz).min(max) as u32,
                ];
                gpu.dispatch(&spec, &pc, &bufs, groups)?;
            }
        }
    }
    Ok(out)
}

/// [`matmul`] on host tensors, through [`cpu::matmul`].
fn host_matmul(a: &Tensor, b: &Tensor, opts: &Matmul) -> Result<Tensor> {
    const OP: &str = "matmul";
    for t in [Some(a), Some(b), opts.bias, opts.residual]
        .into_iter()
        .flatten()
    {
        f32_checked(OP, t)?;
    }
    let all: Vec<&Tensor> = [Some(a), Some(b), opts.bias, opts.residual]
        .into_iter()
        .flatten()
        .collect();
    let device = same_device(OP, &all)?;
    // The output's shape before anything runs (the kernel may be recorded): the GPU path's plan.
    let out_shape = Plan::of(a, b, opts)?.out_shape;
    let shapes: Vec<Vec<usize>> = all.iter().map(|t| t.shape().to_vec()).collect();
    let (trans_a, trans_b, act, alpha) = (opts.trans_a, opts.trans_b, opts.act, opts.alpha);
    let (has_bias, has_res) = (opts.bias.is_some(), opts.residual.is_some());
    super::host_op_f32(OP, device, &out_shape, &all, move |i| {
        // Inputs in order: a, b, then the bias and the residual where given.
        let bias = has_bias.then(|| i[2]);
        let r = 2 + usize::from(has_bias);
        let host = cpu::HostMatmul {
            trans_a,
            trans_b,
            bias,
            act,
            residual: has_res.then(|| cpu::HostMatrix {
                data: i[r],
                shape: &shapes[r],
            }),
            alpha,
        };
        let a = cpu::HostMatrix {
            data: i[0],
            shape: &shapes[0],
        };
        let b = cpu::HostMatrix {
            data: i[1],
            shape: &shapes[1],
        };
        cpu::matmul(a, b, &host).map(|(out, _)| out)
    })
}

/// A linear layer's weight packed once for the CPU GEMM, as its right operand `weightᵀ`
/// ([`crate::cpu::gemm::PackedB`]). Without it `x @ weightᵀ` packs the weight on every call, and
/// for a layer whose outputs make one column block (a words model's 128 or 192) that packing runs
/// on one thread before the rows are shared out — 7 % of a batch-64 step, with the second core idle.
#[derive(Clone)]
pub struct PackedWeight(std::sync::Arc<crate::cpu::gemm::PackedB>);

impl PackedWeight {
    /// `weight` (`[out, in]`, on the CPU backend) packed; `None` on a GPU, whose kernels read
    /// weights as they are.
    pub fn new(weight: &Tensor) -> Result<Option<PackedWeight>> {
        if !matches!(weight.device(), Device::Cpu(_)) {
            return Ok(None);
        }
        weight.expect_dtype("linear", DType::F32)?;
        if weight.dims() != 2 {
            return Err(Error::shape(
                "linear",
                format!("weight {:?} must be [out, in]", weight.shape()),
            ));
        }
        let (out_f, in_f) = (weight.dim(0), weight.dim(1));
        let host = weight.host()?;
        let w = crate::cpu::gemm::Strided::rows(host.f32(), out_f, in_f).t();
        Ok(Some(PackedWeight(std::sync::Arc::new(
            crate::cpu::gemm::PackedB::new(w),
        ))))
    }
}

/// [`linear`] with the weight packed beforehand (`packed` must be `weight`'s: the weight gives the
/// shapes and the device).
pub fn linear_packed(
    x: &Tensor,
    weight: &Tensor,
    packed: &PackedWeight,
    bias: Option<&Tensor>,
    act: Act,
) -> Result<Tensor> {
    linear_packed_residual(x, weight, packed, bias, act, None)
}

/// [`linear_packed`] plus `residual` (the output's shape) added after the activation, in the same
/// pass.
pub fn linear_packed_residual(
    x: &Tensor,
    weight: &Tensor,
    packed: &PackedWeight,
    bias: Option<&Tensor>,
    act: Act,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    const OP: &str = "linear";
    x.expect_dtype(OP, DType::F32)?;
    let (out_f, in_f) = (weight.dim(0), weight.dim(1));
    if x.dims() == 0 || x.dim(x.dims() - 1) != in_f || packed.0.rows() != in_f {
        return Err(linear_shapes(x, weight));
    }
    if let Some(b) = bias {
        f32_checked(OP, b)?;
    }
    let rows: usize = x.shape()[..x.dims() - 1].iter().product();
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("rank checked above") = out_f;
    if let Some(r) = residual {
        f32_checked(OP, r)?;
        if r.shape() != shape.as_slice() {
            return Err(Error::shape(
                OP,
                format!("residual {:?} must be the output's {shape:?}", r.shape()),
            ));
        }
    }
    let all: Vec<&Tensor> = [Some(x), bias, residual].into_iter().flatten().collect();
    let device = same_device(OP, &[x, weight])?;
    same_device(OP, &all)?;
    let packed = packed.clone();
    let (has_bias, has_res) = (bias.is_some(), residual.is_some());
    super::host_op_f32(OP, device, &shape, &all, move |i| {
        let bias = has_bias.then(|| i[1]);
        let res = has_res.then(|| i[1 + usize::from(has_bias)]);
        cpu::linear_packed(i[0], rows, &packed.0, bias, act, res)
    })
}

/// The error for a linear layer's input and weight that do not fit.
fn linear_shapes(x: &Tensor, weight: &Tensor) -> Error {
    Error::shape(
        "linear",
        format!(
            "x {:?} must be [.., in] and weight {:?} [out, in]",
            x.shape(),
            weight.shape()
        ),
    )
}

/// `x @ weightᵀ + bias`, then `act`: PyTorch's `Linear`. `x` is `[.., in]`, `weight` `[out, in]`,
/// `bias` `[out]`; the result is `[.., out]`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, act: Act) -> Result<Tensor> {
    const OP: &str = "linear";
    x.expect_dtype(OP, DType::F32)?;
    weight.expect_dtype(OP, DType::F32)?;
    if weight.dims() != 2 || x.dims() == 0 || x.dim(x.dims() - 1) != weight.dim(1) {
        return Err(linear_shapes(x, weight));
    }
    let (out_f, in_f) = (weight.dim(0), weight.dim(1));
    let rows: usize = x.shape()[..x.dims() - 1].iter().product();
    let x2 = x.reshape(&[rows, in_f])?;
    let y = matmul(
        &x2,
        weight,
        &Matmul {
            trans_b: true,
            bias,
            act,
            ..Default::default()
        },
    )?;
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("rank checked above") = out_f;
    y.reshape(&shape)
}
