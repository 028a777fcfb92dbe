//! What every network is made of, below the networks themselves: the [`Denoiser`] trait (what a
//! diffusion process needs from a network) and the layers that several networks share ([`Linear`],
//! [`LayerNorm`], [`GroupNorm`]), each loaded from a checkpoint by name and run through `crate::ops`.
//! A network in `crate::models` is these layers wired together; a process in `crate::process` sees
//! only the trait.

mod denoiser;
mod footprint;
mod linear;
mod norm;

pub use denoiser::Denoiser;
pub use footprint::Footprint;
pub use linear::Linear;
pub use norm::{GroupNorm, LayerNorm};
