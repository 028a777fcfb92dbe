use crate::error::Result;
use crate::ops::norm::{group_norm, group_norm_silu, layer_norm};
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

/// PyTorch's default `nn.LayerNorm` epsilon.
pub const LAYER_NORM_EPS: f32 = 1e-5;

/// PyTorch's `nn.LayerNorm` over the last dimension, with its affine `weight` and `bias`.
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f32,
}

impl LayerNorm {
    /// `{name}.weight` and `{name}.bias` `[dim]`, with PyTorch's default epsilon.
    pub fn load(w: &mut Weights, device: &Device, name: &str, dim: usize) -> Result<Self> {
        Ok(LayerNorm {
            weight: w.upload(device, &format!("{name}.weight"), &[dim])?,
            bias: w.upload(device, &format!("{name}.bias"), &[dim])?,
            eps: LAYER_NORM_EPS,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        layer_norm(x, Some(&self.weight), Some(&self.bias), self.eps)
    }
}

/// PyTorch's `nn.GroupNorm` over the channels of `[N, C, ..]`, with its affine `weight` and `bias`.
pub struct GroupNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub groups: usize,
    pub eps: f32,
}

impl GroupNorm {
    /// `{name}.weight` and `{name}.bias` `[channels]`.
    pub fn load(
        w: &mut Weights,
        device: &Device,
        name: &str,
        channels: usize,
        groups: usize,
        eps: f32,
    ) -> Result<Self> {
        Ok(GroupNorm {
            weight: w.upload(device, &format!("{name}.weight"), &[channels])?,
            bias: w.upload(device, &format!("{name}.bias"), &[channels])?,
            groups,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        group_norm(
            x,
            self.groups,
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
        )
    }

    /// `SiLU(GroupNorm(x))` in one kernel (every ResNet block of a UNet starts so).
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        group_norm_silu(
            x,
            self.groups,
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
        )
    }
}
