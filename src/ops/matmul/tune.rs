//! Per-device kernel choice: `DIFFSCOPE_MATMUL` if set, else timing the candidates once at first use
//! (native), else [`WEB_DEFAULT`](super::WEB_DEFAULT) (the web cannot block to time anything).

#[cfg(target_arch = "wasm32")]
use super::WEB_DEFAULT;
#[cfg(not(target_arch = "wasm32"))]
use super::{matmul_with, Matmul};
use super::{tile_candidates, MatmulKernel};
#[cfg(not(target_arch = "wasm32"))]
use crate::error::Error;
use crate::error::Result;
use crate::gpu::Gpu;
#[cfg(not(target_arch = "wasm32"))]
use crate::tensor::Tensor;

/// The key under which the device's kernel choice is stored ([`Gpu::tuned`]).
pub const TUNE_KEY: &str = "matmul";

/// Environment variable that forces a kernel (native only), in [`MatmulKernel`]'s `FromStr` syntax.
pub const ENV_FORCE: &str = "DIFFSCOPE_MATMUL";

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
