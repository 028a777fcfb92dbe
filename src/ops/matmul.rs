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

use super::{broadcast_shape, broadcast_strides, check_u32_len, pad_shape, MAX_RANK};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, KernelSpec, MAX_GROUPS_PER_DIM};
use crate::tensor::{DType, Tensor};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

const SRC: &str = include_str!("../../shaders/matmul.wgsl");

/// The key under which the device's kernel choice is stored ([`Gpu::tuned`]).
pub const TUNE_KEY: &str = "matmul";

/// Environment variable that forces a kernel (native only), in [`MatmulKernel`]'s `FromStr` syntax.
pub const ENV_FORCE: &str = "DIFFSCOPE_MATMUL";

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

/// A matmul kernel and its configuration.
///
/// Written and parsed (`Display`/`FromStr`, also the syntax of `DIFFSCOPE_MATMUL`) as `baseline`,
/// `reg-{tm}x{tn}-wg{wg_x}x{wg_y}` or `smem-{tm}x{tn}-wg{wg_x}x{wg_y}-k{bk}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulKernel {
    /// 16×16 shared-memory tiles, one output per invocation.
    Baseline,
    /// Each invocation computes `tm`×`tn` outputs (multiples of 4); a workgroup of `wg_x`×`wg_y`
    /// invocations covers `wg_y·tm` rows and `wg_x·tn` columns. `bk` = 0: operands are read straight
    /// from storage; `bk` > 0: staged through `bk`-deep shared-memory tiles.
    Tiled {
        tm: u32,
        tn: u32,
        wg_x: u32,
        wg_y: u32,
        bk: u32,
    },
}

const fn reg(tm: u32, tn: u32, wg_x: u32, wg_y: u32) -> MatmulKernel {
    MatmulKernel::Tiled {
        tm,
        tn,
        wg_x,
        wg_y,
        bk: 0,
    }
}

const fn smem(tm: u32, tn: u32, wg_x: u32, wg_y: u32, bk: u32) -> MatmulKernel {
    MatmulKernel::Tiled {
        tm,
        tn,
        wg_x,
        wg_y,
        bk,
    }
}

/// Where timing is impossible (the web cannot block): shared-memory tiles, the usual winner on GPUs.
pub const WEB_DEFAULT: MatmulKernel = smem(4, 4, 16, 16, 16);

/// The configurations tuning chooses from: large register blocks without shared memory (the software
/// rasterisers' choice: on lavapipe each load costs a per-lane loop, so FMAs per load decide), a small
/// one (GPUs with good caches) and shared-memory tiles (most discrete GPUs).
pub fn tile_candidates() -> Vec<MatmulKernel> {
    vec![
        reg(16, 16, 8, 8),
        reg(8, 8, 8, 8),
        reg(4, 4, 16, 16),
        smem(8, 8, 16, 16, 8),
        smem(4, 4, 16, 16, 16),
    ]
}

/// Candidates in the order tuning tries them on `gpu`: the likely winner first, so that when the time
/// budget runs out (cold shader compiles take about a second each on lavapipe) the choice is still
/// sensible.
pub fn tuning_order(gpu: &Gpu) -> Vec<MatmulKernel> {
    let mut ks = tile_candidates();
    let score = |k: &MatmulKernel| match *k {
        MatmulKernel::Baseline => 0,
        MatmulKernel::Tiled { tm, tn, bk, .. } => {
            let block = tm * tn;
            if gpu.is_software() {
                // Bigger blocks first; shared memory last (barriers are coroutine switches there).
                if bk > 0 {
                    block
                } else {
                    1 << 20 | block
                }
            } else if bk > 0 {
                1 << 20 | block
            } else {
                // Without shared memory, big blocks spill registers on GPUs.
                (1 << 16) - block
            }
        }
    };
    ks.sort_by_key(|k| std::cmp::Reverse(score(k)));
    ks
}

impl fmt::Display for MatmulKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MatmulKernel::Baseline => write!(f, "baseline"),
            MatmulKernel::Tiled {
                tm,
                tn,
                wg_x,
                wg_y,
                bk: 0,
            } => write!(f, "reg-{tm}x{tn}-wg{wg_x}x{wg_y}"),
            MatmulKernel::Tiled {
                tm,
                tn,
                wg_x,
                wg_y,
                bk,
            } => write!(f, "smem-{tm}x{tn}-wg{wg_x}x{wg_y}-k{bk}"),
        }
    }
}

impl FromStr for MatmulKernel {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "matmul kernel \"{s}\": expected baseline, reg-TMxTN-wgXxY or smem-TMxTN-wgXxY-kBK \
                 (e.g. {})",
                tile_candidates()
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        let s_trim = s.trim().to_ascii_lowercase();
        if s_trim == "baseline" {
            return Ok(MatmulKernel::Baseline);
        }
        let parts: Vec<&str> = s_trim.split('-').collect();
        let pair = |p: &str, prefix: &str| -> Option<(u32, u32)> {
            let (x, y) = p.strip_prefix(prefix)?.split_once('x')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        };
        let k = match parts.as_slice() {
            ["reg", t, w] => {
                let ((tm, tn), (wx, wy)) =
                    (pair(t, "").ok_or_else(bad)?, pair(w, "wg").ok_or_else(bad)?);
                reg(tm, tn, wx, wy)
            }
            ["smem", t, w, k] => {
                let ((tm, tn), (wx, wy)) =
                    (pair(t, "").ok_or_else(bad)?, pair(w, "wg").ok_or_else(bad)?);
                let bk: u32 = k
                    .strip_prefix('k')
                    .and_then(|v| v.parse().ok())
                    .filter(|&v| v > 0)
                    .ok_or_else(bad)?;
                smem(tm, tn, wx, wy, bk)
            }
            _ => return Err(bad()),
        };
        Ok(k)
    }
}

/// A one-line human description of `k`.
pub fn describe(k: &MatmulKernel) -> String {
    match *k {
        MatmulKernel::Baseline => {
            "baseline: 16×16 shared-memory tiles, one output per invocation".to_string()
        }
        MatmulKernel::Tiled {
            tm,
            tn,
            wg_x,
            wg_y,
            bk,
        } => {
            let staging = if bk == 0 {
                "no shared memory, vec4 loads where aligned".to_string()
            } else {
                format!(
                    "{bk}-deep shared-memory tiles ({} bytes)",
                    smem_bytes(tm, tn, wg_x, wg_y, bk)
                )
            };
            format!(
                "{k}: {tm}×{tn} outputs per invocation, {wg_x}×{wg_y} invocations, {}×{} tile, {staging}",
                wg_y * tm,
                wg_x * tn
            )
        }
    }
}

fn smem_bytes(tm: u32, tn: u32, wg_x: u32, wg_y: u32, bk: u32) -> u64 {
    bk as u64 * (wg_y as u64 * tm as u64 + wg_x as u64 * tn as u64) * 4
}

impl MatmulKernel {
    /// Refuse configurations the shader cannot express or the device (or WebGPU) cannot run.
    pub fn validate(&self, gpu: &Gpu) -> Result<()> {
        let MatmulKernel::Tiled {
            tm,
            tn,
            wg_x,
            wg_y,
            bk,
        } = *self
        else {
            return Ok(());
        };
        let lim = gpu.limits();
        let invocations = wg_x as u64 * wg_y as u64;
        let problem = if tm == 0 || tn == 0 || tm % 4 != 0 || tn % 4 != 0 || tm > 32 || tn > 32 {
            Some(
                "outputs per invocation must be a multiple of 4, at most 32, along each axis"
                    .to_string(),
            )
        } else if wg_x == 0 || wg_y == 0 {
            Some("empty workgroup".to_string())
        } else if invocations > 256
            || invocations > lim.max_compute_invocations_per_workgroup as u64
            || wg_x > lim.max_compute_workgroup_size_x
            || wg_y > lim.max_compute_workgroup_size_y
        {
            Some(format!(
                "{invocations} invocations per workgroup; WebGPU guarantees 256"
            ))
        } else {
            let bytes = smem_bytes(tm, tn, wg_x, wg_y, bk);
            let max = (lim.max_compute_workgroup_storage_size as u64).min(16384);
            (bytes > max).then(|| format!("{bytes} bytes of workgroup memory; the limit is {max}"))
        };
        match problem {
            Some(p) => Err(Error::Invalid(format!("matmul kernel {self}: {p}"))),
            None => Ok(()),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
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

/// Batched `a @ b` with the fused epilogue of `opts`, on the device's chosen kernel
/// ([`device_kernel`]; the first call on a device may spend a moment tuning).
pub fn matmul(a: &Tensor, b: &Tensor, opts: &Matmul) -> Result<Tensor> {
    let kernel = match problem_size(a, b, opts) {
        Some((m, n, k, batch)) => kernel_for(a.gpu(), m, n, k, batch)?,
        // Malformed operands: `matmul_with` says what is wrong.
        None => device_kernel(a.gpu())?,
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

/// The register blocks software rasterisers run large problems on: 32×32 outputs per invocation do
/// 1.7× the FMAs per load of the 16×16 block (each load is a loop over SIMD lanes there). With 8×8
/// workgroups (256² tiles) `cargo bench --bench matmul` measured 6.5 GFLOP/s at 1024³ on lavapipe,
/// against 3.8 for reg-16x16-wg8x8; but a 256² tile leaves cores idle on medium problems (3.3 GFLOP/s
/// at 256³, one workgroup), where 4×4 workgroups (128² tiles) do better (4.6; 5.0–5.3 at 1024³).
/// Small or shallow problems lose on either — per-invocation overhead and idle cores (a DiGress step,
/// K = 32: 84 vs 51 ms) — so [`kernel_for`] picks them only for problems large in every direction.
pub const SOFTWARE_LARGE: MatmulKernel = reg(32, 32, 8, 8);
/// See [`SOFTWARE_LARGE`].
pub const SOFTWARE_MEDIUM: MatmulKernel = reg(32, 32, 4, 4);

/// The kernel [`matmul`] runs an M×N×K problem with `batch` entries on. On a software adapter, with K
/// and N of at least 64: [`SOFTWARE_LARGE`] when the problem fills at least eight of its workgroups,
/// else [`SOFTWARE_MEDIUM`] when it fills four of its; otherwise (and on hardware) the device's tuned
/// kernel ([`device_kernel`]). A kernel forced with `DIFFSCOPE_MATMUL` is used for everything.
pub fn kernel_for(gpu: &Gpu, m: usize, n: usize, k: usize, batch: usize) -> Result<MatmulKernel> {
    let tuned = device_kernel(gpu)?;
    if k < 64 || n < 64 || !large_tiers(gpu) {
        return Ok(tuned);
    }
    for (kernel, min_groups) in [(SOFTWARE_LARGE, 8), (SOFTWARE_MEDIUM, 4)] {
        let MatmulKernel::Tiled {
            tm, tn, wg_x, wg_y, ..
        } = kernel
        else {
            continue;
        };
        let (bm, bn) = ((tm * wg_y) as usize, (tn * wg_x) as usize);
        if m.div_ceil(bm) * n.div_ceil(bn) * batch >= min_groups {
            return Ok(kernel);
        }
    }
    Ok(tuned)
}

/// The key under which the device stores whether [`kernel_for`] may use the large-problem kernels.
const LARGE_TIERS_KEY: &str = "matmul-large-tiers";

/// Whether `gpu` runs large problems on [`SOFTWARE_LARGE`] / [`SOFTWARE_MEDIUM`]: a software
/// adapter on which both are valid, with no kernel forced by `DIFFSCOPE_MATMUL`. Decided once per
/// device, like the tuned kernel, so a matmul call pays a lookup, not the checks.
fn large_tiers(gpu: &Gpu) -> bool {
    if let Some(v) = gpu.tuned(LARGE_TIERS_KEY) {
        return v == "on";
    }
    #[cfg(not(target_arch = "wasm32"))]
    let forced = std::env::var(ENV_FORCE).is_ok_and(|s| !s.trim().is_empty());
    #[cfg(target_arch = "wasm32")]
    let forced = false;
    let on = !forced
        && gpu.is_software()
        && SOFTWARE_LARGE.validate(gpu).is_ok()
        && SOFTWARE_MEDIUM.validate(gpu).is_ok();
    gpu.set_tuned(LARGE_TIERS_KEY, if on { "on" } else { "off" });
    on
}

/// [`matmul`] on a given kernel (tests, benchmarks).
pub fn matmul_with(kernel: MatmulKernel, a: &Tensor, b: &Tensor, opts: &Matmul) -> Result<Tensor> {
    const OP: &str = "matmul";
    f32_checked(OP, a)?;
    f32_checked(OP, b)?;
    if a.dims() < 2 || b.dims() < 2 {
        return Err(Error::shape(
            OP,
            format!(
                "operands need at least 2 dimensions, got {:?} and {:?}",
                a.shape(),
                b.shape()
            ),
        ));
    }
    let (ar, br) = (a.dims(), b.dims());
    let (m, ka) = if opts.trans_a {
        (a.dim(ar - 1), a.dim(ar - 2))
    } else {
        (a.dim(ar - 2), a.dim(ar - 1))
    };
    let (kb, n) = if opts.trans_b {
        (b.dim(br - 1), b.dim(br - 2))
    } else {
        (b.dim(br - 2), b.dim(br - 1))
    };
    if ka != kb {
        return Err(Error::shape(
            OP,
            format!(
                "inner dimensions differ: a {:?}{} has K = {ka}, b {:?}{} has K = {kb}",
                a.shape(),
                if opts.trans_a { " (transposed)" } else { "" },
                b.shape(),
                if opts.trans_b { " (transposed)" } else { "" },
            ),
        ));
    }
    let k = ka;
    let (a_batch, b_batch) = (&a.shape()[..ar - 2], &b.shape()[..br - 2]);
    let batch = broadcast_shape(OP, a_batch, b_batch)?;
    if batch.len() + 2 > MAX_RANK {
        return Err(Error::shape(
            OP,
            format!("rank {} exceeds {MAX_RANK}", batch.len() + 2),
        ));
    }
    let mut out_shape = batch.clone();
    out_shape.extend_from_slice(&[m, n]);

    if let Some(bias) = opts.bias {
        f32_checked(OP, bias)?;
        if bias.shape() != [n] {
            return Err(Error::shape(
                OP,
                format!("bias must be [{n}] (N), got {:?}", bias.shape()),
            ));
        }
    }
    let mut sr = [0u32; MAX_RANK];
    if let Some(res) = opts.residual {
        f32_checked(OP, res)?;
        let rr = res.dims();
        let ok = rr >= 2
            && res.shape()[rr - 2..] == [m, n]
            && broadcast_shape(OP, &res.shape()[..rr - 2], &batch).is_ok_and(|s| s == batch);
        if !ok {
            return Err(Error::shape(
                OP,
                format!(
                    "residual {:?} does not broadcast to the output {out_shape:?}",
                    res.shape()
                ),
            ));
        }
        sr = strides_times(&res.shape()[..rr - 2], &batch, m * n);
    }

    let gpu = a.gpu();
    kernel.validate(gpu)?;
    let out = Tensor::empty(gpu, &out_shape, DType::F32)?;
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
        bshape: pad_shape(&batch),
        sa: strides_times(a_batch, &batch, m * k),
        sb: strides_times(b_batch, &batch, k * n),
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
    let bias_buf = opts.bias.unwrap_or(a).buffer();
    let res_buf = opts.residual.unwrap_or(a).buffer();
    let bufs = [a.buffer(), b.buffer(), bias_buf, res_buf, out.buffer()];

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

/// How the operands of one call are laid out; part of every pipeline's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Layout {
    trans_a: bool,
    trans_b: bool,
    /// A's contiguous dimension (K, or M when transposed) is a multiple of 4.
    vec_a: bool,
    /// B's contiguous dimension (N, or K when transposed) is a multiple of 4.
    vec_b: bool,
    /// N is a multiple of 4.
    vec_n: bool,
    /// K is not a multiple of 4, so `matmul_reg` needs its one-step-at-a-time tail loop. Leaving the
    /// loop out when it cannot run saves compile time (lavapipe's is seconds for the large blocks).
    k_tail: bool,
    /// K ≥ 4, so the main loop of `matmul_reg` runs at all (tiny input layers have K = 2 or 3).
    k_main: bool,
}

type Source = (&'static str, u32, u32, Arc<str>);

/// [`kernel_source`], generated once per kernel and layout: the large blocks are tens of kilobytes of
/// WGSL, too much to format on every call of an op that runs many times per denoising step.
fn kernel_source_cached(kernel: MatmulKernel, l: Layout) -> Source {
    static CACHE: Mutex<Option<HashMap<(MatmulKernel, Layout), Source>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .get_or_insert_with(HashMap::new)
        .entry((kernel, l))
        .or_insert_with(|| {
            let (entry, bm, bn, src) = kernel_source(kernel, l);
            (entry, bm, bn, src.into())
        })
        .clone()
}

/// Entry point, rows and columns per workgroup, and the WGSL prepended to the source.
fn kernel_source(kernel: MatmulKernel, l: Layout) -> (&'static str, u32, u32, String) {
    match kernel {
        // The baseline reads element by element whatever the alignment: one pipeline per transpose.
        MatmulKernel::Baseline => {
            let l = Layout {
                vec_a: false,
                vec_b: false,
                vec_n: false,
                ..l
            };
            ("matmul_baseline", 16, 16, consts(4, 4, 16, 16, 0, l))
        }
        MatmulKernel::Tiled {
            tm,
            tn,
            wg_x,
            wg_y,
            bk,
        } if bk > 0 => {
            // Staging reads element by element, so only N's alignment (the epilogue) matters.
            let l = Layout {
                vec_a: false,
                vec_b: false,
                ..l
            };
            let src = consts(tm, tn, wg_x, wg_y, bk, l) + &gen_smem(tm, tn);
            ("matmul_smem", wg_y * tm, wg_x * tn, src)
        }
        MatmulKernel::Tiled {
            tm, tn, wg_x, wg_y, ..
        } => {
            let src = consts(tm, tn, wg_x, wg_y, 0, l) + &gen_reg(tm, tn, l);
            ("matmul_reg", wg_y * tm, wg_x * tn, src)
        }
    }
}

fn consts(tm: u32, tn: u32, wg_x: u32, wg_y: u32, bk: u32, l: Layout) -> String {
    format!(
        "const TM: u32 = {tm}u;\nconst TN: u32 = {tn}u;\nconst WGX: u32 = {wg_x}u;\n\
         const WGY: u32 = {wg_y}u;\nconst BK: u32 = {bk}u;\nconst TRANS_A: bool = {};\n\
         const TRANS_B: bool = {};\nconst VEC_A: bool = {};\nconst VEC_B: bool = {};\n\
         const VEC_N: bool = {};\n",
        l.trans_a, l.trans_b, l.vec_a, l.vec_b, l.vec_n
    )
}

const COMP: [&str; 4] = ["x", "y", "z", "w"];

/// Accumulator `c{i}_{j}` holds outputs (row0 + i, col0 + 4j .. +4).
fn declare_accumulators(w: &mut String, tm: usize, tn4: usize) {
    for i in 0..tm {
        for j in 0..tn4 {
            w.push_str(&format!("    var c{i}_{j} = vec4<f32>(0.0);\n"));
        }
    }
}

/// The epilogue, with one inlined copy of `finish4` rather than TM·TN/4: each output row in turn is
/// finished four columns at a time, rotating the row's accumulators (and then the rows) into the
/// first position. Every store is a sizeable piece of code on lavapipe, so this cuts compile time
/// several-fold for a few register moves per output.
fn store_accumulators(w: &mut String, tm: usize, tn4: usize) {
    let mut emit = |l: String| {
        w.push_str(&l);
        w.push('\n');
    };
    emit("    for (var r = 0u; r < TM; r++) {".into());
    for j in 0..tn4 {
        emit(format!("        var v{j} = c0_{j};"));
    }
    emit("        for (var j = 0u; j < TN4; j++) {".into());
    emit("            finish4(z, offs.z, row0 + r, col0 + 4u * j, p.alpha * v0);".into());
    for j in 1..tn4 {
        emit(format!("            v{} = v{j};", j - 1));
    }
    emit("        }".into());
    for i in 1..tm {
        for j in 0..tn4 {
            emit(format!("        c{}_{j} = c{i}_{j};", i - 1));
        }
    }
    emit("    }".into());
}

/// `matmul_reg`: no shared memory; each invocation reads its TM rows of A and TN columns of B straight
/// from storage, four steps of K at a time (one vec4 per row or column when aligned), and does
/// 4·TM·TN FMAs per 4·(TM + TN) elements loaded. On lavapipe every storage or workgroup load is a
/// per-lane loop and a barrier is a coroutine switch, so the larger the block the faster, and shared
/// memory only adds loads. Straight-line code: see the shader's header for why not loops.
fn gen_reg(tm: u32, tn: u32, l: Layout) -> String {
    let (tm, tn4) = (tm as usize, tn as usize / 4);
    let tn = 4 * tn4;
    let mut w = String::new();
    macro_rules! emit {
        ($($t:tt)*) => {{
            w.push_str(&format!($($t)*));
            w.push('\n');
        }};
    }
    emit!("@compute @workgroup_size(WGX, WGY, 1)");
    emit!(
        "fn matmul_reg(@builtin(workgroup_id) wg: vec3<u32>, \
         @builtin(local_invocation_id) lid: vec3<u32>) {{"
    );
    emit!("    let z = p.b0 + wg.z;");
    emit!("    let row0 = p.m0 + (wg.y * WGY + lid.y) * TM;");
    emit!("    let col0 = p.n0 + (wg.x * WGX + lid.x) * TN;");
    emit!("    if (row0 >= p.m || col0 >= p.n) {{\n        return;\n    }}");
    emit!("    let offs = batch_offsets(z);");
    emit!("    let mm = p.m;\n    let nn = p.n;\n    let kk = p.k;");
    // Where each row of A and column of B starts, clamped (see the shader's header). Quads of 4
    // aligned elements are clamped as a whole, to the last quad.
    match (l.trans_a, l.vec_a) {
        (true, true) => {
            for iq in 0..tm / 4 {
                emit!(
                    "    let aq{iq} = offs.x + min(row0 + {}u, mm - 4u);",
                    4 * iq
                );
            }
        }
        (true, false) => {
            for i in 0..tm {
                emit!("    let ao{i} = offs.x + min(row0 + {i}u, mm - 1u);");
            }
        }
        (false, _) => {
            for i in 0..tm {
                emit!("    let ao{i} = offs.x + min(row0 + {i}u, mm - 1u) * kk;");
            }
        }
    }
    match (l.trans_b, l.vec_b) {
        (false, true) => {
            for j in 0..tn4 {
                emit!("    let bq{j} = offs.y + min(col0 + {}u, nn - 4u);", 4 * j);
            }
        }
        (false, false) => {
            for c in 0..tn {
                emit!("    let bo{c} = offs.y + min(col0 + {c}u, nn - 1u);");
            }
        }
        (true, _) => {
            for c in 0..tn {
                emit!("    let bo{c} = offs.y + min(col0 + {c}u, nn - 1u) * kk;");
            }
        }
    }
    declare_accumulators(&mut w, tm, tn4);
    emit!("    let k4 = kk & ~3u;");
    if l.k_main {
        gen_reg_main(&mut w, tm, tn4, l);
    }
    if l.k_tail {
        gen_reg_tail(&mut w, tm, tn4, l);
    }
    store_accumulators(&mut w, tm, tn4);
    emit!("}}");
    w
}

/// The main loop of `matmul_reg`: four steps of K per iteration.
fn gen_reg_main(w: &mut String, tm: usize, tn4: usize, l: Layout) {
    let tn = 4 * tn4;
    macro_rules! emit {
        ($($t:tt)*) => {{
            w.push_str(&format!($($t)*));
            w.push('\n');
        }};
    }
    emit!("    for (var k = 0u; k < k4; k += 4u) {{");
    // a{i} = A[row i, k..k+4]
    match (l.trans_a, l.vec_a) {
        (false, true) => {
            for i in 0..tm {
                emit!("        let a{i} = ma[(ao{i} + k) >> 2u];");
            }
        }
        (false, false) => {
            for i in 0..tm {
                emit!(
                    "        let a{i} = vec4<f32>(lda(ao{i} + k), lda(ao{i} + k + 1u), \
                     lda(ao{i} + k + 2u), lda(ao{i} + k + 3u));"
                );
            }
        }
        (true, vec) => {
            for q in 0..4 {
                emit!("        let km{q} = (k + {q}u) * mm;");
            }
            if vec {
                // Four quads along M, one per step of K, transposed into four rows.
                for iq in 0..tm / 4 {
                    for q in 0..4 {
                        emit!("        let t{iq}_{q} = ma[(aq{iq} + km{q}) >> 2u];");
                    }
                    for (r, c) in COMP.iter().enumerate() {
                        emit!(
                            "        let a{} = vec4<f32>(t{iq}_0.{c}, t{iq}_1.{c}, t{iq}_2.{c}, \
                             t{iq}_3.{c});",
                            4 * iq + r
                        );
                    }
                }
            } else {
                for i in 0..tm {
                    emit!(
                        "        let a{i} = vec4<f32>(lda(ao{i} + km0), lda(ao{i} + km1), \
                         lda(ao{i} + km2), lda(ao{i} + km3));"
                    );
                }
            }
        }
    }
    // b{q}_{j} = B[k + q, col0 + 4j .. +4]
    if l.trans_b {
        for c in 0..tn {
            if l.vec_b {
                emit!("        let u{c} = mb[(bo{c} + k) >> 2u];");
            } else {
                emit!(
                    "        let u{c} = vec4<f32>(ldb(bo{c} + k), ldb(bo{c} + k + 1u), \
                     ldb(bo{c} + k + 2u), ldb(bo{c} + k + 3u));"
                );
            }
        }
        for j in 0..tn4 {
            for (q, c) in COMP.iter().enumerate() {
                emit!(
                    "        let b{q}_{j} = vec4<f32>(u{}.{c}, u{}.{c}, u{}.{c}, u{}.{c});",
                    4 * j,
                    4 * j + 1,
                    4 * j + 2,
                    4 * j + 3
                );
            }
        }
    } else {
        for q in 0..4 {
            emit!("        let kn{q} = (k + {q}u) * nn;");
        }
        for j in 0..tn4 {
            for q in 0..4 {
                if l.vec_b {
                    emit!("        let b{q}_{j} = mb[(bq{j} + kn{q}) >> 2u];");
                } else {
                    emit!(
                        "        let b{q}_{j} = vec4<f32>(ldb(bo{} + kn{q}), ldb(bo{} + kn{q}), \
                         ldb(bo{} + kn{q}), ldb(bo{} + kn{q}));",
                        4 * j,
                        4 * j + 1,
                        4 * j + 2,
                        4 * j + 3
                    );
                }
            }
        }
    }
    for i in 0..tm {
        for j in 0..tn4 {
            emit!("        c{i}_{j} = fma4(c{i}_{j}, a{i}, b0_{j}, b1_{j}, b2_{j}, b3_{j});");
        }
    }
    emit!("    }}");
}

/// The last K % 4 steps of `matmul_reg`, one element at a time.
fn gen_reg_tail(w: &mut String, tm: usize, tn4: usize, l: Layout) {
    macro_rules! emit {
        ($($t:tt)*) => {{
            w.push_str(&format!($($t)*));
            w.push('\n');
        }};
    }
    emit!("    for (var k = k4; k < kk; k++) {{");
    for i in 0..tm {
        let idx = match (l.trans_a, l.vec_a) {
            (false, _) => format!("ao{i} + k"),
            (true, true) => format!("aq{} + {}u + k * mm", i / 4, i % 4),
            (true, false) => format!("ao{i} + k * mm"),
        };
        emit!("        let s{i} = vec4<f32>(lda({idx}));");
    }
    for j in 0..tn4 {
        let (c0, c1, c2, c3) = (4 * j, 4 * j + 1, 4 * j + 2, 4 * j + 3);
        match (l.trans_b, l.vec_b) {
            (false, true) => emit!("        let v{j} = mb[(bq{j} + k * nn) >> 2u];"),
            (false, false) => emit!(
                "        let v{j} = vec4<f32>(ldb(bo{c0} + k * nn), ldb(bo{c1} + k * nn), \
                 ldb(bo{c2} + k * nn), ldb(bo{c3} + k * nn));"
            ),
            (true, _) => emit!(
                "        let v{j} = vec4<f32>(ldb(bo{c0} + k), ldb(bo{c1} + k), ldb(bo{c2} + k), \
                 ldb(bo{c3} + k));"
            ),
        }
    }
    for i in 0..tm {
        for j in 0..tn4 {
            emit!("        c{i}_{j} = fma(s{i}, v{j}, c{i}_{j});");
        }
    }
    emit!("    }}");
}

/// `matmul_smem`: the same register block fed from shared-memory tiles (`stage_tiles` in the
/// shader), for GPUs where workgroup memory is fast and global loads are not.
fn gen_smem(tm: u32, tn: u32) -> String {
    let (tm, tn4) = (tm as usize, tn as usize / 4);
    let mut w = String::new();
    macro_rules! emit {
        ($($t:tt)*) => {{
            w.push_str(&format!($($t)*));
            w.push('\n');
        }};
    }
    emit!("@compute @workgroup_size(WGX, WGY, 1)");
    emit!(
        "fn matmul_smem(@builtin(workgroup_id) wg: vec3<u32>, \
         @builtin(local_invocation_id) lid: vec3<u32>) {{"
    );
    emit!("    let z = p.b0 + wg.z;");
    emit!("    let tile_row = p.m0 + wg.y * BM;");
    emit!("    let tile_col = p.n0 + wg.x * BN;");
    emit!("    let row0 = tile_row + lid.y * TM;");
    emit!("    let col0 = tile_col + lid.x * TN;");
    emit!("    let offs = batch_offsets(z);");
    declare_accumulators(&mut w, tm, tn4);
    // No early return: every invocation must reach the barriers.
    emit!("    for (var k0 = 0u; k0 < p.k; k0 += BKS) {{");
    emit!("        stage_tiles(k0, tile_row, tile_col, lid.y * WGX + lid.x, offs);");
    emit!("        workgroupBarrier();");
    emit!("        for (var q = 0u; q < BKS; q++) {{");
    emit!("            let ab = (q * BM + lid.y * TM) >> 2u;");
    emit!("            let bb = (q * BN + lid.x * TN) >> 2u;");
    for iq in 0..tm / 4 {
        emit!("            let a{iq} = sa_tile[ab + {iq}u];");
    }
    for j in 0..tn4 {
        emit!("            let b{j} = sb_tile[bb + {j}u];");
    }
    for i in 0..tm {
        for j in 0..tn4 {
            emit!(
                "            c{i}_{j} = fma(vec4<f32>(a{}.{}), b{j}, c{i}_{j});",
                i / 4,
                COMP[i % 4]
            );
        }
    }
    emit!("        }}");
    emit!("        workgroupBarrier();");
    emit!("    }}");
    store_accumulators(&mut w, tm, tn4);
    emit!("}}");
    w
}

/// `x @ weightᵀ + bias`, then `act`: PyTorch's `Linear`. `x` is `[.., in]`, `weight` `[out, in]`,
/// `bias` `[out]`; the result is `[.., out]`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, act: Act) -> Result<Tensor> {
    const OP: &str = "linear";
    x.expect_dtype(OP, DType::F32)?;
    weight.expect_dtype(OP, DType::F32)?;
    if weight.dims() != 2 || x.dims() == 0 || x.dim(x.dims() - 1) != weight.dim(1) {
        return Err(Error::shape(
            OP,
            format!(
                "x {:?} must be [.., in] and weight {:?} [out, in]",
                x.shape(),
                weight.shape()
            ),
        ));
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

/// The kernel [`matmul`] uses on `gpu`: the one stored by an earlier choice, else `DIFFSCOPE_MATMUL`
/// if set (native), else — natively — the winner of [`tune`], else (the web, which cannot block to
/// time anything) [`WEB_DEFAULT`]. The choice is stored on the device ([`Gpu::set_tuned`]).
pub fn device_kernel(gpu: &Gpu) -> Result<MatmulKernel> {
    if let Some(k) = gpu.tuned(TUNE_KEY).and_then(|s| s.parse().ok()) {
        return Ok(k);
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        // One tuning per device even when several threads arrive at once; the others wait for it.
        static TUNING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = TUNING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = gpu.tuned(TUNE_KEY).and_then(|s| s.parse().ok()) {
            return Ok(k);
        }
        let k = match std::env::var(ENV_FORCE)
            .ok()
            .filter(|s| !s.trim().is_empty())
        {
            Some(s) => {
                let k: MatmulKernel = s.parse()?;
                k.validate(gpu)?;
                k
            }
            None => tune(gpu)?.0,
        };
        gpu.set_tuned(TUNE_KEY, &k.to_string());
        Ok(k)
    }
    #[cfg(target_arch = "wasm32")]
    {
        gpu.set_tuned(TUNE_KEY, &WEB_DEFAULT.to_string());
        Ok(WEB_DEFAULT)
    }
}

/// No candidate starts after this much tuning time (compiles included) once one has been timed.
#[cfg(not(target_arch = "wasm32"))]
const TUNE_BUDGET: std::time::Duration = std::time::Duration::from_millis(1000);

/// Time the candidates in [`tuning_order`] on an n³ problem (256 on software adapters, 1024 on
/// hardware, where 256³ is over before the timer notices) and return the fastest, with the best time
/// of each candidate timed. Each candidate runs once to compile, then twice timed (the minimum counts:
/// noise only ever adds); one that is already twice as slow as the best is not run again. Tuning stops
/// early when it has used [`TUNE_BUDGET`]. Does not store the choice.
#[cfg(not(target_arch = "wasm32"))]
pub fn tune(gpu: &Gpu) -> Result<(MatmulKernel, Vec<(MatmulKernel, f64)>)> {
    let start = std::time::Instant::now();
    let mut n: usize = if gpu.is_software() { 256 } else { 1024 };
    // A device with small bindings tunes on what fits (n² f32 per operand).
    while n > 32 && (n * n * 4) as u64 > gpu.max_binding() {
        n /= 2;
    }
    let (a, b) = square_inputs(gpu, n)?;
    let mut timings: Vec<(MatmulKernel, f64)> = Vec::new();
    let mut first_err = None;
    for k in tuning_order(gpu) {
        if !timings.is_empty() && start.elapsed() > TUNE_BUDGET {
            log::info!("matmul tuning: time budget spent, {k} and later candidates not timed");
            break;
        }
        if k.validate(gpu).is_err() {
            continue;
        }
        let best = timings.iter().map(|t| t.1).fold(f64::INFINITY, f64::min);
        let timed = (|| {
            time_once(gpu, k, &a, &b)?;
            let t = time_once(gpu, k, &a, &b)?;
            if t > 2.0 * best {
                return Ok(t);
            }
            Ok(t.min(time_once(gpu, k, &a, &b)?))
        })();
        match timed {
            Ok(t) => timings.push((k, t)),
            Err(e) => {
                log::warn!("matmul tuning: {k} failed: {e}");
                first_err.get_or_insert(e);
            }
        }
    }
    let best = timings
        .iter()
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|&(k, _)| k);
    match (best, first_err) {
        (Some(k), _) => {
            log::info!(
                "matmul tuning on {} took {:.2} s: chose {k} ({timings:?})",
                gpu.summary().name,
                start.elapsed().as_secs_f64()
            );
            Ok((k, timings))
        }
        (None, Some(e)) => Err(e),
        (None, None) => Err(Error::Invalid(
            "no matmul kernel candidate fits this device".into(),
        )),
    }
}

/// Two n×n operands with values in [-1, 1) from a fixed LCG: timing must not depend on denormals or
/// NaNs.
#[cfg(not(target_arch = "wasm32"))]
fn square_inputs(gpu: &Gpu, n: usize) -> Result<(Tensor, Tensor)> {
    let mut state = 0x2545_F491u32;
    let data: Vec<f32> = (0..n * n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect();
    Ok((
        Tensor::from_f32(gpu, &[n, n], &data)?,
        Tensor::from_f32(gpu, &[n, n], &data)?,
    ))
}

/// Wall time of one `a @ b` on `kernel`, waited for (pending work is flushed first).
#[cfg(not(target_arch = "wasm32"))]
fn time_once(gpu: &Gpu, kernel: MatmulKernel, a: &Tensor, b: &Tensor) -> Result<f64> {
    gpu.wait_idle()?;
    let t = std::time::Instant::now();
    let c = matmul_with(kernel, a, b, &Matmul::default())?;
    gpu.wait_idle()?;
    let secs = t.elapsed().as_secs_f64();
    drop(c);
    Ok(secs)
}

/// GFLOP/s (2n³ per product) of `kernel` on a square n×n×n f32 matmul: one warm-up run (which
/// compiles the pipeline), then the median wall time of `reps` runs, each waited for.
#[cfg(not(target_arch = "wasm32"))]
pub fn bench_gflops(gpu: &Gpu, n: usize, kernel: MatmulKernel, reps: usize) -> Result<f64> {
    let (a, b) = square_inputs(gpu, n)?;
    time_once(gpu, kernel, &a, &b)?;
    let mut times = (0..reps.max(1))
        .map(|_| time_once(gpu, kernel, &a, &b))
        .collect::<Result<Vec<f64>>>()?;
    times.sort_by(f64::total_cmp);
    Ok(2.0 * (n as f64).powi(3) / times[times.len() / 2] / 1e9)
}
