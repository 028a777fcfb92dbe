//! Command-line parsing and dispatch to the subcommands (one file per model family, `bench.rs`,
//! `info.rs`, `app.rs`). Every failure becomes a one-line message and a
//! non-zero exit code, never a panic.

use crate::args::{BenchArgs, EvalArgs, ForwardArgs, NllArgs, SampleArgs};
use crate::output::outln;
use crate::{bench, gaussian, graph, info, sequence};
use clap::{Parser, Subcommand};
use diffscope::pipelines::zoo::Family;
use diffscope::{DeviceOptions, GpuOptions};
use std::process::ExitCode;

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
    /// Where to compute: auto (a hardware GPU when there is one, else the CPU), gpu (any adapter,
    /// software ones included: see --adapter) or cpu. Overrides the DIFFSCOPE_BACKEND environment
    /// variable.
    #[arg(long, global = true, value_name = "auto|gpu|cpu")]
    backend: Option<String>,
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
    /// The app opens a lesson (see `info --lessons`), or your own lesson file (a .json path; the
    /// format is in lessons/README.md). Its steps choose the model.
    #[arg(long, value_name = "NAME|FILE", conflicts_with_all = ["open", "open_dir"])]
    lesson: Option<String>,
    /// The app opens what a link carries: the query of a page address or of the app's "Copy link"
    /// (`'?model=mnist-unet&seed=3&sampler=ddim&steps=20&step=12'`), the same frame as the page.
    #[arg(long, value_name = "QUERY", conflicts_with_all = ["open", "open_dir", "lesson"])]
    link: Option<String>,
    /// The app window's size in points, WIDTH x HEIGHT (e.g. 1600x1000 for a projector); without
    /// it the window opens at the size it last had.
    #[arg(long, value_name = "WxH", value_parser = parse_window)]
    window: Option<[f32; 2]>,
    /// The lesson's step to open at, from 1.
    #[arg(long, value_name = "K", requires = "lesson", value_parser = clap::value_parser!(u64).range(1..))]
    lesson_step: Option<u64>,
    /// Self-check of the app window (tests under Xvfb): sample until --after-steps steps are
    /// recorded, save a screenshot of the window here, print the app's status and close. Fails if the
    /// app shows an error or does not advance within --timeout seconds.
    #[arg(long, value_name = "PNG", hide = true)]
    screenshot: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 5, hide = true, requires = "screenshot")]
    after_steps: usize,
    #[arg(long, default_value_t = 300, hide = true, requires = "screenshot")]
    timeout: u64,
    /// With --screenshot: save only the run's main picture, this many pixels wide (a model's
    /// thumbnail; tools/make_thumbnails.sh).
    #[arg(long, value_name = "WIDTH", hide = true, requires = "screenshot", value_parser = clap::value_parser!(u64).range(8..=2048))]
    thumbnail: Option<u64>,
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
        /// List the shipped lessons instead (no GPU needed).
        #[arg(long, conflicts_with = "models")]
        lessons: bool,
    },
    /// Measure kernels and a representative reverse step.
    Bench(BenchArgs),
    /// Sample from a model (headless).
    Sample(SampleArgs),
    /// One denoiser evaluation on given tensors (for parity checks with other implementations).
    Forward(ForwardArgs),
    /// The ELBO (bits per token) of held-out sequences under a discrete model, on the GPU.
    Nll(NllArgs),
    /// DiGress's metrics of sampled graphs: MMD² ratios against the model's test graphs and V.U.N.
    EvalGraphs(EvalArgs),
}

/// `--window`: `WIDTH x HEIGHT` in points, each 320 to 8192.
fn parse_window(v: &str) -> Result<[f32; 2], String> {
    let (w, h) = v
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("\"{v}\" is not WIDTHxHEIGHT (e.g. 1600x1000)"))?;
    let side = |s: &str| {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (320..=8192).contains(n))
            .map(|n| n as f32)
            .ok_or_else(|| format!("\"{s}\" is not a window side from 320 to 8192"))
    };
    Ok([side(w)?, side(h)?])
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
    let backend = cli
        .backend
        .clone()
        .or_else(|| std::env::var("DIFFSCOPE_BACKEND").ok())
        .unwrap_or_default();
    let backend = match DeviceOptions::parse_backend(&backend) {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    let opts = DeviceOptions {
        backend,
        gpu: GpuOptions {
            adapter: cli.adapter.clone(),
            // A fault drill for the tests: the device is destroyed after N submissions.
            lose_device_after_submissions: std::env::var("DIFFSCOPE_LOSE_DEVICE_AFTER")
                .ok()
                .and_then(|v| v.parse().ok()),
        },
        cpu: Default::default(),
    };
    let result = match cli.command {
        None => crate::app::open(
            &opts,
            crate::app::AppArgs {
                open: cli.open,
                open_dir: cli.open_dir,
                lesson: cli.lesson,
                lesson_step: cli.lesson_step.unwrap_or(1) as usize,
                link: cli.link,
                window: cli.window,
                screenshot: cli.screenshot,
                after_steps: cli.after_steps,
                timeout: cli.timeout,
                thumbnail: cli.thumbnail.map(|w| w as usize),
            },
        ),
        Some(_)
            if cli.open.is_some()
                || cli.open_dir.is_some()
                || cli.lesson.is_some()
                || cli.link.is_some() =>
        {
            Err(diffscope::Error::Invalid(
                "--open, --open-dir, --lesson and --link are for the app (no subcommand); sample and \
                 forward take --model or --model-dir"
                    .into(),
            ))
        }
        Some(Command::Info { lessons: true, .. }) => {
            for l in diffscope::lessons::shipped() {
                let line = format!("{:<22} {} ({} steps)", l.name, l.title, l.steps.len());
                if let Err(e) = outln!("{line}").and_then(|_| outln!("{:<22} {}", "", l.summary)) {
                    return fail(&e);
                }
            }
            Ok(())
        }
        Some(Command::Info { models: true, .. }) => {
            for m in diffscope::pipelines::zoo::MODELS {
                if let Err(e) = outln!("{:<22} {}", m.name, m.summary) {
                    return fail(&e);
                }
            }
            Ok(())
        }
        Some(Command::Info { json, .. }) => info::info(&opts, json),
        Some(Command::Bench(args)) => bench::run(&opts, &args),
        Some(Command::Sample(args)) => match args.model.family() {
            Family::Gaussian => gaussian::sample(&opts, &args),
            Family::Sequence => sequence::sample(&opts, &args),
            Family::Graph => graph::sample(&opts, &args),
        },
        Some(Command::Forward(args)) => match args.model.family() {
            Family::Sequence => sequence::forward(&opts, &args),
            // A graph folder fails to load as a Gaussian model with a message naming its config.
            Family::Gaussian | Family::Graph => gaussian::forward(&opts, &args),
        },
        Some(Command::Nll(args)) => sequence::nll(&opts, &args),
        Some(Command::EvalGraphs(args)) => graph::eval(&args),
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
