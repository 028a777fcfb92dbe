//! `Device`: where a tensor lives and its ops run — a wgpu device, or the host through the CPU
//! backend. Code above the ops layer (networks, processes, pipelines, the app) holds a `Device` and
//! never asks which kind it is, so every model runs on either backend unchanged.

use crate::cpu::{Cpu, CpuOptions};
use crate::error::{Error, Result};
use crate::gpu::{CounterSnapshot, Gpu, GpuOptions};

/// Which kind of backend a [`Device`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Gpu,
    Cpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Backend> {
        match s.to_ascii_lowercase().as_str() {
            "gpu" => Ok(Backend::Gpu),
            "cpu" => Ok(Backend::Cpu),
            other => Err(Error::Invalid(format!(
                "unknown backend {other:?}: expected auto, gpu or cpu"
            ))),
        }
    }
}

/// Which backend to open: a given one, or `None` for auto — a hardware GPU when there is one; else,
/// for now, a software adapter (lavapipe) when there is one, and the CPU backend when there is none.
/// (Auto is meant to prefer the CPU backend over a software rasteriser, which is an order of
/// magnitude slower on the same cores; it will once every op family runs on the CPU.)
#[derive(Clone, Debug, Default)]
pub struct DeviceOptions {
    pub backend: Option<Backend>,
    pub gpu: GpuOptions,
    pub cpu: CpuOptions,
}

impl DeviceOptions {
    /// `auto`, `gpu` or `cpu` (case-insensitive), as `--backend` and `DIFFSCOPE_BACKEND` take it.
    pub fn parse_backend(s: &str) -> Result<Option<Backend>> {
        match s.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            other => other.parse().map(Some),
        }
    }
}

/// A device and why it was chosen (for `info`, the app and bench records).
#[derive(Clone, Debug)]
pub struct Opened {
    pub device: Device,
    pub why: String,
}

/// A compute device; cheap to clone.
#[derive(Clone, Debug)]
pub enum Device {
    Gpu(Gpu),
    Cpu(Cpu),
}

impl From<Gpu> for Device {
    fn from(g: Gpu) -> Device {
        Device::Gpu(g)
    }
}
impl From<&Gpu> for Device {
    fn from(g: &Gpu) -> Device {
        Device::Gpu(g.clone())
    }
}
impl From<Cpu> for Device {
    fn from(c: Cpu) -> Device {
        Device::Cpu(c)
    }
}
impl From<&Cpu> for Device {
    fn from(c: &Cpu) -> Device {
        Device::Cpu(c.clone())
    }
}
impl From<&Device> for Device {
    fn from(d: &Device) -> Device {
        d.clone()
    }
}

impl Device {
    /// Open the backend `opts` asks for (see [`DeviceOptions`]), blocking (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(opts: &DeviceOptions) -> Result<Opened> {
        pollster::block_on(Self::open_async(opts))
    }

    pub async fn open_async(opts: &DeviceOptions) -> Result<Opened> {
        let cpu = || Device::Cpu(Cpu::new(&opts.cpu));
        match opts.backend {
            Some(Backend::Cpu) => Ok(Opened {
                device: cpu(),
                why: "the CPU backend was asked for".into(),
            }),
            Some(Backend::Gpu) => Ok(Opened {
                device: Device::Gpu(Gpu::new_async(&opts.gpu).await?),
                why: "a GPU was asked for".into(),
            }),
            None => match Gpu::new_async(&opts.gpu).await {
                Ok(g) if !g.is_software() => {
                    let name = g.summary().name;
                    Ok(Opened {
                        device: Device::Gpu(g),
                        why: format!("auto: {name} is a hardware GPU"),
                    })
                }
                // An adapter asked for by name is taken even when it is a software one.
                Ok(g) if adapter_asked_for(&opts.gpu) => Ok(Opened {
                    why: format!(
                        "auto: the adapter asked for ({}) was taken",
                        g.summary().name
                    ),
                    device: Device::Gpu(g),
                }),
                // A software rasteriser (lavapipe, SwiftShader; in a browser a fallback WebGPU
                // adapter) is several times slower than the CPU backend on the same cores — natively
                // `diffscope bench --compare-backends`, in the page 7–20× per step (the issue notes).
                Ok(g) => Ok(Opened {
                    why: format!(
                        "auto: the only GPU adapter is a software rasteriser ({}); the CPU \
                         backend is faster (--backend gpu takes the adapter)",
                        g.summary().name
                    ),
                    device: cpu(),
                }),
                // An adapter asked for by name that cannot be opened is the user's error to see.
                Err(e) if adapter_asked_for(&opts.gpu) => Err(e),
                Err(e) => Ok(Opened {
                    why: format!("auto: no usable GPU ({e})"),
                    device: cpu(),
                }),
            },
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Device::Gpu(_) => Backend::Gpu,
            Device::Cpu(_) => Backend::Cpu,
        }
    }

    /// The wgpu device, if this is one.
    pub fn gpu(&self) -> Option<&Gpu> {
        match self {
            Device::Gpu(g) => Some(g),
            Device::Cpu(_) => None,
        }
    }

    pub fn cpu(&self) -> Option<&Cpu> {
        match self {
            Device::Cpu(c) => Some(c),
            Device::Gpu(_) => None,
        }
    }

    /// The same device (not merely the same kind): tensors of one op must share it.
    pub fn same(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Gpu(a), Device::Gpu(b)) => a.same(b),
            (Device::Cpu(a), Device::Cpu(b)) => a == b,
            _ => false,
        }
    }

    /// Runs `f`, one reverse step's ops: on the CPU backend on the thread pool with its other threads
    /// kept ready ([`crate::cpu::parallel::run_step`]), elsewhere where it is called.
    pub fn run_step<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self {
            Device::Cpu(_) => crate::cpu::parallel::run_step(f),
            Device::Gpu(_) => f(),
        }
    }

    /// Send recorded work to the device (a reverse step is one submission). The CPU computes as ops
    /// are called, so there it does nothing.
    pub fn submit(&self) {
        if let Device::Gpu(g) = self {
            g.submit();
        }
    }

    /// Wait until submitted work has finished (native only: the web cannot block).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_idle(&self) -> Result<()> {
        match self {
            Device::Gpu(g) => g.wait_idle(),
            Device::Cpu(_) => Ok(()),
        }
    }

    /// Surface an asynchronous device failure (lost device, uncaught validation error).
    pub fn check(&self) -> Result<()> {
        match self {
            Device::Gpu(g) => g.check(),
            Device::Cpu(_) => Ok(()),
        }
    }

    /// Why the device was lost, if it was (a CPU is never lost).
    pub fn lost(&self) -> Option<String> {
        self.gpu().and_then(Gpu::lost)
    }

    /// A one-line description: the adapter and its API, or the CPU and its threads.
    pub fn describe(&self) -> String {
        match self {
            Device::Gpu(g) => {
                let s = g.summary();
                format!("{} ({}, {})", s.name, s.backend, s.device_type)
            }
            Device::Cpu(c) => c.describe(),
        }
    }

    /// A GPU that is a software rasteriser (lavapipe, SwiftShader, WARP).
    pub fn is_software_gpu(&self) -> bool {
        self.gpu().is_some_and(Gpu::is_software)
    }

    /// The largest single tensor this device holds, in bytes.
    pub fn max_tensor_bytes(&self) -> u64 {
        match self {
            Device::Gpu(g) => g.max_binding() & !3,
            Device::Cpu(_) => crate::cpu::MAX_TENSOR_BYTES,
        }
    }

    /// The GPU's work counters (submissions, dispatches, bind groups, bytes moved); zero on the CPU,
    /// which records nothing.
    pub fn counters(&self) -> CounterSnapshot {
        match self {
            Device::Gpu(g) => g.counters(),
            Device::Cpu(_) => CounterSnapshot::default(),
        }
    }

    /// Release pooled memory no tensor uses (GPU; host memory is freed as tensors drop).
    pub fn trim(&self) {
        if let Device::Gpu(g) = self {
            g.trim();
        }
    }
}

/// Did the user name an adapter (option or `DIFFSCOPE_ADAPTER`)?
fn adapter_asked_for(opts: &GpuOptions) -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    let from_env = std::env::var("DIFFSCOPE_ADAPTER").is_ok_and(|s| !s.is_empty());
    #[cfg(target_arch = "wasm32")]
    let from_env = false;
    opts.adapter.is_some() || from_env
}
