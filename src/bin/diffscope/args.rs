//! Every subcommand's arguments, parsed by clap. The subcommands' code (one file per model family,
//! `bench.rs`, `info.rs`) reads these; `cli.rs` dispatches.

use diffscope::pipelines::zoo::{self, Family};
use std::path::PathBuf;

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
    /// Which family the named model or folder belongs to: a shipped model by its zoo entry, a folder
    /// by its files (`process.json`: sequences; a DiGress `config.json`: graphs; else Gaussian).
    pub fn family(&self) -> Family {
        match (&self.model, &self.model_dir) {
            (Some(name), _) => zoo::find(name).map_or(Family::Gaussian, |m| m.family),
            (None, Some(dir)) => {
                if dir.join("process.json").exists() {
                    Family::Sequence
                } else if std::fs::read_to_string(dir.join("config.json"))
                    .is_ok_and(|c| c.contains("\"digress_graph_transformer\""))
                {
                    Family::Graph
                } else {
                    Family::Gaussian
                }
            }
            (None, None) => Family::Gaussian,
        }
    }
}

/// The reverse samplers (diffusers' scheduler classes; see `process::gaussian::Sampler`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerArg {
    /// DDPMScheduler: ancestral, one step per training timestep by default.
    Ddpm,
    /// DDIMScheduler with --eta.
    Ddim,
    /// DPMSolverMultistepScheduler, dpmsolver++ (second order).
    #[value(name = "dpm++2m")]
    DpmPp2m,
    /// DPMSolverMultistepScheduler, sde-dpmsolver++.
    #[value(name = "dpm++2m-sde")]
    DpmPp2mSde,
    /// EulerDiscreteScheduler.
    Euler,
    /// EulerAncestralDiscreteScheduler.
    #[value(name = "euler-a")]
    EulerA,
    /// HeunDiscreteScheduler (two model evaluations per step).
    Heun,
    /// UniPCMultistepScheduler (bh2 predictor-corrector).
    Unipc,
    /// PNDMScheduler (Runge-Kutta warm-up, then PLMS; the file's skip_prk_steps is honoured).
    Pndm,
    /// PNDMScheduler with skip_prk_steps: PLMS from the first step.
    Plms,
    /// ScoreSdeVeScheduler's predictor-corrector (score-SDE variance-exploding models, and only those).
    #[value(name = "sde-ve")]
    SdeVe,
}

impl SamplerArg {
    /// The name `Sampler::parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            SamplerArg::Ddpm => "ddpm",
            SamplerArg::Ddim => "ddim",
            SamplerArg::DpmPp2m => "dpm++2m",
            SamplerArg::DpmPp2mSde => "dpm++2m-sde",
            SamplerArg::Euler => "euler",
            SamplerArg::EulerA => "euler-a",
            SamplerArg::Heun => "heun",
            SamplerArg::Unipc => "unipc",
            SamplerArg::Pndm => "pndm",
            SamplerArg::Plms => "plms",
            SamplerArg::SdeVe => "sde-ve",
        }
    }
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
    /// Number of samples (default: the batch of --init, else 16).
    #[arg(long)]
    pub(crate) n: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// The reverse sampler (default: ddpm; sde-ve for a score-SDE model).
    #[arg(long, value_enum)]
    pub(crate) sampler: Option<SamplerArg>,
    /// Karras σ (dpm++2m, dpm++2m-sde, euler, heun, unipc; the scheduler file may also ask for them).
    #[arg(long)]
    pub(crate) karras: bool,
    /// Reverse steps (default: every training timestep for DDPM, 50 for DDIM and PNDM, 20 for the
    /// others).
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
    /// Start from this unit-variance noise (safetensors with tensor `x` of shape [N, ..]); each
    /// sampler scales it by its initial noise σ, as diffusers' pipelines do.
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
    /// Absorbing sequence models: which masked positions each step reveals — random (D3PM's own
    /// posterior), confident (as many, but those whose drawn token the model is surest of, as
    /// MaskGIT and LLaDA decode; the temperature then divides the model's prediction only) or
    /// annealed (as confident, after Gumbel noise that fades over the run is added to each
    /// confidence: MaskGIT's choice temperature).
    #[arg(long, value_name = "random|confident|annealed")]
    pub(crate) unmask: Option<String>,
    /// Sequence models with a pad class (words): suffix (the default: a draw that would put a pad
    /// before a letter is drawn again among the classes that fit, so padding only ends a
    /// sequence, as in the data) or free (wherever the model puts it).
    #[arg(long, value_name = "suffix|free")]
    pub(crate) padding: Option<String>,
    /// Time every kernel on its own and print where the time goes (slower overall).
    #[arg(long)]
    pub(crate) profile: bool,
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

#[derive(clap::Args, Debug)]
pub struct NllArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Held-out data: .txt (one sequence per line), .fasta, or .safetensors (`tokens` [N, L]).
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// Use only the first N sequences.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// Sequences per batch.
    #[arg(long, default_value_t = 256)]
    pub(crate) batch: usize,
    /// Seed of the x_t ~ q(x_t | x0) draws.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A shipped graph model (see `info --models`): its config and train/test graphs.
    #[arg(long, value_name = "NAME")]
    pub(crate) model: Option<String>,
    /// Your own DiGress folder: config.json and dataset.json (train/val/test graphs).
    #[arg(long, value_name = "DIR", conflicts_with = "model")]
    pub(crate) model_dir: Option<std::path::PathBuf>,
    /// Generated graphs as written by `diffscope sample` (a JSON list of graphs).
    pub(crate) graphs: std::path::PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    /// Smaller sizes and fewer repetitions (a smoke test, not a measurement).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Time this image model folder (diffusers UNet2DModel layout, as `sample --model-dir`) instead
    /// of mnist-unet.
    #[arg(long)]
    pub(crate) model_dir: Option<std::path::PathBuf>,
    /// Only the models' reverse steps (skip the kernel throughput figures, which take minutes on a
    /// software adapter).
    #[arg(long)]
    pub(crate) steps_only: bool,
    /// Time the models' reverse steps on the GPU adapter and on the CPU backend in one sitting and
    /// report each step's CPU/GPU time ratio (implies --steps-only; ignores --backend).
    #[arg(long)]
    pub(crate) compare_backends: bool,
}
