//! The `diffscope` binary: with no subcommand it opens the app; subcommands are the headless interface.
//! `cli.rs` parses and dispatches; `args.rs` holds every subcommand's arguments; one file per model
//! family (`gaussian.rs`, `sequence.rs`, `graph.rs`), `bench.rs`, `info.rs` and `app.rs` do the work;
//! `output.rs` is what they share for writing results, `progress.rs` a long command's progress line.
//! Imports form a tree: cli → subcommands → args, output, progress.

#[cfg(not(target_arch = "wasm32"))]
mod app;
#[cfg(not(target_arch = "wasm32"))]
mod args;
#[cfg(not(target_arch = "wasm32"))]
mod bench;
#[cfg(not(target_arch = "wasm32"))]
mod bench_samplers;
#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod gaussian;
#[cfg(not(target_arch = "wasm32"))]
mod graph;
#[cfg(not(target_arch = "wasm32"))]
mod info;
#[cfg(not(target_arch = "wasm32"))]
mod output;
#[cfg(not(target_arch = "wasm32"))]
mod progress;
#[cfg(not(target_arch = "wasm32"))]
mod sequence;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    diffscope::cpu::alloc::keep_freed_memory();
    cli::main()
}

// The web build enters through the library's wasm entry point, not this binary.
#[cfg(target_arch = "wasm32")]
fn main() {}
