//! Command-line parsing and the small subcommands. Every failure becomes a one-line message and a
//! non-zero exit code, never a panic.

use clap::{Parser, Subcommand};
use diffscope::{Gpu, GpuOptions};
use std::process::ExitCode;

/// `println!` that returns an error instead of panicking when stdout is closed (`diffscope … | head`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).map_err(diffscope::Error::from)
    }};
}
pub(crate) use outln;

/// A panic is a bug in diffscope: say so in one line (no backtrace) and exit with 101, which the CLI
/// tests treat as a failure.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("diffscope: internal error (a bug; please report it): {msg}{at}");
    }));
}

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
    /// The app opens this shipped model (see `info --models`) instead of the default.
    #[arg(long, value_name = "MODEL")]
    open: Option<String>,
    /// The app opens your own model folder (config.json, scheduler_config.json, one .safetensors).
    #[arg(long, value_name = "DIR", conflicts_with = "open")]
    open_dir: Option<std::path::PathBuf>,
    /// Self-check of the app window (tests under Xvfb): sample until --after-steps steps are
    /// recorded, save a screenshot of the window here, print the app's status and close. Fails if the
    /// app shows an error or does not advance within --timeout seconds.
    #[arg(long, value_name = "PNG", hide = true)]
    screenshot: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 5, hide = true, requires = "screenshot")]
    after_steps: usize,
    #[arg(long, default_value_t = 300, hide = true, requires = "screenshot")]
    timeout: u64,
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
    /// DiGress's metrics of sampled graphs: MMD² ratios against the model's test graphs and V.U.N.
    EvalGraphs(crate::graph::EvalArgs),
}

pub fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,wgpu_hal=off,naga=error"),
    )
    .init();
    install_panic_hook();
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
        None => {
            let start = match (cli.open, cli.open_dir) {
                (_, Some(d)) => Ok(diffscope::app::Start::Dir(d)),
                (Some(m), None) => match diffscope::models::zoo::find(&m) {
                    Some(_) => Ok(diffscope::app::Start::Shipped(m)),
                    None => Err(diffscope::Error::Invalid(format!(
                        "no shipped model \"{m}\"; shipped models: {}",
                        diffscope::models::zoo::MODELS
                            .iter()
                            .map(|s| s.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                },
                (None, None) => Ok(diffscope::app::Start::Shipped(
                    diffscope::models::zoo::DEFAULT_MODEL.to_string(),
                )),
            };
            let autopilot = cli.screenshot.map(|p| {
                diffscope::app::autopilot::Autopilot::new(p, cli.after_steps, cli.timeout)
            });
            start.and_then(|s| run_app(&opts, s, autopilot))
        }
        Some(_) if cli.open.is_some() || cli.open_dir.is_some() => Err(diffscope::Error::Invalid(
            "--open and --open-dir are for the app (no subcommand); sample and forward take --model \
             or --model-dir"
                .into(),
        )),
        Some(Command::Info { models: true, .. }) => {
            for m in diffscope::models::zoo::MODELS {
                if let Err(e) = outln!("{:<22} {}", m.name, m.summary) {
                    return fail(&e);
                }
            }
            Ok(())
        }
        Some(Command::Info { json, .. }) => info(&opts, json),
        Some(Command::Bench(args)) => crate::bench::run(&opts, &args),
        Some(Command::Sample(args)) => crate::sample::sample(&opts, &args),
        Some(Command::Forward(args)) => crate::sample::forward(&opts, &args),
        Some(Command::Nll(args)) => crate::discrete::nll(&opts, &args),
        Some(Command::EvalGraphs(args)) => crate::graph::eval(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &diffscope::Error) -> ExitCode {
    match e {
        diffscope::Error::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
            eprintln!("diffscope: error: stdout was closed before the output was written")
        }
        _ => eprintln!("diffscope: error: {e}"),
    }
    ExitCode::FAILURE
}

fn run_app(
    opts: &GpuOptions,
    start: diffscope::app::Start,
    autopilot: Option<diffscope::app::autopilot::Autopilot>,
) -> diffscope::Result<()> {
    let outcome = autopilot.as_ref().map(|a| a.outcome.clone());
    let compute_opts = opts.clone();
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
        Box::new(|cc| {
            // Compute on a device of its own, so frames are not queued behind a reverse step
            // (DIFFSCOPE_SHARED_DEVICE=1 computes on eframe's device instead, to compare).
            let app = if std::env::var_os("DIFFSCOPE_SHARED_DEVICE").is_some() {
                diffscope::app::DiffscopeApp::with_start(cc, start)
            } else {
                diffscope::app::DiffscopeApp::with_gpu(
                    diffscope::Gpu::new(&compute_opts).map_err(|e| e.to_string()),
                    start,
                )
            };
            Ok(Box::new(match autopilot {
                Some(a) => app.with_autopilot(a),
                None => app,
            }))
        }),
    )
    .map_err(|e| {
        diffscope::Error::Io(std::io::Error::other(format!(
            "could not open the app window ({}). The app needs a display (X11 or Wayland); \
             without one, use the headless commands: info, sample, forward, bench",
            short_window_error(&e.to_string())
        )))
    })?;
    match outcome.map(|o| o.lock().unwrap_or_else(|p| p.into_inner()).take()) {
        None => Ok(()),
        Some(Some(Ok(status))) => {
            println!("{status}");
            Ok(())
        }
        Some(Some(Err(e))) => Err(diffscope::Error::Invalid(format!(
            "app self-check failed: {e}"
        ))),
        Some(None) => Err(diffscope::Error::Invalid(
            "app self-check failed: the window closed before the check finished".into(),
        )),
    }
}

/// winit's errors carry a source path and line; keep the part a user can act on.
fn short_window_error(e: &str) -> String {
    match e.rfind(": ") {
        Some(i) if e.contains(".rs:") => e[i + 2..].trim().to_string(),
        _ => e.to_string(),
    }
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
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())?;
    } else {
        outln!("adapter:  {} ({})", s.name, s.device_type)?;
        outln!("backend:  {}", s.backend)?;
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
