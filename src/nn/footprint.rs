//! What a network needs in memory for one forward pass at a batch size, estimated from its config
//! before anything is allocated, and checked against the device: on a GPU the largest single
//! tensor must fit one storage binding; on the CPU backend the weights plus the activations alive
//! at the peak must fit the memory the system has available. A model too big is a message with the
//! numbers, not an allocation failure deep inside a step.

use crate::error::{Error, Result};
use crate::tensor::Device;

/// A forward pass's memory at one batch size.
#[derive(Clone, Debug, PartialEq)]
pub struct Footprint {
    /// The weights, as the device holds them (f32).
    pub param_bytes: u64,
    /// The largest single tensor of the pass and what it is.
    pub largest_bytes: u64,
    pub largest: String,
    /// Activations alive at once at the peak (kept skip connections plus working tensors).
    pub peak_bytes: u64,
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

impl Footprint {
    /// Whether `device` can run this pass: `model` and `batch` name it in the error.
    pub fn check(&self, device: &Device, model: &str, batch: usize) -> Result<()> {
        match device {
            Device::Gpu(g) => {
                let limit = g.max_binding();
                if self.largest_bytes > limit {
                    return Err(Error::Invalid(format!(
                        "{model} at batch {batch} is too large for this device: its largest \
                         tensor ({}) needs {}, and the device allows {} per buffer \
                         (weights {}, activations at the peak ≈ {}); use a smaller batch",
                        self.largest,
                        mb(self.largest_bytes),
                        mb(limit),
                        mb(self.param_bytes),
                        mb(self.peak_bytes)
                    )));
                }
            }
            Device::Cpu(_) => {
                if let Some(avail) = available_memory() {
                    let need = self.param_bytes + self.peak_bytes;
                    if need > avail {
                        return Err(Error::Invalid(format!(
                            "{model} at batch {batch} needs ≈ {} (weights {}, activations at the \
                             peak ≈ {}, the largest tensor {} {}), and {} of memory is available; \
                             use a smaller batch",
                            mb(need),
                            mb(self.param_bytes),
                            mb(self.peak_bytes),
                            self.largest,
                            mb(self.largest_bytes),
                            mb(avail)
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The memory the system can give this process (Linux's MemAvailable); `None` where unknown.
fn available_memory() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}
