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
