//! The engine's tests: every kernel against a plain-Rust reference, in one process on one device.
//! Each module is one kernel family.

mod attention;
mod cli;
mod common;
mod conv;
mod digress;
mod elementwise;
mod embedding;
mod film_mlp;
mod gaussian;
mod graph_eval;
mod layout;
mod matmul;
mod norm;
mod random;
mod runtime;
mod sample;
mod sampling;
mod transition;
mod unet;
mod update;
