//! The engine's tests: every kernel against a plain-Rust reference, in one process on one device.
//! Each module is one kernel family.

#[cfg(feature = "app")]
mod app;
mod architecture;
mod attention;
mod backends;
mod checkpoints;
mod cli;
mod common;
mod conv;
mod ddim_trajectory;
mod deferred;
mod determinism;
mod device;
mod digress;
mod discrete;
mod elementwise;
mod embedding;
mod film_mlp;
mod gaussian;
mod graph_eval;
mod inpaint;
mod langevin;
mod layout;
mod longrun;
mod matmul;
mod norm;
mod pad_suffix;
mod pool;
mod random;
mod runtime;
mod sample;
mod samplers;
mod sampling;
mod score_sde;
mod shader_params;
mod transition;
mod unet;
mod unet_hub;
mod unmask;
mod update;
mod vae;
