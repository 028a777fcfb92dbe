//! Command-line parsing and the small subcommands. Every failure becomes a one-line message and a
//! non-zero exit code, never a panic.

use clap::{Parser, Subcommand};
use diffscope::{Gpu, GpuOptions};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "diffscope",
    version,
    about = "Step through diffusion models live on the GPU. With no subcommand, opens the app."
)]
struct Cli {
    /// Pick the GPU adapter: a substring of its name or backend ("llvmpipe", "vulkan", "gl"), or
    /// "cpu" / "gpu". Overrides the DIFFSCOPE_ADAPTER environment variable.
    #[arg(long, global = true)]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the GPU adapter, backend, driver, limits and features.
    Info {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// List the shipped models instead (no GPU needed).
        #[arg(long)]
        models: bool,
    },
    /// Measure kernels and a representative reverse step.
    Bench(crate::bench::BenchArgs),
    /// Sample from a model (headless).
    Sample(crate::sample::SampleArgs),
    /// One denoiser evaluation on given tensors (for parity checks with other implementations).
    Forward(crate::sample::ForwardArgs),
    /// The ELBO (bits per token) of held-out sequences under a discrete model, on the GPU.
    Nll(crate::discrete::NllArgs),
}

pub fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,wgpu_hal=off,naga=error"),
    )
    .init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version itself with exit code 0, and usage errors with 2.
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let opts = GpuOptions {
        adapter: cli.adapter.clone(),
    };
    let result = match cli.command {
        None => run_app(&opts),
        Some(Command::Info { models: true, .. }) => {
            for m in diffscope::models::zoo::SHIPPED
                .iter()
                .chain(diffscope::models::zoo::DISCRETE_SHIPPED)
            {
                println!("{:<22} {}", m.name, m.summary);
            }
            Ok(())
        }
        Some(Command::Info { json, .. }) => info(&opts, json),
        Some(Command::Bench(args)) => crate::bench::run(&opts, &args),
        Some(Command::Sample(args)) => crate::sample::sample(&opts, &args),
        Some(Command::Forward(args)) => crate::sample::forward(&opts, &args),
        Some(Command::Nll(args)) => crate::discrete::nll(&opts, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diffscope: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_app(opts: &GpuOptions) -> diffscope::Result<()> {
    use std::sync::Arc;
    let choice = opts.adapter.clone();
    let mut setup = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    // egui-wgpu asks for WebGL2-level limits on GL adapters, which allow no compute; ask for what the
    // adapter has instead (diffscope checks its own minimums in Gpu::from_device).
    setup.device_descriptor = Arc::new(|adapter| wgpu::DeviceDescriptor {
        label: Some("diffscope app"),
        required_limits: adapter.limits(),
        ..Default::default()
    });
    if let Some(c) = choice {
        setup.native_adapter_selector =
            Some(Arc::new(move |adapters: &[wgpu::Adapter], _surface| {
                adapters
                    .iter()
                    .find(|a| {
                        let i = a.get_info();
                        let c = c.to_lowercase();
                        i.name.to_lowercase().contains(&c)
                            || format!("{:?}", i.backend).to_lowercase() == c
                    })
                    .cloned()
                    .ok_or_else(|| format!("no adapter matches \"{c}\""))
            }));
    }
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_inner_size([1100.0, 760.0])
            .with_title("diffscope"),
        wgpu_options: eframe::egui_wgpu::WgpuConfiguration {
            wgpu_setup: eframe::egui_wgpu::WgpuSetup::CreateNew(setup),
            ..Default::default()
        },
        ..Default::default()
    };
    eframe::run_native(
        "diffscope",
        options,
        Box::new(|cc| Ok(Box::new(diffscope::app::DiffscopeApp::new(cc)))),
    )
    .map_err(|e| diffscope::Error::Device(format!("could not open the app window: {e}")))
}

fn info(opts: &GpuOptions, json: bool) -> diffscope::Result<()> {
    let gpu = Gpu::new(opts)?;
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
            "adapter": s,
            "software": gpu.is_software(),
            "limits": limits,
            "device_features": features,
            "adapter_features": adapter_features,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("adapter:  {} ({})", s.name, s.device_type);
        println!("backend:  {}", s.backend);
        println!("driver:   {} {}", s.driver, s.driver_info);
        println!("software: {}", gpu.is_software());
        println!("limits:");
        if let Some(obj) = limits.as_object() {
            for (k, v) in obj {
                println!("  {k}: {v}");
            }
        }
        println!("adapter features: {}", adapter_features.join(", "));
    }
    Ok(())
}
