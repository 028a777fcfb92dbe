use crate::error::Result;
use crate::ops::conv::{conv2d, Padding};
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

/// PyTorch's `nn.Conv2d` with a square kernel and a bias: `weight` `[out, in, k, k]`, `bias` `[out]`.
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Conv2d {
    /// `{name}.weight` and `{name}.bias` of a checkpoint.
    pub fn load(
        w: &mut Weights,
        device: &Device,
        name: &str,
        out_ch: usize,
        in_ch: usize,
        k: usize,
    ) -> Result<Self> {
        Ok(Conv2d {
            weight: w.upload(device, &format!("{name}.weight"), &[out_ch, in_ch, k, k])?,
            bias: w.upload(device, &format!("{name}.bias"), &[out_ch])?,
        })
    }

    pub fn forward(&self, x: &Tensor, stride: usize, pad: Padding) -> Result<Tensor> {
        conv2d(x, &self.weight, Some(&self.bias), stride, pad)
    }

    /// A stride-1 convolution that keeps the image's size (padding k / 2 on every side).
    pub fn same(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x, 1, Padding::same(self.weight.dim(2) / 2))
    }

    pub fn device(&self) -> &Device {
        self.weight.device()
    }
}
