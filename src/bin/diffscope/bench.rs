//! `diffscope bench`: kernel throughput and the cost of reverse steps (a representative MLP, the
//! shipped toy2d-mlp at 4,096 points, and mnist-unet at batch 1 and 16), measured in one run so the
//! figures can be compared with each other (this machine drifts ±30–50 % over minutes).

use crate::args::BenchArgs;
use crate::{graph, sequence};
use diffscope::gpu::CounterSnapshot;
use diffscope::ops::elementwise as ew;
use diffscope::ops::matmul::{self, linear, Act, MatmulKernel};
use diffscope::ops::update::{
    self, DdpmStepParams, DdpmVariance, Extras, ModelOutput, Noise, Prediction,
};
use diffscope::pipelines::gaussian::{self, GaussianModel};
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::rng::{Philox, Substream};
use diffscope::tensor::Opened;
use diffscope::weights::Weights;
use diffscope::{Backend, Device, DeviceOptions, Result, Tensor};
use serde_json::json;
use std::time::Instant;

/// mnist-unet's architecture and scheduler (tools/train_mnist_unet.py), for timing it with made-up
/// weights when the trained model is not shipped in this build.
const MNIST_UNET_CONFIG: &str = r#"{"_class_name": "UNet2DModel", "sample_size": 28, "in_channels": 1,
  "out_channels": 1, "layers_per_block": 2, "block_out_channels": [32, 64, 64],
  "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
  "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"], "norm_num_groups": 8,
  "num_class_embeds": 11}"#;
const MNIST_UNET_SCHEDULER: &str = r#"{"_class_name": "DDPMScheduler", "num_train_timesteps": 1000,
  "beta_schedule": "linear", "prediction_type": "epsilon", "clip_sample": true,
  "variance_type": "fixed_small"}"#;

/// The image model to time and where it came from.
fn image_model(device: &Device, args: &BenchArgs) -> Result<(GaussianModel, String)> {
    if let Some(dir) = &args.model_dir {
        return Ok((gaussian::load_dir(device, dir)?, dir.display().to_string()));
    }
    if gaussian::shipped("mnist-unet").is_ok() {
        return Ok((
            gaussian::load_shipped(device, "mnist-unet")?,
            "shipped".into(),
        ));
    }
    let m = gaussian::build(
        device,
        "mnist-unet",
        MNIST_UNET_CONFIG,
        "mnist-unet config (built in)",
        MNIST_UNET_SCHEDULER,
        "mnist-unet scheduler (built in)",
        Weights::synthetic("mnist-unet (made-up weights)", 0),
    )?;
    Ok((m, "architecture only, made-up weights".into()))
}

/// A model's reverse step at `batch` (conditional models get label 0, no guidance): the product's
/// `Gaussian::step`, one submission per step, DDPM from the middle of the schedule.
fn model_step(
    device: &Device,
    m: &GaussianModel,
    batch: usize,
    warm: usize,
    steps: usize,
) -> Result<StepCost> {
    if m.process.is_ve() {
        return ve_model_step(device, m, batch, warm, steps);
    }
    let settings = SampleSettings {
        sampler: Sampler::Ddpm,
        steps: m.process.train_timesteps(),
        seed: 1,
        labels: m.denoiser.num_labels().map(|_| vec![0; batch]),
        guidance: None,
    };
    let plan = m.process.plan(settings.sampler, settings.steps)?;
    let mut x = m
        .process
        .initial(device, batch, m.denoiser.sample_shape(), settings.seed)?;
    let mut k = plan.len() / 2;
    let mut step = |x: &Tensor| -> Result<Tensor> {
        let out = m.process.step(
            m.denoiser.as_ref(),
            x,
            &plan,
            k,
            &settings,
            Extras::default(),
        )?;
        device.submit();
        k += 1;
        Ok(out.x_prev)
    };
    timed(device, warm, steps, || {
        x = step(&x)?;
        Ok(())
    })
}

/// A score-SDE model's cost per model evaluation (a Langevin correction or a prediction, each one
/// network pass), through the run the app and `sample` use.
fn ve_model_step(
    device: &Device,
    m: &GaussianModel,
    batch: usize,
    warm: usize,
    steps: usize,
) -> Result<StepCost> {
    let settings = SampleSettings {
        sampler: Sampler::ScoreSdeVe,
        steps: (warm + steps).max(2),
        seed: 1,
        labels: None,
        guidance: None,
    };
    let mut run = gaussian::run::GaussianRun::start(m, &settings, batch, None)?;
    timed(device, warm, steps, || {
        run.step(m, Extras::default())?;
        device.submit();
        Ok(())
    })
}

/// What one reverse step costs, averaged over back-to-back steps.
struct StepCost {
    counters: CounterSnapshot,
    ms: f64,
    /// CPU ms (all threads), where the OS reports it.
    cpu_ms: Option<f64>,
}

/// Run `step` `warm` times, wait, then time `steps` more queued back to back (as the app and
/// `sample` run them) and wait for the GPU.
fn timed(
    device: &Device,
    warm: usize,
    steps: usize,
    mut step: impl FnMut() -> Result<()> + Send,
) -> Result<StepCost> {
    for _ in 0..warm {
        device.run_step(&mut step)?;
    }
    device.wait_idle()?;
    let before = device.counters();
    let cpu0 = cpu_secs();
    let t = Instant::now();
    for _ in 0..steps {
        device.run_step(&mut step)?;
    }
    device.wait_idle()?;
    let secs = t.elapsed().as_secs_f64();
    let per = steps as f64;
    Ok(StepCost {
        counters: (device.counters() - before).per_step(steps),
        ms: secs / per * 1e3,
        cpu_ms: cpu0.zip(cpu_secs()).map(|(a, b)| (b - a) / per * 1e3),
    })
}

/// CPU seconds this process has used, all threads (lavapipe's included), where Linux reports them:
/// on a machine shared with other jobs, wall time measures the share the scheduler gave us and CPU
/// time the work. `/proc/self/stat` counts in USER_HZ, which Linux fixes at 100.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn counters_json(c: &CounterSnapshot) -> serde_json::Value {
    json!({
        "submissions": c.submissions,
        "dispatches": c.dispatches,
        "buffers_created": c.buffers_created,
        "bind_groups_created": c.bind_groups_created,
        "pipelines_created": c.pipelines_created,
        "bytes_uploaded": c.bytes_uploaded,
        "bytes_read_back": c.bytes_read_back,
    })
}

/// Median seconds of `f` over `reps` runs after one warm-up; each run waits for the GPU.
fn median_secs(device: &Device, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    device.wait_idle()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f()?;
        device.wait_idle()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i % 1000) as f32) * 1e-3 - 0.5).collect()
}

/// A small DDPM step setting in the middle of a linear 1000-step schedule.
fn mid_step() -> DdpmStepParams {
    DdpmStepParams::diffusers(
        Prediction::Epsilon,
        0.0785872415,
        Some(0.0791),
        DdpmVariance::FixedSmall,
        None,
    )
}

fn bandwidth(device: &Device, n: usize, reps: usize) -> Result<(f64, f64)> {
    let x = Tensor::from_f32(device, &[n], &ramp(n))?;
    let e = Tensor::from_f32(device, &[n], &ramp(n))?;
    let p = mid_step();
    let mut step = 0u32;
    let ddpm = median_secs(device, reps, || {
        step += 1;
        update::ddpm_step(
            &x,
            ModelOutput::Plain(&e),
            &p,
            Noise::Philox(Philox::new(1, step, Substream::StepNoise)),
            Extras::default(),
        )?;
        Ok(())
    })?;
    let copy = median_secs(device, reps, || {
        ew::affine(&x, 1.0, 0.0)?;
        Ok(())
    })?;
    // DDPM reads x_t and ε̂ and writes x_{t−1} (noise is generated in-kernel); a copy reads and writes.
    let gb = |bytes_per: f64, secs: f64| bytes_per * n as f64 / secs / 1e9;
    Ok((gb(12.0, ddpm), gb(8.0, copy)))
}

/// The representative model of the issue: a 4-layer MLP denoiser (64 → 256 → 256 → 256 → 64, SiLU)
/// on a 256×64 batch, plus the fused DDPM update.
fn mlp_step(device: &Device, steps: usize) -> Result<StepCost> {
    let dims = [64usize, 256, 256, 256, 64];
    let mut layers = Vec::new();
    for w in dims.windows(2) {
        let (i, o) = (w[0], w[1]);
        let wt: Vec<f32> = ramp(o * i).iter().map(|v| v * 0.05).collect();
        layers.push((
            Tensor::from_f32(device, &[o, i], &wt)?,
            Tensor::from_f32(device, &[o], &vec![0.01; o])?,
        ));
    }
    let p = mid_step();
    let mut x = Tensor::from_f32(device, &[256, 64], &ramp(256 * 64))?;
    let mut step_no = 0u32;
    let mut step = |x: &Tensor| -> Result<Tensor> {
        step_no += 1;
        let mut h = x.clone();
        for (k, (w, b)) in layers.iter().enumerate() {
            let act = if k + 1 < layers.len() {
                Act::Silu
            } else {
                Act::None
            };
            h = linear(&h, w, Some(b), act)?;
        }
        let out = update::ddpm_step(
            x,
            ModelOutput::Plain(&h),
            &p,
            Noise::Philox(Philox::new(7, step_no, Substream::StepNoise)),
            Extras::default(),
        )?;
        device.submit();
        Ok(out.x_prev)
    };
    timed(device, 3, steps, || {
        x = step(&x)?;
        Ok(())
    })
}

/// Kernel throughput: matmul against the textbook kernel, the fused update against a copy, and the
/// representative MLP step.
/// 3×3 convolutions at the shapes of a small MNIST UNet: the direct kernel against the tiled GEMM.
fn conv_bench(device: &Device, reps: usize, print: bool) -> Result<Vec<serde_json::Value>> {
    use diffscope::ops::conv::{conv2d_with, ConvKernel, Padding};
    let mut out = Vec::new();
    for (n, c, hw) in [(16, 16, 28), (16, 32, 14), (16, 96, 7)] {
        let x = Tensor::from_f32(device, &[n, c, hw, hw], &ramp(n * c * hw * hw))?;
        let w = Tensor::from_f32(device, &[c, c, 3, 3], &ramp(c * c * 9))?;
        let flop = 2.0 * (n * c * c * 9 * hw * hw) as f64;
        let mut row = json!({"n": n, "channels": c, "size": hw});
        for (name, k) in [("direct", ConvKernel::Direct), ("gemm", ConvKernel::Gemm)] {
            let secs = median_secs(device, reps, || {
                conv2d_with(&x, &w, None, 1, Padding::same(1), k).map(|_| ())
            })?;
            row[name] = json!(flop / secs / 1e9);
        }
        if print {
            eprintln!(
                "conv2d 3x3 [{n},{c},{hw},{hw}]: direct {:.2} GFLOP/s, gemm {:.2} GFLOP/s",
                row["direct"].as_f64().unwrap_or(0.0),
                row["gemm"].as_f64().unwrap_or(0.0)
            );
        }
        out.push(row);
    }
    Ok(out)
}

fn kernels(device: &Device, args: &BenchArgs) -> Result<serde_json::Value> {
    let (sizes, reps, bw_n): (&[usize], usize, usize) = if args.quick {
        (&[64, 128], 2, 1 << 16)
    } else {
        (&[256, 512, 1024], 5, 1 << 22)
    };
    let mut mm = Vec::new();
    for &n in sizes {
        let reps = if n >= 1024 { reps.min(3) } else { reps };
        match device {
            Device::Gpu(g) => {
                // The kernel `matmul` itself would run this problem on.
                let shipped = matmul::kernel_for(g, n, n, n, 1)?;
                for (name, k) in [("shipped", shipped), ("baseline", MatmulKernel::Baseline)] {
                    let gflops = matmul::bench_gflops(g, n, k, reps)?;
                    if !args.json {
                        eprintln!("matmul n={n:<5} {name:<8} ({k}): {gflops:.2} GFLOP/s");
                    }
                    mm.push(
                        json!({"n": n, "kernel": name, "config": k.to_string(), "gflops": gflops}),
                    );
                }
            }
            Device::Cpu(_) => {
                let a = Tensor::from_f32(device, &[n, n], &ramp(n * n))?;
                // A CPU product of this size takes milliseconds: more repetitions steady the median.
                let reps = if args.quick { reps } else { 11 };
                let secs = median_secs(device, reps, || {
                    matmul::matmul(&a, &a, &matmul::Matmul::default()).map(|_| ())
                })?;
                let gflops = 2.0 * (n as f64).powi(3) / secs / 1e9;
                if !args.json {
                    eprintln!("matmul n={n:<5} cpu gemm: {gflops:.2} GFLOP/s");
                }
                mm.push(
                    json!({"n": n, "kernel": "shipped", "config": "cpu gemm", "gflops": gflops}),
                );
            }
        }
    }
    let conv = conv_bench(device, if args.quick { 1 } else { 3 }, !args.json)?;
    let (ddpm_gbps, copy_gbps) = bandwidth(device, bw_n, reps)?;
    let StepCost { counters, ms, .. } = mlp_step(device, if args.quick { 3 } else { 20 })?;
    let samplers =
        crate::bench_samplers::sampler_updates(device, if args.quick { 1 } else { 3 }, !args.json)?;
    if !args.json {
        eprintln!(
            "fused DDPM step: {ddpm_gbps:.2} GB/s; copy: {copy_gbps:.2} GB/s ({:.0} % of copy)",
            100.0 * ddpm_gbps / copy_gbps
        );
        eprintln!("MLP reverse step: {ms:.2} ms, {counters:?}");
    }
    Ok(json!({
        "matmul": mm,
        "conv2d": conv,
        "bandwidth_elements": bw_n,
        "ddpm_step_gbps": ddpm_gbps,
        "copy_gbps": copy_gbps,
        "ddpm_step_vs_copy": ddpm_gbps / copy_gbps,
        "sampler_updates": samplers,
        "step_counters": {
            "model": "4-layer MLP 64-256-256-256-64 (SiLU) on 256x64 + fused DDPM update",
            "submissions": counters.submissions,
            "dispatches": counters.dispatches,
            "buffers_created": counters.buffers_created,
            "bytes_read_back": counters.bytes_read_back,
            "bytes_uploaded": counters.bytes_uploaded,
            "ms_per_step": ms,
        },
    }))
}

/// The models' reverse steps: toy2d-mlp at 4,096 points, mnist-unet (or `--model-dir`) at batch 1
/// and 16.
fn model_steps(device: &Device, args: &BenchArgs) -> Result<serde_json::Value> {
    let toy = gaussian::load_shipped(device, "toy2d-mlp")?;
    let (image, source) = image_model(device, args)?;
    // (model, where from, batch, warm-up steps, timed steps). A UNet's state settles into a rotation
    // over three pooled buffers within five steps; until then each step meets new bind-group
    // combinations (tests/engine/unet.rs), which a shorter warm-up would count as a step's cost.
    let runs: [(&GaussianModel, &str, usize, usize, usize); 3] = if args.quick {
        [
            (&toy, "shipped", 256, 2, 3),
            (&image, &source, 1, 1, 1),
            (&image, &source, 2, 1, 1),
        ]
    } else {
        [
            (&toy, "shipped", 4096, 2, 20),
            (&image, &source, 1, 5, 3),
            (&image, &source, 16, 5, 2),
        ]
    };
    let mut out = Vec::new();
    for (m, source, batch, warm, steps) in runs {
        let r = model_step(device, m, batch, warm, steps)?;
        let c = &r.counters;
        if !args.json {
            let cpu = r
                .cpu_ms
                .map_or(String::new(), |v| format!(" ({v:.1} ms CPU)"));
            eprintln!(
                "{} ({source}) batch {batch}: {:.1} ms per reverse step{cpu}; per step {} submission(s), {} dispatches, {} buffers and {} bind groups created",
                m.name, r.ms, c.submissions, c.dispatches, c.buffers_created, c.bind_groups_created
            );
        }
        out.push(json!({
            "model": m.name, "source": source, "batch": batch, "steps_timed": steps,
            "ms_per_step": r.ms, "cpu_ms_per_step": r.cpu_ms, "per_step": counters_json(c),
        }));
    }
    Ok(serde_json::Value::Array(out))
}

pub fn run(opts: &DeviceOptions, args: &BenchArgs) -> Result<()> {
    let report = if args.compare_backends {
        compare_backends(opts, args)?
    } else {
        let opened = Device::open(opts)?;
        report(&opened, args.steps_only, args)?
    };
    if args.json {
        // A closed stdout is an error, not a panic.
        crate::output::outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Every figure of one backend, as one JSON object.
fn report(opened: &Opened, steps_only: bool, args: &BenchArgs) -> Result<serde_json::Value> {
    let device = &opened.device;
    if !args.json {
        eprintln!("device: {} ({})", device.describe(), opened.why);
    }
    let adapter = match device {
        Device::Gpu(g) => {
            let s = g.summary();
            json!({"name": s.name, "backend": s.backend, "driver": s.driver, "driver_info": s.driver_info, "device_type": s.device_type})
        }
        Device::Cpu(c) => {
            json!({"name": device.describe(), "backend": "cpu", "threads": c.threads(), "device_type": "Cpu"})
        }
    };
    let kernels = if steps_only {
        serde_json::Value::Null
    } else {
        kernels(device, args)?
    };
    let models = model_steps(device, args)?;
    let discrete = sequence::bench(device, args.quick, args.json)?;
    let graphs = graph::bench(device, args.quick, args.json)?;
    Ok(json!({
        "backend": device.backend().name(),
        "backend_why": opened.why,
        "adapter": adapter,
        "quick": args.quick,
        "kernels": kernels,
        "model_steps": models,
        "discrete_steps": discrete,
        "graph_steps": graphs,
    }))
}

/// The reverse steps on the GPU adapter `opts` names (or the default one) and then on the CPU
/// backend, with each step's CPU/GPU time ratio: the measurement behind `auto`'s choice.
fn compare_backends(opts: &DeviceOptions, args: &BenchArgs) -> Result<serde_json::Value> {
    let on = |backend| {
        let o = DeviceOptions {
            backend: Some(backend),
            ..opts.clone()
        };
        report(&Device::open(&o)?, true, args)
    };
    let gpu = on(Backend::Gpu)?;
    let cpu = on(Backend::Cpu)?;
    let mut ratios = Vec::new();
    for family in ["model_steps", "discrete_steps", "graph_steps"] {
        let rows = |r: &serde_json::Value| r[family].as_array().cloned().unwrap_or_default();
        for (g, c) in rows(&gpu).iter().zip(rows(&cpu)) {
            let (gm, cm) = (g["ms_per_step"].as_f64(), c["ms_per_step"].as_f64());
            let (Some(gm), Some(cm)) = (gm, cm) else {
                continue;
            };
            let ratio = cm / gm;
            if !args.json {
                eprintln!(
                    "{} batch {}: GPU {gm:.2} ms, CPU {cm:.2} ms per step: CPU/GPU time {ratio:.2}",
                    g["model"].as_str().unwrap_or("?"),
                    g["batch"]
                );
            }
            ratios.push(json!({
                "model": g["model"], "batch": g["batch"], "gpu_ms_per_step": gm,
                "cpu_ms_per_step": cm, "cpu_over_gpu": ratio,
            }));
        }
    }
    Ok(json!({"gpu": gpu, "cpu": cpu, "ratios": ratios}))
}
