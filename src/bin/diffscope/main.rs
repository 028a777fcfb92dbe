//! The `diffscope` binary: with no subcommand it opens the app; subcommands are the headless interface.

#[cfg(not(target_arch = "wasm32"))]
mod bench;
#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod discrete;
#[cfg(not(target_arch = "wasm32"))]
mod graph;
#[cfg(not(target_arch = "wasm32"))]
mod sample;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

// The web build enters through the library's wasm entry point, not this binary.
#[cfg(target_arch = "wasm32")]
fn main() {}
