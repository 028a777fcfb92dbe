//! Evaluation of what the models generate, on the CPU. Metrics read samples as plain host data and
//! never touch the GPU, the networks or the app: they sit above the sampling code and below the
//! pipelines and the CLI that report them.

pub mod graph;
