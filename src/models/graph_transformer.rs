//! DiGress's graph transformer (`GraphTransformer`, `XEyTransformerLayer`, `NodeEdgeBlock`; branch
//! `fixed_bug`, whose Xtoy/Etoy pooling ignores padded nodes), matching `tools/digress_ref.py`
//! parameter for parameter. Inputs are dense padded batches: node features `[B, n, X_in]`, edge
//! features `[B, n, n, E_in]`, graph features `[B, y_in]` and the node counts. Outputs are logits
//! over node and edge classes, with the input one-hot added (DiGress predicts the residual).

use crate::error::{Error, Result};
use crate::nn::{LayerNorm, Linear};
use crate::ops::elementwise as ew;
use crate::ops::graph;
use crate::ops::layout;
use crate::ops::matmul::Act;
use crate::tensor::{DType, Device, Tensor};
use crate::weights::Weights;
use std::collections::BTreeMap;

/// `config.json` of a DiGress model: the network's dimensions and the diffusion process.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DigressConfig {
    pub architecture: String,
    pub n_layers: usize,
    pub input_dims: BTreeMap<String, usize>,
    pub hidden_mlp_dims: BTreeMap<String, usize>,
    pub hidden_dims: BTreeMap<String, usize>,
    pub output_dims: BTreeMap<String, usize>,
    pub diffusion_steps: usize,
    pub noise_schedule: String,
    pub transition: String,
    pub x_marginals: Vec<f32>,
    pub e_marginals: Vec<f32>,
    pub max_n_nodes: usize,
    /// P(n) for n = 0..=max_n_nodes (DiGress's `DistributionNodes` over train + val).
    pub node_count_hist: Vec<f64>,
    pub extra_features: String,
    pub dataset: String,
}

/// The network's dimensions, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub n_layers: usize,
    pub x_in: usize,
    pub e_in: usize,
    pub y_in: usize,
    pub mlp_x: usize,
    pub mlp_e: usize,
    pub mlp_y: usize,
    pub dx: usize,
    pub de: usize,
    pub dy: usize,
    pub heads: usize,
    pub ff_x: usize,
    pub ff_e: usize,
    pub ff_y: usize,
    pub x_out: usize,
    pub e_out: usize,
    pub y_out: usize,
}

fn get(m: &BTreeMap<String, usize>, key: &str, what: &str, file: &str) -> Result<usize> {
    m.get(key).copied().ok_or_else(|| Error::Config {
        file: file.to_string(),
        detail: format!("{what} lacks \"{key}\""),
    })
}

impl Dims {
    /// From DiGress's dictionaries (`input_dims`, `hidden_mlp_dims`, `hidden_dims`, `output_dims`).
    pub fn from_maps(
        n_layers: usize,
        input: &BTreeMap<String, usize>,
        mlp: &BTreeMap<String, usize>,
        hidden: &BTreeMap<String, usize>,
        output: &BTreeMap<String, usize>,
        file: &str,
    ) -> Result<Dims> {
        let d = Dims {
            n_layers,
            x_in: get(input, "X", "input_dims", file)?,
            e_in: get(input, "E", "input_dims", file)?,
            y_in: get(input, "y", "input_dims", file)?,
            mlp_x: get(mlp, "X", "hidden_mlp_dims", file)?,
            mlp_e: get(mlp, "E", "hidden_mlp_dims", file)?,
            mlp_y: get(mlp, "y", "hidden_mlp_dims", file)?,
            dx: get(hidden, "dx", "hidden_dims", file)?,
            de: get(hidden, "de", "hidden_dims", file)?,
            dy: get(hidden, "dy", "hidden_dims", file)?,
            heads: get(hidden, "n_head", "hidden_dims", file)?,
            ff_x: get(hidden, "dim_ffX", "hidden_dims", file)?,
            ff_e: get(hidden, "dim_ffE", "hidden_dims", file)?,
            ff_y: get(hidden, "dim_ffy", "hidden_dims", file)?,
            x_out: get(output, "X", "output_dims", file)?,
            e_out: get(output, "E", "output_dims", file)?,
            y_out: get(output, "y", "output_dims", file)?,
        };
        let bad = |detail: String| Error::Config {
            file: file.to_string(),
            detail,
        };
        if d.heads == 0 || !d.dx.is_multiple_of(d.heads) {
            return Err(bad(format!(
                "dx = {} must be a multiple of n_head = {}",
                d.dx, d.heads
            )));
        }
        if d.x_out == 0 || d.e_out == 0 || d.x_out > d.x_in || d.e_out != d.e_in {
            return Err(bad(format!(
                "output dims X {} / E {} must be ≥ 1, X ≤ input X {}, and E equal to input E {} \
                 (edge extra features are not supported)",
                d.x_out, d.e_out, d.x_in, d.e_in
            )));
        }
        if d.y_out != 0 {
            return Err(bad(
                "graph-level outputs (output y > 0) are not supported".into()
            ));
        }
        let dims = [
            d.n_layers, d.x_in, d.e_in, d.y_in, d.mlp_x, d.mlp_e, d.mlp_y, d.dx, d.de, d.dy,
            d.ff_x, d.ff_e, d.ff_y,
        ];
        if dims.contains(&0) {
            return Err(bad("every layer width must be at least 1".into()));
        }
        Ok(d)
    }
}

struct Mlp2 {
    a: Linear,
    b: Linear,
}

impl Mlp2 {
    fn load(
        w: &mut Weights,
        device: &Device,
        name: &str,
        i: usize,
        h: usize,
        o: usize,
    ) -> Result<Mlp2> {
        Ok(Mlp2 {
            a: Linear::load(w, device, &format!("{name}.0"), h, i)?,
            b: Linear::load(w, device, &format!("{name}.2"), o, h)?,
        })
    }
    fn forward(&self, x: &Tensor, out_act: Act) -> Result<Tensor> {
        self.b.forward(&self.a.forward(x, Act::Relu)?, out_act)
    }
}

struct Layer {
    qkv: Linear,
    e12: Linear,
    ymod: Linear,
    y_y: Linear,
    x_y: Linear,
    e_y: Linear,
    x_out: Linear,
    e_out: Linear,
    y_out: Mlp2,
    lin_x: Mlp2,
    lin_e: Mlp2,
    lin_y: Mlp2,
    norm_x: [LayerNorm; 2],
    norm_e: [LayerNorm; 2],
    norm_y: [LayerNorm; 2],
}

impl Layer {
    fn load(w: &mut Weights, device: &Device, p: &str, d: &Dims) -> Result<Layer> {
        let a = format!("{p}.self_attn");
        let names = |xs: &[&str]| xs.iter().map(|x| format!("{a}.{x}")).collect::<Vec<_>>();
        let ff = |w: &mut Weights, l1: &str, l2: &str, dim: usize, ffd: usize| -> Result<Mlp2> {
            Ok(Mlp2 {
                a: Linear::load(w, device, &format!("{p}.{l1}"), ffd, dim)?,
                b: Linear::load(w, device, &format!("{p}.{l2}"), dim, ffd)?,
            })
        };
        Ok(Layer {
            qkv: Linear::load_stacked(w, device, &names(&["q", "k", "v"]), d.dx, d.dx)?,
            e12: Linear::load_stacked(w, device, &names(&["e_mul", "e_add"]), d.dx, d.de)?,
            ymod: Linear::load_stacked(
                w,
                device,
                &names(&["y_e_add", "y_e_mul", "y_x_add", "y_x_mul"]),
                d.dx,
                d.dy,
            )?,
            y_y: Linear::load(w, device, &format!("{a}.y_y"), d.dy, d.dy)?,
            x_y: Linear::load(w, device, &format!("{a}.x_y.lin"), d.dy, 4 * d.dx)?,
            e_y: Linear::load(w, device, &format!("{a}.e_y.lin"), d.dy, 4 * d.de)?,
            x_out: Linear::load(w, device, &format!("{a}.x_out"), d.dx, d.dx)?,
            e_out: Linear::load(w, device, &format!("{a}.e_out"), d.de, d.dx)?,
            y_out: Mlp2::load(w, device, &format!("{a}.y_out"), d.dy, d.dy, d.dy)?,
            lin_x: ff(w, "linX1", "linX2", d.dx, d.ff_x)?,
            lin_e: ff(w, "linE1", "linE2", d.de, d.ff_e)?,
            lin_y: ff(w, "lin_y1", "lin_y2", d.dy, d.ff_y)?,
            norm_x: [
                LayerNorm::load(w, device, &format!("{p}.normX1"), d.dx)?,
                LayerNorm::load(w, device, &format!("{p}.normX2"), d.dx)?,
            ],
            norm_e: [
                LayerNorm::load(w, device, &format!("{p}.normE1"), d.de)?,
                LayerNorm::load(w, device, &format!("{p}.normE2"), d.de)?,
            ],
            norm_y: [
                LayerNorm::load(w, device, &format!("{p}.norm_y1"), d.dy)?,
                LayerNorm::load(w, device, &format!("{p}.norm_y2"), d.dy)?,
            ],
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        e: &Tensor,
        y: &Tensor,
        m: &Masks,
        heads: usize,
    ) -> Result<[Tensor; 3]> {
        // NodeEdgeBlock.
        let qkv = self.qkv.forward(x, Act::None)?;
        let e12 = self.e12.forward(e, Act::None)?;
        let ymod = self.ymod.forward(y, Act::None)?;
        let (e_pre, x_pre) = graph::node_edge_attention(&qkv, &e12, &ymod, &m.counts, heads)?;
        let new_e = ew::mul(&self.e_out.forward(&e_pre, Act::None)?, &m.edge)?;
        let new_x = ew::mul(&self.x_out.forward(&x_pre, Act::None)?, &m.node)?;
        let pooled_x = graph::pool(x, &m.counts)?;
        let pooled_e = graph::pool(e, &m.counts)?;
        let yy = self.y_y.forward(y, Act::None)?;
        let y_sum = ew::add(
            &ew::add(&yy, &self.x_y.forward(&pooled_x, Act::None)?)?,
            &self.e_y.forward(&pooled_e, Act::None)?,
        )?;
        let new_y = self.y_out.forward(&y_sum, Act::None)?;
        // Post-LN residuals, then the feed-forward blocks (dropout is off at inference).
        let x = self.norm_x[0].forward(&ew::add(x, &new_x)?)?;
        let e = self.norm_e[0].forward(&ew::add(e, &new_e)?)?;
        let y = self.norm_y[0].forward(&ew::add(y, &new_y)?)?;
        let x = self.norm_x[1].forward(
            &self
                .lin_x
                .b
                .forward_residual(&self.lin_x.a.forward(&x, Act::Relu)?, &x)?,
        )?;
        let e = self.norm_e[1].forward(
            &self
                .lin_e
                .b
                .forward_residual(&self.lin_e.a.forward(&e, Act::Relu)?, &e)?,
        )?;
        let y = self.norm_y[1].forward(
            &self
                .lin_y
                .b
                .forward_residual(&self.lin_y.a.forward(&y, Act::Relu)?, &y)?,
        )?;
        Ok([x, e, y])
    }
}

/// Node and pair masks of one batch, as f32 tensors for broadcasting multiplies.
struct Masks {
    counts: Tensor,
    node: Tensor,
    edge: Tensor,
}

/// The network's logits.
pub struct GraphOutput {
    /// f32 `[B, n, X_out]`.
    pub x: Tensor,
    /// f32 `[B, n, n, E_out]` (symmetric, zero on the diagonal and on padded pairs).
    pub e: Tensor,
}

pub struct GraphTransformer {
    pub dims: Dims,
    mlp_in_x: Mlp2,
    mlp_in_e: Mlp2,
    mlp_in_y: Mlp2,
    layers: Vec<Layer>,
    mlp_out_x: Mlp2,
    mlp_out_e: Mlp2,
}

impl GraphTransformer {
    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.mlp_out_e.b.weight.device()
    }

    /// Loads every tensor of a DiGress `GraphTransformer` state dict (names as PyTorch writes them);
    /// missing, misshapen or extra tensors are errors.
    pub fn load(device: &Device, dims: Dims, mut w: Weights) -> Result<GraphTransformer> {
        let d = dims;
        let mlp_in_x = Mlp2::load(&mut w, device, "mlp_in_X", d.x_in, d.mlp_x, d.dx)?;
        let mlp_in_e = Mlp2::load(&mut w, device, "mlp_in_E", d.e_in, d.mlp_e, d.de)?;
        let mlp_in_y = Mlp2::load(&mut w, device, "mlp_in_y", d.y_in, d.mlp_y, d.dy)?;
        let layers = (0..d.n_layers)
            .map(|i| Layer::load(&mut w, device, &format!("tf_layers.{i}"), &d))
            .collect::<Result<Vec<_>>>()?;
        let mlp_out_x = Mlp2::load(&mut w, device, "mlp_out_X", d.dx, d.mlp_x, d.x_out)?;
        let mlp_out_e = Mlp2::load(&mut w, device, "mlp_out_E", d.de, d.mlp_e, d.e_out)?;
        // The graph-level output head has zero outputs; its (empty) tensors are read and dropped.
        for name in [
            "mlp_out_y.0.weight",
            "mlp_out_y.0.bias",
            "mlp_out_y.2.weight",
            "mlp_out_y.2.bias",
        ] {
            if w.contains(name) {
                let shape = w.shape_of(name).map(|s| s.to_vec()).unwrap_or_default();
                w.take(name, &shape)?;
            }
        }
        w.finish()?;
        Ok(GraphTransformer {
            dims,
            mlp_in_x,
            mlp_in_e,
            mlp_in_y,
            layers,
            mlp_out_x,
            mlp_out_e,
        })
    }

    /// `x` f32 `[B, n, X_in]`, `e` f32 `[B, n, n, E_in]`, `y` f32 `[B, y_in]`, `counts` the node count of
    /// each graph (≤ n). Records the forward pass.
    pub fn forward(
        &self,
        x: &Tensor,
        e: &Tensor,
        y: &Tensor,
        counts: &[usize],
    ) -> Result<GraphOutput> {
        const OP: &str = "GraphTransformer::forward";
        let d = &self.dims;
        for t in [x, e, y] {
            t.expect_dtype(OP, DType::F32)?;
        }
        let (b, n) = match x.shape() {
            [b, n, c] if *c == d.x_in => (*b, *n),
            s => {
                return Err(Error::shape(
                    OP,
                    format!("x {s:?} must be [B, n, {}]", d.x_in),
                ))
            }
        };
        if e.shape() != [b, n, n, d.e_in] || y.shape() != [b, d.y_in] {
            return Err(Error::shape(
                OP,
                format!(
                    "e {:?} must be [{b}, {n}, {n}, {}] and y {:?} [{b}, {}]",
                    e.shape(),
                    d.e_in,
                    y.shape(),
                    d.y_in
                ),
            ));
        }
        if counts.len() != b || counts.iter().any(|&c| c > n) {
            return Err(Error::Invalid(format!(
                "{OP}: {} node counts for {b} graphs of at most {n} nodes: {counts:?}",
                counts.len()
            )));
        }
        let device = x.device();
        let m = masks(device, counts, n)?;
        let x_to_out = layout::slice(x, 2, 0, d.x_out)?;
        let new_e = self.mlp_in_e.forward(e, Act::Relu)?;
        let mut ee = graph::sym_edges(&new_e, None, &m.counts, false)?;
        let mut xx = ew::mul(&self.mlp_in_x.forward(x, Act::Relu)?, &m.node)?;
        let mut yy = self.mlp_in_y.forward(y, Act::Relu)?;
        for layer in &self.layers {
            let [x2, e2, y2] = layer.forward(&xx, &ee, &yy, &m, d.heads)?;
            xx = x2;
            ee = e2;
            yy = y2;
        }
        let ox = self.mlp_out_x.forward(&xx, Act::None)?;
        let oe = self.mlp_out_e.forward(&ee, Act::None)?;
        let x_out = ew::mul(&ew::add(&ox, &x_to_out)?, &m.node)?;
        let e_out = graph::sym_edges(&oe, Some(e), &m.counts, true)?;
        Ok(GraphOutput { x: x_out, e: e_out })
    }
}

fn masks(device: &Device, counts: &[usize], n: usize) -> Result<Masks> {
    let b = counts.len();
    let node: Vec<f32> = (0..b * n)
        .map(|r| if r % n < counts[r / n] { 1.0 } else { 0.0 })
        .collect();
    let edge: Vec<f32> = (0..b * n * n)
        .map(|r| {
            let (g, i, j) = (r / (n * n), (r / n) % n, r % n);
            if i < counts[g] && j < counts[g] {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let cu: Vec<u32> = counts.iter().map(|&c| c as u32).collect();
    Ok(Masks {
        counts: Tensor::from_u32(device, &[b], &cu)?,
        node: Tensor::from_f32(device, &[b, n, 1], &node)?,
        edge: Tensor::from_f32(device, &[b, n, n, 1], &edge)?,
    })
}
