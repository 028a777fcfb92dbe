//! The sequence transformer denoiser for discrete diffusion: token + learned position embeddings, a
//! time embedding (diffusers' sinusoid, `flip_sin_to_cos = false`, `freq_shift = 1`, through
//! Linear-GELU-Linear) added at every position, pre-LN blocks `h + Attn(LN h)`, `h + FF(LN h)` with
//! FF = Linear-GELU-Linear, a final LayerNorm and K logits per position. Mirrors
//! `tools/seq_transformer.py` parameter for parameter.

use crate::error::{Error, Result};
use crate::nn::{Denoiser, LayerNorm, Linear};
use crate::ops::attention::{attention, MAX_HEAD_DIM};
use crate::ops::elementwise as ew;
use crate::ops::embedding;
use crate::ops::matmul::Act;
use crate::tensor::{DType, Device, Tensor};
use crate::weights::Weights;

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeqTransformerConfig {
    pub architecture: String,
    /// Input classes (token ids are below this).
    pub vocab: usize,
    pub seq_len: usize,
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub ff_mult: usize,
    /// Logits per position.
    pub out_classes: usize,
}

struct Block {
    ln1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    proj: Linear,
    ln2: LayerNorm,
    ff1: Linear,
    ff2: Linear,
}

pub struct SeqTransformer {
    pub config: SeqTransformerConfig,
    sample_shape: Vec<usize>,
    tok_emb: Tensor,
    pos_emb: Tensor,
    time1: Linear,
    time2: Linear,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
}

impl SeqTransformer {
    pub fn parse_config(json: &str, file: &str) -> Result<SeqTransformerConfig> {
        let bad = |d: String| Error::Config {
            file: file.to_string(),
            detail: d,
        };
        let c: SeqTransformerConfig = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        if c.architecture != "seq_transformer" {
            return Err(bad(format!(
                "architecture is \"{}\", expected \"seq_transformer\"",
                c.architecture
            )));
        }
        if c.dim < 4
            || !c.dim.is_multiple_of(2)
            || c.heads == 0
            || !c.dim.is_multiple_of(c.heads)
            || c.dim / c.heads > MAX_HEAD_DIM
        {
            return Err(bad(format!(
                "dim {} must be even and split into {} heads of at most {MAX_HEAD_DIM}",
                c.dim, c.heads
            )));
        }
        if c.vocab == 0 || c.seq_len == 0 || c.depth == 0 || c.ff_mult == 0 || c.out_classes == 0 {
            return Err(bad(
                "vocab, seq_len, depth, ff_mult and out_classes must be at least 1".into(),
            ));
        }
        // A downloaded config can claim anything: sizes past these would overflow later products or
        // exhaust memory before any device limit is consulted.
        use crate::weights::limits as lim;
        lim::size(file, "vocab", c.vocab, 1..=lim::MAX_LABELS)?;
        lim::size(file, "out_classes", c.out_classes, 1..=lim::MAX_LABELS)?;
        lim::size(file, "seq_len", c.seq_len, 1..=lim::MAX_SPATIAL)?;
        lim::size(file, "dim", c.dim, 4..=lim::MAX_WIDTH)?;
        lim::size(file, "depth", c.depth, 1..=lim::MAX_DEPTH)?;
        lim::size(file, "ff_mult", c.ff_mult, 1..=64)?;
        Ok(c)
    }

    pub fn load(
        device: &Device,
        config: SeqTransformerConfig,
        mut w: Weights,
    ) -> Result<SeqTransformer> {
        let d = config.dim;
        let f = config.ff_mult * d;
        let tok_emb = w.upload(device, "tok_emb.weight", &[config.vocab, d])?;
        let pos_emb = w.upload(device, "pos_emb", &[config.seq_len, d])?;
        let time1 = Linear::load(&mut w, device, "time_mlp.0", d, d)?;
        let time2 = Linear::load(&mut w, device, "time_mlp.2", d, d)?;
        let mut blocks = Vec::with_capacity(config.depth);
        for i in 0..config.depth {
            let p = format!("blocks.{i}");
            blocks.push(Block {
                ln1: LayerNorm::load(&mut w, device, &format!("{p}.ln1"), d)?,
                q: Linear::load(&mut w, device, &format!("{p}.q"), d, d)?,
                k: Linear::load(&mut w, device, &format!("{p}.k"), d, d)?,
                v: Linear::load(&mut w, device, &format!("{p}.v"), d, d)?,
                proj: Linear::load(&mut w, device, &format!("{p}.proj"), d, d)?,
                ln2: LayerNorm::load(&mut w, device, &format!("{p}.ln2"), d)?,
                ff1: Linear::load(&mut w, device, &format!("{p}.ff1"), f, d)?,
                ff2: Linear::load(&mut w, device, &format!("{p}.ff2"), d, f)?,
            });
        }
        let ln_f = LayerNorm::load(&mut w, device, "ln_f", d)?;
        let head = Linear::load(&mut w, device, "head", config.out_classes, d)?;
        w.finish()?;
        Ok(SeqTransformer {
            sample_shape: vec![config.seq_len],
            config,
            tok_emb,
            pos_emb,
            time1,
            time2,
            blocks,
            ln_f,
            head,
        })
    }
}

impl Denoiser for SeqTransformer {
    /// `x`: u32 token ids `[N, L]` (below `vocab`; upload with `Tensor::from_indices` to have bad ids
    /// refused — the gather reads an out-of-range id as a zero row); `t`: f32 `[N]`. Returns f32
    /// logits `[N, L, out_classes]`.
    fn forward(&self, x: &Tensor, t: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "seq_transformer";
        x.expect_dtype(OP, DType::U32)?;
        let n = x.shape().first().copied().unwrap_or(0);
        let l = self.config.seq_len;
        if x.shape() != [n, l] || t.shape() != [n] {
            return Err(Error::shape(
                OP,
                format!(
                    "x {:?} must be [N, {l}] and t {:?} [N]",
                    x.shape(),
                    t.shape()
                ),
            ));
        }
        if labels.is_some() {
            return Err(Error::Invalid("this model takes no labels".into()));
        }
        let d = self.config.dim;
        let temb = embedding::timestep_embedding(t, d, false, 1.0, 1.0, 10000.0)?;
        let temb = self.time1.forward(&temb, Act::Gelu)?;
        let temb = self.time2.forward(&temb, Act::None)?.reshape(&[n, 1, d])?;
        let h = embedding::gather_rows(&self.tok_emb, x)?;
        let h = ew::add(&h, &self.pos_emb)?;
        let mut h = ew::add(&h, &temb)?;
        for b in &self.blocks {
            let a = b.ln1.forward(&h)?;
            let q = b.q.forward(&a, Act::None)?;
            let k = b.k.forward(&a, Act::None)?;
            let v = b.v.forward(&a, Act::None)?;
            let att = attention(&q, &k, &v, self.config.heads, None)?;
            h = b.proj.forward_residual(&att, &h)?;
            let f = b.ff1.forward(&b.ln2.forward(&h)?, Act::Gelu)?;
            h = b.ff2.forward_residual(&f, &h)?;
        }
        self.head.forward(&self.ln_f.forward(&h)?, Act::None)
    }

    fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    fn num_labels(&self) -> Option<usize> {
        None
    }

    fn device(&self) -> &Device {
        self.head.weight.device()
    }
}
