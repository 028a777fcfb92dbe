//! Compute pipelines and bind groups, created once and cached.
//!
//! Every kernel follows one binding convention so one cache serves all of them: binding 0 is the
//! kernel's parameter block (a uniform with a dynamic offset into the per-submission parameter arena),
//! bindings 1.. are storage buffers in the order the kernel's [`KernelSpec::bindings`] lists them.
//! Because parameters live behind a dynamic offset, a bind group depends only on *which buffers* a
//! dispatch uses — so a steady-state reverse step reuses every bind group.

use std::collections::HashMap;
use std::sync::Arc;

/// How a kernel uses a storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

/// What identifies a compiled kernel: its WGSL source, entry point and the constants prepended to the
/// source (tile shapes, workgroup sizes), which specialise it per device.
#[derive(Clone, Debug)]
pub struct KernelSpec<'a> {
    /// The kernel family (`"matmul"`, `"elementwise"`, ...), for labels and cache keys.
    pub family: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
    /// WGSL declarations prepended to `source`, e.g. `"const TM: u32 = 4u;"`.
    pub defines: &'a str,
    pub bindings: &'static [Access],
}

impl KernelSpec<'_> {
    /// The WGSL the kernel's pipeline is compiled from: the defines, then the source.
    pub fn wgsl(&self) -> String {
        format!("{}\n{}", self.defines, self.source)
    }
}

pub(crate) struct Kernel {
    pub id: u64,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub(crate) struct KernelCache {
    /// (family, entry) → defines → kernel. Two levels so a lookup borrows `defines` (generated kernels
    /// carry kilobytes of it) instead of allocating a key per dispatch.
    kernels: HashMap<(&'static str, &'static str), HashMap<String, Arc<Kernel>>>,
    count: u64,
    bind_groups: HashMap<(u64, Vec<u64>), Arc<wgpu::BindGroup>>,
}

/// Bind groups hold their buffers alive; past this many we start afresh rather than grow forever
/// (a model switch leaves the old model's groups behind).
const MAX_BIND_GROUPS: usize = 8192;

impl KernelCache {
    /// `late_errors` receives validation errors that only arrive asynchronously (the web).
    pub(crate) fn kernel(
        &mut self,
        device: &wgpu::Device,
        spec: &KernelSpec<'_>,
        late_errors: &ErrorSink,
    ) -> Result<(Arc<Kernel>, bool), String> {
        if let Some(k) = self
            .kernels
            .get(&(spec.family, spec.entry))
            .and_then(|m| m.get(spec.defines))
        {
            return Ok((k.clone(), false));
        }
        let label = format!("{}::{}", spec.family, spec.entry);
        let code = spec.wgsl();
        // Shader compile and pipeline validation errors must become our errors, not wgpu's panic hook.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(code.into()),
        });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, a) in spec.bindings.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *a == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&label),
            entries: &entries,
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(spec.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(err) = pollster_lite::block_on(scope.pop()) {
            return Err(format!("kernel {label}: {err}"));
        }
        // Dawn answers the scope later, as a promise: the pipeline is cached already (an invalid one
        // only produces more errors), so the first error is what the user must see.
        #[cfg(target_arch = "wasm32")]
        {
            let sink = late_errors.clone();
            let label = label.clone();
            // Pop now (scopes are a stack), await the answer later.
            let answer = scope.pop();
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(err) = answer.await {
                    log::error!("kernel {label}: {err}");
                    sink.record(format!("kernel {label}: {err}"));
                }
            });
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = late_errors;
        self.count += 1;
        let k = Arc::new(Kernel {
            id: self.count,
            pipeline,
            layout,
        });
        self.kernels
            .entry((spec.family, spec.entry))
            .or_default()
            .insert(spec.defines.to_string(), k.clone());
        Ok((k, true))
    }

    /// The bind group for `kernel` over `buffers`; `arena` is the parameter arena (binding 0).
    pub fn bind_group(
        &mut self,
        device: &wgpu::Device,
        kernel: &Kernel,
        arena: &wgpu::Buffer,
        params_size: u64,
        buffers: &[(&wgpu::Buffer, u64)],
    ) -> (Arc<wgpu::BindGroup>, bool) {
        let key = (kernel.id, buffers.iter().map(|b| b.1).collect::<Vec<_>>());
        if let Some(bg) = self.bind_groups.get(&key) {
            return (bg.clone(), false);
        }
        if self.bind_groups.len() >= MAX_BIND_GROUPS {
            self.bind_groups.clear();
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: arena,
                offset: 0,
                size: wgpu::BufferSize::new(params_size),
            }),
        }];
        for (i, (b, _)) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bg = Arc::new(device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &kernel.layout,
            entries: &entries,
        }));
        self.bind_groups.insert(key, bg.clone());
        (bg, true)
    }

    pub fn clear_bind_groups(&mut self) {
        self.bind_groups.clear();
    }
}

/// Where errors reported after the fact go (the device's error record, surfaced by `Gpu::check`).
pub(crate) type ErrorSink = std::sync::Arc<super::DeviceErrors>;

/// Error scopes resolve immediately on native wgpu-core, so one poll answers them.
#[cfg(not(target_arch = "wasm32"))]
mod pollster_lite {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    pub fn block_on<F: Future<Output = Option<T>>, T>(f: F) -> Option<T> {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => None,
        }
    }
}
