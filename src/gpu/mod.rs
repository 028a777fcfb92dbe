//! The GPU runtime: adapter choice, device limits, pooled buffers, cached pipelines, command batching
//! and async readback. It knows nothing of models or diffusion.
//!
//! Work is *recorded* (dispatches, copies) into the [`Gpu`]'s open batch and reaches the GPU only at
//! [`Gpu::submit`] — so a reverse step of any model is one submission. Kernel parameters are appended
//! to a per-batch arena and bound by dynamic offset, which keeps bind groups reusable across steps.

mod counters;
mod kernel;
mod pool;
mod readback;

pub use counters::CounterSnapshot;
pub use kernel::{Access, KernelSpec};
pub use readback::Readback;

use crate::error::{Error, Result};
use counters::Counters;
use kernel::{Kernel, KernelCache};
use pool::{BufferPool, PooledBuffer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Largest parameter block a kernel may take (bytes). Also the arena slot size.
pub const MAX_PARAMS: u64 = 256;
/// Parameter slots per arena; a batch that records more dispatches is flushed early (still correct,
/// one extra submission).
const ARENA_SLOTS: u64 = 4096;

/// Workgroups per grid dimension that every WebGPU device supports.
pub const MAX_GROUPS_PER_DIM: u32 = 65535;

/// How to pick the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Case-insensitive substring of the adapter name or backend (`"llvmpipe"`, `"vulkan"`, `"gl"`), or
    /// `"cpu"`/`"software"` for a software adapter, `"gpu"`/`"hardware"` for a real one. `None` reads the
    /// `DIFFSCOPE_ADAPTER` environment variable; unset means: the best hardware GPU, else anything.
    pub adapter: Option<String>,
}

/// Device limits lower than the adapter's, e.g. to prove in tests that a model too large for a device
/// is refused with a clear message (a real device with small limits behaves the same way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitCaps {
    pub max_storage_buffer_binding_size: Option<u64>,
    pub max_buffer_size: Option<u64>,
}

impl LimitCaps {
    fn apply(&self, limits: &mut wgpu::Limits) {
        if let Some(v) = self.max_storage_buffer_binding_size {
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(v);
        }
        if let Some(v) = self.max_buffer_size {
            limits.max_buffer_size = limits.max_buffer_size.min(v);
        }
    }
}

/// What a user needs to know about the adapter in use.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

impl From<&wgpu::AdapterInfo> for AdapterSummary {
    fn from(i: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: i.name.clone(),
            backend: format!("{:?}", i.backend),
            device_type: format!("{:?}", i.device_type),
            driver: i.driver.clone(),
            driver_info: i.driver_info.clone(),
        }
    }
}

/// A GPU buffer from the pool; returns to the pool when the last handle drops.
pub struct GpuBuffer {
    pooled: Option<PooledBuffer>,
    gpu: Gpu,
}

impl GpuBuffer {
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.pooled.as_ref().expect("live buffer").buffer
    }
    pub(crate) fn id(&self) -> u64 {
        self.pooled.as_ref().expect("live buffer").id
    }
    /// Capacity in bytes (the size class, at least what was asked for).
    pub fn capacity(&self) -> u64 {
        self.pooled.as_ref().expect("live buffer").class
    }
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.pooled.take() {
            self.gpu.state().pool.release(b);
        }
    }
}

enum Cmd {
    Dispatch {
        kernel: Arc<Kernel>,
        bind_group: Arc<wgpu::BindGroup>,
        offset: u32,
        groups: [u32; 3],
    },
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
    Clear {
        buffer: wgpu::Buffer,
        size: u64,
    },
}

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

/// Errors wgpu reports outside an error scope, and whether the device is lost. Written by wgpu's
/// callbacks (any thread), read by [`Gpu::check`].
#[derive(Default)]
pub(crate) struct DeviceErrors {
    /// The first uncaptured error since the last `check`, and how many followed it.
    first: Mutex<Option<(String, u64)>>,
    lost: Mutex<Option<String>>,
}

impl DeviceErrors {
    /// Keep the first error (later ones are usually its consequences) and count the rest.
    pub(crate) fn record(&self, text: String) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *first {
            Some((_, more)) => *more += 1,
            None => *first = Some((text, 0)),
        }
    }
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

/// An error and its causes on one line: wgpu's own message says only "Validation Error"; the cause
/// (which resource, which usage conflict) is in the source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    let mut text: Vec<String> = Vec::new();
    for p in parts {
        let p = p.split_whitespace().collect::<Vec<_>>().join(" ");
        if !p.is_empty() && !text.iter().any(|t| t.contains(&p)) {
            text.push(p);
        }
    }
    text.join(": ")
}

/// What every diffscope kernel needs from a device; checked up front so a weak adapter gets a clear
/// error instead of a failure deep inside a model.
fn check_requirements(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> Result<()> {
    let need: [(&str, u64, u64); 5] = [
        (
            "max_storage_buffers_per_shader_stage",
            6,
            limits.max_storage_buffers_per_shader_stage as u64,
        ),
        (
            "max_compute_invocations_per_workgroup",
            256,
            limits.max_compute_invocations_per_workgroup as u64,
        ),
        (
            "max_compute_workgroup_storage_size",
            16384,
            limits.max_compute_workgroup_storage_size as u64,
        ),
        (
            "max_compute_workgroup_size_x",
            256,
            limits.max_compute_workgroup_size_x as u64,
        ),
        (
            "max_dynamic_uniform_buffers_per_pipeline_layout",
            1,
            limits.max_dynamic_uniform_buffers_per_pipeline_layout as u64,
        ),
    ];
    for (name, want, have) in need {
        if have < want {
            return Err(Error::Unsupported {
                adapter: info.name.clone(),
                what: format!("{name} is {have}, diffscope needs at least {want}"),
            });
        }
    }
    Ok(())
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::BrowserWebGpu => 0,
        _ => 1,
    };
    (ty, backend)
}

/// Does `info` match a user's adapter choice?
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn matches_choice(info: &wgpu::AdapterInfo, choice: &str) -> bool {
    let c = choice.to_lowercase();
    let software = matches!(info.device_type, wgpu::DeviceType::Cpu);
    match c.as_str() {
        "cpu" | "software" => software,
        "gpu" | "hardware" => !software,
        _ => {
            info.name.to_lowercase().contains(&c)
                || format!("{:?}", info.backend).to_lowercase() == c
                || info.driver.to_lowercase().contains(&c)
        }
    }
}

impl Gpu {
    /// Open the best adapter (see [`GpuOptions`]) and a device with the limits diffscope needs.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(opts: &GpuOptions) -> Result<Gpu> {
        pollster::block_on(Self::new_async(opts))
    }

    /// [`Gpu::new`] with device limits capped below the adapter's.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_capped(opts: &GpuOptions, caps: LimitCaps) -> Result<Gpu> {
        pollster::block_on(Self::new_capped_async(opts, caps))
    }

    pub async fn new_async(opts: &GpuOptions) -> Result<Gpu> {
        Self::new_capped_async(opts, LimitCaps::default()).await
    }

    pub async fn new_capped_async(opts: &GpuOptions, caps: LimitCaps) -> Result<Gpu> {
        #[cfg(not(target_arch = "wasm32"))]
        let from_env = std::env::var("DIFFSCOPE_ADAPTER")
            .ok()
            .filter(|s| !s.is_empty());
        #[cfg(target_arch = "wasm32")]
        let from_env: Option<String> = None;
        let choice = opts.adapter.clone().or(from_env);
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = Self::pick_adapter(&instance, choice.as_deref()).await?;
        let gpu = Self::from_adapter(&adapter, caps).await?;
        Ok(gpu.with_origin(Origin {
            opts: opts.clone(),
            caps,
        }))
    }

    /// A fresh device opened the way this one was (same adapter choice and limits), e.g. after this
    /// one was lost. Nothing carries over: reload models and re-upload state (host copies of a
    /// trajectory make that possible). A device shared with eframe is replaced by a standalone one.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn recreate(&self) -> Result<Gpu> {
        pollster::block_on(self.recreate_async())
    }

    pub async fn recreate_async(&self) -> Result<Gpu> {
        Self::new_capped_async(&self.0.origin.opts, self.0.origin.caps).await
    }

    #[cfg(not(target_arch = "wasm32"))]
    async fn pick_adapter(
        instance: &wgpu::Instance,
        choice: Option<&str>,
    ) -> Result<wgpu::Adapter> {
        let all = instance.enumerate_adapters(wgpu::Backends::all()).await;
        if all.is_empty() {
            return Err(Error::NoAdapter(
                "no Vulkan, Metal, DX12 or GL adapter was found; on Debian without a GPU install \
                 Mesa's software Vulkan: apt-get install mesa-vulkan-drivers"
                    .into(),
            ));
        }
        let names: Vec<String> = all
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
            })
            .collect();
        let mut usable: Vec<wgpu::Adapter> = all
            .into_iter()
            .filter(|a| {
                a.get_downlevel_capabilities()
                    .flags
                    .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
            })
            .filter(|a| choice.is_none_or(|c| matches_choice(&a.get_info(), c)))
            .collect();
        usable.sort_by_key(|a| rank(&a.get_info()));
        usable.into_iter().next().ok_or_else(|| match choice {
            Some(c) => Error::NoAdapter(format!(
                "no compute-capable adapter matches \"{c}\"; available: {}",
                names.join("; ")
            )),
            None => Error::NoAdapter(format!(
                "no adapter supports compute shaders; available: {}",
                names.join("; ")
            )),
        })
    }

    #[cfg(target_arch = "wasm32")]
    async fn pick_adapter(
        instance: &wgpu::Instance,
        _choice: Option<&str>,
    ) -> Result<wgpu::Adapter> {
        instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::NoAdapter(format!(
                    "this browser offers no WebGPU adapter ({e}); diffscope needs WebGPU for compute"
                ))
            })
    }

    async fn from_adapter(adapter: &wgpu::Adapter, caps: LimitCaps) -> Result<Gpu> {
        let info = adapter.get_info();
        let mut limits = adapter.limits();
        caps.apply(&mut limits);
        check_requirements(&info, &limits)?;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("diffscope"),
                required_features: wgpu::Features::empty(),
                required_limits: limits,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Device(e.to_string()))?;
        let gpu = Self::from_device(info, device, queue)?;
        Ok(gpu.with_adapter_features(adapter.features()))
    }

    fn with_adapter_features(self, f: wgpu::Features) -> Gpu {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.adapter_features = f;
                Gpu(Arc::new(inner))
            }
            Err(shared) => Gpu(shared),
        }
    }

    fn with_origin(self, origin: Origin) -> Gpu {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.origin = origin;
                Gpu(Arc::new(inner))
            }
            Err(shared) => Gpu(shared),
        }
    }

    /// Features the adapter offers (the device enables only what diffscope asks for).
    pub fn adapter_features(&self) -> wgpu::Features {
        self.0.adapter_features
    }

    /// Share a device someone else opened (eframe's, in the app). Its limits must meet diffscope's
    /// needs: open it with the adapter's own limits.
    pub fn from_device(
        info: wgpu::AdapterInfo,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Result<Gpu> {
        let limits = device.limits();
        check_requirements(&info, &limits)?;
        // Before anything is created: wgpu's default handler panics on the first validation error.
        let errors = Arc::new(DeviceErrors::default());
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let text = error_chain(&e);
            log::error!("wgpu: {text}");
            sink.record(text);
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            log::error!("wgpu: device lost ({reason:?}): {msg}");
            let why = match reason {
                wgpu::DeviceLostReason::Destroyed => "destroyed".to_string(),
                wgpu::DeviceLostReason::Unknown if msg.is_empty() => {
                    "driver reset or GPU removed".into()
                }
                wgpu::DeviceLostReason::Unknown => msg,
            };
            *sink.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        });
        let param_align = (limits.min_uniform_buffer_offset_alignment as u64).max(MAX_PARAMS);
        let arena_slots = ARENA_SLOTS.min(limits.max_buffer_size / param_align).max(1);
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("diffscope params arena"),
            size: param_align * arena_slots,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let adapter_features = device.features();
        Ok(Gpu(Arc::new(Inner {
            device,
            queue,
            adapter_features,
            info,
            limits,
            arena,
            param_align,
            counters: Counters::default(),
            state: Mutex::new(State::default()),
            profile: Mutex::new(None),
            arena_slots,
            errors,
            origin: Origin::default(),
        })))
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.0.device
    }
    pub fn queue(&self) -> &wgpu::Queue {
        &self.0.queue
    }
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.0.info
    }
    pub fn summary(&self) -> AdapterSummary {
        (&self.0.info).into()
    }
    pub fn limits(&self) -> &wgpu::Limits {
        &self.0.limits
    }
    pub fn counters(&self) -> CounterSnapshot {
        self.0.counters.snapshot()
    }
    /// Is this a software rasteriser (lavapipe, SwiftShader, WARP)?
    pub fn is_software(&self) -> bool {
        matches!(self.0.info.device_type, wgpu::DeviceType::Cpu)
    }

    /// The first error wgpu reported outside an error scope since the last call, if any (taken).
    pub fn take_error(&self) -> Option<String> {
        let first = self
            .0
            .errors
            .first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        first.map(|(e, more)| match more {
            0 => e,
            n => format!("{e} (and {n} more errors)"),
        })
    }

    /// Why the device was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.0
            .errors
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Surface what wgpu reported asynchronously: a lost device, or a validation error that no error
    /// scope caught (the results since then may be wrong). Call it after each step that the user
    /// will see.
    pub fn check(&self) -> Result<()> {
        if let Some(why) = self.lost() {
            return Err(Error::DeviceLost(why));
        }
        match self.take_error() {
            Some(e) => Err(Error::Validation(e)),
            None => Ok(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent enough to go on (caches only).
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The largest storage binding the device allows, in bytes.
    pub fn max_binding(&self) -> u64 {
        (self.0.limits.max_storage_buffer_binding_size).min(self.0.limits.max_buffer_size)
    }

    /// A pooled storage buffer of at least `bytes`. `what` names it in the error when it is too large.
    pub fn alloc(&self, bytes: u64, what: &str) -> Result<GpuBuffer> {
        // Buffers are bound whole, so a buffer may not exceed the binding limit (in 4-byte units).
        let limit = self.max_binding() & !3;
        if bytes > limit {
            return Err(Error::TooLarge {
                what: what.to_string(),
                bytes,
                limit,
            });
        }
        let (pooled, created) = {
            let mut st = self.state();
            st.pool
                .acquire(&self.0.device, bytes, limit, pool::STORAGE_USAGE)
        };
        if created {
            Counters::add(&self.0.counters.buffers_created, 1);
        }
        Ok(GpuBuffer {
            pooled: Some(pooled),
            gpu: self.clone(),
        })
    }

    /// Write host data into `buf` at `offset`. Pending recorded work is submitted first, so the write
    /// can never overtake commands that read the old contents.
    pub fn write(&self, buf: &GpuBuffer, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let pending = !self.state().cmds.is_empty();
        if pending {
            self.submit();
        }
        self.write_unrecorded(buf, offset, data);
    }

    /// Write host data into a buffer that no recorded-but-unsubmitted command uses — one just taken
    /// from the pool (released buffers are retired until the next submission, so a fresh one never
    /// is). No flush is needed: `write_buffer` lands after all submitted work and before the pending
    /// commands, none of which touch it. This keeps a step that uploads host data mid-recording (a
    /// graph step's structural features) one submission.
    pub(crate) fn write_unrecorded(&self, buf: &GpuBuffer, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // write_buffer needs a multiple of 4 bytes.
        if data.len().is_multiple_of(4) {
            self.0.queue.write_buffer(buf.raw(), offset, data);
        } else {
            let mut padded = data.to_vec();
            padded.resize(data.len().next_multiple_of(4), 0);
            self.0.queue.write_buffer(buf.raw(), offset, &padded);
        }
        Counters::add(&self.0.counters.bytes_uploaded, data.len() as u64);
    }

    /// Record a dispatch of `spec` over `buffers` with parameter block `params`.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        spec: &KernelSpec<'_>,
        params: &P,
        buffers: &[&GpuBuffer],
        groups: [u32; 3],
    ) -> Result<()> {
        let bytes = bytemuck::bytes_of(params);
        if bytes.len() as u64 > MAX_PARAMS {
            return Err(Error::Invalid(format!(
                "kernel {}::{} has a {}-byte parameter block; the limit is {MAX_PARAMS}",
                spec.family,
                spec.entry,
                bytes.len()
            )));
        }
        if buffers.len() != spec.bindings.len() {
            return Err(Error::Invalid(format!(
                "kernel {}::{} takes {} buffers, got {}",
                spec.family,
                spec.entry,
                spec.bindings.len(),
                buffers.len()
            )));
        }
        let max = self.0.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Invalid(format!(
                "kernel {}::{} needs {groups:?} workgroups; the device allows {max} per dimension",
                spec.family, spec.entry
            )));
        }
        if groups.contains(&0) {
            return Ok(()); // nothing to do, and a zero-sized dispatch is legal but pointless
        }
        let full = {
            let st = self.state();
            st.params.len() as u64 + self.0.param_align > self.0.param_align * self.0.arena_slots
        };
        if full {
            self.submit();
        }
        #[cfg(not(target_arch = "wasm32"))]
        let profiling = self.profiling();
        #[cfg(not(target_arch = "wasm32"))]
        if profiling {
            self.wait_idle()?;
        }
        let mut st = self.state();
        let (kernel, created) = st
            .kernels
            .kernel(&self.0.device, spec, &self.0.errors)
            .map_err(Error::Validation)?;
        if created {
            Counters::add(&self.0.counters.pipelines_created, 1);
        }
        let bufs: Vec<(&wgpu::Buffer, u64)> = buffers.iter().map(|b| (b.raw(), b.id())).collect();
        let (bind_group, bg_created) =
            st.kernels
                .bind_group(&self.0.device, &kernel, &self.0.arena, MAX_PARAMS, &bufs);
        if bg_created {
            Counters::add(&self.0.counters.bind_groups_created, 1);
        }
        let offset = st.params.len() as u32;
        st.params.extend_from_slice(bytes);
        let padded = (offset as u64 + self.0.param_align) as usize;
        st.params.resize(padded, 0);
        st.cmds.push(Cmd::Dispatch {
            kernel,
            bind_group,
            offset,
            groups,
        });
        drop(st);
        Counters::add(&self.0.counters.dispatches, 1);
        #[cfg(not(target_arch = "wasm32"))]
        if profiling {
            let t0 = std::time::Instant::now();
            self.wait_idle()?;
            let secs = t0.elapsed().as_secs_f64();
            let mut p = self.0.profile.lock().unwrap_or_else(|p| p.into_inner());
            let e = p
                .get_or_insert_with(Default::default)
                .entry(format!("{}::{}", spec.family, spec.entry))
                .or_insert((0, 0.0));
            e.0 += 1;
            e.1 += secs;
        }
        Ok(())
    }

    /// Time every dispatch on its own (native; each is submitted and waited for, so the whole run is
    /// slower, but the split between kernels is what a profile is for).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set_profiling(&self, on: bool) {
        *self.0.profile.lock().unwrap_or_else(|p| p.into_inner()) = on.then(Default::default);
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn profiling(&self) -> bool {
        self.0
            .profile
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Kernel → (dispatches, seconds) since profiling was switched on, slowest first.
    pub fn profile_report(&self) -> Vec<(String, u64, f64)> {
        let p = self.0.profile.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = p
            .iter()
            .flatten()
            .map(|(k, &(n, s))| (k.clone(), n, s))
            .collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    /// Record a buffer-to-buffer copy.
    pub fn copy(
        &self,
        src: &GpuBuffer,
        src_offset: u64,
        dst: &GpuBuffer,
        dst_offset: u64,
        size: u64,
    ) {
        if size == 0 {
            return;
        }
        self.state().cmds.push(Cmd::Copy {
            src: src.raw().clone(),
            src_offset,
            dst: dst.raw().clone(),
            dst_offset,
            size,
        });
    }

    /// Record zero-filling `buf` (its whole capacity).
    pub fn clear(&self, buf: &GpuBuffer) {
        self.state().cmds.push(Cmd::Clear {
            buffer: buf.raw().clone(),
            size: buf.capacity(),
        });
    }

    /// Number of commands recorded and not yet submitted.
    pub fn pending(&self) -> usize {
        self.state().cmds.len()
    }

    /// Submit everything recorded so far as one command buffer. A no-op when nothing is recorded.
    pub fn submit(&self) {
        // The whole submission happens under the state lock: the parameter arena is one buffer, so two
        // threads interleaving "write arena, submit" would hand each other's parameters to the GPU.
        let mut st = self.state();
        if st.cmds.is_empty() {
            st.pool.recycle();
            return;
        }
        let cmds = std::mem::take(&mut st.cmds);
        let params = std::mem::take(&mut st.params);
        if !params.is_empty() {
            self.0.queue.write_buffer(&self.0.arena, 0, &params);
        }
        let mut enc = self
            .0
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("diffscope batch"),
            });
        let mut i = 0;
        while i < cmds.len() {
            match &cmds[i] {
                Cmd::Dispatch { .. } => {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: None,
                    });
                    while let Some(Cmd::Dispatch {
                        kernel,
                        bind_group,
                        offset,
                        groups,
                    }) = cmds.get(i)
                    {
                        pass.set_pipeline(&kernel.pipeline);
                        pass.set_bind_group(0, Some(bind_group.as_ref()), &[*offset]);
                        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                        i += 1;
                    }
                }
                Cmd::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    size,
                } => {
                    enc.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                    i += 1;
                }
                Cmd::Clear { buffer, size } => {
                    enc.clear_buffer(buffer, 0, Some(*size));
                    i += 1;
                }
            }
        }
        self.0.queue.submit([enc.finish()]);
        Counters::add(&self.0.counters.submissions, 1);
        st.pool.recycle();
    }

    /// Submit pending work and copy `bytes` of `buf` back to the host without blocking: poll the
    /// returned [`Readback`] each frame, `.await` it, or (native only) `wait()` on it.
    pub fn read(&self, buf: &GpuBuffer, bytes: u64) -> Readback {
        self.read_many(&[(buf, bytes)])
            .pop()
            .expect("one readback per buffer")
    }

    /// Start reading several buffers back with one submission (the step's own work included): a
    /// reverse step that also shows x̂0 and ε̂ stays one submission.
    pub fn read_many(&self, bufs: &[(&GpuBuffer, u64)]) -> Vec<Readback> {
        let staged: Vec<_> = bufs
            .iter()
            .map(|&(buf, bytes)| (self.stage_copy(buf, bytes), bytes))
            .collect();
        self.submit();
        staged
            .into_iter()
            .map(|((staging, size), bytes)| {
                Counters::add(&self.0.counters.bytes_read_back, bytes);
                Readback::start(self.clone(), staging, size, bytes)
            })
            .collect()
    }

    /// Record a copy of `buf` into a staging buffer (mapped only after the submit).
    fn stage_copy(&self, buf: &GpuBuffer, bytes: u64) -> (pool::PooledBuffer, u64) {
        let size = bytes.next_multiple_of(4).max(4);
        let max = self.0.limits.max_buffer_size & !3;
        let (staging, created) =
            self.state()
                .pool
                .acquire(&self.0.device, size, max, pool::STAGING_USAGE);
        if created {
            Counters::add(&self.0.counters.buffers_created, 1);
        }
        self.state().cmds.push(Cmd::Copy {
            src: buf.raw().clone(),
            src_offset: 0,
            dst: staging.buffer.clone(),
            dst_offset: 0,
            size,
        });
        (staging, size)
    }

    /// Block until all submitted work is done (native only; the web cannot block).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_idle(&self) -> Result<()> {
        self.submit();
        self.0
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Device(e.to_string()))
    }

    /// Drive callbacks without blocking (native; a no-op on the web where the browser does it).
    pub fn poll(&self) {
        let _ = self.0.device.poll(wgpu::PollType::Poll);
    }

    pub(crate) fn release_staging(&self, b: PooledBuffer) {
        self.state().pool.release(b);
    }

    /// Release pooled memory that no tensor uses (e.g. after switching models).
    pub fn trim(&self) {
        let mut st = self.state();
        st.pool.recycle();
        st.pool.trim();
        st.kernels.clear_bind_groups();
    }

    /// Bytes held by free pooled buffers.
    pub fn pooled_free_bytes(&self) -> u64 {
        self.state().pool.free_bytes()
    }

    /// A tuning decision for `key` made earlier in this process, if any.
    pub fn tuned(&self, key: &str) -> Option<String> {
        self.state().tuned.get(key).cloned()
    }

    pub fn set_tuned(&self, key: &str, value: &str) {
        self.state()
            .tuned
            .insert(key.to_string(), value.to_string());
    }

    /// 1-D grid for `n` items at `per_group` items per workgroup, folded into x and y so it never
    /// exceeds the per-dimension limit. Kernels recover the index as `gid.x + gid.y * nwg.x * WG`.
    pub fn grid_1d(n: u64, per_group: u32) -> [u32; 3] {
        let groups = n.div_ceil(per_group as u64).max(1);
        if groups <= MAX_GROUPS_PER_DIM as u64 {
            [groups as u32, 1, 1]
        } else {
            let y = groups.div_ceil(MAX_GROUPS_PER_DIM as u64);
            [MAX_GROUPS_PER_DIM, y as u32, 1]
        }
    }
}
