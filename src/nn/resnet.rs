use crate::error::{Error, Result};
use crate::nn::{Conv2d, GroupNorm, Linear};
use crate::ops::conv::{fir_resample, Fir, Padding};
use crate::ops::elementwise::{self as ew, Unary};
use crate::ops::layout::slice;
use crate::ops::matmul::Act;
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

/// How the time embedding enters a [`ResnetBlock2D`] (diffusers' `time_embedding_norm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeEmbedding {
    /// No time embedding (the VAE's blocks).
    None,
    /// `"default"`: added to the features before the second GroupNorm.
    Add,
    /// `"scale_shift"`: the projection is `[scale, shift]`, applied as `(1 + scale)·norm2(h) + shift`.
    ScaleShift,
}

/// How one ResNet block is built: diffusers' `ResnetBlock2D` arguments that the UNet2DModel and VAE
/// blocks use.
#[derive(Clone, Debug)]
pub struct ResnetSpec {
    pub in_ch: usize,
    pub out_ch: usize,
    /// Width of the time embedding it reads (ignored with [`TimeEmbedding::None`]).
    pub temb_ch: usize,
    pub time: TimeEmbedding,
    pub groups: usize,
    pub groups_out: usize,
    pub eps: f32,
    /// The sum of the shortcut and the residual is divided by this.
    pub output_scale: f32,
    /// A 1×1 convolution on the shortcut even when the widths agree (`use_in_shortcut=True`).
    pub force_shortcut: bool,
    /// FIR resampling of both paths after the first norm (`up=True`/`down=True`, `kernel="fir"`).
    pub resample: Option<Fir>,
}

/// diffusers' `ResnetBlock2D`: GroupNorm → SiLU → [FIR resample] → conv → (+ time) → GroupNorm → SiLU
/// → conv, plus the (resampled, projected) input, divided by the output scale.
pub struct ResnetBlock2D {
    norm1: GroupNorm,
    conv1: Conv2d,
    temb: Option<Linear>,
    time: TimeEmbedding,
    norm2: GroupNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
    resample: Option<Fir>,
    output_scale: f32,
    out_ch: usize,
}

impl ResnetBlock2D {
    pub fn load(w: &mut Weights, g: &Device, p: &str, s: &ResnetSpec) -> Result<Self> {
        for (what, ch, gr) in [
            ("norm1", s.in_ch, s.groups),
            ("norm2", s.out_ch, s.groups_out),
        ] {
            if gr == 0 || !ch.is_multiple_of(gr) {
                return Err(Error::Config {
                    file: w.file().to_string(),
                    detail: format!(
                        "{p}.{what}: {ch} channels cannot be split into {gr} normalisation groups"
                    ),
                });
            }
        }
        let proj = match s.time {
            TimeEmbedding::None => None,
            TimeEmbedding::Add => Some(s.out_ch),
            TimeEmbedding::ScaleShift => Some(2 * s.out_ch),
        };
        Ok(ResnetBlock2D {
            norm1: GroupNorm::load(w, g, &format!("{p}.norm1"), s.in_ch, s.groups, s.eps)?,
            conv1: Conv2d::load(w, g, &format!("{p}.conv1"), s.out_ch, s.in_ch, 3)?,
            temb: match proj {
                Some(o) => Some(Linear::load(
                    w,
                    g,
                    &format!("{p}.time_emb_proj"),
                    o,
                    s.temb_ch,
                )?),
                None => None,
            },
            time: s.time,
            norm2: GroupNorm::load(w, g, &format!("{p}.norm2"), s.out_ch, s.groups_out, s.eps)?,
            conv2: Conv2d::load(w, g, &format!("{p}.conv2"), s.out_ch, s.out_ch, 3)?,
            shortcut: if s.in_ch != s.out_ch || s.force_shortcut {
                Some(Conv2d::load(
                    w,
                    g,
                    &format!("{p}.conv_shortcut"),
                    s.out_ch,
                    s.in_ch,
                    1,
                )?)
            } else {
                None
            },
            resample: s.resample,
            output_scale: s.output_scale,
            out_ch: s.out_ch,
        })
    }

    /// `x` `[N, C, H, W]`; `temb_act` is SiLU(time embedding) `[N, temb]`, shared by every block of a
    /// network (each diffusers block applies the same SiLU to the same embedding).
    pub fn forward(&self, x: &Tensor, temb_act: Option<&Tensor>) -> Result<Tensor> {
        let h = self.norm1.forward_silu(x)?;
        let (x, h) = match self.resample {
            Some(dir) => (fir_resample(x, dir)?, fir_resample(&h, dir)?),
            None => (x.clone(), h),
        };
        let h = self.conv1.same(&h)?;
        let t = match (&self.temb, temb_act) {
            (Some(proj), Some(t)) => Some(proj.forward(t, Act::None)?),
            (Some(_), None) => {
                return Err(Error::Invalid(
                    "this ResNet block needs a time embedding".into(),
                ))
            }
            (None, _) => None,
        };
        let h = match (self.time, t) {
            (TimeEmbedding::Add, Some(t)) => {
                let h = ew::add(&h, &t.reshape(&[t.dim(0), self.out_ch, 1, 1])?)?;
                self.norm2.forward_silu(&h)?
            }
            (TimeEmbedding::ScaleShift, Some(t)) => {
                let n = t.dim(0);
                let scale = slice(&t, 1, 0, self.out_ch)?.reshape(&[n, self.out_ch, 1, 1])?;
                let shift =
                    slice(&t, 1, self.out_ch, self.out_ch)?.reshape(&[n, self.out_ch, 1, 1])?;
                ew::film(&self.norm2.forward(&h)?, &scale, &shift, Unary::Silu)?
            }
            _ => self.norm2.forward_silu(&h)?,
        };
        let h = self.conv2.same(&h)?;
        let skip = match &self.shortcut {
            Some(s) => s.forward(&x, 1, Padding::same(0))?,
            None => x,
        };
        if self.output_scale == 1.0 {
            ew::add(&skip, &h)
        } else {
            ew::axpby(1.0 / self.output_scale, &skip, 1.0 / self.output_scale, &h)
        }
    }
}
