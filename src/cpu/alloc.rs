//! Host buffers for kernel outputs and scratch, fallible: a size computed from a config that the
//! allocator cannot grant is [`Error::OutOfMemory`], not an abort.
//!
//! (Measured on mnist-unet: `calloc`-style zeroed allocation traded the memset for page faults —
//! glibc returns large blocks to the OS, so every step faulted fresh pages in — and cost as much.
//! What saves the pass is not zeroing at all where a kernel writes every element: see [`reserved`].)

use crate::error::{Error, Result};

fn oom<T>(len: usize, what: &dyn Fn() -> String) -> Error {
    Error::OutOfMemory {
        what: what(),
        bytes: (len as u64).saturating_mul(std::mem::size_of::<T>() as u64),
    }
}

/// `len` zeroed values.
pub fn zeroed<T: Copy + Default>(len: usize, what: &dyn Fn() -> String) -> Result<Vec<T>> {
    let mut v = reserved(len, what)?;
    v.resize(len, T::default());
    Ok(v)
}

/// An empty vector with room for exactly `len` values, for a kernel that writes all of them
/// (through `spare_capacity_mut` or a raw pointer, then `set_len`).
pub fn reserved<T>(len: usize, what: &dyn Fn() -> String) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| oom::<T>(len, what))?;
    Ok(v)
}

/// Keeps freed memory in the process instead of returning it to the OS at once (glibc only; a
/// no-op elsewhere). Every CPU op allocates its output and frees its inputs' buffers soon after:
/// megabytes per op for a batch. glibc serves blocks of more than its (adaptive) mmap threshold
/// with fresh mappings and trims the heap's free top above 2× that, so the same pages were mapped,
/// zero-filled by page faults and unmapped again every op — 10–15 % of a toy2d-mlp step in the
/// kernel. With both thresholds raised, freed blocks are reused: measured in one sitting
/// (`diffscope --backend cpu bench --steps-only`, with and without
/// `GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=67108864`):
/// toy2d-mlp 0.74×, promoter-multinomial b64 0.80×, sbm-digress b16 0.73×, mnist-unet b16 0.93×
/// the time per step. The cost: up to 256 MiB of freed memory stays with the process. One arena
/// for every thread: a step runs on a pool thread ([`super::parallel::run_step`]), whose own arena
/// (a heap glibc grows and shrinks on its own terms) faulted its pages in again and again —
/// words-absorb at batch 64 0.975× the time with one arena, page clearing 2.9 → 1.3 % of it
/// (`MALLOC_ARENA_MAX=1`, 8 paired runs). Called once by the `diffscope` binary; a library user
/// decides for their own process.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before the process's threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_have_their_size_and_impossible_sizes_are_refused() {
        let v: Vec<f32> = zeroed(1 << 20, &|| "test".into()).unwrap();
        assert_eq!(v.len(), 1 << 20);
        assert!(v.iter().all(|&x| x == 0.0));
        assert!(zeroed::<u32>(0, &|| "empty".into()).unwrap().is_empty());
        let r: Vec<f32> = reserved(1000, &|| "r".into()).unwrap();
        assert!(r.is_empty() && r.capacity() >= 1000);
        let e = zeroed::<f32>(usize::MAX / 8, &|| "huge".into()).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    }
}
