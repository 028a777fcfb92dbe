use crate::error::{Error, Result};
use crate::nn::{GroupNorm, Linear};
use crate::ops::attention::attention;
use crate::ops::elementwise as ew;
use crate::ops::layout::permute;
use crate::ops::matmul::Act;
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

/// diffusers' `Attention` over the pixels of an image as the UNet2DModel and VAE blocks build it
/// (`_from_deprecated_attn_block`, residual, `rescale_output_factor`): an optional GroupNorm, then
/// multi-head self-attention over the H·W positions, `(out + x) / rescale`. Reads the new
/// `to_q/to_k/to_v/to_out.0` names and the old `query/key/value/proj_attn` ones.
pub struct SpatialAttention {
    norm: Option<GroupNorm>,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
    rescale: f32,
}

/// How one attention block is built: channels, head width (`None`: one head), the GroupNorm's
/// groups (`None`: no norm) and eps, and the output rescale.
pub struct AttentionSpec {
    pub channels: usize,
    pub head_dim: Option<usize>,
    pub groups: Option<usize>,
    pub eps: f32,
    pub rescale: f32,
}

impl SpatialAttention {
    pub fn load(w: &mut Weights, g: &Device, p: &str, s: &AttentionSpec) -> Result<Self> {
        let c = s.channels;
        let hd = s.head_dim.unwrap_or(c);
        let bad = |detail: String| Error::Config {
            file: w.file().to_string(),
            detail,
        };
        if hd == 0 || !c.is_multiple_of(hd) {
            return Err(bad(format!(
                "{p}: attention head width {hd} does not divide {c} channels"
            )));
        }
        if let Some(gr) = s.groups {
            if gr == 0 || !c.is_multiple_of(gr) {
                return Err(bad(format!(
                    "{p}: {c} channels cannot be split into {gr} normalisation groups"
                )));
            }
        }
        let n = |new: &str, old: &str| [format!("{p}.{new}"), format!("{p}.{old}")];
        let [q1, q2] = n("to_q", "query");
        let [k1, k2] = n("to_k", "key");
        let [v1, v2] = n("to_v", "value");
        let [o1, o2] = n("to_out.0", "proj_attn");
        Ok(SpatialAttention {
            norm: match s.groups {
                Some(gr) => Some(GroupNorm::load(
                    w,
                    g,
                    &format!("{p}.group_norm"),
                    c,
                    gr,
                    s.eps,
                )?),
                None => None,
            },
            q: Linear::load_any(w, g, &[&q1, &q2], c, c)?,
            k: Linear::load_any(w, g, &[&k1, &k2], c, c)?,
            v: Linear::load_any(w, g, &[&v1, &v2], c, c)?,
            out: Linear::load_any(w, g, &[&o1, &o2], c, c)?,
            heads: c / hd,
            rescale: s.rescale,
        })
    }

    /// `x` `[N, C, H, W]` → the same shape.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        let s = match &self.norm {
            Some(norm) => norm.forward(x)?,
            None => x.clone(),
        };
        let s = permute(&s.reshape(&[n, c, h * w])?, &[0, 2, 1])?;
        let (q, k, v) = (
            self.q.forward(&s, Act::None)?,
            self.k.forward(&s, Act::None)?,
            self.v.forward(&s, Act::None)?,
        );
        let a = attention(&q, &k, &v, self.heads, None)?;
        let o = self.out.forward(&a, Act::None)?;
        let o = permute(&o, &[0, 2, 1])?.reshape(&[n, c, h, w])?;
        if self.rescale == 1.0 {
            ew::add(&o, x)
        } else {
            ew::axpby(1.0 / self.rescale, &o, 1.0 / self.rescale, x)
        }
    }
}
