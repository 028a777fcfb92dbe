//! The decoders of latent diffusion: diffusers' `VQModel` (the CompVis LDM checkpoints: latents snap
//! to their nearest codebook vector, then `post_quant_conv`) and `AutoencoderKL` (`post_quant_conv`
//! unless the config turns it off), both then the VAE `Decoder` (`decoder.rs`). Only the decoding
//! half is loaded: the encoder's tensors in the same file are skipped.
//!
//! [`LatentDecoder::decode`] takes latents as a sampler leaves them and does what diffusers'
//! pipelines do before `vae.decode`: divide by `scaling_factor` (then add `shift_factor`). Note that
//! a config without `scaling_factor` gets the class default, 0.18215 — diffusers' `LDMPipeline` divides
//! CompVis/ldm-celebahq-256's latents by it too.

mod config;
mod decoder;

pub use config::{VaeConfig, VaeKind};

use crate::error::{Error, Result};
use crate::nn::Conv2d;
use crate::ops::elementwise as ew;
use crate::ops::embedding::{gather_rows, nearest_rows};
use crate::ops::layout::permute;
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;
use decoder::Decoder;

pub struct LatentDecoder {
    pub config: VaeConfig,
    /// VQ: the codebook `[K, D]`.
    codebook: Option<Tensor>,
    post_quant: Option<Conv2d>,
    decoder: Decoder,
}

impl LatentDecoder {
    pub fn load(g: &Device, config: VaeConfig, mut weights: Weights) -> Result<LatentDecoder> {
        let c = &config;
        let w = &mut weights;
        let (codebook, post_quant) = match c.kind {
            VaeKind::Vq => {
                let d = c.vq_embed_dim.unwrap_or(c.latent_channels);
                (
                    Some(w.upload(g, "quantize.embedding.weight", &[c.num_vq_embeddings, d])?),
                    Some(Conv2d::load(
                        w,
                        g,
                        "post_quant_conv",
                        c.latent_channels,
                        d,
                        1,
                    )?),
                )
            }
            VaeKind::Kl => (
                None,
                if c.use_post_quant_conv {
                    Some(Conv2d::load(
                        w,
                        g,
                        "post_quant_conv",
                        c.latent_channels,
                        c.latent_channels,
                        1,
                    )?)
                } else {
                    None
                },
            ),
        };
        let decoder = Decoder::load(w, g, c)?;
        // The encoding half is not used.
        let unused: Vec<String> = w
            .names()
            .filter(|n| n.starts_with("encoder.") || n.starts_with("quant_conv."))
            .map(String::from)
            .collect();
        for n in unused {
            let shape = w.shape_of(&n).map(<[usize]>::to_vec).unwrap_or_default();
            w.take(&n, &shape)?;
        }
        weights.finish()?;
        Ok(LatentDecoder {
            config,
            codebook,
            post_quant,
            decoder,
        })
    }

    /// The latent shape `[channels, side, side]` that decodes to the config's image side.
    pub fn latent_side(&self) -> usize {
        self.config.sample_size >> self.config.upsamplings()
    }

    /// Latents `[N, latent_channels, h, w]` as a sampler leaves them → images `[N, out, h·2^L, w·2^L]`
    /// in the decoder's range (about [−1, 1]).
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        if latents.dims() != 4 || latents.dim(1) != c.latent_channels {
            return Err(Error::shape(
                "vae decode",
                format!(
                    "latents must be [N, {}, h, w], got {:?}",
                    c.latent_channels,
                    latents.shape()
                ),
            ));
        }
        let z = ew::affine(
            latents,
            1.0 / c.scaling_factor,
            c.shift_factor.unwrap_or(0.0),
        )?;
        let z = match &self.codebook {
            Some(table) => quantize(&z, table)?,
            None => z,
        };
        let z = match &self.post_quant {
            Some(conv) => conv.same(&z)?,
            None => z,
        };
        self.decoder.forward(&z)
    }
}

/// Each pixel's latent vector replaced by its nearest codebook vector.
fn quantize(z: &Tensor, table: &Tensor) -> Result<Tensor> {
    let (n, d, h, w) = (z.dim(0), z.dim(1), z.dim(2), z.dim(3));
    if table.dim(1) != d {
        return Err(Error::shape(
            "vae quantize",
            format!(
                "codebook vectors are {} wide, latents have {d} channels",
                table.dim(1)
            ),
        ));
    }
    let rows = permute(z, &[0, 2, 3, 1])?.reshape(&[n * h * w, d])?;
    let q = gather_rows(table, &nearest_rows(&rows, table)?)?;
    permute(&q.reshape(&[n, h, w, d])?, &[0, 3, 1, 2])
}
