//! What every network is made of, below the networks themselves: the [`Denoiser`] trait (what a
//! diffusion process needs from a network) and the layers that several networks share ([`Linear`],
//! [`Conv2d`], [`LayerNorm`], [`GroupNorm`], and diffusers' [`ResnetBlock2D`] and [`SpatialAttention`],
//! which its UNets and VAEs are built of), each loaded from a checkpoint by name and run through `crate::ops`.
//! A network in `crate::models` is these layers wired together; a process in `crate::process` sees
//! only the trait.

mod conv;
mod denoiser;
mod footprint;
mod linear;
mod norm;
mod resnet;
mod spatial_attention;

pub use conv::Conv2d;
pub use denoiser::Denoiser;
pub use footprint::Footprint;
pub use linear::Linear;
pub use norm::{GroupNorm, LayerNorm};
pub use resnet::{ResnetBlock2D, ResnetSpec, TimeEmbedding};
pub use spatial_attention::{AttentionSpec, SpatialAttention};
