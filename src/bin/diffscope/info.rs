//! `diffscope info`: the backend and why it was chosen; for a GPU its adapter, driver, limits and
//! features, for the CPU backend its threads and vector extension.

use crate::output::outln;
use diffscope::{Device, DeviceOptions, Gpu};

pub fn info(opts: &DeviceOptions, json: bool) -> diffscope::Result<()> {
    let opened = Device::open(opts)?;
    let gpu = match &opened.device {
        Device::Gpu(g) => g,
        Device::Cpu(c) => {
            if json {
                let v = serde_json::json!({
                    "backend": "cpu",
                    "why": opened.why,
                    "device": opened.device.describe(),
                    "threads": c.threads(),
                });
                outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())?;
            } else {
                outln!("backend:  cpu ({})", opened.why)?;
                outln!("device:   {}", opened.device.describe())?;
                outln!("threads:  {}", c.threads())?;
            }
            return Ok(());
        }
    };
    gpu_info(gpu, &opened.why, json)
}

fn gpu_info(gpu: &Gpu, why: &str, json: bool) -> diffscope::Result<()> {
    let s = gpu.summary();
    let l = gpu.limits();
    let limits = serde_json::json!({
        "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
        "max_buffer_size": l.max_buffer_size,
        "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
        "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
        "max_compute_workgroup_size": [l.max_compute_workgroup_size_x, l.max_compute_workgroup_size_y, l.max_compute_workgroup_size_z],
        "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
        "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
        "min_uniform_buffer_offset_alignment": l.min_uniform_buffer_offset_alignment,
        "min_storage_buffer_offset_alignment": l.min_storage_buffer_offset_alignment,
    });
    let features: Vec<String> = gpu
        .device()
        .features()
        .iter_names()
        .map(|(n, _)| n.to_string())
        .collect();
    let adapter_features: Vec<String> = gpu
        .adapter_features()
        .iter_names()
        .map(|(n, _)| n.to_string())
        .collect();
    if json {
        let v = serde_json::json!({
            "backend": "gpu",
            "why": why,
            "adapter": s,
            "software": gpu.is_software(),
            "limits": limits,
            "device_features": features,
            "adapter_features": adapter_features,
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())?;
    } else {
        outln!("backend:  gpu ({why})")?;
        outln!("adapter:  {} ({})", s.name, s.device_type)?;
        outln!("api:      {}", s.backend)?;
        outln!("driver:   {} {}", s.driver, s.driver_info)?;
        outln!("software: {}", gpu.is_software())?;
        outln!("limits:")?;
        if let Some(obj) = limits.as_object() {
            for (k, v) in obj {
                outln!("  {k}: {v}")?;
            }
        }
        outln!("adapter features: {}", adapter_features.join(", "))?;
    }
    Ok(())
}
