//! The `config.json` of diffusers' `VQModel` and `AutoencoderKL` — the parts the decoder reads, each
//! field checked; the encoder's fields are accepted and unused (diffscope decodes latents, it does
//! not encode images).

use crate::error::{Error, Result};
use crate::weights::config_json::{self, Field};

/// Which autoencoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum VaeKind {
    /// `VQModel`: latents snap to the nearest of `num_vq_embeddings` codebook vectors first.
    Vq,
    /// `AutoencoderKL`.
    Kl,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct VaeConfig {
    pub kind: VaeKind,
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub latent_channels: usize,
    pub norm_num_groups: usize,
    /// The decoded image's side (`sample_size`).
    pub sample_size: usize,
    /// Pipelines divide the sampled latents by this before decoding.
    pub scaling_factor: f32,
    /// `AutoencoderKL`'s `shift_factor`, added after the division (`None`: 0).
    pub shift_factor: Option<f32>,
    pub mid_block_add_attention: bool,
    /// VQ: the codebook's size and vector width.
    pub num_vq_embeddings: usize,
    pub vq_embed_dim: Option<usize>,
    /// KL: whether `post_quant_conv` exists.
    pub use_post_quant_conv: bool,
}

impl VaeConfig {
    pub fn from_json(json: &str, file: &str) -> Result<VaeConfig> {
        let bad = |detail: String| Error::Config {
            file: file.to_string(),
            detail,
        };
        let obj = config_json::object(json, file)?;
        let kind = match obj.get("_class_name").and_then(|c| c.as_str()) {
            Some("VQModel") => VaeKind::Vq,
            Some("AutoencoderKL") => VaeKind::Kl,
            other => {
                return Err(bad(format!(
                    "_class_name {other:?}: diffscope decodes with VQModel or AutoencoderKL"
                )))
            }
        };
        // diffusers' defaults for each class.
        let mut c = VaeConfig {
            kind,
            out_channels: 3,
            block_out_channels: vec![64],
            layers_per_block: 1,
            latent_channels: if kind == VaeKind::Vq { 3 } else { 4 },
            norm_num_groups: 32,
            sample_size: 32,
            scaling_factor: 0.18215,
            shift_factor: None,
            mid_block_add_attention: true,
            num_vq_embeddings: 256,
            vq_embed_dim: None,
            use_post_quant_conv: true,
        };
        let mut up_types: Vec<String> = vec!["UpDecoderBlock2D".into()];
        for (k, val) in &obj {
            let f = Field { file, key: k, val };
            match k.as_str() {
                "_class_name" | "_diffusers_version" | "_name_or_path" | "in_channels"
                | "force_upcast" | "use_quant_conv" => {}
                "down_block_types" => {
                    f.strings()?;
                }
                "up_block_types" => up_types = f.strings()?,
                "out_channels" => c.out_channels = f.int()?,
                "block_out_channels" => c.block_out_channels = f.ints()?,
                "layers_per_block" => c.layers_per_block = f.int()?,
                "latent_channels" => c.latent_channels = f.int()?,
                "norm_num_groups" => c.norm_num_groups = f.int()?,
                "sample_size" => {
                    c.sample_size = match val.as_array() {
                        Some(a) if a.len() == 2 && a[0] == a[1] => {
                            a[0].as_u64().unwrap_or(0) as usize
                        }
                        Some(_) => {
                            return Err(bad(format!(
                                "sample_size {val}: diffscope decodes square images"
                            )))
                        }
                        None => f.int()?,
                    }
                }
                "scaling_factor" => c.scaling_factor = f.num()? as f32,
                "shift_factor" => {
                    c.shift_factor = if val.is_null() {
                        None
                    } else {
                        Some(f.num()? as f32)
                    }
                }
                "latents_mean" | "latents_std" => {
                    if !val.is_null() {
                        return Err(bad(format!("{k} is not supported (must be null)")));
                    }
                }
                "mid_block_add_attention" => c.mid_block_add_attention = f.boolean()?,
                "act_fn" => {
                    if val.as_str() != Some("silu") {
                        return Err(bad(format!("act_fn {val} is not supported (\"silu\")")));
                    }
                }
                "norm_type" => {
                    if val.as_str() != Some("group") {
                        return Err(bad(format!(
                            "norm_type {val} is not supported (\"group\"; \"spatial\" is MoVQ's)"
                        )));
                    }
                }
                "lookup_from_codebook" => {
                    if f.boolean()? {
                        return Err(bad("lookup_from_codebook = true is not supported".into()));
                    }
                }
                "num_vq_embeddings" if kind == VaeKind::Vq => c.num_vq_embeddings = f.int()?,
                "vq_embed_dim" if kind == VaeKind::Vq => c.vq_embed_dim = f.opt_int()?,
                "use_post_quant_conv" if kind == VaeKind::Kl => {
                    c.use_post_quant_conv = f.boolean()?
                }
                other => return Err(bad(format!("unknown field \"{other}\""))),
            }
        }
        use crate::weights::limits as lim;
        lim::size(
            file,
            "block_out_channels",
            c.block_out_channels.len(),
            1..=lim::MAX_LEVELS,
        )?;
        for &ch in &c.block_out_channels {
            lim::size(file, "block_out_channels", ch, 1..=lim::MAX_WIDTH)?;
            if !ch.is_multiple_of(c.norm_num_groups.max(1)) {
                return Err(bad(format!(
                    "block_out_channels entry {ch} is not a multiple of norm_num_groups ({})",
                    c.norm_num_groups
                )));
            }
        }
        lim::size(
            file,
            "norm_num_groups",
            c.norm_num_groups,
            1..=lim::MAX_WIDTH,
        )?;
        lim::size(
            file,
            "layers_per_block",
            c.layers_per_block,
            1..=lim::MAX_DEPTH,
        )?;
        lim::size(
            file,
            "latent_channels",
            c.latent_channels,
            1..=lim::MAX_DATA_CHANNELS,
        )?;
        lim::size(
            file,
            "out_channels",
            c.out_channels,
            1..=lim::MAX_DATA_CHANNELS,
        )?;
        lim::size(file, "sample_size", c.sample_size, 1..=lim::MAX_SPATIAL)?;
        lim::size(file, "num_vq_embeddings", c.num_vq_embeddings, 1..=1 << 20)?;
        if let Some(d) = c.vq_embed_dim {
            lim::size(file, "vq_embed_dim", d, 1..=lim::MAX_WIDTH)?;
        }
        lim::number(file, "scaling_factor", c.scaling_factor as f64, 1e-6..=1e6)?;
        if up_types.len() != c.block_out_channels.len()
            || up_types.iter().any(|t| t != "UpDecoderBlock2D")
        {
            return Err(bad(format!(
                "up_block_types {up_types:?}: diffscope decodes with one UpDecoderBlock2D per entry \
                 of block_out_channels ({})",
                c.block_out_channels.len()
            )));
        }
        Ok(c)
    }

    /// How many times the decoder doubles the latent's side.
    pub fn upsamplings(&self) -> usize {
        self.block_out_channels.len() - 1
    }
}
