use crate::error::Result;
use crate::ops::conv::{conv2d, Padding};
use crate::ops::layout::concat;
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

/// PyTorch's `nn.Conv2d` with a square kernel and a bias: `weight` `[out, in, k, k]`, `bias` `[out]`.
/// A weight larger than one GPU storage binding is held as blocks of output channels (`weight`/`bias`
/// the first, `rest` the others), each a convolution, their outputs stacked on the channel axis.
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Tensor,
    rest: Vec<(Tensor, Tensor)>,
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
        let weights =
            w.upload_rows(device, &[&format!("{name}.weight")], &[out_ch, in_ch, k, k])?;
        let bias = w.upload(device, &format!("{name}.bias"), &[out_ch])?;
        let ((weight, bias), rest) = super::linear::pair_blocks(weights, bias)?;
        Ok(Conv2d { weight, bias, rest })
    }

    pub fn forward(&self, x: &Tensor, stride: usize, pad: Padding) -> Result<Tensor> {
        let first = conv2d(x, &self.weight, Some(&self.bias), stride, pad)?;
        if self.rest.is_empty() {
            return Ok(first);
        }
        let mut outs = vec![first];
        for (w, b) in &self.rest {
            outs.push(conv2d(x, w, Some(b), stride, pad)?);
        }
        let refs: Vec<&Tensor> = outs.iter().collect();
        concat(&refs, 1)
    }

    /// A stride-1 convolution that keeps the image's size (padding k / 2 on every side).
    pub fn same(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x, 1, Padding::same(self.weight.dim(2) / 2))
    }

    pub fn device(&self) -> &Device {
        self.weight.device()
    }
}
