//! Choosing an adapter and opening a device on it with the limits diffscope needs.

use super::{Gpu, Origin};
use crate::error::{Error, Result};
use std::sync::Arc;

/// How to pick the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Case-insensitive substring of the adapter name or backend (`"llvmpipe"`, `"vulkan"`, `"gl"`), or
    /// `"cpu"`/`"software"` for a software adapter, `"gpu"`/`"hardware"` for a real one. `None` reads the
    /// `DIFFSCOPE_ADAPTER` environment variable; unset means: the best hardware GPU, else anything.
    pub adapter: Option<String>,
    /// A fault drill: destroy the device right after this many submissions, so that a test can prove
    /// a run stops at a lost device instead of writing wrong results (the CLI reads it from
    /// `DIFFSCOPE_LOSE_DEVICE_AFTER`). A device opened by [`Gpu::recreate`] has no drill.
    pub lose_device_after_submissions: Option<u64>,
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

/// What every diffscope kernel needs from a device; checked up front so a weak adapter gets a clear
/// error instead of a failure deep inside a model.
pub(super) fn check_requirements(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> Result<()> {
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
        let opts = GpuOptions {
            lose_device_after_submissions: None,
            ..self.0.origin.opts.clone()
        };
        Self::new_capped_async(&opts, self.0.origin.caps).await
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
}
