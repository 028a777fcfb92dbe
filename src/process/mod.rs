//! Diffusion processes: noise schedules, and (with their own issues) the Gaussian, discrete and graph
//! reverse steps. A process turns a model's output into the next state; it does not know which
//! network produced that output.

pub mod discrete;
pub mod gaussian;
pub mod graph;
pub mod schedule;
pub mod varied;
