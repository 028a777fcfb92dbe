//! Host storage for the CPU backend: a tensor's elements as 32-bit words in memory, shared by
//! reshapes like a GPU buffer is, and written through a lock because ops write outputs through
//! shared handles (as a GPU kernel writes a bound buffer).

use crate::error::{Error, Result};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A tensor's host memory. f32 tensors hold their bit patterns; every dtype is 4 bytes.
pub(crate) struct HostBuffer {
    words: RwLock<Vec<u32>>,
}

/// f32 → its bit patterns without copying (same size and alignment, every bit pattern valid).
pub(crate) fn words_of_f32(v: Vec<f32>) -> Vec<u32> {
    let mut v = std::mem::ManuallyDrop::new(v);
    let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
    // SAFETY: f32 and u32 have the same size and alignment, and the allocation is handed over whole
    // (the ManuallyDrop keeps the original from freeing it), so the layout passed to the allocator on
    // drop is the one it was allocated with.
    unsafe { Vec::from_raw_parts(ptr.cast::<u32>(), len, cap) }
}

impl HostBuffer {
    pub(crate) fn new(words: Vec<u32>) -> HostBuffer {
        HostBuffer {
            words: RwLock::new(words),
        }
    }

    pub(crate) fn read(&self) -> Result<HostRead<'_>> {
        self.words
            .read()
            .map(HostRead)
            .map_err(|_| Error::Internal("a host tensor's lock was poisoned by a panic".into()))
    }

    /// What a recorded op that fills this (empty) buffer does when it cannot run: fill it with
    /// `n` zeros, so that nothing downstream reads a buffer shorter than its shape.
    pub(crate) fn zeros_on_skip(self: &Arc<Self>, n: usize) -> crate::cpu::queue::Skip {
        let buf = self.clone();
        Box::new(move || {
            if let Ok(mut w) = buf.write() {
                w.u32_vec().resize(n, 0);
            }
        })
    }

    pub(crate) fn write(&self) -> Result<HostWrite<'_>> {
        self.words
            .write()
            .map(HostWrite)
            .map_err(|_| Error::Internal("a host tensor's lock was poisoned by a panic".into()))
    }
}

/// A host tensor's elements, read-locked.
pub struct HostRead<'a>(RwLockReadGuard<'a, Vec<u32>>);

impl HostRead<'_> {
    pub fn f32(&self) -> &[f32] {
        bytemuck::cast_slice(&self.0)
    }
    pub fn u32(&self) -> &[u32] {
        &self.0
    }
}

/// A host tensor's elements, write-locked.
pub struct HostWrite<'a>(RwLockWriteGuard<'a, Vec<u32>>);

impl HostWrite<'_> {
    pub fn f32(&mut self) -> &mut [f32] {
        bytemuck::cast_slice_mut(&mut self.0)
    }
    pub fn u32(&mut self) -> &mut [u32] {
        &mut self.0
    }
    /// The storage itself, to fill an output made empty by a recorded op (`cpu::queue`).
    pub(crate) fn u32_vec(&mut self) -> &mut Vec<u32> {
        &mut self.0
    }
}
