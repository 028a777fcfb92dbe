use crate::error::Result;
use crate::ops::matmul::{self, matmul, Act, Matmul};
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

/// PyTorch's `nn.Linear`: `weight` `[out, in]` and `bias` `[out]`, applied as `act(x Wᵀ + b)` over
/// the last dimension of `x` with the activation fused into the matmul.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    /// `{name}.weight` and `{name}.bias` of a checkpoint.
    pub fn load(
        w: &mut Weights,
        device: &Device,
        name: &str,
        out_f: usize,
        in_f: usize,
    ) -> Result<Self> {
        Self::load_any(w, device, &[name], out_f, in_f)
    }

    /// The first of `names` the checkpoint holds (layouts that renamed a layer across versions).
    pub fn load_any(
        w: &mut Weights,
        device: &Device,
        names: &[&str],
        out_f: usize,
        in_f: usize,
    ) -> Result<Self> {
        let ws: Vec<String> = names.iter().map(|n| format!("{n}.weight")).collect();
        let bs: Vec<String> = names.iter().map(|n| format!("{n}.bias")).collect();
        let wr: Vec<&str> = ws.iter().map(|s| s.as_str()).collect();
        let br: Vec<&str> = bs.iter().map(|s| s.as_str()).collect();
        Ok(Linear {
            weight: w.upload_any(device, &wr, &[out_f, in_f])?,
            bias: w.upload_any(device, &br, &[out_f])?,
        })
    }

    /// Several Linears of the same input stacked into one (`[names.len()·out, in]`): one matmul
    /// instead of several; the outputs sit side by side in the order of `names`.
    pub fn load_stacked(
        w: &mut Weights,
        device: &Device,
        names: &[String],
        out_f: usize,
        in_f: usize,
    ) -> Result<Self> {
        let mut wd = Vec::with_capacity(names.len() * out_f * in_f);
        let mut bd = Vec::with_capacity(names.len() * out_f);
        for n in names {
            wd.extend(w.take(&format!("{n}.weight"), &[out_f, in_f])?.data);
            bd.extend(w.take(&format!("{n}.bias"), &[out_f])?.data);
        }
        let k = names.len() * out_f;
        Ok(Linear {
            weight: Tensor::from_f32(device, &[k, in_f], &wd)?,
            bias: Tensor::from_f32(device, &[k], &bd)?,
        })
    }

    /// `act(x Wᵀ + b)`.
    pub fn forward(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        matmul::linear(x, &self.weight, Some(&self.bias), act)
    }

    /// `x Wᵀ + b + residual`, the residual added in the matmul's epilogue.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let in_f = self.weight.dim(1);
        let out_f = self.weight.dim(0);
        let rows = x.len() / in_f;
        let y = matmul(
            &x.reshape(&[rows, in_f])?,
            &self.weight,
            &Matmul {
                trans_b: true,
                bias: Some(&self.bias),
                residual: Some(&residual.reshape(&[rows, out_f])?),
                ..Default::default()
            },
        )?;
        let mut shape = x.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = out_f;
        }
        y.reshape(&shape)
    }
}
