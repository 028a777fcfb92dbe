//! Pooled storage buffers: allocation within the device's limits, host writes, release.

use super::counters::Counters;
use super::pool::{self, PooledBuffer};
use super::Gpu;
use crate::error::{Error, Result};

/// A GPU buffer from the pool; returns to the pool when the last handle drops.
pub struct GpuBuffer {
    pooled: Option<PooledBuffer>,
    gpu: Gpu,
}

impl GpuBuffer {
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.pooled.as_ref().expect("live buffer").buffer
    }
    pub(crate) fn id(&self) -> u64 {
        self.pooled.as_ref().expect("live buffer").id
    }
    /// Capacity in bytes (the size class, at least what was asked for).
    pub fn capacity(&self) -> u64 {
        self.pooled.as_ref().expect("live buffer").class
    }
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.pooled.take() {
            self.gpu.state().pool.release(b);
        }
    }
}

impl Gpu {
    /// The largest storage binding the device allows, in bytes.
    pub fn max_binding(&self) -> u64 {
        (self.0.limits.max_storage_buffer_binding_size).min(self.0.limits.max_buffer_size)
    }

    /// A pooled storage buffer of at least `bytes`. `what` names it in the error when it is too large.
    pub fn alloc(&self, bytes: u64, what: &str) -> Result<GpuBuffer> {
        // Buffers are bound whole, so a buffer may not exceed the binding limit (in 4-byte units).
        let limit = self.max_binding() & !3;
        if bytes > limit {
            return Err(Error::TooLarge {
                what: what.to_string(),
                bytes,
                limit,
            });
        }
        let (pooled, created) = {
            let mut st = self.state();
            st.pool
                .acquire(&self.0.device, bytes, limit, pool::STORAGE_USAGE)
        };
        if created {
            Counters::add(&self.0.counters.buffers_created, 1);
        }
        Ok(GpuBuffer {
            pooled: Some(pooled),
            gpu: self.clone(),
        })
    }

    /// Write host data into `buf` at `offset`. Pending recorded work is submitted first, so the write
    /// can never overtake commands that read the old contents.
    pub fn write(&self, buf: &GpuBuffer, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let pending = !self.state().cmds.is_empty();
        if pending {
            self.submit();
        }
        self.write_unrecorded(buf, offset, data);
    }

    /// Write host data into a buffer that no recorded-but-unsubmitted command uses — one just taken
    /// from the pool (released buffers are retired until the next submission, so a fresh one never
    /// is). No flush is needed: `write_buffer` lands after all submitted work and before the pending
    /// commands, none of which touch it. This keeps a step that uploads host data mid-recording (a
    /// graph step's structural features) one submission.
    pub(crate) fn write_unrecorded(&self, buf: &GpuBuffer, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // write_buffer needs a multiple of 4 bytes.
        if data.len().is_multiple_of(4) {
            self.0.queue.write_buffer(buf.raw(), offset, data);
        } else {
            let mut padded = data.to_vec();
            padded.resize(data.len().next_multiple_of(4), 0);
            self.0.queue.write_buffer(buf.raw(), offset, &padded);
        }
        Counters::add(&self.0.counters.bytes_uploaded, data.len() as u64);
    }
    pub(crate) fn release_staging(&self, b: PooledBuffer) {
        self.state().pool.release(b);
    }

    /// Release pooled memory that no tensor uses (e.g. after switching models).
    pub fn trim(&self) {
        let mut st = self.state();
        st.pool.recycle();
        st.pool.trim();
        st.kernels.clear_bind_groups();
    }

    /// Bytes held by free pooled buffers.
    pub fn pooled_free_bytes(&self) -> u64 {
        self.state().pool.free_bytes()
    }
}
