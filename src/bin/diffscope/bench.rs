//! `diffscope bench`: kernel throughput and the cost of a representative reverse step, measured in one
//! run so the figures can be compared with each other (this machine drifts ±30–50 % over minutes).

use diffscope::gpu::CounterSnapshot;
use diffscope::ops::elementwise as ew;
use diffscope::ops::matmul::{self, linear, Act, MatmulKernel};
use diffscope::ops::update::{
    self, DdpmStepParams, DdpmVariance, Extras, ModelOutput, Noise, Prediction,
};
use diffscope::rng::{Philox, Substream};
use diffscope::{Gpu, GpuOptions, Result, Tensor};
use serde_json::json;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Smaller sizes and fewer repetitions (a smoke test, not a measurement).
    #[arg(long)]
    quick: bool,
}

/// Median seconds of `f` over `reps` runs after one warm-up; each run waits for the GPU.
fn median_secs(gpu: &Gpu, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    gpu.wait_idle()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f()?;
        gpu.wait_idle()?;
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

fn bandwidth(gpu: &Gpu, n: usize, reps: usize) -> Result<(f64, f64)> {
    let x = Tensor::from_f32(gpu, &[n], &ramp(n))?;
    let e = Tensor::from_f32(gpu, &[n], &ramp(n))?;
    let p = mid_step();
    let mut step = 0u32;
    let ddpm = median_secs(gpu, reps, || {
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
    let copy = median_secs(gpu, reps, || {
        ew::affine(&x, 1.0, 0.0)?;
        Ok(())
    })?;
    // DDPM reads x_t and ε̂ and writes x_{t−1} (noise is generated in-kernel); a copy reads and writes.
    let gb = |bytes_per: f64, secs: f64| bytes_per * n as f64 / secs / 1e9;
    Ok((gb(12.0, ddpm), gb(8.0, copy)))
}

/// The representative model of the issue: a 4-layer MLP denoiser (64 → 256 → 256 → 256 → 64, SiLU)
/// on a 256×64 batch, plus the fused DDPM update. Returns per-step counters and ms per step.
fn mlp_step(gpu: &Gpu, steps: usize) -> Result<(CounterSnapshot, f64)> {
    let dims = [64usize, 256, 256, 256, 64];
    let mut layers = Vec::new();
    for w in dims.windows(2) {
        let (i, o) = (w[0], w[1]);
        let wt: Vec<f32> = ramp(o * i).iter().map(|v| v * 0.05).collect();
        layers.push((
            Tensor::from_f32(gpu, &[o, i], &wt)?,
            Tensor::from_f32(gpu, &[o], &vec![0.01; o])?,
        ));
    }
    let p = mid_step();
    let mut x = Tensor::from_f32(gpu, &[256, 64], &ramp(256 * 64))?;
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
        gpu.submit();
        Ok(out.x_prev)
    };
    for _ in 0..3 {
        x = step(&x)?;
    }
    gpu.wait_idle()?;
    let before = gpu.counters();
    let t = Instant::now();
    for _ in 0..steps {
        x = step(&x)?;
    }
    gpu.wait_idle()?;
    let secs = t.elapsed().as_secs_f64();
    let d = gpu.counters() - before;
    let per = |v: u64| v / steps as u64;
    Ok((
        CounterSnapshot {
            submissions: per(d.submissions),
            dispatches: per(d.dispatches),
            buffers_created: per(d.buffers_created),
            bytes_uploaded: per(d.bytes_uploaded),
            bytes_read_back: per(d.bytes_read_back),
            pipelines_created: per(d.pipelines_created),
            bind_groups_created: per(d.bind_groups_created),
        },
        secs / steps as f64 * 1e3,
    ))
}

/// 3×3 convolutions at the shapes of a small MNIST UNet: the direct kernel against the tiled GEMM.
fn conv_bench(gpu: &Gpu, reps: usize, print: bool) -> Result<Vec<serde_json::Value>> {
    use diffscope::ops::conv::{conv2d_with, ConvKernel, Padding};
    let mut out = Vec::new();
    for (n, c, hw) in [(16, 16, 28), (16, 32, 14), (16, 96, 7)] {
        let x = Tensor::from_f32(gpu, &[n, c, hw, hw], &ramp(n * c * hw * hw))?;
        let w = Tensor::from_f32(gpu, &[c, c, 3, 3], &ramp(c * c * 9))?;
        let flop = 2.0 * (n * c * c * 9 * hw * hw) as f64;
        let mut row = json!({"n": n, "channels": c, "size": hw});
        for (name, k) in [("direct", ConvKernel::Direct), ("gemm", ConvKernel::Gemm)] {
            let secs = median_secs(gpu, reps, || {
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

pub fn run(opts: &GpuOptions, args: &BenchArgs) -> Result<()> {
    let gpu = Gpu::new(opts)?;
    let (sizes, reps, bw_n): (&[usize], usize, usize) = if args.quick {
        (&[64, 128], 2, 1 << 16)
    } else {
        (&[256, 512, 1024], 5, 1 << 22)
    };
    let shipped = matmul::device_kernel(&gpu)?;
    let mut mm = Vec::new();
    for &n in sizes {
        for (name, k) in [("shipped", shipped), ("baseline", MatmulKernel::Baseline)] {
            let reps = if n >= 1024 { reps.min(3) } else { reps };
            let gflops = matmul::bench_gflops(&gpu, n, k, reps)?;
            if !args.json {
                eprintln!("matmul n={n:<5} {name:<8} ({k}): {gflops:.2} GFLOP/s");
            }
            mm.push(json!({"n": n, "kernel": name, "config": k.to_string(), "gflops": gflops}));
        }
    }
    let conv = conv_bench(&gpu, if args.quick { 1 } else { 3 }, !args.json)?;
    let (ddpm_gbps, copy_gbps) = bandwidth(&gpu, bw_n, reps)?;
    let (counters, ms) = mlp_step(&gpu, if args.quick { 3 } else { 20 })?;
    let discrete = crate::discrete::bench(&gpu, args.quick, args.json)?;
    let s = gpu.summary();
    let report = json!({
        "adapter": {"name": s.name, "backend": s.backend, "driver": s.driver, "driver_info": s.driver_info, "device_type": s.device_type},
        "quick": args.quick,
        "matmul": mm,
        "conv2d": conv,
        "bandwidth_elements": bw_n,
        "ddpm_step_gbps": ddpm_gbps,
        "copy_gbps": copy_gbps,
        "ddpm_step_vs_copy": ddpm_gbps / copy_gbps,
        "step_counters": {
            "model": "4-layer MLP 64-256-256-256-64 (SiLU) on 256x64 + fused DDPM update",
            "submissions": counters.submissions,
            "dispatches": counters.dispatches,
            "buffers_created": counters.buffers_created,
            "bytes_read_back": counters.bytes_read_back,
            "bytes_uploaded": counters.bytes_uploaded,
            "ms_per_step": ms,
        },
        "discrete_steps": discrete,
    });
    if args.json {
        crate::cli::outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        )?;
    } else {
        eprintln!(
            "fused DDPM step: {ddpm_gbps:.2} GB/s; copy: {copy_gbps:.2} GB/s ({:.0} % of copy)",
            100.0 * ddpm_gbps / copy_gbps
        );
        eprintln!("MLP reverse step: {ms:.2} ms, {counters:?}");
    }
    Ok(())
}
