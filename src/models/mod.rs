//! The networks, built from `crate::nn`'s layers and `crate::ops`' kernels. Each is a JSON config plus
//! safetensors weights; the Gaussian and sequence ones implement [`crate::nn::Denoiser`]. A network
//! knows nothing of the process that samples with it: pairing the two is `crate::pipelines`' job.

pub mod film_mlp;
pub mod graph_features;
pub mod graph_transformer;
pub mod seq_transformer;
pub mod unet;
pub mod vae;
