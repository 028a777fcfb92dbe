//! Splitting a kernel's output across threads: the CPU backend's loops other than the GEMM (which
//! `matrixmultiply` threads itself) — norms, im2col, attention heads — run on up to
//! [`super::Cpu::threads`] scoped threads natively, and on the calling thread in the browser.
//!
//! Threads are spawned per call, so a split pays only where the work is large: each thread gets at
//! least [`MIN_ELEMENTS`] output elements, and smaller outputs stay on the calling thread.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The fewest output elements worth a thread of their own (spawning one costs ~10–30 µs; a norm
/// pass over this many takes ~100 µs).
pub const MIN_ELEMENTS: usize = 1 << 17;

/// Threads the loops may use: set by the newest [`super::Cpu`] (one per process in practice).
static THREADS: AtomicUsize = AtomicUsize::new(1);

pub(super) fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// Runs `f(first_unit, chunk)` over `out` cut into chunks of whole `unit`-element units (a row, a
/// group, an image), one chunk per thread; `first_unit` is the index of the chunk's first unit.
pub fn for_each_chunk<T, F>(out: &mut [T], unit: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    let unit = unit.max(1);
    let units = out.len() / unit;
    let threads = THREADS
        .load(Ordering::Relaxed)
        .min(out.len() / MIN_ELEMENTS)
        .min(units)
        .max(1);
    if threads == 1 || cfg!(target_arch = "wasm32") {
        f(0, out);
        return;
    }
    let per = units.div_ceil(threads);
    std::thread::scope(|s| {
        let mut chunks = out.chunks_mut(per * unit).enumerate();
        // The calling thread takes the first chunk itself.
        let first = chunks.next();
        for (i, chunk) in chunks {
            let f = &f;
            s.spawn(move || f(i * per, chunk));
        }
        if let Some((_, chunk)) = first {
            f(0, chunk);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_visited_once_with_its_index() {
        set_threads(3);
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
