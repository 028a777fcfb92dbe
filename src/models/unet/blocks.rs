//! The down, mid and up blocks of a `UNet2DModel`, each built as diffusers' `get_down_block` /
//! `get_up_block` build its class: the plain and attention blocks (conv downsampling, nearest
//! upsampling + conv) and the score-SDE skip blocks (FIR resampling inside a resnet, and a second
//! path that carries a 3-channel image through the network: `skip_conv` in, `skip_norm → SiLU →
//! skip_conv` out, FIR-resampled between levels).

use super::config::{BlockKind, UNetConfig};
use crate::error::{Error, Result};
use crate::nn::{
    AttentionSpec, Conv2d, GroupNorm, ResnetBlock2D, ResnetSpec, SpatialAttention, TimeEmbedding,
};
use crate::ops::conv::{fir_downsample2x, fir_upsample2x, upsample_nearest2x, Fir, Padding};
use crate::ops::elementwise as ew;
use crate::ops::layout::concat;
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

/// The skip blocks' `output_scale_factor` (diffusers' default `np.sqrt(2.0)`, as float32).
const SKIP_SCALE: f32 = std::f32::consts::SQRT_2;

/// The skip blocks' GroupNorm groups: `min(channels / 4, 32)`.
fn skip_groups(ch: usize) -> usize {
    (ch / 4).min(32)
}

/// What follows a down block's resnets.
enum DownTail {
    None,
    /// `Downsample2D(use_conv=True)`: a stride-2 conv.
    Conv(Conv2d),
    /// A FIR-downsampling resnet, and the image path joined in by a 1×1 conv.
    Skip {
        resnet: Box<ResnetBlock2D>,
        skip_conv: Conv2d,
    },
}

pub(super) struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    attns: Vec<SpatialAttention>,
    tail: DownTail,
}

/// What follows an up block's resnets (and attention).
enum UpTail {
    None,
    /// `Upsample2D(use_conv=True)`: nearest 2× then a conv.
    Conv(Conv2d),
    /// The image path's contribution (`skip_norm → SiLU → skip_conv`), then a FIR-upsampling resnet.
    Skip {
        norm: GroupNorm,
        conv: Conv2d,
        resnet: Box<ResnetBlock2D>,
    },
}

pub(super) struct UpBlock {
    kind: BlockKind,
    resnets: Vec<ResnetBlock2D>,
    /// Plain attention blocks: one per resnet; `AttnSkipUpBlock2D`: one after all of them.
    attns: Vec<SpatialAttention>,
    tail: UpTail,
}

pub(super) struct MidBlock {
    resnets: [ResnetBlock2D; 2],
    attn: Option<SpatialAttention>,
}

/// The activations a forward pass carries between blocks.
pub(super) struct Flow<'a> {
    pub hs: Tensor,
    /// Every down resnet's (and resampler's) output, popped by the up blocks.
    pub skips: Vec<Tensor>,
    /// The skip blocks' image path (`skip_sample`); `None` where diffusers' is `None` or `0`.
    pub image: Option<Tensor>,
    pub temb_act: &'a Tensor,
    pub downsample_padding: usize,
}

/// What every block of one UNet shares.
pub(super) struct BlockLoader<'a> {
    pub g: &'a Device,
    pub c: &'a UNetConfig,
}

impl BlockLoader<'_> {
    fn time(&self) -> TimeEmbedding {
        if self.c.scale_shift {
            TimeEmbedding::ScaleShift
        } else {
            TimeEmbedding::Add
        }
    }

    /// A resnet of a plain block (`groups` = `norm_num_groups`, checked present at parse).
    fn resnet(
        &self,
        w: &mut Weights,
        p: &str,
        (cin, cout): (usize, usize),
        groups: (usize, usize),
        output_scale: f32,
        resample: Option<Fir>,
    ) -> Result<ResnetBlock2D> {
        ResnetBlock2D::load(
            w,
            self.g,
            p,
            &ResnetSpec {
                in_ch: cin,
                out_ch: cout,
                temb_ch: self.c.temb_dim(),
                time: self.time(),
                groups: groups.0,
                groups_out: groups.1,
                eps: self.c.norm_eps,
                output_scale,
                force_shortcut: resample.is_some(),
                resample,
            },
        )
    }

    fn plain_groups(&self) -> Result<usize> {
        self.c.norm_num_groups.ok_or_else(|| {
            Error::Internal("a plain UNet block without norm_num_groups passed the config".into())
        })
    }

    fn attn(
        &self,
        w: &mut Weights,
        p: &str,
        ch: usize,
        groups: Option<usize>,
        rescale: f32,
    ) -> Result<SpatialAttention> {
        SpatialAttention::load(
            w,
            self.g,
            p,
            &AttentionSpec {
                channels: ch,
                head_dim: Some(self.c.attention_head_dim.unwrap_or(ch)),
                groups,
                eps: self.c.norm_eps,
                rescale,
            },
        )
    }

    /// Down block `i` of kind `kind`, from `cin` to `out` channels; `last`: no downsampling.
    pub fn down(
        &self,
        w: &mut Weights,
        i: usize,
        kind: BlockKind,
        (cin, out): (usize, usize),
        last: bool,
    ) -> Result<DownBlock> {
        let p = format!("down_blocks.{i}");
        let mut b = DownBlock {
            resnets: vec![],
            attns: vec![],
            tail: DownTail::None,
        };
        for j in 0..self.c.layers_per_block {
            let rin = if j == 0 { cin } else { out };
            let rp = format!("{p}.resnets.{j}");
            let ap = format!("{p}.attentions.{j}");
            if kind.skip() {
                let g = (skip_groups(rin), skip_groups(out));
                b.resnets
                    .push(self.resnet(w, &rp, (rin, out), g, SKIP_SCALE, None)?);
                if kind.attention() {
                    b.attns.push(self.attn(w, &ap, out, Some(32), SKIP_SCALE)?);
                }
            } else {
                let g = self.plain_groups()?;
                b.resnets
                    .push(self.resnet(w, &rp, (rin, out), (g, g), 1.0, None)?);
                if kind.attention() {
                    b.attns.push(self.attn(w, &ap, out, Some(g), 1.0)?);
                }
            }
        }
        if !last {
            b.tail = if kind.skip() {
                let g = skip_groups(out);
                DownTail::Skip {
                    resnet: Box::new(self.resnet(
                        w,
                        &format!("{p}.resnet_down"),
                        (out, out),
                        (g, g),
                        SKIP_SCALE,
                        Some(Fir::Down),
                    )?),
                    skip_conv: Conv2d::load(w, self.g, &format!("{p}.skip_conv"), out, 3, 1)?,
                }
            } else {
                DownTail::Conv(Conv2d::load(
                    w,
                    self.g,
                    &format!("{p}.downsamplers.0.conv"),
                    out,
                    out,
                    3,
                )?)
            };
        }
        Ok(b)
    }

    /// The mid block over `ch` channels.
    pub fn mid(&self, w: &mut Weights, ch: usize) -> Result<MidBlock> {
        let c = self.c;
        let groups = c.norm_num_groups.unwrap_or_else(|| skip_groups(ch));
        // diffusers: the attention's GroupNorm takes attn_norm_num_groups, else the resnets' groups —
        // except with scale_shift, where it has none.
        let attn_groups = c
            .attn_norm_num_groups
            .or((!c.scale_shift).then_some(groups));
        let msf = c.mid_block_scale_factor;
        let resnet = |j: usize, w: &mut Weights| {
            self.resnet(
                w,
                &format!("mid_block.resnets.{j}"),
                (ch, ch),
                (groups, groups),
                msf,
                None,
            )
        };
        let r0 = resnet(0, w)?;
        let attn = if c.add_attention {
            Some(self.attn(w, "mid_block.attentions.0", ch, attn_groups, msf)?)
        } else {
            None
        };
        let r1 = resnet(1, w)?;
        Ok(MidBlock {
            resnets: [r0, r1],
            attn,
        })
    }

    /// Up block `i`: `prev` channels come in from below, `out` go out; `skip_last` is the width of
    /// the skip connection its last resnet concatenates (the level above's); `last`: no upsampling.
    pub fn up(
        &self,
        w: &mut Weights,
        i: usize,
        kind: BlockKind,
        (prev, out, skip_last): (usize, usize, usize),
        last: bool,
    ) -> Result<UpBlock> {
        let p = format!("up_blocks.{i}");
        let n = self.c.layers_per_block + 1;
        let mut b = UpBlock {
            kind,
            resnets: vec![],
            attns: vec![],
            tail: UpTail::None,
        };
        for j in 0..n {
            let h = if j == 0 { prev } else { out };
            let cin = h + if j + 1 == n { skip_last } else { out };
            let rp = format!("{p}.resnets.{j}");
            if kind.skip() {
                // diffusers' AttnSkipUpBlock2D writes `min(resnet_in + res_skip // 4, 32)`: the
                // precedence makes it 32 for any real width; reproduced as written.
                let g_in = match kind {
                    BlockKind::AttnSkip => (h + (cin - h) / 4).min(32),
                    _ => skip_groups(cin),
                };
                let g = (g_in, skip_groups(out));
                b.resnets
                    .push(self.resnet(w, &rp, (cin, out), g, SKIP_SCALE, None)?);
            } else {
                let g = self.plain_groups()?;
                b.resnets
                    .push(self.resnet(w, &rp, (cin, out), (g, g), 1.0, None)?);
                if kind.attention() {
                    b.attns.push(self.attn(
                        w,
                        &format!("{p}.attentions.{j}"),
                        out,
                        Some(g),
                        1.0,
                    )?);
                }
            }
        }
        if kind == BlockKind::AttnSkip {
            b.attns
                .push(self.attn(w, &format!("{p}.attentions.0"), out, Some(32), SKIP_SCALE)?);
        }
        if !last {
            b.tail = if kind.skip() {
                let g = skip_groups(out);
                UpTail::Skip {
                    norm: GroupNorm::load(
                        w,
                        self.g,
                        &format!("{p}.skip_norm"),
                        out,
                        g,
                        self.c.norm_eps,
                    )?,
                    conv: Conv2d::load(w, self.g, &format!("{p}.skip_conv"), 3, out, 3)?,
                    resnet: Box::new(self.resnet(
                        w,
                        &format!("{p}.resnet_up"),
                        (out, out),
                        (g, g),
                        SKIP_SCALE,
                        Some(Fir::Up),
                    )?),
                }
            } else {
                UpTail::Conv(Conv2d::load(
                    w,
                    self.g,
                    &format!("{p}.upsamplers.0.conv"),
                    out,
                    out,
                    3,
                )?)
            };
        }
        Ok(b)
    }
}

impl DownBlock {
    pub fn forward(&self, f: &mut Flow) -> Result<()> {
        for (j, r) in self.resnets.iter().enumerate() {
            f.hs = r.forward(&f.hs, Some(f.temb_act))?;
            if let Some(a) = self.attns.get(j) {
                f.hs = a.forward(&f.hs)?;
            }
            f.skips.push(f.hs.clone());
        }
        match &self.tail {
            DownTail::None => return Ok(()),
            DownTail::Conv(conv) => {
                let pad = if f.downsample_padding == 0 {
                    Padding::new(0, 1, 0, 1)
                } else {
                    Padding::same(f.downsample_padding)
                };
                f.hs = conv.forward(&f.hs, 2, pad)?;
            }
            DownTail::Skip { resnet, skip_conv } => {
                let hs = resnet.forward(&f.hs, Some(f.temb_act))?;
                let image = f
                    .image
                    .as_ref()
                    .ok_or_else(|| Error::Internal("UNet skip block without its image".into()))?;
                let image = fir_downsample2x(image)?;
                f.hs = ew::add(&skip_conv.same(&image)?, &hs)?;
                f.image = Some(image);
            }
        }
        f.skips.push(f.hs.clone());
        Ok(())
    }
}

impl MidBlock {
    pub fn forward(&self, hs: &Tensor, temb_act: &Tensor) -> Result<Tensor> {
        let mut hs = self.resnets[0].forward(hs, Some(temb_act))?;
        if let Some(a) = &self.attn {
            hs = a.forward(&hs)?;
        }
        self.resnets[1].forward(&hs, Some(temb_act))
    }
}

impl UpBlock {
    pub fn forward(&self, f: &mut Flow) -> Result<()> {
        for (j, r) in self.resnets.iter().enumerate() {
            let skip = f
                .skips
                .pop()
                .ok_or_else(|| Error::Internal("UNet skip stack underflow".into()))?;
            f.hs = r.forward(&concat(&[&f.hs, &skip], 1)?, Some(f.temb_act))?;
            if self.kind == BlockKind::Attn {
                f.hs = self.attns[j].forward(&f.hs)?;
            }
        }
        if self.kind == BlockKind::AttnSkip {
            f.hs = self.attns[0].forward(&f.hs)?;
        }
        if self.kind.skip() {
            f.image = f.image.as_ref().map(fir_upsample2x).transpose()?;
        }
        match &self.tail {
            UpTail::None => {}
            UpTail::Conv(conv) => f.hs = conv.same(&upsample_nearest2x(&f.hs)?)?,
            UpTail::Skip { norm, conv, resnet } => {
                let img = conv.same(&norm.forward_silu(&f.hs)?)?;
                f.image = Some(match &f.image {
                    Some(prev) => ew::add(prev, &img)?,
                    None => img,
                });
                f.hs = resnet.forward(&f.hs, Some(f.temb_act))?;
            }
        }
        Ok(())
    }
}
