//! diffscope: run diffusion models on the GPU with WGSL compute shaders and step through them.
//!
//! Data flows one way: weights → model → process step → trajectory → view. This crate is layered the
//! same way: [`gpu`] (device, buffers, pipelines) → [`tensor`] and [`ops`] (kernels) → processes and
//! models → the app. See `ARCHITECTURE.md`.

#[cfg(feature = "app")]
pub mod app;
pub mod cpu;
pub mod error;
pub mod gpu;
pub mod lessons;
pub mod linalg;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod ops;
pub mod picture;
pub mod pipelines;
pub mod process;
pub mod rng;
pub mod tensor;
pub mod trajectory;
#[cfg(all(target_arch = "wasm32", feature = "app"))]
pub mod web;
pub mod weights;

pub use cpu::{Cpu, CpuOptions};
pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions, LimitCaps};
pub use tensor::{Backend, DType, Device, DeviceOptions, Tensor};
