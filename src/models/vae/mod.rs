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
use crate::ops::layout::{concat, permute, slice};
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

    /// The largest feature map one image's decoding holds, for latents of `h × w`: each level's
    /// channels at the side its upsampling leaves them (a 256² image's 128-channel maps are 33.5 MB).
    pub fn image_bytes(&self, h: usize, w: usize) -> u64 {
        let ch = &self.config.block_out_channels;
        let last = ch.len() - 1;
        ch.iter()
            .rev()
            .enumerate()
            .map(|(i, &c)| {
                let s = (i + 1).min(last);
                (c * (h << s) * (w << s) * 4) as u64
            })
            .max()
            .unwrap_or(0)
    }

    /// Latents `[N, latent_channels, h, w]` as a sampler leaves them → images `[N, out, h·2^L, w·2^L]`
    /// in the decoder's range (about [−1, 1]). On a GPU a batch whose feature maps would not fit one
    /// storage binding is decoded a few images at a time.
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        if let (Device::Gpu(g), 4) = (latents.device(), latents.dims()) {
            let (n, h, w) = (latents.dim(0), latents.dim(2), latents.dim(3));
            let (per, limit) = (self.image_bytes(h, w), g.max_binding());
            if per > limit {
                return Err(Error::Invalid(format!(
                    "decoding one {h}×{w} latent needs a {:.1} MB feature map, and this device \
                     allows {:.1} MB per buffer",
                    per as f64 / 1e6,
                    limit as f64 / 1e6
                )));
            }
            let chunk = ((limit / per.max(1)) as usize).max(1);
            if chunk < n {
                let mut parts = Vec::new();
                for start in (0..n).step_by(chunk) {
                    let len = chunk.min(n - start);
                    parts.push(self.decode_batch(&slice(latents, 0, start, len)?)?);
                }
                let refs: Vec<&Tensor> = parts.iter().collect();
                return concat(&refs, 0);
            }
        }
        self.decode_batch(latents)
    }

    fn decode_batch(&self, latents: &Tensor) -> Result<Tensor> {
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
