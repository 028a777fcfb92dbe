use crate::error::Result;
use crate::ops::elementwise as ew;
use crate::ops::layout::concat;
use crate::ops::matmul::{self, matmul, Act, Matmul, PackedWeight};
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

/// PyTorch's `nn.Linear`: `weight` `[out, in]` and `bias` `[out]`, applied as `act(x Wᵀ + b)` over
/// the last dimension of `x` with the activation fused into the matmul. A weight larger than one GPU
/// storage binding is held as blocks of output rows (`weight`/`bias` the first, `rest` the others),
/// each a matmul, their outputs side by side.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
    rest: Vec<(Tensor, Tensor)>,
    /// `weight` packed for the CPU GEMM (on the CPU backend, for a layer of one block).
    packed: Option<PackedWeight>,
}

impl Linear {
    /// A layer of one weight and bias.
    pub fn new(weight: Tensor, bias: Tensor) -> Result<Self> {
        Self::from_blocks(vec![weight], bias)
    }

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
        let weights = w.upload_rows(device, &wr, &[out_f, in_f])?;
        let bias = w.upload_any(device, &br, &[out_f])?;
        Self::from_blocks(weights, bias)
    }

    /// A layer from host data (`weight` `[out, in]` row-major), split into row blocks where the
    /// weight is larger than one storage binding.
    pub fn from_host(
        device: &Device,
        weight: &[f32],
        out_f: usize,
        in_f: usize,
        bias: &[f32],
    ) -> Result<Self> {
        Self::from_blocks(
            Tensor::from_f32_row_blocks(device, &[out_f, in_f], weight)?,
            Tensor::from_f32(device, &[out_f], bias)?,
        )
    }

    /// Row blocks of the weight, and the whole bias split to match.
    fn from_blocks(weights: Vec<Tensor>, bias: Tensor) -> Result<Self> {
        let ((weight, bias), rest) = pair_blocks(weights, bias)?;
        let packed = if rest.is_empty() {
            PackedWeight::new(&weight)?
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            rest,
            packed,
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
        Self::from_host(device, &wd, k, in_f, &bd)
    }

    /// `act(x Wᵀ + b)`.
    pub fn forward(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        if let Some(p) = &self.packed {
            return matmul::linear_packed(x, &self.weight, p, Some(&self.bias), act);
        }
        let first = matmul::linear(x, &self.weight, Some(&self.bias), act)?;
        if self.rest.is_empty() {
            return Ok(first);
        }
        let mut outs = vec![first];
        for (w, b) in &self.rest {
            outs.push(matmul::linear(x, w, Some(b), act)?);
        }
        let refs: Vec<&Tensor> = outs.iter().collect();
        concat(&refs, x.dims() - 1)
    }

    /// `x Wᵀ + b + residual`, the residual added in the matmul's epilogue.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        if let Some(p) = &self.packed {
            let bias = Some(&self.bias);
            return matmul::linear_packed_residual(
                x,
                &self.weight,
                p,
                bias,
                Act::None,
                Some(residual),
            );
        }
        if !self.rest.is_empty() {
            return ew::add(&self.forward(x, Act::None)?, residual);
        }
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

/// Row blocks of a weight (`Tensor::from_f32_row_blocks`) each paired with its rows of the bias:
/// the first pair, and the others (none where the weight fits one binding). Linear and Conv2d share it.
#[allow(clippy::type_complexity)]
pub(super) fn pair_blocks(
    weights: Vec<Tensor>,
    bias: Tensor,
) -> Result<((Tensor, Tensor), Vec<(Tensor, Tensor)>)> {
    let mut blocks = Vec::with_capacity(weights.len());
    let mut r0 = 0;
    for wb in weights {
        let n = wb.dim(0);
        let b = if n == bias.len() {
            bias.clone()
        } else {
            crate::ops::layout::slice(&bias, 0, r0, n)?
        };
        r0 += n;
        blocks.push((wb, b));
    }
    let mut it = blocks.into_iter();
    let first = it
        .next()
        .ok_or_else(|| crate::Error::Internal("a layer without a weight".into()))?;
    Ok((first, it.collect()))
}
