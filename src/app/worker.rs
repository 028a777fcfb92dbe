//! A reverse step computed off the UI thread.
//!
//! On a GPU, recording a step takes microseconds and the frame loop then polls its readbacks. On the
//! CPU backend nothing is queued: an op computes when it is called, so a step recorded on the UI
//! thread would freeze the window for the whole step (100+ ms for an image model at batch 16). So
//! natively a CPU step runs on a thread of its own, and the frame loop polls for its result as it
//! polls a readback. In the browser the page has one thread (no cross-origin isolation, no workers
//! sharing the model), so there the step runs at once, as before.

use crate::tensor::Device;

/// One step's result: at once (GPU, or the browser), or from a worker thread.
pub(super) enum Worker<T> {
    Ready(Option<T>),
    #[cfg(not(target_arch = "wasm32"))]
    Thread(std::sync::mpsc::Receiver<T>),
}

/// Run `f` for a step on `device`: on a thread when that is the CPU backend natively, else now.
pub(super) fn run_step<T, F>(device: &Device, f: F) -> Worker<crate::Result<T>>
where
    T: wgpu::WasmNotSend + 'static,
    F: FnOnce() -> crate::Result<T> + wgpu::WasmNotSend + 'static,
{
    #[cfg(not(target_arch = "wasm32"))]
    if device.backend() == crate::tensor::Backend::Cpu {
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("diffscope-step".into())
            .spawn(move || {
                // The receiver is gone when the run was replaced meanwhile: nothing to deliver.
                let _ = tx.send(f());
            });
        return match spawned {
            Ok(_) => Worker::Thread(rx),
            Err(e) => Worker::Ready(Some(Err(crate::Error::Internal(format!(
                "could not start a thread for the step: {e}"
            ))))),
        };
    }
    let _ = device;
    Worker::Ready(Some(f()))
}

impl<T> Worker<crate::Result<T>> {
    /// The result once it is there; never waits.
    pub(super) fn poll(&mut self) -> Option<crate::Result<T>> {
        match self {
            Worker::Ready(v) => v.take(),
            #[cfg(not(target_arch = "wasm32"))]
            Worker::Thread(rx) => match rx.try_recv() {
                Ok(v) => Some(v),
                Err(std::sync::mpsc::TryRecvError::Empty) => None,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => Some(Err(
                    crate::Error::Internal("the step's thread stopped without a result".into()),
                )),
            },
        }
    }
}
