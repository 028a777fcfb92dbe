//! `diffscope bench`: kernel throughput and the cost of a representative reverse step, measured in one
//! run so the figures can be compared with each other (this machine drifts ±30–50 % over minutes).

use diffscope::{GpuOptions, Result};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Smaller sizes and fewer repetitions (a smoke test, not a measurement).
    #[arg(long)]
    quick: bool,
}

pub fn run(opts: &GpuOptions, args: &BenchArgs) -> Result<()> {
    let gpu = diffscope::Gpu::new(opts)?;
    let report = serde_json::json!({ "adapter": gpu.summary(), "quick": args.quick });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        println!("{report}");
    }
    Ok(())
}
