//! `cargo bench --bench matmul [-- N CONFIG...]`: GFLOP/s of square N³ matmuls (default 1024) for
//! each tile configuration (default: every tuning candidate and the textbook kernel), median of 3
//! runs, on the adapter `DIFFSCOPE_ADAPTER` picks; `cpu` times the CPU backend's matmul instead
//! (`RAYON_NUM_THREADS` sets its threads). The configurations use `DIFFSCOPE_MATMUL`'s syntax
//! (`reg-16x16-wg8x8`, `smem-4x4-wg16x16-k16`, `baseline`). Figures are for comparing
//! configurations within one run; `diffscope bench` reports the shipped choice.

use diffscope::ops::matmul::cpu::{self, HostMatmul, HostMatrix};
use diffscope::ops::matmul::{bench_gflops, tile_candidates, MatmulKernel};
use diffscope::{Gpu, GpuOptions};

/// GFLOP/s of the CPU backend's M×K @ K×N matmul, median of `reps` after one warm-up.
fn cpu_gflops((m, n, k): (usize, usize, usize), reps: usize) -> diffscope::Result<f64> {
    let data = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    };
    let (a, b) = (data(m * k), data(k * n));
    let (sa, sb) = ([m, k], [k, n]);
    let am = HostMatrix {
        data: &a,
        shape: &sa,
    };
    let bm = HostMatrix {
        data: &b,
        shape: &sb,
    };
    cpu::matmul(am, bm, &HostMatmul::default())?;
    let mut secs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = std::time::Instant::now();
        std::hint::black_box(cpu::matmul(am, bm, &HostMatmul::default())?);
        secs.push(t0.elapsed().as_secs_f64());
    }
    secs.sort_by(f64::total_cmp);
    Ok(2.0 * (m * n * k) as f64 / secs[reps / 2] / 1e9)
}

fn main() {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let mut kernels: Vec<MatmulKernel> = Vec::new();
    let skip = usize::from(args.first().is_some_and(|a| a.parse::<usize>().is_ok()));
    if args.iter().skip(skip).any(|a| a == "cpu") {
        // Sizes the thread pool as the CPU backend does (RAYON_NUM_THREADS, else every core).
        let cpu = diffscope::cpu::Cpu::new(&Default::default());
        println!("{}", cpu.describe());
        let kernel = diffscope::cpu::gemm::kernel_name();
        // The square problem, then the shipped models' linear layers at their benchmark batches
        // (M = batch × positions): a words model's 768 rows at widths 128/192 and 4× that.
        let shapes = [
            (n, n, n),
            (768, 128, 128),
            (768, 512, 128),
            (768, 128, 512),
            (768, 192, 192),
            (768, 768, 192),
            (768, 192, 768),
            (4096, 256, 256),
        ];
        for (m, nn, k) in shapes {
            match cpu_gflops((m, nn, k), 11) {
                Ok(g) => println!("cpu ({kernel}; {m}×{k} @ {k}×{nn}) {g:7.2} GFLOP/s"),
                Err(e) => println!("cpu failed: {e}"),
            }
        }
        return;
    }
    for a in args.iter().skip(skip) {
        match a.parse() {
            Ok(k) => kernels.push(k),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }
    if kernels.is_empty() {
        kernels = tile_candidates();
        kernels.push(MatmulKernel::Baseline);
    }
    let gpu = match Gpu::new(&GpuOptions::default()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!("adapter: {}; n = {n}", gpu.adapter_info().name);
    for k in kernels {
        let name = k.to_string();
        if let Err(e) = k.validate(&gpu) {
            println!("{name:<24} not valid here: {e}");
            continue;
        }
        match bench_gflops(&gpu, n, k, 3) {
            Ok(g) => println!("{name:<24} {g:6.2} GFLOP/s"),
            Err(e) => println!("{name:<24} failed: {e}"),
        }
    }
}
