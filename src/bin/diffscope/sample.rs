//! `diffscope sample` and `diffscope forward`: headless sampling and single denoiser evaluations.

use diffscope::models::graph_zoo as zoo_graph;
use diffscope::models::zoo::{self, GaussianModel};
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::trajectory::sample_blocking;
use diffscope::weights::Weights;
use diffscope::{Error, Gpu, GpuOptions, Result, Tensor};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// A shipped model (see `diffscope info --models`).
    #[arg(
        long,
        conflicts_with = "model_dir",
        required_unless_present = "model_dir"
    )]
    pub(crate) model: Option<String>,
    /// A model folder: config.json, scheduler_config.json and one .safetensors file.
    #[arg(long)]
    pub(crate) model_dir: Option<PathBuf>,
}

impl ModelArgs {
    pub fn load(&self, gpu: &Gpu) -> Result<GaussianModel> {
        match (&self.model, &self.model_dir) {
            (Some(name), _) => zoo::load_shipped(gpu, name),
            (None, Some(dir)) => zoo::load_dir(gpu, dir),
            (None, None) => Err(Error::Invalid(
                "give --model NAME or --model-dir DIR".into(),
            )),
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerArg {
    Ddpm,
    Ddim,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Number of samples.
    #[arg(long, default_value_t = 16)]
    pub(crate) n: usize,
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    #[arg(long, value_enum, default_value_t = SamplerArg::Ddpm)]
    pub(crate) sampler: SamplerArg,
    /// Reverse steps (default: every training timestep for DDPM, 50 for DDIM).
    #[arg(long)]
    pub(crate) steps: Option<usize>,
    /// DDIM η (0 = deterministic).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) eta: f32,
    /// Label for every sample (conditional models); default: cycle through the labels.
    #[arg(long)]
    pub(crate) label: Option<u32>,
    /// Classifier-free guidance weight w in uncond + w·(cond − uncond); 1 = plain conditional.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) cfg: f32,
    /// Clip x̂0 to the data range at each step (default: the scheduler config's `clip_sample`).
    /// Static clipping with guidance above 1 oversaturates samples: turn it off there.
    #[arg(long, value_enum, value_name = "on|off")]
    pub(crate) clip_sample: Option<OnOff>,
    /// Start from this x_T (safetensors with tensor `x` of shape [N, ..]).
    #[arg(long)]
    pub(crate) init: Option<PathBuf>,
    /// Output: .safetensors (tensor `samples`, `labels`) or .png.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Also store every step (x_t, x̂0, ε̂; for sequence models x_t and per-position probabilities)
    /// in this .safetensors file.
    #[arg(long)]
    pub(crate) trajectory: Option<PathBuf>,
    /// Sequence models: divides the posterior logits before the Gumbel-max draw (> 0).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) temperature: f32,
    /// Time every kernel on its own and print where the time goes (slower overall).
    #[arg(long)]
    pub(crate) profile: bool,
}

/// The folder `path` goes into must exist, and `path` must not be a folder: checked before any
/// sampling so a typo does not cost a whole run.
fn check_output(flag: &str, path: &Path) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::Invalid(format!(
            "{flag} {}: the folder {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    if path.is_dir() {
        return Err(Error::Invalid(format!(
            "{flag} {} is a folder; give a file name",
            path.display()
        )));
    }
    Ok(())
}

/// An I/O error that names the file.
fn io_at<'a>(path: &'a Path, what: &str) -> impl Fn(std::io::Error) -> Error + 'a {
    let what = what.to_string();
    move |e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{what} {}: {e}", path.display()),
        ))
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(io_at(path, "writing"))
}

fn ext(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

pub fn sample(opts: &GpuOptions, a: &SampleArgs) -> Result<()> {
    let graph_model = a
        .model
        .model
        .as_deref()
        .is_some_and(zoo_graph::is_graph_model)
        || a.model
            .model_dir
            .as_deref()
            .is_some_and(crate::graph::is_graph_dir);
    if (graph_model || crate::discrete::is_discrete(&a.model)) && a.clip_sample.is_some() {
        return Err(Error::Invalid(
            "--clip-sample is for Gaussian models (it clips x̂0 to the data range)".into(),
        ));
    }
    if graph_model {
        return crate::graph::sample(
            opts,
            a.model.model.as_deref(),
            a.model.model_dir.as_deref(),
            a.n,
            a.seed,
            &a.out,
            a.trajectory.as_deref(),
        );
    }
    if crate::discrete::is_discrete(&a.model) {
        return crate::discrete::sample(opts, a);
    }
    if a.temperature != 1.0 {
        return Err(Error::Invalid(
            "--temperature is for sequence (discrete) models".into(),
        ));
    }
    // Check everything cheap before touching the GPU.
    let out_ext = ext(&a.out);
    if !matches!(out_ext.as_str(), "safetensors" | "png") {
        return Err(Error::Invalid(format!(
            "--out {}: use a .safetensors or .png file",
            a.out.display()
        )));
    }
    check_output("--out", &a.out)?;
    if let Some(t) = &a.trajectory {
        if ext(t) != "safetensors" {
            return Err(Error::Invalid(format!(
                "--trajectory {}: use a .safetensors file",
                t.display()
            )));
        }
        check_output("--trajectory", t)?;
    }
    // Read the initial state now: a bad file is reported before the GPU starts.
    let mut init_weights = match &a.init {
        Some(p) => Some(Weights::from_file(p)?),
        None => None,
    };
    if a.n == 0 || a.n > 65536 {
        return Err(Error::Invalid(format!("--n {} must be in 1..=65536", a.n)));
    }
    if !(a.cfg.is_finite() && a.cfg >= 0.0) {
        return Err(Error::Invalid(format!(
            "--cfg {} must be a finite number ≥ 0",
            a.cfg
        )));
    }
    if !(a.eta.is_finite() && a.eta >= 0.0) {
        return Err(Error::Invalid(format!(
            "--eta {} must be a finite number ≥ 0",
            a.eta
        )));
    }
    let gpu = Gpu::new(opts)?;
    let mut model = a.model.load(&gpu)?;
    if let Some(c) = a.clip_sample {
        model.process.config.clip_sample = c == OnOff::On;
    }
    let sampler = match a.sampler {
        SamplerArg::Ddpm => Sampler::Ddpm,
        SamplerArg::Ddim => Sampler::Ddim { eta: a.eta },
    };
    let steps = a.steps.unwrap_or(match a.sampler {
        SamplerArg::Ddpm => model.process.train_timesteps(),
        SamplerArg::Ddim => 50.min(model.process.train_timesteps()),
    });
    let labels = match model.denoiser.num_labels() {
        Some(k) => {
            if let Some(l) = a.label {
                if l as usize >= k {
                    return Err(Error::Invalid(format!(
                        "--label {l} is out of range: {} has labels 0..{} ({})",
                        model.name,
                        k - 1,
                        model.labels.join(", ")
                    )));
                }
            }
            Some(
                (0..a.n)
                    .map(|i| a.label.unwrap_or((i % k) as u32))
                    .collect::<Vec<u32>>(),
            )
        }
        None => {
            if a.label.is_some() || a.cfg != 1.0 {
                return Err(Error::Invalid(format!(
                    "{} is unconditional: no --label or --cfg",
                    model.name
                )));
            }
            None
        }
    };
    let init = match &mut init_weights {
        Some(w) => {
            let mut shape = vec![a.n];
            shape.extend_from_slice(model.denoiser.sample_shape());
            let x = w.take("x", &shape).map_err(|e| {
                Error::Invalid(format!(
                    "--init: {e} (x must be [--n, ..the model's sample shape {:?}])",
                    model.denoiser.sample_shape()
                ))
            })?;
            Some(x.data)
        }
        None => None,
    };
    let settings = SampleSettings {
        sampler,
        steps,
        seed: a.seed,
        labels: labels.clone(),
        guidance: (a.cfg != 1.0).then_some(a.cfg),
    };
    gpu.set_profiling(a.profile);
    let t0 = std::time::Instant::now();
    let traj = sample_blocking(
        &model,
        &settings,
        a.n,
        init.as_deref(),
        a.trajectory.is_some(),
    )?;
    eprintln!(
        "{} samples from {} in {steps} {:?} steps: {:.2} s",
        a.n,
        model.name,
        a.sampler,
        t0.elapsed().as_secs_f64()
    );
    if a.profile {
        let rows = gpu.profile_report();
        let total: f64 = rows.iter().map(|r| r.2).sum();
        eprintln!(
            "{:<40} {:>9} {:>10} {:>6}",
            "kernel", "dispatches", "ms", "share"
        );
        for (k, n, secs) in rows {
            eprintln!(
                "{k:<40} {n:>9} {:>10.1} {:>5.1}%",
                secs * 1e3,
                100.0 * secs / total.max(1e-12)
            );
        }
    }
    if let Some(p) = &a.trajectory {
        write_file(p, &traj.to_safetensors()?)?;
    }
    let samples = traj.final_state();
    match out_ext.as_str() {
        "png" => {
            if traj.shape.len() == 2 && traj.shape[1] == 2 {
                write_points_png(&a.out, samples, labels.as_deref(), model.data_range)?;
            } else if traj.shape.len() == 4 && matches!(traj.shape[1], 1 | 3) {
                write_image_grid(&a.out, samples, &traj.shape, model.data_range)?;
            } else {
                return Err(Error::Invalid(format!(
                    "PNG output needs 2-D points or 1/3-channel images, not {:?}; use .safetensors",
                    traj.shape
                )));
            }
        }
        _ => {
            let bytes: Vec<u8> = samples.iter().flat_map(|f| f.to_le_bytes()).collect();
            let lbytes: Vec<u8> = labels
                .unwrap_or_default()
                .iter()
                .flat_map(|&l| (l as i64).to_le_bytes())
                .collect();
            let mut views = vec![(
                "samples".to_string(),
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    traj.shape.clone(),
                    &bytes,
                )
                .map_err(|e| Error::Invalid(e.to_string()))?,
            )];
            if !lbytes.is_empty() {
                views.push((
                    "labels".to_string(),
                    safetensors::tensor::TensorView::new(
                        safetensors::Dtype::I64,
                        vec![a.n],
                        &lbytes,
                    )
                    .map_err(|e| Error::Invalid(e.to_string()))?,
                ));
            }
            let data =
                safetensors::serialize(views, None).map_err(|e| Error::Invalid(e.to_string()))?;
            write_file(&a.out, &data)?;
        }
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

/// Images `[N, C, H, W]` in `range` as a grid (⌈√N⌉ columns, 2-pixel gaps), the way diffusers'
/// pipelines map `[-1, 1]` to pixels: `(x − lo)/(hi − lo)` clamped to [0, 1].
fn write_image_grid(path: &Path, x: &[f32], shape: &[usize], range: [f32; 2]) -> Result<()> {
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let gap = 2;
    let (gw, gh) = (cols * (w + gap) + gap, rows * (h + gap) + gap);
    let mut img = vec![40u8; gw * gh * 3];
    for i in 0..n {
        let (ox, oy) = (gap + (i % cols) * (w + gap), gap + (i / cols) * (h + gap));
        for y in 0..h {
            for xx in 0..w {
                for ch in 0..3 {
                    let src = i * c * h * w + (ch % c) * h * w + y * w + xx;
                    let v = ((x[src] - range[0]) / (range[1] - range[0])).clamp(0.0, 1.0);
                    img[((oy + y) * gw + ox + xx) * 3 + ch] = (v * 255.0).round() as u8;
                }
            }
        }
    }
    write_rgb_png(path, &img, gw, gh)
}

fn write_rgb_png(path: &Path, img: &[u8], w: usize, h: usize) -> Result<()> {
    let file = std::fs::File::create(path).map_err(io_at(path, "writing"))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc
        .write_header()
        .map_err(|e| Error::Invalid(format!("png: {e}")))?;
    wr.write_image_data(img)
        .map_err(|e| Error::Invalid(format!("png: {e}")))?;
    Ok(())
}

/// A 512×512 scatter plot of 2-D points, coloured by label.
fn write_points_png(
    path: &Path,
    pts: &[f32],
    labels: Option<&[u32]>,
    range: [f32; 2],
) -> Result<()> {
    const S: usize = 512;
    const COLOURS: [[u8; 3]; 8] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
    ];
    let mut img = vec![255u8; S * S * 3];
    let (lo, hi) = (range[0] * 1.3, range[1] * 1.3);
    for (i, p) in pts.chunks_exact(2).enumerate() {
        let px = ((p[0] - lo) / (hi - lo) * S as f32) as i64;
        let py = ((hi - p[1]) / (hi - lo) * S as f32) as i64;
        let c = COLOURS[labels.map_or(0, |l| l[i] as usize) % COLOURS.len()];
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (x, y) = (px + dx, py + dy);
                if (0..S as i64).contains(&x) && (0..S as i64).contains(&y) {
                    let o = (y as usize * S + x as usize) * 3;
                    img[o..o + 3].copy_from_slice(&c);
                }
            }
        }
    }
    let file = std::fs::File::create(path).map_err(io_at(path, "writing"))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), S as u32, S as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc
        .write_header()
        .map_err(|e| Error::Invalid(format!("png: {e}")))?;
    w.write_image_data(&img)
        .map_err(|e| Error::Invalid(format!("png: {e}")))?;
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// safetensors with `x` [N, ..], `t` [N] (integers or floats) and optional `label` [N].
    #[arg(long)]
    pub(crate) inputs: PathBuf,
    /// Where to write tensor `out`.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

pub fn forward(opts: &GpuOptions, a: &ForwardArgs) -> Result<()> {
    if crate::discrete::is_discrete(&a.model) {
        return crate::discrete::forward(opts, a);
    }
    if ext(&a.out) != "safetensors" {
        return Err(Error::Invalid(format!(
            "--out {}: use a .safetensors file",
            a.out.display()
        )));
    }
    check_output("--out", &a.out)?;
    let mut w = Weights::from_file(&a.inputs)?;
    let gpu = Gpu::new(opts)?;
    let model = a.model.load(&gpu)?;
    let xs = w
        .shape_of("x")
        .ok_or_else(|| Error::Invalid(format!("{}: no tensor \"x\"", a.inputs.display())))?
        .to_vec();
    let n = xs.first().copied().unwrap_or(0);
    if n == 0 || n > 65536 {
        return Err(Error::Invalid(format!(
            "{}: tensor \"x\" has shape {xs:?}; its first dimension (the batch) must be in 1..=65536",
            a.inputs.display()
        )));
    }
    let mut want = vec![n];
    want.extend_from_slice(model.denoiser.sample_shape());
    let x = w.take("x", &want)?;
    let t = w.take_numbers("t", &[n])?;
    let labels = if w.contains("label") {
        let (shape, l) = w.take_ints("label")?;
        if shape != [n] {
            return Err(Error::Invalid(format!(
                "label has shape {shape:?}, expected [{n}]"
            )));
        }
        let k = model.denoiser.num_labels().unwrap_or(0) as i64;
        if let Some(bad) = l.iter().find(|&&v| v < 0 || v > k) {
            return Err(Error::Invalid(format!(
                "label {bad} is out of range 0..={k} ({k} = null label)"
            )));
        }
        Some(l.iter().map(|&v| v as u32).collect::<Vec<_>>())
    } else {
        None
    };
    let xt = Tensor::from_f32(&gpu, &want, &x.data)?;
    let tt = Tensor::from_f32(&gpu, &[n], &t.data)?;
    let lt = match (&labels, model.denoiser.num_labels()) {
        (Some(l), _) => Some(Tensor::from_u32(&gpu, &[n], l)?),
        (None, Some(k)) => Some(Tensor::from_u32(&gpu, &[n], &vec![k as u32; n])?),
        (None, None) => None,
    };
    let out = model.denoiser.forward(&xt, &tt, lt.as_ref())?.to_f32()?;
    let bytes: Vec<u8> = out.iter().flat_map(|f| f.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, want, &bytes)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let data = safetensors::serialize(vec![("out".to_string(), view)], None)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    write_file(&a.out, &data)?;
    Ok(())
}
