//! The DiGress graph models on the command line: `sample` to JSON (optionally every reverse step),
//! `eval-graphs` (DiGress's metrics, no GPU) and their part of `bench`.

use crate::args::{EvalArgs, ModelArgs, SampleArgs};
use crate::output::{step_row, write_json};
use crate::progress::Progress;
use diffscope::pipelines::graph::run::{self, GraphRun};
use diffscope::pipelines::graph::{self, DigressModel};
use diffscope::pipelines::zoo::{self, Family};
use diffscope::process::graph::{graphs_from_ids, Graph};
use diffscope::{Device, DeviceOptions, Error, Result};
use std::path::Path;

#[derive(serde::Serialize)]
struct Frame {
    /// z_s after the reverse step s (s = T−1 … 0).
    s: usize,
    graphs: Vec<Graph>,
}

/// The graph model `--model` or `--model-dir` names.
pub fn load(device: &Device, m: &ModelArgs) -> Result<DigressModel> {
    match (&m.model, &m.model_dir) {
        (Some(n), _) => graph::load_graph_shipped(device, n),
        (None, Some(d)) => DigressModel::load_dir(device, d),
        _ => Err(Error::Invalid(
            "give --model NAME or --model-dir DIR".into(),
        )),
    }
}

pub fn sample(opts: &DeviceOptions, a: &SampleArgs) -> Result<()> {
    if a.profile {
        return Err(Error::Invalid(
            "--profile times a Gaussian model's GPU kernels (use --backend gpu with an image or \
             2-D model)"
                .into(),
        ));
    }
    if a.clip_sample.is_some() {
        return Err(Error::Invalid(
            "--clip-sample is for Gaussian models (it clips x̂0 to the data range)".into(),
        ));
    }
    if a.label.is_some()
        || a.cfg != 1.0
        || a.steps.is_some()
        || a.init.is_some()
        || a.eta != 0.0
        || a.temperature != 1.0
        || a.unmask.is_some()
        || a.padding.is_some()
        || a.sampler.is_some()
        || a.karras
    {
        return Err(Error::Invalid(
            "graph models sample ancestrally over every step: no --label, --cfg, --steps, --eta, \
             --init, --temperature, --unmask, --padding, --sampler or --karras"
                .into(),
        ));
    }
    let (count, seed, out, trajectory) = (
        a.n.unwrap_or(16),
        a.seed,
        a.out.as_path(),
        a.trajectory.as_deref(),
    );
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
    let device = Device::open(opts)?.device;
    let model = load(&device, &a.model)?;
    let counts = model.sample_counts(count, seed)?;
    let n = counts.iter().copied().max().unwrap_or(1);
    let mut frames = Vec::new();
    let keep = trajectory.is_some();
    let start = std::time::Instant::now();
    let mut progress = Progress::new(model.name.clone(), model.process.steps());
    let mut done = 0;
    let z = run::sample(&model, &counts, seed, |s, _z, hx, he| {
        done += 1;
        progress.update(done);
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

/// `diffscope eval-graphs`: DiGress's metrics of generated graphs against the model's test graphs.
/// Needs no GPU.
pub fn eval(a: &EvalArgs) -> Result<()> {
    use diffscope::metrics::graph::{evaluate, Adj, Validity};
    let read = |p: &Path| std::fs::read_to_string(p).map_err(crate::output::io_at(p, "reading"));
    let (config, dataset) = match (&a.model, &a.model_dir) {
        (Some(n), _) => {
            let m = diffscope::pipelines::graph::shipped_graph(n)?;
            (
                DigressModel::parse_config(m.config, &format!("{n}/config.json"))?,
                diffscope::pipelines::graph::dataset::shipped_dataset(n)?,
            )
        }
        (None, Some(d)) => {
            let (c, s) = (d.join("config.json"), d.join("dataset.json"));
            (
                DigressModel::parse_config(&read(&c)?, &c.display().to_string())?,
                diffscope::pipelines::graph::dataset::parse_dataset(
                    &read(&s)?,
                    &s.display().to_string(),
                )?,
            )
        }
        _ => {
            return Err(Error::Invalid(
                "give --model NAME or --model-dir DIR".into(),
            ))
        }
    };
    let file = a.graphs.display().to_string();
    let graphs: Vec<Graph> =
        serde_json::from_str(&read(&a.graphs)?).map_err(|e| Error::Config {
            file: file.clone(),
            detail: format!("expected a JSON list of graphs as `diffscope sample` writes: {e}"),
        })?;
    if graphs.is_empty() {
        return Err(Error::Data {
            what: file.clone(),
            detail: "no graphs".into(),
        });
    }
    diffscope::process::graph::validate_graphs(
        &graphs,
        config.x_marginals.len(),
        config.e_marginals.len(),
        config.max_n_nodes,
    )
    .map_err(|e| Error::Data {
        what: file.clone(),
        detail: e.to_string(),
    })?;
    let validity = Validity::for_dataset(&config.dataset)?;
    // `validate_graphs` checked the generated file against the model; the dataset's graphs are
    // checked here, as the metrics take them.
    let adjs = |what: &str, gs: &[Graph]| -> Result<Vec<Adj>> {
        gs.iter()
            .enumerate()
            .map(|(k, g)| {
                Adj::from_edges(g.num_nodes, g.edges.iter().map(|&(i, j, _)| (i, j))).map_err(|e| {
                    Error::Data {
                        what: format!("{what} graph {k}"),
                        detail: e.to_string(),
                    }
                })
            })
            .collect()
    };
    let r = evaluate(
        &adjs(&file, &graphs)?,
        &adjs("train", &dataset.train)?,
        &adjs("test", &dataset.test)?,
        &validity,
    )?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| Error::Encode {
                what: "JSON",
                detail: e.to_string(),
            })?
        );
        return Ok(());
    }
    println!(
        "{} generated graphs vs {} test graphs ({} validity: {})",
        r.generated,
        r.reference,
        config.dataset,
        validity.name()
    );
    println!("metric       MMD²(gen,test)  MMD²(train,test)  ratio");
    for (name, g, t, q) in [
        (
            "degree",
            r.mmd.degree,
            r.mmd_train_test.degree,
            r.ratio.degree,
        ),
        (
            "clustering",
            r.mmd.clustering,
            r.mmd_train_test.clustering,
            r.ratio.clustering,
        ),
        ("orbit", r.mmd.orbit, r.mmd_train_test.orbit, r.ratio.orbit),
        (
            "spectral",
            r.mmd.spectral,
            r.mmd_train_test.spectral,
            r.ratio.spectral,
        ),
    ] {
        println!("{name:<12} {g:>14.6} {t:>17.6} {q:>6.2}");
    }
    println!(
        "valid {:.3}  unique {:.3}  unique+novel {:.3}  V.U.N. {:.3}",
        r.vun.valid, r.vun.unique, r.vun.unique_novel, r.vun.vun
    );
    println!(
        "test graphs valid {:.3} (the validity test on real data)",
        r.reference_valid
    );
    if let Some(c) = &r.companion {
        println!(
            "{}: valid {:.3}  V.U.N. {:.3}  test graphs valid {:.3}",
            c.validity, c.vun.valid, c.vun.vun, c.reference_valid
        );
    }
    Ok(())
}

/// ms per reverse step of a graph model at a batch size, with the GPU counters per step. A step is
/// what `sample` does: the network (with the host's structural features of z_t), the posterior
/// draw, and the readback of z_(t−1) that the next step's features need.
fn bench_step(
    device: &Device,
    m: &DigressModel,
    batch: usize,
    steps: usize,
) -> Result<(diffscope::gpu::CounterSnapshot, f64)> {
    let counts = m.sample_counts(batch, 1)?;
    let mut run = GraphRun::start(m, &counts, 1)?;
    let mut host_e = run.state().e.to_u32()?;
    let total = m.process.steps();
    let warm = 3.min(total);
    let timed = steps.min(total - warm).max(1);
    let mut before = device.counters();
    let mut t0 = std::time::Instant::now();
    for i in 0..warm + timed {
        if i == warm {
            // No `wait_idle` here: the readback that ended the last step already waited for the
            // GPU, and an extra wait would recycle the last prediction's buffers a step early,
            // which reshuffles the pool and shows as bind groups the steady state never creates.
            before = device.counters();
            t0 = std::time::Instant::now();
        }
        run.step(m, &host_e)?;
        host_e = run.state().e.to_u32()?;
    }
    device.wait_idle()?;
    let secs = t0.elapsed().as_secs_f64();
    let d = device.counters() - before;
    Ok((d.per_step(timed), secs / timed as f64 * 1e3))
}

/// The graph part of `diffscope bench`: every shipped graph model at batch 1 and 16.
pub fn bench(device: &Device, quick: bool, json: bool) -> Result<serde_json::Value> {
    let mut out = Vec::new();
    for s in zoo::family(Family::Graph) {
        let m = graph::load_graph_shipped(device, s.name)?;
        for batch in [1usize, 16] {
            let (c, ms) = bench_step(device, &m, batch, if quick { 2 } else { 8 })?;
            out.push(step_row(s.name, batch, &c, ms, json));
        }
    }
    Ok(serde_json::Value::Array(out))
}
