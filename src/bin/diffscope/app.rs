//! Opening the app window (eframe), natively, with its own compute device. A build without the
//! `app` feature (the engine alone) says so instead.

use diffscope::DeviceOptions;
use std::path::PathBuf;

/// What `diffscope` with no subcommand was asked to open.
#[cfg_attr(not(feature = "app"), allow(dead_code))]
pub struct AppArgs {
    pub open: Option<String>,
    pub open_dir: Option<PathBuf>,
    /// A shipped lesson's name or a lesson file, and the step to open it at (from 1).
    pub lesson: Option<String>,
    pub lesson_step: usize,
    /// A link's query (`?model=…&seed=…&step=…`), as the page reads its address.
    pub link: Option<String>,
    /// The window's size in points (`--window`); `None`: the size it last had.
    pub window: Option<[f32; 2]>,
    /// The self-check under Xvfb: screenshot here after `after_steps` steps, within `timeout` s.
    pub screenshot: Option<PathBuf>,
    pub after_steps: usize,
    pub timeout: u64,
    /// With `screenshot`: only the run's main picture, this many pixels wide.
    pub thumbnail: Option<usize>,
}

#[cfg(not(feature = "app"))]
pub fn open(_opts: &DeviceOptions, _a: AppArgs) -> diffscope::Result<()> {
    Err(diffscope::Error::Invalid(
        "this diffscope was built without the app (--no-default-features); use the headless \
         subcommands: info, sample, forward, nll, eval-graphs, bench"
            .into(),
    ))
}

#[cfg(feature = "app")]
pub fn open(opts: &DeviceOptions, mut a: AppArgs) -> diffscope::Result<()> {
    use diffscope::pipelines::zoo;
    let link = a.link.as_deref().map(diffscope::app::Link::parse);
    if let Some(l) = &link {
        // A link opens a lesson, or a model (checked below as --open is), or the default model.
        if l.lesson.is_some() {
            a.lesson = l.lesson.clone();
            a.lesson_step = l.lesson_step.unwrap_or(1);
        } else {
            a.open = l.model.clone();
        }
    }
    let lesson = a.lesson.as_deref().map(read_lesson).transpose()?;
    let start = match (a.open, a.open_dir) {
        _ if lesson.is_some() => {
            let l = lesson
                .as_ref()
                .map(|l| &l.steps[(a.lesson_step - 1).min(l.steps.len() - 1)]);
            diffscope::app::Start::Shipped(l.map(|s| s.model.clone()).unwrap_or_default())
        }
        (_, Some(d)) => diffscope::app::Start::Dir(d),
        (Some(m), None) => match zoo::find(&m) {
            Some(_) => diffscope::app::Start::Shipped(m),
            None => {
                return Err(diffscope::Error::UnknownModel {
                    name: m,
                    family: "",
                    shipped: zoo::MODELS.iter().map(|s| s.name.to_string()).collect(),
                })
            }
        },
        // Nothing asked for: where the last session left off (the self-check always starts as a
        // first visit, whatever an earlier session left).
        (None, None) if a.screenshot.is_some() => diffscope::app::Start::FirstVisit,
        (None, None) => diffscope::app::Start::Last,
    };
    let autopilot = a.screenshot.map(|p| {
        let mut ap = diffscope::app::autopilot::Autopilot::new(p, a.after_steps, a.timeout);
        ap.thumbnail = a.thumbnail;
        ap
    });
    run_app(
        opts,
        start,
        lesson.map(|l| (l, a.lesson_step - 1)),
        link.filter(|l| l.lesson.is_none()),
        autopilot,
        a.window,
    )
}

/// `--lesson`: a shipped lesson's name, or a lesson file (named by its file stem).
#[cfg(feature = "app")]
fn read_lesson(name: &str) -> diffscope::Result<diffscope::lessons::Lesson> {
    let path = std::path::Path::new(name);
    if name.ends_with(".json") || path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| {
            diffscope::Error::Io(std::io::Error::new(e.kind(), format!("{name}: {e}")))
        })?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or(name);
        return diffscope::lessons::Lesson::parse(stem, &text);
    }
    diffscope::lessons::find(name)
}

#[cfg(feature = "app")]
fn run_app(
    opts: &DeviceOptions,
    start: diffscope::app::Start,
    lesson: Option<(diffscope::lessons::Lesson, usize)>,
    link: Option<diffscope::app::Link>,
    autopilot: Option<diffscope::app::autopilot::Autopilot>,
    window: Option<[f32; 2]>,
) -> diffscope::Result<()> {
    let outcome = autopilot.as_ref().map(|a| a.outcome.clone());
    let compute_opts = opts.clone();
    use std::sync::Arc;
    let choice = opts.gpu.adapter.clone();
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
    // The self-check neither reads nor writes the user's saved state (window size, last model).
    let persistence_path = autopilot.as_ref().map(|_| {
        std::env::temp_dir().join(format!("diffscope-selfcheck-{}.ron", std::process::id()))
    });
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_inner_size(window.unwrap_or([1100.0, 760.0]))
            .with_title("diffscope"),
        // A size asked for wins over the remembered one.
        persist_window: autopilot.is_none() && window.is_none(),
        persistence_path: persistence_path.clone(),
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
            // `Start::Last`: where the last session left off (eframe's storage).
            let (start, last) = diffscope::app::DiffscopeApp::resolve_start(cc, start);
            let link = link.or(last);
            let app = if std::env::var_os("DIFFSCOPE_SHARED_DEVICE").is_some() {
                diffscope::app::DiffscopeApp::with_start(cc, start)
            } else {
                match diffscope::Device::open(&compute_opts) {
                    Ok(o) => diffscope::app::DiffscopeApp::with_device(Ok(o.device), start)
                        .with_device_choice(Some(o.why), compute_opts.clone()),
                    Err(e) => diffscope::app::DiffscopeApp::with_device(Err(e.to_string()), start)
                        .with_device_choice(None, compute_opts.clone()),
                }
            };
            let app = match (lesson, link) {
                (Some((l, k)), _) => app.with_lesson(l, k),
                (None, Some(link)) => app.with_link(link),
                (None, None) => app,
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
    if let Some(p) = persistence_path {
        let _ = std::fs::remove_file(p);
    }
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

#[cfg(feature = "app")]
/// winit's errors carry a source path and line; keep the part a user can act on.
fn short_window_error(e: &str) -> String {
    match e.rfind(": ") {
        Some(i) if e.contains(".rs:") => e[i + 2..].trim().to_string(),
        _ => e.to_string(),
    }
}
