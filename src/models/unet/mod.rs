//! diffusers' `UNet2DModel`, read from its `config.json` (`config.rs`) and safetensors parameter
//! names: the Down/AttnDown/Up/AttnUp blocks of the DDPM checkpoints and the Skip/AttnSkip blocks of
//! the score-SDE (NCSN++) ones (`blocks.rs`), `UNetMidBlock2D`, diffusers' ResnetBlock2D and attention
//! (`crate::nn`), the sinusoidal `Timesteps` (`flip_sin_to_cos`/`freq_shift`) or the Gaussian Fourier
//! projection of ln σ, `scale_shift` time conditioning, `center_input_sample`, and class embeddings.
//! `memory.rs` estimates a forward pass's memory from the config alone.

mod blocks;
mod config;
pub(crate) mod memory;

pub use config::{BlockKind, TimeProjection, UNetConfig};

use crate::error::{Error, Result};
use crate::nn::{Conv2d, Denoiser, GroupNorm, Linear};
use crate::ops::elementwise as ew;
use crate::ops::embedding::{fourier_embedding, gather_rows, timestep_embedding};
use crate::ops::matmul::Act;
use crate::tensor::{DType, Device, Tensor};
use crate::weights::Weights;
use blocks::{BlockLoader, DownBlock, Flow, MidBlock, UpBlock};

/// How the time input becomes the embedding's first layer's input.
enum TimeProj {
    Positional,
    /// `GaussianFourierProjection`'s fixed frequencies `[block_out_channels[0]]`.
    Fourier(Tensor),
}

pub struct UNet2D {
    pub config: UNetConfig,
    sample_shape: Vec<usize>,
    time_proj: TimeProj,
    time1: Linear,
    time2: Linear,
    class_emb: Option<Tensor>,
    conv_in: Conv2d,
    down: Vec<DownBlock>,
    mid: Option<MidBlock>,
    up: Vec<UpBlock>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    /// The weights' size on the device (f32), for the memory estimate.
    param_bytes: u64,
}

impl UNet2D {
    pub fn load(g: &Device, config: UNetConfig, mut weights: Weights) -> Result<UNet2D> {
        let param_bytes: u64 = weights
            .names()
            .filter_map(|n| weights.shape_of(n))
            .map(|s| s.iter().product::<usize>() as u64 * 4)
            .sum();
        let c = &config;
        let ch = &c.block_out_channels;
        let nb = ch.len();
        let temb = c.temb_dim();
        let w = &mut weights;
        let (time_proj, proj_dim) = match c.time_embedding {
            TimeProjection::Positional => (TimeProj::Positional, ch[0]),
            TimeProjection::Fourier => (
                TimeProj::Fourier(w.upload(g, "time_proj.weight", &[ch[0]])?),
                2 * ch[0],
            ),
        };
        let time1 = Linear::load(w, g, "time_embedding.linear_1", temb, proj_dim)?;
        let time2 = Linear::load(w, g, "time_embedding.linear_2", temb, temb)?;
        let class_emb = match c.num_class_embeds {
            Some(k) => Some(w.upload(g, "class_embedding.weight", &[k, temb])?),
            None => None,
        };
        let conv_in = Conv2d::load(w, g, "conv_in", ch[0], c.in_channels, 3)?;
        let l = BlockLoader { g, c };
        let mut down = Vec::new();
        let mut prev = ch[0];
        for (i, kind) in c.down_kinds().into_iter().enumerate() {
            down.push(l.down(w, i, kind, (prev, ch[i]), i + 1 == nb)?);
            prev = ch[i];
        }
        let last = ch[nb - 1];
        let mid = if c.mid_block {
            Some(l.mid(w, last)?)
        } else {
            None
        };
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let mut up = Vec::new();
        let mut prev_out = rev[0];
        for (i, kind) in c.up_kinds().into_iter().enumerate() {
            let skip_last = rev[(i + 1).min(nb - 1)];
            up.push(l.up(w, i, kind, (prev_out, rev[i], skip_last), i + 1 == nb)?);
            prev_out = rev[i];
        }
        let groups_out = c.norm_num_groups.unwrap_or((ch[0] / 4).min(32));
        if groups_out == 0 || !ch[0].is_multiple_of(groups_out) {
            return Err(Error::Config {
                file: w.file().to_string(),
                detail: format!(
                    "conv_norm_out: {} channels cannot be split into {groups_out} groups",
                    ch[0]
                ),
            });
        }
        let norm_out = GroupNorm::load(w, g, "conv_norm_out", ch[0], groups_out, c.norm_eps)?;
        let conv_out = Conv2d::load(w, g, "conv_out", c.out_channels, ch[0], 3)?;
        let sample_shape = vec![c.in_channels, c.sample_size, c.sample_size];
        weights.finish()?;
        Ok(UNet2D {
            sample_shape,
            config,
            time_proj,
            time1,
            time2,
            class_emb,
            conv_in,
            down,
            mid,
            up,
            norm_out,
            conv_out,
            param_bytes,
        })
    }

    /// The time embedding `[N, temb]` of `t` `[N]` (and the labels), before its SiLU.
    fn time_embedding(&self, t: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let c = &self.config;
        let proj = match &self.time_proj {
            TimeProj::Positional => timestep_embedding(
                t,
                c.block_out_channels[0],
                c.flip_sin_to_cos,
                c.freq_shift,
                1.0,
                10000.0,
            )?,
            // UNet2DModel builds GaussianFourierProjection(scale=16) with its defaults: ln t, sin first.
            TimeProj::Fourier(freqs) => fourier_embedding(t, freqs, false, true)?,
        };
        let temb = self.time1.forward(&proj, Act::Silu)?;
        let temb = self.time2.forward(&temb, Act::None)?;
        match &self.class_emb {
            Some(table) => {
                let l = labels.ok_or_else(|| {
                    Error::Invalid("this UNet is class-conditional: labels are required".into())
                })?;
                l.expect_dtype("unet labels", DType::U32)?;
                ew::add(&temb, &gather_rows(table, l)?)
            }
            None => Ok(temb),
        }
    }
}

impl Denoiser for UNet2D {
    fn forward(&self, x: &Tensor, t: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let c = &self.config;
        if x.dims() != 4 || x.dim(1) != c.in_channels || t.shape() != [x.dim(0)] {
            return Err(Error::shape(
                "unet",
                format!(
                    "x {:?} must be [N, {}, H, W] and t [N], got t {:?}",
                    x.shape(),
                    c.in_channels,
                    t.shape()
                ),
            ));
        }
        let fourier = matches!(self.time_proj, TimeProj::Fourier(_));
        if fourier && t.dtype() != DType::F32 {
            return Err(Error::Invalid(
                "this UNet embeds a noise level σ (time_embedding_type \"fourier\"): t must be \
                 float σ, not integer timesteps"
                    .into(),
            ));
        }
        let depth = c.block_out_channels.len() - 1;
        let (h, w) = (x.dim(2), x.dim(3));
        if h % (1 << depth) != 0 || w % (1 << depth) != 0 {
            return Err(Error::shape(
                "unet",
                format!("{h}×{w} is not divisible by 2^{depth} (the number of downsamplings)"),
            ));
        }
        let x = if c.center_input_sample {
            ew::affine(x, 2.0, -1.0)?
        } else {
            x.clone()
        };
        let temb_act = ew::silu(&self.time_embedding(t, labels)?)?;
        let hs = self.conv_in.same(&x)?;
        let mut f = Flow {
            skips: vec![hs.clone()],
            hs,
            image: Some(x),
            temb_act: &temb_act,
            downsample_padding: c.downsample_padding,
        };
        for b in &self.down {
            b.forward(&mut f)?;
        }
        if let Some(mid) = &self.mid {
            f.hs = mid.forward(&f.hs, &temb_act)?;
        }
        // The image path restarts empty on the way up (diffusers sets skip_sample = None).
        f.image = None;
        for b in &self.up {
            b.forward(&mut f)?;
        }
        let out = self.conv_out.same(&self.norm_out.forward_silu(&f.hs)?)?;
        let out = match &f.image {
            Some(img) => ew::add(&out, img)?,
            None => out,
        };
        if fourier {
            // diffusers divides by σ, so the network's output is the score ∇ log p_σ(x).
            ew::div(&out, &t.reshape(&[t.len(), 1, 1, 1])?)
        } else {
            Ok(out)
        }
    }

    fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    fn num_labels(&self) -> Option<usize> {
        // The last class embedding is the null label (mnist-unet convention: num_class_embeds = labels + 1).
        self.config.num_class_embeds.map(|k| k - 1)
    }

    fn device(&self) -> &Device {
        self.conv_out.device()
    }
    fn footprint(&self, batch: usize) -> Option<crate::nn::Footprint> {
        let host = matches!(self.device(), Device::Cpu(_));
        Some(memory::footprint(
            &self.config,
            self.param_bytes,
            batch,
            host,
        ))
    }
}
