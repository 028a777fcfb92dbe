//! The kernel variants — what a [`MatmulKernel`] is, how it is written and parsed, which ones the
//! shader can express and the device can run — and which one a problem runs on ([`kernel_for`]).

use super::tune::device_kernel;
#[cfg(not(target_arch = "wasm32"))]
use super::tune::ENV_FORCE;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use std::fmt;
use std::str::FromStr;

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
