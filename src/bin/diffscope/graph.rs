//! `diffscope sample` for DiGress graph models: graphs as JSON, optionally every reverse step.

use diffscope::models::digress::{graphs_from_ids, DigressModel, Graph};
use diffscope::models::graph_zoo;
use diffscope::{Error, Gpu, GpuOptions, Result};
use std::path::Path;

#[derive(serde::Serialize)]
struct Frame {
    /// z_s after the reverse step s (s = T−1 … 0).
    s: usize,
    graphs: Vec<Graph>,
}

pub fn is_graph_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("config.json"))
        .is_ok_and(|c| c.contains("\"digress_graph_transformer\""))
}

pub fn load(gpu: &Gpu, name: Option<&str>, dir: Option<&Path>) -> Result<DigressModel> {
    match (name, dir) {
        (Some(n), _) => graph_zoo::load_graph_shipped(gpu, n),
        (None, Some(d)) => DigressModel::load_dir(gpu, d),
        _ => Err(Error::Invalid(
            "give --model NAME or --model-dir DIR".into(),
        )),
    }
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> Result<()> {
    let s = serde_json::to_string(v).map_err(|e| Error::Invalid(format!("JSON: {e}")))?;
    std::fs::write(path, s).map_err(|e| Error::Invalid(format!("writing {}: {e}", path.display())))
}

pub fn sample(
    opts: &GpuOptions,
    name: Option<&str>,
    dir: Option<&Path>,
    count: usize,
    seed: u64,
    out: &Path,
    trajectory: Option<&Path>,
) -> Result<()> {
    for p in std::iter::once(out).chain(trajectory) {
        if p.extension().is_none_or(|e| e != "json") {
            return Err(Error::Invalid(format!(
                "{}: graph models write .json files",
                p.display()
            )));
        }
    }
    if count == 0 || count > 4096 {
        return Err(Error::Invalid(format!("--n {count} must be in 1..=4096")));
    }
    let gpu = Gpu::new(opts)?;
    let model = load(&gpu, name, dir)?;
    let counts = model.sample_counts(count, seed)?;
    let n = counts.iter().copied().max().unwrap_or(1);
    let mut frames = Vec::new();
    let keep = trajectory.is_some();
    let start = std::time::Instant::now();
    let z = model.sample(&gpu, &counts, seed, |s, _z, hx, he| {
        if keep {
            frames.push(Frame {
                s,
                graphs: graphs_from_ids(&counts, n, hx, he),
            });
        }
        Ok(())
    })?;
    let graphs = graphs_from_ids(&counts, n, &z.x.to_u32()?, &z.e.to_u32()?);
    write_json(out, &graphs)?;
    if let Some(t) = trajectory {
        write_json(t, &frames)?;
    }
    eprintln!(
        "{} graphs from {} ({} reverse steps) in {:.1} s → {}",
        graphs.len(),
        model.name,
        model.process.steps(),
        start.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
