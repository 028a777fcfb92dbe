//! diffusers' VAE `Decoder` (`norm_type="group"`): conv_in to the widest channels, a mid block
//! (resnet, one-head attention over the pixels, resnet), one `UpDecoderBlock2D` per level (resnets,
//! then nearest 2× + conv but at the last), GroupNorm → SiLU → conv_out. No time embedding.

use super::config::VaeConfig;
use crate::error::Result;
use crate::nn::{
    AttentionSpec, Conv2d, GroupNorm, ResnetBlock2D, ResnetSpec, SpatialAttention, TimeEmbedding,
};
use crate::ops::conv::upsample_nearest2x;
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

/// The VAE blocks' GroupNorm eps (diffusers hard-codes it).
const EPS: f32 = 1e-6;

struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    upsample: Option<Conv2d>,
}

pub(super) struct Decoder {
    conv_in: Conv2d,
    mid: [ResnetBlock2D; 2],
    mid_attn: Option<SpatialAttention>,
    up: Vec<UpBlock>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Decoder {
    /// The `decoder.*` tensors of `w`, for latents of `latent_channels`.
    pub fn load(w: &mut Weights, g: &Device, c: &VaeConfig) -> Result<Decoder> {
        let ch = &c.block_out_channels;
        let top = ch[ch.len() - 1];
        let groups = c.norm_num_groups;
        let resnet = |w: &mut Weights, p: &str, cin: usize, cout: usize| {
            ResnetBlock2D::load(
                w,
                g,
                p,
                &ResnetSpec {
                    in_ch: cin,
                    out_ch: cout,
                    temb_ch: 0,
                    time: TimeEmbedding::None,
                    groups,
                    groups_out: groups,
                    eps: EPS,
                    output_scale: 1.0,
                    force_shortcut: false,
                    resample: None,
                },
            )
        };
        let conv_in = Conv2d::load(w, g, "decoder.conv_in", top, c.latent_channels, 3)?;
        let m0 = resnet(w, "decoder.mid_block.resnets.0", top, top)?;
        let mid_attn = if c.mid_block_add_attention {
            Some(SpatialAttention::load(
                w,
                g,
                "decoder.mid_block.attentions.0",
                &AttentionSpec {
                    channels: top,
                    head_dim: Some(top),
                    groups: Some(groups),
                    eps: EPS,
                    rescale: 1.0,
                },
            )?)
        } else {
            None
        };
        let m1 = resnet(w, "decoder.mid_block.resnets.1", top, top)?;
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let mut up = Vec::new();
        let mut prev = rev[0];
        for (i, &out) in rev.iter().enumerate() {
            let p = format!("decoder.up_blocks.{i}");
            let resnets = (0..=c.layers_per_block)
                .map(|j| {
                    let cin = if j == 0 { prev } else { out };
                    resnet(w, &format!("{p}.resnets.{j}"), cin, out)
                })
                .collect::<Result<Vec<_>>>()?;
            let upsample = if i + 1 < rev.len() {
                Some(Conv2d::load(
                    w,
                    g,
                    &format!("{p}.upsamplers.0.conv"),
                    out,
                    out,
                    3,
                )?)
            } else {
                None
            };
            up.push(UpBlock { resnets, upsample });
            prev = out;
        }
        Ok(Decoder {
            conv_in,
            mid: [m0, m1],
            mid_attn,
            up,
            norm_out: GroupNorm::load(w, g, "decoder.conv_norm_out", ch[0], groups, EPS)?,
            conv_out: Conv2d::load(w, g, "decoder.conv_out", c.out_channels, ch[0], 3)?,
        })
    }

    /// `z` `[N, latent, h, w]` → the image `[N, out, h·2^L, w·2^L]`.
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let mut h = self.conv_in.same(z)?;
        h = self.mid[0].forward(&h, None)?;
        if let Some(a) = &self.mid_attn {
            h = a.forward(&h)?;
        }
        h = self.mid[1].forward(&h, None)?;
        for b in &self.up {
            for r in &b.resnets {
                h = r.forward(&h, None)?;
            }
            if let Some(conv) = &b.upsample {
                h = conv.same(&upsample_nearest2x(&h)?)?;
            }
        }
        self.conv_out.same(&self.norm_out.forward_silu(&h)?)
    }
}
