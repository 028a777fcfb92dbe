//! The FiLM-MLP (ANCHOR_MATH §5, corrected): a sinusoidal time embedding through an MLP plus a label
//! embedding (with a null label for guidance), then residual blocks `h + SiLU((1+s)·LN(Wh) + b)` whose
//! scale and shift come from the embedding. Mirrors `tools/film_mlp.py` parameter for parameter.

use crate::error::{Error, Result};
use crate::nn::{Denoiser, LayerNorm, Linear};
use crate::ops::elementwise::{self as ew, Unary};
use crate::ops::embedding;
use crate::ops::matmul::Act;
use crate::tensor::{DType, Device, Tensor};
use crate::weights::Weights;

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilmMlpConfig {
    pub architecture: String,
    pub data_dim: usize,
    pub dim: usize,
    pub depth: usize,
    pub num_labels: usize,
    pub null_label: usize,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub data_range: Option<[f32; 2]>,
}

struct Block {
    lin: Linear,
    norm: LayerNorm,
    // The checkpoint's `film` Linear (dim → 2·dim) split at load time into its scale and shift halves,
    // so no slicing is needed per step.
    film_scale: Linear,
    film_shift: Linear,
}

pub struct FilmMlp {
    pub config: FilmMlpConfig,
    sample_shape: Vec<usize>,
    time1: Linear,
    time2: Linear,
    label_emb: Tensor,
    inp: Linear,
    blocks: Vec<Block>,
    out: Linear,
}

impl FilmMlp {
    pub fn parse_config(json: &str, file: &str) -> Result<FilmMlpConfig> {
        use crate::weights::limits::field_error;
        let bad = |d: String| Error::Config {
            file: file.to_string(),
            detail: d,
        };
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(format!("not valid JSON ({e})")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        // Check each field's type first so a wrong one is named (serde's message gives a column).
        for (k, val) in obj {
            let ok =
                match k.as_str() {
                    "architecture" => val.is_string(),
                    "data_dim" | "dim" | "depth" | "num_labels" | "null_label" => val.is_u64(),
                    "labels" => val
                        .as_array()
                        .is_some_and(|a| a.iter().all(|x| x.is_string())),
                    "data_range" => {
                        val.is_null()
                            || val
                                .as_array()
                                .is_some_and(|a| a.len() == 2 && a.iter().all(|x| x.is_number()))
                    }
                    _ => return Err(field_error(
                        file,
                        k,
                        "unknown field (film_mlp configs have architecture, data_dim, dim, depth, \
                         num_labels, null_label, labels, data_range)",
                    )),
                };
            if !ok {
                return Err(field_error(
                    file,
                    k,
                    format!("{val} has the wrong type or form"),
                ));
            }
        }
        let c: FilmMlpConfig = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
        if c.architecture != "film_mlp" {
            return Err(bad(format!(
                "architecture is \"{}\", expected \"film_mlp\"",
                c.architecture
            )));
        }
        use crate::weights::limits as lim;
        lim::size(file, "data_dim", c.data_dim, 1..=lim::MAX_DATA_CHANNELS)?;
        lim::size(file, "dim", c.dim, 4..=lim::MAX_WIDTH)?;
        if !c.dim.is_multiple_of(2) {
            return Err(field_error(
                file,
                "dim",
                format!("{} must be even (sin/cos halves)", c.dim),
            ));
        }
        lim::size(file, "depth", c.depth, 1..=lim::MAX_DEPTH)?;
        lim::size(file, "num_labels", c.num_labels, 0..=lim::MAX_LABELS)?;
        if c.null_label != c.num_labels {
            return Err(field_error(
                file,
                "null_label",
                format!(
                    "must equal num_labels ({}), got {}",
                    c.num_labels, c.null_label
                ),
            ));
        }
        if !c.labels.is_empty() && c.labels.len() != c.num_labels {
            return Err(field_error(
                file,
                "labels",
                format!(
                    "{} names for {} labels (give one per label, or none)",
                    c.labels.len(),
                    c.num_labels
                ),
            ));
        }
        if let Some([lo, hi]) = c.data_range {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(field_error(
                    file,
                    "data_range",
                    format!("[{lo}, {hi}] must be finite with low < high"),
                ));
            }
        }
        Ok(c)
    }

    pub fn load(device: &Device, config: FilmMlpConfig, mut w: Weights) -> Result<FilmMlp> {
        let d = config.dim;
        let time1 = Linear::load(&mut w, device, "time_mlp.0", d, d)?;
        let time2 = Linear::load(&mut w, device, "time_mlp.2", d, d)?;
        let label_emb = w.upload(device, "label_emb.weight", &[config.num_labels + 1, d])?;
        let inp = Linear::load(&mut w, device, "inp", d, config.data_dim)?;
        let mut blocks = Vec::with_capacity(config.depth);
        for i in 0..config.depth {
            let p = format!("blocks.{i}");
            let lin = Linear::load(&mut w, device, &format!("{p}.lin"), d, d)?;
            let norm = LayerNorm::load(&mut w, device, &format!("{p}.norm"), d)?;
            let fw = w.take(&format!("{p}.film.weight"), &[2 * d, d])?;
            let fb = w.take(&format!("{p}.film.bias"), &[2 * d])?;
            let half = |v: &[f32], i: usize, n: usize| v[i * n..(i + 1) * n].to_vec();
            let film_scale = Linear::from_host(
                device,
                &half(&fw.data, 0, d * d),
                d,
                d,
                &half(&fb.data, 0, d),
            )?;
            let film_shift = Linear::from_host(
                device,
                &half(&fw.data, 1, d * d),
                d,
                d,
                &half(&fb.data, 1, d),
            )?;
            blocks.push(Block {
                lin,
                norm,
                film_scale,
                film_shift,
            });
        }
        let out = Linear::load(&mut w, device, "out", config.data_dim, d)?;
        w.finish()?;
        Ok(FilmMlp {
            sample_shape: vec![config.data_dim],
            config,
            time1,
            time2,
            label_emb,
            inp,
            blocks,
            out,
        })
    }
}

impl Denoiser for FilmMlp {
    fn forward(&self, x: &Tensor, t: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let n = x.dim(0);
        if x.shape() != [n, self.config.data_dim] || t.shape() != [n] {
            return Err(Error::shape(
                "film_mlp",
                format!(
                    "x {:?} must be [N, {}] and t {:?} [N]",
                    x.shape(),
                    self.config.data_dim,
                    t.shape()
                ),
            ));
        }
        let labels = labels.ok_or_else(|| {
            Error::Invalid("film_mlp needs labels (use the null label for unconditional)".into())
        })?;
        labels.expect_dtype("film_mlp labels", DType::U32)?;
        if labels.shape() != [n] {
            return Err(Error::shape(
                "film_mlp",
                format!("labels {:?} must be [{n}]", labels.shape()),
            ));
        }
        let d = self.config.dim;
        let temb = embedding::timestep_embedding(t, d, false, 1.0, 1.0, 10000.0)?;
        let temb = self.time1.forward(&temb, Act::Gelu)?;
        let temb = self.time2.forward(&temb, Act::None)?;
        let temb = ew::add(&temb, &embedding::gather_rows(&self.label_emb, labels)?)?;
        let st = ew::silu(&temb)?;
        let mut h = self.inp.forward(x, Act::None)?;
        for b in &self.blocks {
            let scale = b.film_scale.forward(&st, Act::None)?;
            let shift = b.film_shift.forward(&st, Act::None)?;
            let a = b.lin.forward(&h, Act::None)?;
            let a = b.norm.forward(&a)?;
            let f = ew::film(&a, &scale, &shift, Unary::Silu)?;
            h = ew::add(&h, &f)?;
        }
        self.out.forward(&h, Act::None)
    }

    fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    fn num_labels(&self) -> Option<usize> {
        Some(self.config.num_labels)
    }

    fn device(&self) -> &Device {
        self.out.weight.device()
    }
}
