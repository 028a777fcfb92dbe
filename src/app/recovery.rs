//! A lost compute device (driver reset, GPU removed, out of memory, destroyed): open a new one, move
//! the open run onto it, and carry on from the newest state kept on the host. Every family's
//! trajectory is a pure function of its settings and the state it resumes from, so the run goes on
//! exactly as it would have. (The CPU backend is never lost.)

use super::DiffscopeApp;
use crate::tensor::Device;

impl DiffscopeApp {
    /// Open a new device and resume the open run on it; on failure the error is shown and the
    /// button stays, so it can be tried again.
    pub(super) fn recover_device(&mut self) {
        #[cfg(not(target_arch = "wasm32"))]
        let fresh = match &self.device {
            Some(Device::Gpu(g)) => g.recreate().map(Device::Gpu),
            Some(d @ Device::Cpu(_)) => Ok(d.clone()),
            None => Device::open(&Default::default()).map(|o| o.device),
        };
        #[cfg(target_arch = "wasm32")]
        let fresh: crate::Result<Device> = Err(crate::Error::DeviceLost(
            "reload the page to get a new WebGPU device".into(),
        ));
        let resumed = fresh.and_then(|device| {
            if let Some(run) = &mut self.run {
                run.resume_on(&device)?;
            }
            Ok(device)
        });
        match resumed {
            Ok(device) => {
                self.device = Some(device);
                self.error = None;
                self.device_lost = false;
                self.timeline.playing = true;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }
}
