//! The discrete (sequence) models on the command line: `sample` to text, FASTA or safetensors with an
//! optional trajectory, `forward` (logits for given ids), and `nll` (the ELBO of data in bits per
//! token).

use crate::args::{ForwardArgs, ModelArgs, NllArgs, SampleArgs};
use crate::output::{ext, i64_bytes, safetensors_bytes, step_row};
use crate::progress::Progress;
use diffscope::nn::Denoiser;
use diffscope::pipelines::sequence::run::{self, SequenceRun};
use diffscope::pipelines::sequence::{self, SequenceModel};
use diffscope::pipelines::zoo::{self, Family};
use diffscope::process::discrete::{probabilities, Padding, Unmasking};
use diffscope::weights::Weights;
use diffscope::{Device, DeviceOptions, Error, Result, Tensor};
use std::path::Path;

fn load(device: &Device, m: &ModelArgs) -> Result<SequenceModel> {
    match (&m.model, &m.model_dir) {
        (Some(name), _) => sequence::load_shipped(device, name),
        (None, Some(dir)) => sequence::load_dir(device, dir),
        _ => Err(Error::Invalid(
            "give --model NAME or --model-dir DIR".into(),
        )),
    }
}

pub fn sample(opts: &DeviceOptions, a: &SampleArgs) -> Result<()> {
    let out_ext = ext(&a.out);
    if !matches!(out_ext.as_str(), "txt" | "fasta" | "fa" | "safetensors") {
        return Err(Error::Invalid(format!(
            "--out {}: use .txt, .fasta or .safetensors for a sequence model",
            a.out.display()
        )));
    }
    let n = a.n.unwrap_or(16);
    if n == 0 || n > 65536 {
        return Err(Error::Invalid(format!("--n {n} must be in 1..=65536")));
    }
    if !(a.temperature > 0.0 && a.temperature.is_finite()) {
        return Err(Error::Invalid(format!(
            "--temperature {} must be a finite number > 0",
            a.temperature
        )));
    }
    if a.label.is_some()
        || a.cfg != 1.0
        || a.steps.is_some()
        || a.init.is_some()
        || a.eta != 0.0
        || a.sampler.is_some()
        || a.karras
    {
        return Err(Error::Invalid(
            "sequence models sample ancestrally over every step: no --label, --cfg, --steps, --eta, \
             --init, --sampler or --karras"
                .into(),
        ));
    }
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
    if let Some(p) = &a.trajectory {
        if ext(p) != "safetensors" {
            return Err(Error::Invalid(format!(
                "--trajectory {}: use a .safetensors file",
                p.display()
            )));
        }
    }
    let device = Device::open(opts)?.device;
    let m = load(&device, &a.model)?;
    let l = m.config.seq_len;
    let k = m.process.k();
    let t0 = std::time::Instant::now();
    let ts = m.process.timesteps();
    let record = a.trajectory.is_some();
    let (mut states, mut probs) = (Vec::new(), Vec::new());
    let mut progress = Progress::new(m.name.clone(), ts.len());
    let mut done = 0;
    let order = a
        .unmask
        .as_deref()
        .map(Unmasking::parse)
        .transpose()?
        .unwrap_or_default();
    let padding = a
        .padding
        .as_deref()
        .map(Padding::parse)
        .transpose()?
        .unwrap_or_default();
    if a.padding.is_some() && m.pad_suffix().is_none() {
        return Err(Error::Invalid(format!(
            "--padding is for D3PM models with a pad class; {} has none",
            m.name
        )));
    }
    let ids = run::sample(
        &m,
        n,
        a.seed,
        (a.temperature, order, padding),
        |x_t, out| {
            done += 1;
            progress.update(done);
            if record {
                states.extend(x_t.to_u32()?);
                probs.extend(probabilities(&out.logits)?.to_f32()?);
            }
            Ok(())
        },
    )?;
    eprintln!(
        "{} sequences from {} ({}, {} un-masking{}) in {} steps: {:.2} s",
        n,
        m.name,
        m.process.describe(),
        order.name(),
        match (m.pad_suffix(), padding) {
            (Some(_), p) => format!(", padding {}", p.name()),
            (None, _) => String::new(),
        },
        ts.len(),
        t0.elapsed().as_secs_f64()
    );
    if let Some(p) = &a.trajectory {
        states.extend(&ids);
        let s = ts.len();
        let tsv: Vec<u32> = ts.iter().map(|&t| t as u32).collect();
        let data = safetensors_bytes(vec![
            (
                "x_t",
                safetensors::Dtype::I64,
                vec![s + 1, n, l],
                i64_bytes(&states),
            ),
            (
                "probs",
                safetensors::Dtype::F32,
                vec![s, n, l, k],
                probs.iter().flat_map(|f| f.to_le_bytes()).collect(),
            ),
            (
                "timesteps",
                safetensors::Dtype::I64,
                vec![s],
                i64_bytes(&tsv),
            ),
        ])?;
        std::fs::write(p, data)?;
    }
    let rows: Vec<String> = ids.chunks(l).map(|r| m.decode(r)).collect();
    match out_ext.as_str() {
        "txt" => {
            let mut s = rows.join("\n");
            s.push('\n');
            std::fs::write(&a.out, s)?;
        }
        "fasta" | "fa" => {
            let s: String = rows
                .iter()
                .enumerate()
                .map(|(i, r)| format!(">{i}\n{r}\n"))
                .collect();
            std::fs::write(&a.out, s)?;
        }
        _ => {
            let data = safetensors_bytes(vec![(
                "tokens",
                safetensors::Dtype::I64,
                vec![n, l],
                i64_bytes(&ids),
            )])?;
            std::fs::write(&a.out, data)?;
        }
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

/// Sequences from a data file: `.txt` (one sequence per line; blank lines skipped), `.fasta`/`.fa`
/// (records joined across lines), or `.safetensors` (integer tensor `tokens [N, L]`). Every id is
/// checked against the vocabulary.
pub fn read_data(m: &SequenceModel, path: &Path) -> Result<Vec<u32>> {
    let l = m.config.seq_len;
    let k = m.process.k();
    let what = |i: usize| format!("{} sequence {}", path.display(), i + 1);
    match ext(path).as_str() {
        "safetensors" => {
            let mut w = Weights::from_file(path)?;
            let (shape, v) = w.take_ints("tokens")?;
            if shape.len() != 2 || shape[1] != l {
                return Err(Error::Data {
                    what: path.display().to_string(),
                    detail: format!("tokens has shape {shape:?}, {} needs [N, {l}]", m.name),
                });
            }
            v.iter()
                .map(|&id| {
                    if id < 0 || id >= k as i64 {
                        Err(Error::Data {
                            what: path.display().to_string(),
                            detail: format!("token id {id} is outside 0..{k}"),
                        })
                    } else {
                        Ok(id as u32)
                    }
                })
                .collect()
        }
        e @ ("txt" | "fasta" | "fa") => {
            let text = std::fs::read_to_string(path)?;
            let seqs: Vec<String> = if e == "txt" {
                text.lines()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            } else {
                let mut v: Vec<String> = Vec::new();
                for line in text.lines().map(str::trim).filter(|s| !s.is_empty()) {
                    if line.starts_with('>') {
                        v.push(String::new());
                    } else if let Some(last) = v.last_mut() {
                        last.push_str(&line.to_uppercase());
                    } else {
                        return Err(Error::Invalid(format!(
                            "{}: FASTA sequence data before the first '>' header",
                            path.display()
                        )));
                    }
                }
                v
            };
            let mut ids = Vec::with_capacity(seqs.len() * l);
            for (i, s) in seqs.iter().enumerate() {
                ids.extend(m.encode(s, &what(i))?);
            }
            Ok(ids)
        }
        _ => Err(Error::Invalid(format!(
            "{}: use a .txt, .fasta or .safetensors data file",
            path.display()
        ))),
    }
}

/// The ELBO of held-out data on the GPU: per-sequence terms summed, in bits per token.
pub fn nll(opts: &DeviceOptions, a: &NllArgs) -> Result<()> {
    if a.batch == 0 {
        return Err(Error::Invalid("--batch must be at least 1".into()));
    }
    let device = Device::open(opts)?.device;
    let m = load(&device, &a.model)?;
    let l = m.config.seq_len;
    let mut ids = read_data(&m, &a.data)?;
    let mut n = ids.len() / l;
    if let Some(lim) = a.limit {
        n = n.min(lim);
        ids.truncate(n * l);
    }
    if n == 0 {
        return Err(Error::Invalid(format!(
            "{}: no sequences",
            a.data.display()
        )));
    }
    let t0 = std::time::Instant::now();
    let steps = m.process.nsteps();
    let mut per_term = vec![0f64; steps + 1];
    let mut total = 0f64;
    let batches = ids.len().div_ceil((a.batch * l).max(1));
    let mut progress = Progress::new(format!("{} ELBO (batches)", m.name), batches);
    for (bi, chunk) in ids.chunks(a.batch * l).enumerate() {
        progress.update(bi);
        let b = chunk.len() / l;
        let x0 = Tensor::from_indices(&device, &[b, l], chunk, m.process.k() as u32, "data")?;
        // Each batch gets its own draws: the seed advances with the batch index.
        let terms = m.process.elbo_terms(
            &m.denoiser,
            &x0,
            a.seed.wrapping_add(bi as u64 * 0x9E37_79B9),
            None,
        )?;
        for (i, row) in terms.iter().enumerate() {
            let s: f64 = row.iter().sum();
            per_term[i] += s;
            total += s;
        }
    }
    progress.update(batches);
    let tokens = (n * l) as f64;
    let ln2 = std::f64::consts::LN_2;
    let bpt = total / tokens / ln2;
    // Padded data (words): the cost of the padding is part of each word's code length, so bits per
    // character spreads the whole sequence's bits over its real characters only.
    let chars = match m.config.pad_token {
        Some(pad) => ids.iter().filter(|&&id| id as usize != pad).count(),
        None => n * l,
    };
    let bpc = total / chars.max(1) as f64 / ln2;
    let bps = total / n as f64 / ln2;
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        let v = serde_json::json!({
            "model": m.name,
            "process": m.process.describe(),
            "sequences": n,
            "tokens": n * l,
            "characters": chars,
            "bits_per_token": bpt,
            "bits_per_character": bpc,
            "bits_per_sequence": bps,
            "decoder_bits_per_token": per_term[0] / tokens / ln2,
            "prior_bits_per_token": per_term[steps] / tokens / ln2,
            "diffusion_bits_per_token": per_term[1..steps].iter().sum::<f64>() / tokens / ln2,
            "seconds": secs,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!(
            "{}: ELBO {bpt:.4} bits/token, {bpc:.4} bits/character, {bps:.2} bits/sequence over {n} sequences × {l} tokens (decoder {:.4}, diffusion {:.4}, prior {:.2e}) in {secs:.1} s",
            m.name,
            per_term[0] / tokens / ln2,
            per_term[1..steps].iter().sum::<f64>() / tokens / ln2,
            per_term[steps] / tokens / ln2,
        );
    }
    Ok(())
}

/// `diffscope forward` for a sequence model: `x` integer ids `[N, L]`, `t` `[N]` → `out` logits.
pub fn forward(opts: &DeviceOptions, a: &ForwardArgs) -> Result<()> {
    let mut w = Weights::from_file(&a.inputs)?;
    let device = Device::open(opts)?.device;
    let m = load(&device, &a.model)?;
    let l = m.config.seq_len;
    let k = m.process.k();
    let (shape, x) = w.take_ints("x")?;
    if shape.len() != 2 || shape[1] != l {
        return Err(Error::Invalid(format!(
            "x has shape {shape:?}, {} needs [N, {l}]",
            m.name
        )));
    }
    let n = shape[0];
    if let Some(bad) = x.iter().find(|&&v| v < 0 || v >= k as i64) {
        return Err(Error::Invalid(format!("token id {bad} is outside 0..{k}")));
    }
    let t = w.take_numbers("t", &[n])?;
    if let Some(bad) = t
        .data
        .iter()
        .find(|&&v| !(v >= 0.0 && (v as usize) < m.process.nsteps() + m.config.last_time_idx))
    {
        return Err(Error::Invalid(format!(
            "timestep {bad} is outside the model's {} steps",
            m.process.nsteps()
        )));
    }
    let ids: Vec<u32> = x.iter().map(|&v| v as u32).collect();
    let xt = Tensor::from_u32(&device, &[n, l], &ids)?;
    let tt = Tensor::from_f32(&device, &[n], &t.data)?;
    let out = m.denoiser.forward(&xt, &tt, None)?.to_f32()?;
    let data = safetensors_bytes(vec![(
        "out",
        safetensors::Dtype::F32,
        vec![n, l, k],
        out.iter().flat_map(|f| f.to_le_bytes()).collect(),
    )])?;
    std::fs::write(&a.out, data)?;
    Ok(())
}

/// ms per reverse step at a batch size, with the GPU counters per step (for `diffscope bench`).
pub fn bench_step(
    device: &Device,
    m: &SequenceModel,
    batch: usize,
    steps: usize,
) -> Result<(diffscope::gpu::CounterSnapshot, f64)> {
    let mut run = SequenceRun::start(m, batch, 1, 1.0)?;
    // Warm-up: pipelines, bind groups and pool buffers.
    for _ in 0..3 {
        run.step(m)?;
        device.submit();
    }
    device.wait_idle()?;
    let before = device.counters();
    let t0 = std::time::Instant::now();
    let n = steps.min(run.steps() - 3).max(1);
    for _ in 0..n {
        run.step(m)?;
        device.submit();
    }
    device.wait_idle()?;
    let secs = t0.elapsed().as_secs_f64();
    let d = device.counters() - before;
    Ok((d.per_step(n), secs / n as f64 * 1e3))
}

/// The discrete part of `diffscope bench`: every shipped sequence model at batch 1 and 64.
pub fn bench(device: &Device, quick: bool, json: bool) -> Result<serde_json::Value> {
    let mut out = Vec::new();
    for s in zoo::family(Family::Sequence) {
        let m = sequence::load_shipped(device, s.name)?;
        for batch in [1usize, 64] {
            let (c, ms) = bench_step(device, &m, batch, if quick { 3 } else { 10 })?;
            out.push(step_row(s.name, batch, &c, ms, json));
        }
    }
    Ok(serde_json::Value::Array(out))
}
