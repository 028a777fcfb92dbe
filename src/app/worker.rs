//! A reverse step computed off the UI thread.
//!
//! On a GPU, recording a step takes microseconds and the frame loop then polls its readbacks. On the
//! native CPU backend an op computes when it is called, so a step recorded on the UI thread would
//! freeze the window for the whole step (100+ ms for an image model at batch 16): natively a CPU
//! step runs on a thread of its own, and the frame loop polls for its result as it polls a readback.
//! The page has one thread (no cross-origin isolation, no workers sharing the model), so there the
//! CPU backend records ops as a GPU does (`cpu::queue`): the step is recorded at once, and each
//! frame's readback polls run it a slice of a few milliseconds at a time.

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

/// A run's step on a worker thread (CPU backend, natively): when it lands, the run after the step
/// and the readbacks of its results. Every family's app-side session holds one.
pub(super) struct Stepping<R, P>(Option<Worker<crate::Result<(R, P)>>>);

impl<R, P> Default for Stepping<R, P> {
    fn default() -> Self {
        Stepping(None)
    }
}

impl<R, P> Stepping<R, P>
where
    R: wgpu::WasmNotSend + 'static,
    P: wgpu::WasmNotSend + 'static,
{
    /// A step is computing.
    pub fn busy(&self) -> bool {
        self.0.is_some()
    }

    /// Forget the step in flight (the run was replaced).
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// Install a finished step into `run` and `pending`; `Ok(true)` while it still computes.
    pub fn land(&mut self, run: &mut R, pending: &mut Option<P>) -> crate::Result<bool> {
        let Some(w) = &mut self.0 else {
            return Ok(false);
        };
        let Some(r) = w.poll() else {
            return Ok(true);
        };
        self.0 = None;
        let (r, p) = r?;
        *run = r;
        *pending = Some(p);
        Ok(false)
    }

    /// Start `f` (one step of a clone of the run, returning it with its readbacks) on `device`:
    /// on a GPU it lands at once (recorded, then submitted with the readbacks); on the CPU backend
    /// natively a later [`Stepping::land`] collects it.
    pub fn launch<F>(
        &mut self,
        device: &Device,
        f: F,
        run: &mut R,
        pending: &mut Option<P>,
    ) -> crate::Result<()>
    where
        F: FnOnce() -> crate::Result<(R, P)> + wgpu::WasmNotSend + 'static,
    {
        self.0 = Some(run_step(device, f));
        self.land(run, pending).map(|_| ())
    }
}
