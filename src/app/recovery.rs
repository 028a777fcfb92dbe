//! A lost compute device (driver reset, GPU removed, out of memory, destroyed): open a new one, move
//! the open run onto it, and carry on from the newest state kept on the host. Every family's
//! trajectory is a pure function of its settings and the state it resumes from, so the run goes on
//! exactly as it would have.

use super::DiffscopeApp;
use crate::gpu::Gpu;

impl DiffscopeApp {
    /// Open a new device and resume the open run on it; on failure the error is shown and the
    /// button stays, so it can be tried again.
    pub(super) fn recover_device(&mut self) {
        #[cfg(not(target_arch = "wasm32"))]
        let fresh = match &self.gpu {
            Some(g) => g.recreate(),
            None => Gpu::new(&Default::default()),
        };
        #[cfg(target_arch = "wasm32")]
        let fresh: crate::Result<Gpu> = Err(crate::Error::DeviceLost(
            "reload the page to get a new WebGPU device".into(),
        ));
        let resumed = fresh.and_then(|gpu| {
            if let Some(run) = &mut self.run {
                run.resume_on(&gpu)?;
            }
            Ok(gpu)
        });
        match resumed {
            Ok(gpu) => {
                self.gpu = Some(gpu);
                self.error = None;
                self.device_lost = false;
                self.timeline.playing = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }
}
