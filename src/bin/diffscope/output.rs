//! What the subcommands share for their output: stdout that tolerates a closed pipe, checked output
//! paths, safetensors / JSON / PNG writers, and the row printer of the per-model step figures.

use diffscope::gpu::CounterSnapshot;
use diffscope::picture::Channels;
use diffscope::{Error, Result};
use serde_json::json;
use std::path::Path;

/// `println!` that returns an error instead of panicking when stdout is closed (`diffscope … | head`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).map_err(diffscope::Error::from)
    }};
}
pub(crate) use outln;

/// A path's extension, lower-case ("" if none).
pub fn ext(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// The folder `path` goes into must exist, and `path` must not be a folder: checked before any
/// sampling so a typo does not cost a whole run.
pub fn check_output(flag: &str, path: &Path) -> Result<()> {
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
pub fn io_at<'a>(path: &'a Path, what: &str) -> impl Fn(std::io::Error) -> Error + 'a {
    let what = what.to_string();
    move |e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{what} {}: {e}", path.display()),
        ))
    }
}

pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(io_at(path, "writing"))
}

/// Images `[N, C, H, W]` in `range` as a grid (⌈√N⌉ columns, 2-pixel gaps), the way diffusers'
/// pipelines map `[-1, 1]` to pixels: `(x − lo)/(hi − lo)` clamped to [0, 1].
pub fn write_image_grid(path: &Path, x: &[f32], shape: &[usize], range: [f32; 2]) -> Result<()> {
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

pub fn write_rgb_png(path: &Path, img: &[u8], w: usize, h: usize) -> Result<()> {
    write_file(path, &diffscope::picture::png(img, w, h, Channels::Rgb)?)
}

/// A 512×512 scatter plot of 2-D points, coloured by label.
pub fn write_points_png(
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
    let [lo, hi] = diffscope::picture::points_frame(range);
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
    write_rgb_png(path, &img, S, S)
}

pub fn safetensors_bytes(
    tensors: Vec<(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| {
            safetensors::tensor::TensorView::new(*d, s.clone(), b)
                .map(|v| (n.to_string(), v))
                .map_err(|e| Error::Encode {
                    what: "safetensors",
                    detail: format!("tensor {n}: {e}"),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::Encode {
        what: "safetensors",
        detail: e.to_string(),
    })
}

pub fn i64_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect()
}

pub fn write_json(path: &Path, v: &impl serde::Serialize) -> Result<()> {
    let s = serde_json::to_string(v).map_err(|e| Error::Encode {
        what: "JSON",
        detail: e.to_string(),
    })?;
    std::fs::write(path, s).map_err(io_at(path, "writing"))
}

/// One row of the per-model step figures of the sequence and graph benches: printed (unless `json`)
/// and returned as JSON.
pub fn step_row(
    model: &str,
    batch: usize,
    c: &CounterSnapshot,
    ms: f64,
    json: bool,
) -> serde_json::Value {
    if !json {
        eprintln!(
            "{model} batch {batch}: {ms:.2} ms per reverse step; per step {} submission(s), {} buffers created, {} dispatches",
            c.submissions, c.buffers_created, c.dispatches
        );
    }
    json!({
        "model": model, "batch": batch, "ms_per_step": ms,
        "submissions": c.submissions, "buffers_created": c.buffers_created,
        "dispatches": c.dispatches, "bind_groups_created": c.bind_groups_created,
        "bytes_uploaded": c.bytes_uploaded, "bytes_read_back": c.bytes_read_back,
    })
}
