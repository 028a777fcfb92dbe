//! The compute device in the side panel: which backend the app computes on and why, and a switch
//! between the GPU and the CPU backend that moves the open run over, carrying on from its newest
//! state kept on the host (as recovery from a lost device does), so the trajectory goes on unchanged.

use super::DiffscopeApp;
#[cfg(target_arch = "wasm32")]
use crate::error::Error;
use crate::error::Result;
use crate::tensor::{Backend, Device};
use egui::RichText;

/// What the app knows about its compute device beyond the device itself.
#[derive(Default)]
pub(super) struct Compute {
    /// Why this backend (`auto`'s reasoning, or "asked for").
    pub why: Option<String>,
    /// How to open a device of the other backend: the command line's options (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub options: crate::tensor::DeviceOptions,
    /// The page's WebGPU device, kept while the app computes on the CPU (web).
    #[cfg(target_arch = "wasm32")]
    pub web_gpu: Option<Device>,
}

impl DiffscopeApp {
    /// The device line, why it was chosen, and the backend switch.
    pub(super) fn compute_ui(&mut self, ui: &mut egui::Ui) {
        let Some(d) = &self.device else { return };
        let current = d.backend();
        ui.label(RichText::new(d.describe()).small());
        if let Some(why) = &self.compute.why {
            ui.label(RichText::new(why).small().weak());
        }
        let mut pick = None;
        ui.horizontal(|ui| {
            ui.label("Compute on");
            for (b, label, hover) in [
                (Backend::Gpu, "GPU", "WGSL compute shaders through wgpu"),
                (
                    Backend::Cpu,
                    "CPU",
                    "the CPU backend: the same kernels on this machine's cores",
                ),
            ] {
                let offered = current == b || self.can_open(b);
                if ui
                    .add_enabled(offered, egui::Button::selectable(current == b, label))
                    .on_hover_text(hover)
                    .on_disabled_hover_text("this browser granted no WebGPU adapter")
                    .clicked()
                    && current != b
                {
                    pick = Some(b);
                }
            }
        });
        if let Some(b) = pick {
            self.switch_backend(b);
        }
    }

    /// Compute on `backend` from now on, moving the open run over. On failure nothing changes and
    /// the error says why.
    pub(super) fn switch_backend(&mut self, backend: Backend) {
        let moved = self.open_backend(backend).and_then(|device| {
            if let Some(run) = &mut self.run {
                run.resume_on(&device)?;
            }
            Ok(device)
        });
        match moved {
            Ok(device) => {
                #[cfg(target_arch = "wasm32")]
                if let Some(old @ Device::Gpu(_)) = self.device.take() {
                    self.compute.web_gpu = Some(old);
                }
                self.compute.why = Some(format!(
                    "switched to the {} in the app",
                    backend_words(backend)
                ));
                self.device = Some(device);
                self.device_lost = false;
                self.error = None;
            }
            Err(e) => {
                self.error = Some(format!(
                    "could not switch to the {}: {e}",
                    backend_words(backend)
                ))
            }
        }
    }

    /// Whether a device of `backend` can be had: natively it is tried when asked for (and says why
    /// not); in the browser the GPU is the page's WebGPU device, there or not.
    fn can_open(&self, backend: Backend) -> bool {
        #[cfg(target_arch = "wasm32")]
        if backend == Backend::Gpu {
            return self.compute.web_gpu.is_some();
        }
        let _ = backend;
        true
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn open_backend(&self, backend: Backend) -> Result<Device> {
        let opts = crate::tensor::DeviceOptions {
            backend: Some(backend),
            ..self.compute.options.clone()
        };
        Device::open(&opts).map(|o| o.device)
    }

    #[cfg(target_arch = "wasm32")]
    fn open_backend(&self, backend: Backend) -> Result<Device> {
        match backend {
            Backend::Cpu => Ok(Device::Cpu(crate::cpu::Cpu::new(&Default::default()))),
            Backend::Gpu => match (&self.device, &self.compute.web_gpu) {
                (Some(d @ Device::Gpu(_)), _) | (_, Some(d)) => Ok(d.clone()),
                _ => Err(Error::NoAdapter(
                    "this browser granted no WebGPU adapter".into(),
                )),
            },
        }
    }
}

fn backend_words(b: Backend) -> &'static str {
    match b {
        Backend::Gpu => "GPU",
        Backend::Cpu => "CPU backend",
    }
}
