//! Async readback that never blocks the web: a staging copy is mapped with `map_async`; the result is
//! ready when the callback fires (driven by `device.poll` natively, by the browser on the web).

use super::pool::PooledBuffer;
use super::Gpu;
use crate::error::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

enum MapState {
    Pending(Option<Waker>),
    Mapped(std::result::Result<(), String>),
    Done,
}

/// Bytes on their way back from the GPU.
pub struct Readback {
    gpu: Gpu,
    staging: Option<PooledBuffer>,
    size: u64,
    bytes: u64,
    state: Arc<Mutex<MapState>>,
}

impl Readback {
    pub(crate) fn start(gpu: Gpu, staging: PooledBuffer, size: u64, bytes: u64) -> Readback {
        let state = Arc::new(Mutex::new(MapState::Pending(None)));
        let s = state.clone();
        staging
            .buffer
            .map_async(wgpu::MapMode::Read, 0..size, move |r| {
                let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
                let waker = match &mut *st {
                    MapState::Pending(w) => w.take(),
                    _ => None,
                };
                *st = MapState::Mapped(r.map_err(|e| e.to_string()));
                drop(st);
                if let Some(w) = waker {
                    w.wake();
                }
            });
        Readback {
            gpu,
            staging: Some(staging),
            size,
            bytes,
            state,
        }
    }

    /// The bytes if the GPU has finished, without blocking. Returns `None` while pending; after it has
    /// returned `Some` once, later calls return an error.
    pub fn try_take(&mut self) -> Option<Result<Vec<u8>>> {
        self.gpu.poll();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *st, MapState::Done) {
            MapState::Pending(w) => {
                *st = MapState::Pending(w);
                None
            }
            MapState::Done => Some(Err(Error::Readback("already taken".into()))),
            MapState::Mapped(Err(e)) => Some(Err(match self.gpu.lost() {
                Some(why) => Error::DeviceLost(why),
                None => Error::Readback(e),
            })),
            MapState::Mapped(Ok(())) => {
                drop(st);
                Some(self.finish())
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let staging = self
            .staging
            .take()
            .ok_or_else(|| Error::Readback("already taken".into()))?;
        let out = {
            let view = staging
                .buffer
                .get_mapped_range(0..self.size)
                .map_err(|e| Error::Readback(e.to_string()))?;
            view[..self.bytes as usize].to_vec()
        };
        staging.buffer.unmap();
        self.gpu.release_staging(staging);
        Ok(out)
    }

    /// Block until the bytes arrive (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(mut self) -> Result<Vec<u8>> {
        loop {
            if let Some(r) = self.try_take() {
                return r;
            }
            // A lost device may never call back: don't wait for it.
            if let Some(why) = self.gpu.lost() {
                return Err(Error::DeviceLost(why));
            }
            self.gpu
                .device()
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Readback(e.to_string()))?;
        }
    }
}

impl Future for Readback {
    type Output = Result<Vec<u8>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(r) = this.try_take() {
            return Poll::Ready(r);
        }
        {
            let mut st = this.state.lock().unwrap_or_else(|p| p.into_inner());
            if let MapState::Pending(w) = &mut *st {
                *w = Some(cx.waker().clone());
            }
        }
        // Natively nobody else drives the device: ask to be polled again.
        #[cfg(not(target_arch = "wasm32"))]
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Readback {
    fn drop(&mut self) {
        // A staging buffer still mapping is simply dropped (not pooled): it may be mapped later.
        if let Some(st) = self.staging.take() {
            let done = matches!(
                *self.state.lock().unwrap_or_else(|p| p.into_inner()),
                MapState::Mapped(Ok(()))
            );
            if done {
                st.buffer.unmap();
                self.gpu.release_staging(st);
            }
        }
    }
}
