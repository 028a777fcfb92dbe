//! Threads for the CPU backend: one rayon pool, used only where the work is large enough to pay for
//! handing it over. Everything else — most kernels of a small step — runs on the calling thread:
//! measured on a 2-core machine, letting every GEMM and loop split across threads made the
//! batch-1 steps up to 2× slower (waking a pool thread costs more than a small kernel takes).
//!
//! How: rayon's *global* pool is pinned to one thread, so a rayon-using library called from outside
//! any pool (the GEMM crate checks `rayon::current_num_threads()`) runs serially in place; large
//! work is run inside [`pool`] with [`in_pool`], where the same library sees all the threads. In the
//! browser a page gets one thread (unless cross-origin isolated), and everything runs in place.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use rayon::prelude::*;

/// The fewest output elements worth splitting a loop (a norm pass, im2col) across threads.
pub const MIN_ELEMENTS: usize = 1 << 17;

/// Threads the pool has (1 until [`init_pool`]).
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sizes the pool once per process and returns its thread count: `threads` when given, else
/// `RAYON_NUM_THREADS`, else every core the OS grants this process. A later call keeps the first size.
pub(super) fn init_pool(threads: Option<usize>) -> usize {
    if cfg!(target_arch = "wasm32") {
        return 1;
    }
    static INIT: OnceLock<usize> = OnceLock::new();
    *INIT.get_or_init(|| {
        let n = threads
            .or_else(|| std::env::var("RAYON_NUM_THREADS").ok()?.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        // Fails only if something built the global pool first; then small work may split too,
        // which costs speed, not correctness.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global();
        THREADS.store(n, Ordering::Relaxed);
        n
    })
}

/// The pool's thread count.
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        (threads() > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads())
                    .thread_name(|i| format!("diffscope-cpu-{i}"))
                    .build()
                    .ok()
            })
            .flatten()
    })
    .as_ref()
}

/// Runs `f` where it may use every thread (inside the pool) when `large`, else in place.
pub fn in_pool<R: Send>(large: bool, f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(p) if large => p.install(f),
        _ => f(),
    }
}

/// Runs `f` — one reverse step's ops — on one of the pool's threads, the pool's other threads kept
/// spinning for work until it returns. Between a step's large products come its small ops on one
/// thread (norms, adds, a short sequence's attention); an idle pool thread fell asleep in them, and
/// each product then handed its work to a sleeping thread and waited for it to wake, and the caller
/// slept and woke in every hand-over. Measured per step, paired (`diffscope --backend cpu bench
/// --steps-only`, 8 runs each): toy2d-mlp at 4,096 points 0.81×, mnist-unet 0.82× at batch 16 and
/// 0.87× at batch 1, words-uniform at batch 64 0.95×, the rest unchanged. Calls nest (an inner one
/// runs in place). With one thread, or in the browser, `f` runs where it is called.
pub fn run_step<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // The page has no pool (and no spinning to do): nothing of this is built into it.
    #[cfg(target_arch = "wasm32")]
    return f();
    #[cfg(not(target_arch = "wasm32"))]
    run_step_on_pool(f)
}

#[cfg(not(target_arch = "wasm32"))]
fn run_step_on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let Some(p) = pool() else {
        return f();
    };
    p.install(|| {
        let me = rayon::current_thread_index();
        let done = std::sync::atomic::AtomicBool::new(false);
        rayon::scope(|s| {
            // One spinner per thread; the one that lands on the caller's thread returns at once (it
            // would otherwise spin inside a join the caller waits in).
            s.spawn_broadcast(|_, ctx| {
                if Some(ctx.index()) == me {
                    return;
                }
                let mut idle = 0u32;
                while !done.load(Ordering::Acquire) {
                    if let Some(rayon::Yield::Executed) = rayon::yield_now() {
                        idle = 0;
                        continue;
                    }
                    // Nothing to take: look again after a short pause, not in a tight loop over
                    // the pool's queues (whose cache lines the working thread is writing), and now
                    // and then let the OS run another thread here (the app's UI, mid-step).
                    for _ in 0..64 {
                        std::hint::spin_loop();
                    }
                    idle += 1;
                    if idle.is_multiple_of(16) {
                        std::thread::yield_now();
                    }
                }
            });
            let r = f();
            done.store(true, Ordering::Release);
            r
        })
    })
}

/// Runs `f(first_unit, chunk)` over `out` cut into chunks of whole `unit`-element units (a row, a
/// group, an image), at most one chunk per thread; `first_unit` is the index of the chunk's first
/// unit. Splits only when each thread gets at least [`MIN_ELEMENTS`].
pub fn for_each_chunk<T, F>(out: &mut [T], unit: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    let unit = unit.max(1);
    let units = out.len() / unit;
    let threads = threads().min(out.len() / MIN_ELEMENTS).min(units).max(1);
    if threads == 1 {
        f(0, out);
        return;
    }
    let per = units.div_ceil(threads);
    in_pool(true, || {
        out.par_chunks_mut(per * unit)
            .enumerate()
            .for_each(|(i, chunk)| f(i * per, chunk))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step runs on a pool thread and returns its value; a step inside a step runs in place; a
    /// large loop inside it still splits across the pool; the spinners end with the step.
    #[test]
    fn a_step_runs_on_the_pool_and_nests() {
        init_pool(Some(3));
        let (outer, inner, sum) = run_step(|| {
            let outer = rayon::current_thread_index();
            let inner = run_step(rayon::current_thread_index);
            let mut v = vec![1u32; MIN_ELEMENTS * 4];
            for_each_chunk(&mut v, 1, |_, c| c.iter_mut().for_each(|x| *x += 1));
            (outer, inner, v.iter().map(|&x| x as u64).sum::<u64>())
        });
        assert!(outer.is_some(), "the step ran outside the pool");
        assert_eq!(inner, outer, "a nested step moved threads");
        assert_eq!(sum, 2 * (MIN_ELEMENTS as u64) * 4);
        assert_eq!(run_step(|| 7), 7);
    }

    #[test]
    fn every_unit_is_visited_once_with_its_index() {
        init_pool(Some(3));
        for len in [0usize, 7, MIN_ELEMENTS * 3 + 5, MIN_ELEMENTS * 7] {
            let unit = 5;
            let mut v = vec![0u32; len];
            for_each_chunk(&mut v, unit, |first, chunk| {
                for (j, x) in chunk.iter_mut().enumerate() {
                    *x += (first * unit + j) as u32 + 1;
                }
            });
            assert!(
                v.iter().enumerate().all(|(i, &x)| x == i as u32 + 1),
                "len {len}"
            );
        }
    }
}
