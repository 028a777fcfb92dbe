//! `cargo bench --bench matmul [-- N CONFIG...]`: GFLOP/s of square N³ matmuls (default 1024) for
//! each tile configuration (default: every tuning candidate and the textbook kernel), median of 3
//! runs, on the adapter `DIFFSCOPE_ADAPTER` picks. The configurations use `DIFFSCOPE_MATMUL`'s syntax
//! (`reg-16x16-wg8x8`, `smem-4x4-wg16x16-k16`, `baseline`). Figures are for comparing
//! configurations within one run; `diffscope bench` reports the shipped choice.

use diffscope::ops::matmul::{bench_gflops, tile_candidates, MatmulKernel};
use diffscope::{Gpu, GpuOptions};

fn main() {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let mut kernels: Vec<MatmulKernel> = Vec::new();
    for a in args.iter().skip(usize::from(
        args.first().is_some_and(|a| a.parse::<usize>().is_ok()),
    )) {
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
