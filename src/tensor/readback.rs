//! A tensor's contents on their way back to the host: a GPU readback in flight, or host memory
//! that is ready at once.

use crate::cpu::Cpu;
use crate::error::{Error, Result};
use crate::gpu::Readback;
use crate::tensor::{DType, HostBuffer};
use std::sync::Arc;

enum Inner {
    Gpu(Readback),
    Ready(Option<Result<Vec<u8>>>),
    /// Host memory of this many words that a recorded op still has to fill (a deferred CPU
    /// backend).
    Recorded(Cpu, Arc<HostBuffer>, usize),
}

/// A tensor's contents on their way back to the host.
pub struct TensorReadback {
    inner: Inner,
    dtype: DType,
}

impl TensorReadback {
    pub(crate) fn pending(r: Readback, dtype: DType) -> TensorReadback {
        TensorReadback {
            inner: Inner::Gpu(r),
            dtype,
        }
    }
    pub(crate) fn ready(bytes: Result<Vec<u8>>, dtype: DType) -> TensorReadback {
        TensorReadback {
            inner: Inner::Ready(Some(bytes)),
            dtype,
        }
    }

    pub(crate) fn recorded(
        cpu: Cpu,
        buf: Arc<HostBuffer>,
        words: usize,
        dtype: DType,
    ) -> TensorReadback {
        TensorReadback {
            inner: Inner::Recorded(cpu, buf, words),
            dtype,
        }
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    fn try_bytes(&mut self) -> Option<Result<Vec<u8>>> {
        match &mut self.inner {
            Inner::Gpu(r) => r.try_take(),
            Inner::Ready(b) => Some(
                b.take()
                    .unwrap_or_else(|| Err(Error::Readback("already taken".into()))),
            ),
            // A slice of the recorded ops per poll, so the caller's frame goes on; ready once
            // the op that fills this copy has run.
            Inner::Recorded(cpu, buf, words) => {
                let filled = |b: &HostBuffer| b.read().map(|r| r.u32().len() == *words);
                match filled(buf) {
                    Ok(true) => return Some(host_bytes(buf)),
                    Ok(false) => {}
                    Err(e) => return Some(Err(e)),
                }
                if let Err(e) = cpu.run_slice() {
                    return Some(Err(e));
                }
                match filled(buf) {
                    Ok(true) => Some(host_bytes(buf)),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                }
            }
        }
    }

    /// f32 contents if ready (never blocks).
    pub fn try_f32(&mut self) -> Option<Result<Vec<f32>>> {
        self.try_bytes()
            .map(|r| r.map(|b| bytemuck::pod_collect_to_vec(&b)))
    }
    pub fn try_u32(&mut self) -> Option<Result<Vec<u32>>> {
        self.try_bytes()
            .map(|r| r.map(|b| bytemuck::pod_collect_to_vec(&b)))
    }

    async fn bytes(self) -> Result<Vec<u8>> {
        match self.inner {
            Inner::Gpu(r) => r.await,
            Inner::Ready(b) => b.unwrap_or_else(|| Err(Error::Readback("already taken".into()))),
            Inner::Recorded(cpu, buf, _) => {
                cpu.flush()?;
                host_bytes(&buf)
            }
        }
    }
    pub async fn f32(self) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.bytes().await?))
    }
    pub async fn u32(self) -> Result<Vec<u32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.bytes().await?))
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn wait(self) -> Result<Vec<u8>> {
        match self.inner {
            Inner::Gpu(r) => r.wait(),
            Inner::Ready(b) => b.unwrap_or_else(|| Err(Error::Readback("already taken".into()))),
            Inner::Recorded(cpu, buf, _) => {
                cpu.flush()?;
                host_bytes(&buf)
            }
        }
    }
    /// Block until the f32 contents arrive (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_f32(self) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.wait()?))
    }
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_u32(self) -> Result<Vec<u32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.wait()?))
    }
}

fn host_bytes(buf: &HostBuffer) -> Result<Vec<u8>> {
    buf.read().map(|w| bytemuck::cast_slice(w.u32()).to_vec())
}
