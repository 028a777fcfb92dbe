//! diffusers' `UNet2DModel` `config.json`, read as diffusers reads it and checked field by field: an
//! unknown field, or a block type or option diffscope does not implement, is an error naming it.

use crate::error::{Error, Result};
use crate::weights::config_json::{self, Field};

/// The parts of a diffusers `UNet2DModel` config diffscope implements.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UNetConfig {
    pub sample_size: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub center_input_sample: bool,
    /// `time_embedding_type`: diffusers' sinusoidal `Timesteps` of an integer t, or the score-SDE
    /// models' Gaussian Fourier projection of ln σ (the output is then divided by σ).
    pub time_embedding: TimeProjection,
    /// Width of the time embedding (`None`: 4 × block_out_channels[0]).
    pub time_embedding_dim: Option<usize>,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f32,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    /// `mid_block_type` is `UNetMidBlock2D` (not `null`).
    pub mid_block: bool,
    pub mid_block_scale_factor: f32,
    pub downsample_padding: usize,
    pub attention_head_dim: Option<usize>,
    /// `None` (`null`): the skip blocks' `min(channels / 4, 32)` groups.
    pub norm_num_groups: Option<usize>,
    pub attn_norm_num_groups: Option<usize>,
    pub norm_eps: f32,
    /// `resnet_time_scale_shift: "scale_shift"`: the time embedding scales and shifts the features.
    pub scale_shift: bool,
    pub add_attention: bool,
    pub num_class_embeds: Option<usize>,
}

/// How a UNet embeds its time input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TimeProjection {
    Positional,
    Fourier,
}

/// The kinds of down and up blocks (diffusers' class names, `Down`/`Up` left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// `DownBlock2D` / `UpBlock2D`.
    Plain,
    /// `AttnDownBlock2D` / `AttnUpBlock2D`: attention after every resnet.
    Attn,
    /// `SkipDownBlock2D` / `SkipUpBlock2D`: FIR resampling, and a second path carrying the image.
    Skip,
    /// `AttnSkipDownBlock2D` (attention after every resnet) / `AttnSkipUpBlock2D` (once, after all).
    AttnSkip,
}

impl BlockKind {
    /// A down (`up = false`) or up block type's kind, if diffscope implements it.
    pub fn parse(name: &str, up: bool) -> Option<BlockKind> {
        let dir = if up { "Up" } else { "Down" };
        [
            (BlockKind::Plain, ""),
            (BlockKind::Attn, "Attn"),
            (BlockKind::Skip, "Skip"),
            (BlockKind::AttnSkip, "AttnSkip"),
        ]
        .into_iter()
        .find(|(_, pre)| name == format!("{pre}{dir}Block2D"))
        .map(|(k, _)| k)
    }

    pub fn attention(self) -> bool {
        matches!(self, BlockKind::Attn | BlockKind::AttnSkip)
    }

    pub fn skip(self) -> bool {
        matches!(self, BlockKind::Skip | BlockKind::AttnSkip)
    }
}

impl UNetConfig {
    pub fn down_kinds(&self) -> Vec<BlockKind> {
        self.down_block_types
            .iter()
            .filter_map(|t| BlockKind::parse(t, false))
            .collect()
    }

    pub fn up_kinds(&self) -> Vec<BlockKind> {
        self.up_block_types
            .iter()
            .filter_map(|t| BlockKind::parse(t, true))
            .collect()
    }

    /// Width of the time embedding every resnet reads.
    pub fn temb_dim(&self) -> usize {
        self.time_embedding_dim
            .unwrap_or(4 * self.block_out_channels[0])
    }

    pub fn from_json(json: &str, file: &str) -> Result<UNetConfig> {
        let bad = |detail: String| Error::Config {
            file: file.to_string(),
            detail,
        };
        let obj = config_json::object(json, file)?;
        // diffusers' UNet2DModel defaults.
        let mut c = UNetConfig {
            sample_size: 32,
            in_channels: 3,
            out_channels: 3,
            center_input_sample: false,
            time_embedding: TimeProjection::Positional,
            time_embedding_dim: None,
            flip_sin_to_cos: true,
            freq_shift: 0.0,
            down_block_types: [
                "DownBlock2D",
                "AttnDownBlock2D",
                "AttnDownBlock2D",
                "AttnDownBlock2D",
            ]
            .map(String::from)
            .to_vec(),
            up_block_types: [
                "AttnUpBlock2D",
                "AttnUpBlock2D",
                "AttnUpBlock2D",
                "UpBlock2D",
            ]
            .map(String::from)
            .to_vec(),
            block_out_channels: vec![224, 448, 672, 896],
            layers_per_block: 2,
            mid_block: true,
            mid_block_scale_factor: 1.0,
            downsample_padding: 1,
            attention_head_dim: Some(8),
            norm_num_groups: Some(32),
            attn_norm_num_groups: None,
            norm_eps: 1e-5,
            scale_shift: false,
            add_attention: true,
            num_class_embeds: None,
        };
        for (k, val) in &obj {
            let f = Field { file, key: k, val };
            let expect_str = |want: &[&str]| -> Result<()> {
                match val.as_str() {
                    Some(s) if want.contains(&s) => Ok(()),
                    _ if val.is_null() && want.contains(&"null") => Ok(()),
                    _ => Err(bad(format!(
                        "field \"{k}\" = {val} is not supported (diffscope implements {})",
                        want.join(", ")
                    ))),
                }
            };
            match k.as_str() {
                "_class_name" => expect_str(&["UNet2DModel"])?,
                "_diffusers_version" | "_name_or_path" | "num_train_timesteps" | "dropout" => {}
                // Names of the class labels ({"0": "name", ...}), shown by the app and CLI.
                "id2label" => {
                    let names = val
                        .as_object()
                        .filter(|o| o.values().all(|v| v.is_string()));
                    if names.is_none() {
                        return Err(bad(format!(
                            "field \"id2label\" = {val} must map label numbers to names"
                        )));
                    }
                }
                "sample_size" => {
                    c.sample_size = match val {
                        // [height, width]: diffscope runs square images only.
                        serde_json::Value::Array(a) => {
                            let sides: Vec<u64> = a.iter().filter_map(|x| x.as_u64()).collect();
                            match sides.as_slice() {
                                [h, w] if h == w && a.len() == 2 => {
                                    usize::try_from(*h).unwrap_or(usize::MAX)
                                }
                                _ => {
                                    return Err(bad(format!(
                                        "field \"sample_size\" = {val}: diffscope needs a square \
                                         size (one integer or [n, n])"
                                    )))
                                }
                            }
                        }
                        _ => f.int()?,
                    }
                }
                "in_channels" => c.in_channels = f.int()?,
                "out_channels" => c.out_channels = f.int()?,
                "center_input_sample" => c.center_input_sample = f.boolean()?,
                "time_embedding_type" => {
                    expect_str(&["positional", "fourier"])?;
                    if val.as_str() == Some("fourier") {
                        c.time_embedding = TimeProjection::Fourier;
                    }
                }
                "time_embedding_dim" => c.time_embedding_dim = f.opt_int()?,
                "freq_shift" => c.freq_shift = f.num()? as f32,
                "flip_sin_to_cos" => c.flip_sin_to_cos = f.boolean()?,
                "down_block_types" => c.down_block_types = f.strings()?,
                "up_block_types" => c.up_block_types = f.strings()?,
                "mid_block_type" => {
                    expect_str(&["UNetMidBlock2D", "null"])?;
                    c.mid_block = !val.is_null();
                }
                "block_out_channels" => c.block_out_channels = f.ints()?,
                "layers_per_block" => c.layers_per_block = f.int()?,
                "mid_block_scale_factor" => c.mid_block_scale_factor = f.num()? as f32,
                "downsample_padding" => c.downsample_padding = f.int()?,
                "downsample_type" | "upsample_type" => expect_str(&["conv"])?,
                "act_fn" => expect_str(&["silu"])?,
                "attention_head_dim" => c.attention_head_dim = f.opt_int()?,
                "norm_num_groups" => c.norm_num_groups = f.opt_int()?,
                "attn_norm_num_groups" => c.attn_norm_num_groups = f.opt_int()?,
                "norm_eps" => c.norm_eps = f.num()? as f32,
                "resnet_time_scale_shift" => {
                    expect_str(&["default", "scale_shift"])?;
                    c.scale_shift = val.as_str() == Some("scale_shift");
                }
                "add_attention" => c.add_attention = f.boolean()?,
                "class_embed_type" => expect_str(&["null"])?,
                "num_class_embeds" => c.num_class_embeds = f.opt_int()?,
                other => return Err(bad(format!("unknown field \"{other}\""))),
            }
        }
        {
            use crate::weights::limits::{self as lim, field_error};
            lim::size(file, "sample_size", c.sample_size, 1..=lim::MAX_SPATIAL)?;
            lim::size(
                file,
                "in_channels",
                c.in_channels,
                1..=lim::MAX_DATA_CHANNELS,
            )?;
            lim::size(
                file,
                "out_channels",
                c.out_channels,
                1..=lim::MAX_DATA_CHANNELS,
            )?;
            lim::size(
                file,
                "block_out_channels",
                c.block_out_channels.len(),
                1..=lim::MAX_LEVELS,
            )?;
            for &ch in &c.block_out_channels {
                lim::size(file, "block_out_channels", ch, 1..=lim::MAX_WIDTH)?;
            }
            lim::size(
                file,
                "layers_per_block",
                c.layers_per_block,
                1..=lim::MAX_DEPTH,
            )?;
            for (field, v) in [
                ("norm_num_groups", c.norm_num_groups),
                ("attn_norm_num_groups", c.attn_norm_num_groups),
                ("time_embedding_dim", c.time_embedding_dim),
            ] {
                if let Some(v) = v {
                    lim::size(file, field, v, 1..=lim::MAX_WIDTH)?;
                }
            }
            lim::size(file, "downsample_padding", c.downsample_padding, 0..=1)?;
            if let Some(hd) = c.attention_head_dim {
                lim::size(file, "attention_head_dim", hd, 1..=lim::MAX_WIDTH)?;
            }
            if let Some(k) = c.num_class_embeds {
                // The last class is the null label, so a conditional UNet has at least one real one.
                lim::size(file, "num_class_embeds", k, 2..=lim::MAX_LABELS)?;
            }
            lim::number(file, "norm_eps", c.norm_eps as f64, 1e-12..=1.0)?;
            lim::number(file, "freq_shift", c.freq_shift as f64, -1e6..=1e6)?;
            lim::number(
                file,
                "mid_block_scale_factor",
                c.mid_block_scale_factor as f64,
                1e-6..=1e6,
            )?;
            // Each level but the last halves the image; the skip connections need exact halves.
            let levels = c.block_out_channels.len();
            let div = 1usize << (levels - 1);
            if !c.sample_size.is_multiple_of(div) {
                return Err(field_error(
                    file,
                    "sample_size",
                    format!(
                        "{} is not divisible by {div}, which {levels} resolution levels need",
                        c.sample_size
                    ),
                ));
            }
        }
        let n = c.block_out_channels.len();
        if n == 0 || c.down_block_types.len() != n || c.up_block_types.len() != n {
            return Err(bad(format!(
                "block_out_channels ({n}), down_block_types ({}) and up_block_types ({}) must have the same, non-zero length",
                c.down_block_types.len(),
                c.up_block_types.len()
            )));
        }
        for (types, up) in [(&c.down_block_types, false), (&c.up_block_types, true)] {
            for t in types.iter() {
                if BlockKind::parse(t, up).is_none() {
                    let d = if up { "Up" } else { "Down" };
                    return Err(bad(format!(
                        "unknown {} block type \"{t}\" ({d}Block2D, Attn{d}Block2D, Skip{d}Block2D, \
                         AttnSkip{d}Block2D)",
                        d.to_lowercase()
                    )));
                }
            }
        }
        let plain = c
            .down_kinds()
            .iter()
            .chain(&c.up_kinds())
            .any(|k| !k.skip());
        match c.norm_num_groups {
            Some(g) if c.block_out_channels.iter().any(|&ch| ch % g != 0) => {
                return Err(bad(format!(
                    "every block_out_channels entry must be a multiple of norm_num_groups ({g})"
                )))
            }
            None if plain => {
                return Err(bad(
                    "norm_num_groups is null, which only the Skip blocks allow (the others need a \
                     group count)"
                        .into(),
                ))
            }
            _ => {}
        }
        // The skip blocks' image path is hard-wired to 3 channels in diffusers (1×1 conv from 3,
        // 3×3 conv to 3).
        if c.down_kinds().iter().chain(&c.up_kinds()).any(|k| k.skip())
            && (c.in_channels != 3 || c.out_channels != 3)
        {
            return Err(bad(format!(
                "Skip blocks carry a 3-channel image: in_channels and out_channels must be 3, got {} \
                 and {}",
                c.in_channels, c.out_channels
            )));
        }
        if c.layers_per_block == 0 || c.in_channels == 0 || c.out_channels == 0 {
            return Err(bad(
                "layers_per_block, in_channels and out_channels must be positive".into(),
            ));
        }
        Ok(c)
    }
}
