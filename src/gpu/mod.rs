//! The GPU runtime: adapter choice, device limits, pooled buffers, cached pipelines, command batching
//! and async readback. It knows nothing of models or diffusion.
//!
//! Work is *recorded* (dispatches, copies) into the [`Gpu`]'s open batch and reaches the GPU only at
//! [`Gpu::submit`] — so a reverse step of any model is one submission. Kernel parameters are appended
//! to a per-batch arena and bound by dynamic offset, which keeps bind groups reusable across steps.

mod adapter;
mod batch;
mod buffer;
mod counters;
mod device;
mod kernel;
mod pool;
mod readback;
pub mod wgsl;

pub use adapter::{AdapterSummary, GpuOptions, LimitCaps};
pub use buffer::GpuBuffer;
pub use counters::CounterSnapshot;
pub use kernel::{Access, KernelSpec};
pub use readback::Readback;

use batch::Cmd;
use counters::Counters;
pub(crate) use device::DeviceErrors;
use kernel::KernelCache;
use pool::BufferPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Largest parameter block a kernel may take (bytes). Also the arena slot size.
pub const MAX_PARAMS: u64 = 256;
/// Parameter slots per arena; a batch that records more dispatches is flushed early (still correct,
/// one extra submission).
const ARENA_SLOTS: u64 = 4096;

/// Workgroups per grid dimension that every WebGPU device supports.
pub const MAX_GROUPS_PER_DIM: u32 = 65535;

#[derive(Default)]
struct State {
    pool: BufferPool,
    kernels: KernelCache,
    cmds: Vec<Cmd>,
    params: Vec<u8>,
    /// Kernel choices made by tuning at first use, per device (e.g. the matmul tile shape).
    tuned: HashMap<String, String>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    adapter_features: wgpu::Features,
    arena: wgpu::Buffer,
    param_align: u64,
    counters: Counters,
    state: Mutex<State>,
    /// Per-kernel wall time when profiling (native): (family::entry) → (dispatches, seconds).
    profile: Mutex<Option<std::collections::BTreeMap<String, (u64, f64)>>>,
    /// Parameter slots in the arena (fewer than `ARENA_SLOTS` on a device with a small buffer limit).
    arena_slots: u64,
    errors: Arc<DeviceErrors>,
    /// How this device was opened, so that a lost one can be replaced by an equivalent one.
    origin: Origin,
}

#[derive(Clone, Default)]
struct Origin {
    opts: GpuOptions,
    caps: LimitCaps,
}

/// A handle to the device and its runtime state; cheap to clone.
#[derive(Clone)]
pub struct Gpu(Arc<Inner>);

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({} / {:?})", self.0.info.name, self.0.info.backend)
    }
}

impl Gpu {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent enough to go on (caches only).
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
