//! diffusers' `UNet2DModel`, read from its `config.json` and safetensors parameter names: Down/AttnDown/
//! Up/AttnUp blocks, `UNetMidBlock2D`, ResnetBlock2D (GroupNorm → SiLU → conv, time projection),
//! attention under both the old `query/key/value/proj_attn` and the new `to_q/to_k/to_v/to_out.0` names,
//! `Timesteps` with `flip_sin_to_cos`/`freq_shift`, and class embeddings. Every config field is checked:
//! an unknown field or a block type diffscope does not implement is an error naming it.

use crate::error::{Error, Result};
use crate::nn::{Denoiser, GroupNorm, Linear};
use crate::ops::attention::attention;
use crate::ops::conv::{conv2d, upsample_nearest2x, Padding};
use crate::ops::elementwise as ew;
use crate::ops::embedding::{gather_rows, timestep_embedding};
use crate::ops::layout::{concat, permute};
use crate::ops::matmul::Act;
use crate::tensor::{DType, Device, Tensor};
use crate::weights::Weights;

/// The parts of a diffusers `UNet2DModel` config diffscope implements.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UNetConfig {
    pub sample_size: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub center_input_sample: bool,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f32,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub mid_block_scale_factor: f32,
    pub downsample_padding: usize,
    pub attention_head_dim: Option<usize>,
    pub norm_num_groups: usize,
    pub norm_eps: f32,
    pub add_attention: bool,
    pub num_class_embeds: Option<usize>,
}

impl UNetConfig {
    pub fn from_json(json: &str, file: &str) -> Result<UNetConfig> {
        let bad = |detail: String| Error::Config {
            file: file.to_string(),
            detail,
        };
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(format!("not valid JSON ({e})")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        // diffusers' UNet2DModel defaults.
        let mut c = UNetConfig {
            sample_size: 32,
            in_channels: 3,
            out_channels: 3,
            center_input_sample: false,
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
            mid_block_scale_factor: 1.0,
            downsample_padding: 1,
            attention_head_dim: Some(8),
            norm_num_groups: 32,
            norm_eps: 1e-5,
            add_attention: true,
            num_class_embeds: None,
        };
        for (k, val) in obj {
            let int = || {
                val.as_u64()
                    .and_then(|u| usize::try_from(u).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "field \"{k}\" must be a non-negative integer, got {val}"
                        ))
                    })
            };
            let num = || {
                val.as_f64()
                    .ok_or_else(|| bad(format!("field \"{k}\" must be a number, got {val}")))
            };
            let boolean = || {
                val.as_bool()
                    .ok_or_else(|| bad(format!("field \"{k}\" must be true or false, got {val}")))
            };
            let strings = || -> Result<Vec<String>> {
                val.as_array()
                    .and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect())
                    .ok_or_else(|| bad(format!("field \"{k}\" must be a list of strings")))
            };
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
                        _ => int()?,
                    }
                }
                "in_channels" => c.in_channels = int()?,
                "out_channels" => c.out_channels = int()?,
                "center_input_sample" => c.center_input_sample = boolean()?,
                "time_embedding_type" => expect_str(&["positional"])?,
                "time_embedding_dim" => {
                    if !val.is_null() {
                        return Err(bad(
                            "time_embedding_dim must be null (4 × block_out_channels[0])".into(),
                        ));
                    }
                }
                "freq_shift" => c.freq_shift = num()? as f32,
                "flip_sin_to_cos" => c.flip_sin_to_cos = boolean()?,
                "down_block_types" => c.down_block_types = strings()?,
                "up_block_types" => c.up_block_types = strings()?,
                "mid_block_type" => expect_str(&["UNetMidBlock2D", "null"])?,
                "block_out_channels" => {
                    c.block_out_channels = val
                        .as_array()
                        .and_then(|a| {
                            a.iter()
                                .map(|x| x.as_u64().and_then(|u| usize::try_from(u).ok()))
                                .collect()
                        })
                        .ok_or_else(
                            || bad("block_out_channels must be a list of integers".into()),
                        )?
                }
                "layers_per_block" => c.layers_per_block = int()?,
                "mid_block_scale_factor" => c.mid_block_scale_factor = num()? as f32,
                "downsample_padding" => c.downsample_padding = int()?,
                "downsample_type" | "upsample_type" => expect_str(&["conv"])?,
                "act_fn" => expect_str(&["silu"])?,
                "attention_head_dim" => {
                    c.attention_head_dim = if val.is_null() { None } else { Some(int()?) }
                }
                "norm_num_groups" => c.norm_num_groups = int()?,
                "attn_norm_num_groups" => {
                    if !val.is_null() {
                        return Err(bad("attn_norm_num_groups must be null".into()));
                    }
                }
                "norm_eps" => c.norm_eps = num()? as f32,
                "resnet_time_scale_shift" => expect_str(&["default"])?,
                "add_attention" => c.add_attention = boolean()?,
                "class_embed_type" => expect_str(&["null"])?,
                "num_class_embeds" => {
                    c.num_class_embeds = if val.is_null() { None } else { Some(int()?) }
                }
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
            lim::size(
                file,
                "norm_num_groups",
                c.norm_num_groups,
                1..=lim::MAX_WIDTH,
            )?;
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
        for t in &c.down_block_types {
            if !matches!(t.as_str(), "DownBlock2D" | "AttnDownBlock2D") {
                return Err(bad(format!(
                    "unknown down block type \"{t}\" (DownBlock2D, AttnDownBlock2D)"
                )));
            }
        }
        for t in &c.up_block_types {
            if !matches!(t.as_str(), "UpBlock2D" | "AttnUpBlock2D") {
                return Err(bad(format!(
                    "unknown up block type \"{t}\" (UpBlock2D, AttnUpBlock2D)"
                )));
            }
        }
        if c.norm_num_groups == 0
            || c.block_out_channels
                .iter()
                .any(|&ch| ch == 0 || ch % c.norm_num_groups != 0)
        {
            return Err(bad(format!(
                "every block_out_channels entry must be a positive multiple of norm_num_groups ({})",
                c.norm_num_groups
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

struct Conv {
    w: Tensor,
    b: Tensor,
}

impl Conv {
    fn load(
        w: &mut Weights,
        g: &Device,
        name: &str,
        cout: usize,
        cin: usize,
        k: usize,
    ) -> Result<Conv> {
        Ok(Conv {
            w: w.upload(g, &format!("{name}.weight"), &[cout, cin, k, k])?,
            b: w.upload(g, &format!("{name}.bias"), &[cout])?,
        })
    }
    fn apply(&self, x: &Tensor, stride: usize, pad: Padding) -> Result<Tensor> {
        conv2d(x, &self.w, Some(&self.b), stride, pad)
    }
}

struct Resnet {
    norm1: GroupNorm,
    conv1: Conv,
    temb: Linear,
    norm2: GroupNorm,
    conv2: Conv,
    shortcut: Option<Conv>,
    scale: f32,
}

impl Resnet {
    #[allow(clippy::too_many_arguments)]
    fn load(
        w: &mut Weights,
        g: &Device,
        p: &str,
        cin: usize,
        cout: usize,
        temb: usize,
        groups: usize,
        eps: f32,
        scale: f32,
    ) -> Result<Resnet> {
        Ok(Resnet {
            norm1: GroupNorm::load(w, g, &format!("{p}.norm1"), cin, groups, eps)?,
            conv1: Conv::load(w, g, &format!("{p}.conv1"), cout, cin, 3)?,
            temb: Linear::load(w, g, &format!("{p}.time_emb_proj"), cout, temb)?,
            norm2: GroupNorm::load(w, g, &format!("{p}.norm2"), cout, groups, eps)?,
            conv2: Conv::load(w, g, &format!("{p}.conv2"), cout, cout, 3)?,
            shortcut: if cin != cout {
                Some(Conv::load(
                    w,
                    g,
                    &format!("{p}.conv_shortcut"),
                    cout,
                    cin,
                    1,
                )?)
            } else {
                None
            },
            scale,
        })
    }

    /// `temb_act` is SiLU(temb), shared by every resnet.
    fn apply(&self, x: &Tensor, temb_act: &Tensor) -> Result<Tensor> {
        let h = self.norm1.forward_silu(x)?;
        let h = self.conv1.apply(&h, 1, Padding::same(1))?;
        let t = self.temb.forward(temb_act, Act::None)?;
        let (n, c) = (t.dim(0), t.dim(1));
        let h = ew::add(&h, &t.reshape(&[n, c, 1, 1])?)?;
        let h = self.norm2.forward_silu(&h)?;
        let h = self.conv2.apply(&h, 1, Padding::same(1))?;
        let skip = match &self.shortcut {
            Some(s) => s.apply(x, 1, Padding::same(0))?,
            None => x.clone(),
        };
        if self.scale == 1.0 {
            ew::add(&skip, &h)
        } else {
            ew::axpby(1.0 / self.scale, &skip, 1.0 / self.scale, &h)
        }
    }
}

struct Attn {
    norm: GroupNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
    scale: f32,
}

impl Attn {
    #[allow(clippy::too_many_arguments)]
    fn load(
        w: &mut Weights,
        g: &Device,
        p: &str,
        c: usize,
        head_dim: Option<usize>,
        groups: usize,
        eps: f32,
        scale: f32,
    ) -> Result<Attn> {
        let hd = head_dim.unwrap_or(c);
        if hd == 0 || !c.is_multiple_of(hd) {
            return Err(Error::Config {
                file: w.file().to_string(),
                detail: format!("attention_head_dim {hd} does not divide {c} channels"),
            });
        }
        let n = |new: &str, old: &str| [format!("{p}.{new}"), format!("{p}.{old}")];
        let [q1, q2] = n("to_q", "query");
        let [k1, k2] = n("to_k", "key");
        let [v1, v2] = n("to_v", "value");
        let [o1, o2] = n("to_out.0", "proj_attn");
        Ok(Attn {
            norm: GroupNorm::load(w, g, &format!("{p}.group_norm"), c, groups, eps)?,
            q: Linear::load_any(w, g, &[&q1, &q2], c, c)?,
            k: Linear::load_any(w, g, &[&k1, &k2], c, c)?,
            v: Linear::load_any(w, g, &[&v1, &v2], c, c)?,
            out: Linear::load_any(w, g, &[&o1, &o2], c, c)?,
            heads: c / hd,
            scale,
        })
    }

    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        let s = self.norm.forward(x)?;
        let s = permute(&s.reshape(&[n, c, h * w])?, &[0, 2, 1])?;
        let (q, k, v) = (
            self.q.forward(&s, Act::None)?,
            self.k.forward(&s, Act::None)?,
            self.v.forward(&s, Act::None)?,
        );
        let a = attention(&q, &k, &v, self.heads, None)?;
        let o = self.out.forward(&a, Act::None)?;
        let o = permute(&o, &[0, 2, 1])?.reshape(&[n, c, h, w])?;
        if self.scale == 1.0 {
            ew::add(&o, x)
        } else {
            ew::axpby(1.0 / self.scale, &o, 1.0 / self.scale, x)
        }
    }
}

struct Block {
    resnets: Vec<Resnet>,
    attns: Vec<Attn>,
    /// Down: the downsampling conv; up: the upsampling conv.
    resample: Option<Conv>,
}

pub struct UNet2D {
    pub config: UNetConfig,
    sample_shape: Vec<usize>,
    time1: Linear,
    time2: Linear,
    class_emb: Option<Tensor>,
    conv_in: Conv,
    down: Vec<Block>,
    mid: Block,
    up: Vec<Block>,
    norm_out: GroupNorm,
    conv_out: Conv,
    /// The weights' size on the device (f32), for the memory estimate.
    param_bytes: u64,
}

impl UNet2D {
    pub fn load(g: &Device, config: UNetConfig, mut weights: Weights) -> Result<UNet2D> {
        let param_bytes: u64 = weights
            .names()
            .filter_map(|n| weights.shape_of(n))
            .map(|s| s.iter().product::<usize>() as u64 * 4)
            .sum();
        let c = &config;
        let ch = &c.block_out_channels;
        let nb = ch.len();
        let l = BlockLoader {
            g,
            temb: ch[0] * 4,
            groups: c.norm_num_groups,
            eps: c.norm_eps,
            head_dim: c.attention_head_dim,
        };
        let w = &mut weights;
        let time1 = Linear::load(w, g, "time_embedding.linear_1", l.temb, ch[0])?;
        let time2 = Linear::load(w, g, "time_embedding.linear_2", l.temb, l.temb)?;
        let class_emb = match c.num_class_embeds {
            Some(k) => Some(w.upload(g, "class_embedding.weight", &[k, l.temb])?),
            None => None,
        };
        let conv_in = Conv::load(w, g, "conv_in", ch[0], c.in_channels, 3)?;
        let mut down = Vec::new();
        let mut prev = ch[0];
        for (i, ty) in c.down_block_types.iter().enumerate() {
            let out = ch[i];
            let inputs: Vec<usize> = (0..c.layers_per_block)
                .map(|j| if j == 0 { prev } else { out })
                .collect();
            let resample = (i + 1 < nb).then_some("downsamplers");
            down.push(l.block(
                w,
                &format!("down_blocks.{i}"),
                &inputs,
                out,
                ty == "AttnDownBlock2D",
                resample,
            )?);
            prev = out;
        }
        let last = ch[nb - 1];
        let msf = c.mid_block_scale_factor;
        let mut mid = Block {
            resnets: vec![l.resnet(w, "mid_block.resnets.0", last, last, msf)?],
            attns: vec![],
            resample: None,
        };
        if c.add_attention {
            mid.attns
                .push(l.attn(w, "mid_block.attentions.0", last, msf)?);
        }
        mid.resnets
            .push(l.resnet(w, "mid_block.resnets.1", last, last, msf)?);
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let mut up = Vec::new();
        let mut prev_out = rev[0];
        for (i, ty) in c.up_block_types.iter().enumerate() {
            let out = rev[i];
            let skip_last = rev[(i + 1).min(nb - 1)];
            // Resnet j takes cat([h, skip]): h has prev_out channels for j = 0, then out; the skips
            // pop off the down path's stack, the last one being the previous level's width.
            let inputs: Vec<usize> = (0..=c.layers_per_block)
                .map(|j| {
                    let h = if j == 0 { prev_out } else { out };
                    h + if j == c.layers_per_block {
                        skip_last
                    } else {
                        out
                    }
                })
                .collect();
            let resample = (i + 1 < nb).then_some("upsamplers");
            up.push(l.block(
                w,
                &format!("up_blocks.{i}"),
                &inputs,
                out,
                ty == "AttnUpBlock2D",
                resample,
            )?);
            prev_out = out;
        }
        let norm_out =
            GroupNorm::load(w, g, "conv_norm_out", ch[0], c.norm_num_groups, c.norm_eps)?;
        let conv_out = Conv::load(w, g, "conv_out", c.out_channels, ch[0], 3)?;
        let sample_shape = vec![c.in_channels, c.sample_size, c.sample_size];
        weights.finish()?;
        Ok(UNet2D {
            sample_shape,
            config,
            time1,
            time2,
            class_emb,
            conv_in,
            down,
            mid,
            up,
            norm_out,
            conv_out,
            param_bytes,
        })
    }
}

/// What every resnet and attention of one UNet shares.
struct BlockLoader<'a> {
    g: &'a Device,
    temb: usize,
    groups: usize,
    eps: f32,
    head_dim: Option<usize>,
}

impl BlockLoader<'_> {
    fn resnet(
        &self,
        w: &mut Weights,
        p: &str,
        cin: usize,
        cout: usize,
        scale: f32,
    ) -> Result<Resnet> {
        Resnet::load(
            w,
            self.g,
            p,
            cin,
            cout,
            self.temb,
            self.groups,
            self.eps,
            scale,
        )
    }

    fn attn(&self, w: &mut Weights, p: &str, c: usize, scale: f32) -> Result<Attn> {
        Attn::load(
            w,
            self.g,
            p,
            c,
            self.head_dim.or(Some(c)),
            self.groups,
            self.eps,
            scale,
        )
    }

    /// A down or up block `p`: one resnet per entry of `inputs` (its input channels), each followed by
    /// attention when `attn`, then the `resample` conv (`downsamplers`/`upsamplers`) if any.
    fn block(
        &self,
        w: &mut Weights,
        p: &str,
        inputs: &[usize],
        out: usize,
        attn: bool,
        resample: Option<&str>,
    ) -> Result<Block> {
        let mut b = Block {
            resnets: vec![],
            attns: vec![],
            resample: None,
        };
        for (j, &cin) in inputs.iter().enumerate() {
            b.resnets
                .push(self.resnet(w, &format!("{p}.resnets.{j}"), cin, out, 1.0)?);
            if attn {
                b.attns
                    .push(self.attn(w, &format!("{p}.attentions.{j}"), out, 1.0)?);
            }
        }
        if let Some(r) = resample {
            b.resample = Some(Conv::load(
                w,
                self.g,
                &format!("{p}.{r}.0.conv"),
                out,
                out,
                3,
            )?);
        }
        Ok(b)
    }
}

impl Denoiser for UNet2D {
    fn forward(&self, x: &Tensor, t: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let c = &self.config;
        if x.dims() != 4 || x.dim(1) != c.in_channels || t.shape() != [x.dim(0)] {
            return Err(Error::shape(
                "unet",
                format!(
                    "x {:?} must be [N, {}, H, W] and t [N], got t {:?}",
                    x.shape(),
                    c.in_channels,
                    t.shape()
                ),
            ));
        }
        let depth = c.block_out_channels.len() - 1;
        let (h, w) = (x.dim(2), x.dim(3));
        if h % (1 << depth) != 0 || w % (1 << depth) != 0 {
            return Err(Error::shape(
                "unet",
                format!("{h}×{w} is not divisible by 2^{depth} (the number of downsamplings)"),
            ));
        }
        let x = if c.center_input_sample {
            ew::affine(x, 2.0, -1.0)?
        } else {
            x.clone()
        };
        let temb = timestep_embedding(
            t,
            c.block_out_channels[0],
            c.flip_sin_to_cos,
            c.freq_shift,
            1.0,
            10000.0,
        )?;
        let temb = self.time1.forward(&temb, Act::Silu)?;
        let mut temb = self.time2.forward(&temb, Act::None)?;
        if let Some(table) = &self.class_emb {
            let l = labels.ok_or_else(|| {
                Error::Invalid("this UNet is class-conditional: labels are required".into())
            })?;
            l.expect_dtype("unet labels", DType::U32)?;
            temb = ew::add(&temb, &gather_rows(table, l)?)?;
        }
        let temb_act = ew::silu(&temb)?;
        let mut hs = self.conv_in.apply(&x, 1, Padding::same(1))?;
        let mut skips = vec![hs.clone()];
        for b in &self.down {
            for (j, r) in b.resnets.iter().enumerate() {
                hs = r.apply(&hs, &temb_act)?;
                if let Some(a) = b.attns.get(j) {
                    hs = a.apply(&hs)?;
                }
                skips.push(hs.clone());
            }
            if let Some(conv) = &b.resample {
                let pad = if c.downsample_padding == 0 {
                    Padding::new(0, 1, 0, 1)
                } else {
                    Padding::same(c.downsample_padding)
                };
                hs = conv.apply(&hs, 2, pad)?;
                skips.push(hs.clone());
            }
        }
        hs = self.mid.resnets[0].apply(&hs, &temb_act)?;
        if let Some(a) = self.mid.attns.first() {
            hs = a.apply(&hs)?;
        }
        hs = self.mid.resnets[1].apply(&hs, &temb_act)?;
        for b in &self.up {
            for (j, r) in b.resnets.iter().enumerate() {
                let skip = skips
                    .pop()
                    .ok_or_else(|| Error::Internal("UNet skip stack underflow".into()))?;
                hs = r.apply(&concat(&[&hs, &skip], 1)?, &temb_act)?;
                if let Some(a) = b.attns.get(j) {
                    hs = a.apply(&hs)?;
                }
            }
            if let Some(conv) = &b.resample {
                hs = conv.apply(&upsample_nearest2x(&hs)?, 1, Padding::same(1))?;
            }
        }
        let hs = self.norm_out.forward_silu(&hs)?;
        self.conv_out.apply(&hs, 1, Padding::same(1))
    }

    fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    fn num_labels(&self) -> Option<usize> {
        // The last class embedding is the null label (mnist-unet convention: num_class_embeds = labels + 1).
        self.config.num_class_embeds.map(|k| k - 1)
    }

    fn device(&self) -> &Device {
        self.conv_out.w.device()
    }
    fn footprint(&self, batch: usize) -> Option<crate::nn::Footprint> {
        let host = matches!(self.device(), Device::Cpu(_));
        Some(super::unet_memory::footprint(
            &self.config,
            self.param_bytes,
            batch,
            host,
        ))
    }
}
