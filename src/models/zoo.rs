//! The shipped models, embedded in the binary (and the web build) so everything works offline, and
//! loading a user's model folder of a supported architecture.

use super::film_mlp::FilmMlp;
use super::unet::{UNet2D, UNetConfig};
use super::Denoiser;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::process::gaussian::{Gaussian, SchedulerConfig};
use crate::weights::Weights;

/// What a shipped model loads into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// A [`GaussianModel`]: DDPM/DDIM over images or points.
    Gaussian,
    /// A [`DiscreteModel`]: D3PM or multinomial diffusion over token sequences.
    Sequence,
    /// A [`crate::models::digress::DigressModel`]: DiGress over graphs.
    Graph,
}

impl Family {
    /// How error messages name the family's models ("no shipped graph model ...").
    fn adjective(self) -> &'static str {
        match self {
            Family::Gaussian => "",
            Family::Sequence => "sequence ",
            Family::Graph => "graph ",
        }
    }
}

/// A model shipped in `assets/`, embedded in the binary.
pub struct Shipped {
    pub name: &'static str,
    pub family: Family,
    pub summary: &'static str,
    pub config: &'static str,
    /// The process settings: `scheduler_config.json` (Gaussian) or `process.json` (sequence); empty
    /// for graphs, whose `config.json` holds them.
    pub process: &'static str,
    pub weights: &'static [u8],
    /// Held-out data for the forward-process explorer and the metrics: `examples.safetensors`
    /// (Gaussian, sequence) or `dataset.json`, the train / val / test graphs (graph).
    pub data: &'static [u8],
    pub card: &'static str,
}

/// Every shipped model, in gallery order within each family.
pub const MODELS: &[Shipped] = &[
    Shipped {
        name: "toy2d-mlp",
        family: Family::Gaussian,
        summary: "FiLM-MLP on six labelled 2-D shapes: watch particles flow (DDPM, 200 steps)",
        config: include_str!("../../assets/toy2d-mlp/config.json"),
        process: include_str!("../../assets/toy2d-mlp/scheduler_config.json"),
        weights: include_bytes!("../../assets/toy2d-mlp/model.safetensors"),
        data: include_bytes!("../../assets/toy2d-mlp/examples.safetensors"),
        card: include_str!("../../assets/toy2d-mlp/card.json"),
    },
    Shipped {
        name: "mnist-unet",
        family: Family::Gaussian,
        summary: "class-conditional diffusers UNet2DModel on MNIST digits (1.3 M parameters, \
                  1000 steps; opens with 50 DDIM steps, guidance 3)",
        config: include_str!("../../assets/mnist-unet/config.json"),
        process: include_str!("../../assets/mnist-unet/scheduler_config.json"),
        weights: include_bytes!("../../assets/mnist-unet/diffusion_pytorch_model.safetensors"),
        data: include_bytes!("../../assets/mnist-unet/examples.safetensors"),
        card: include_str!("../../assets/mnist-unet/card.json"),
    },
    Shipped {
        name: "words-absorb",
        family: Family::Sequence,
        summary: "D3PM (absorbing/mask noise, moco) over English words of 2–12 letters (100 steps)",
        config: include_str!("../../assets/words-absorb/config.json"),
        process: include_str!("../../assets/words-absorb/process.json"),
        weights: include_bytes!("../../assets/words-absorb/model.safetensors"),
        data: include_bytes!("../../assets/words-absorb/examples.safetensors"),
        card: include_str!("../../assets/words-absorb/card.json"),
    },
    Shipped {
        name: "words-uniform",
        family: Family::Sequence,
        summary: "D3PM (uniform noise, moco) over English words of 2–12 letters (100 steps)",
        config: include_str!("../../assets/words-uniform/config.json"),
        process: include_str!("../../assets/words-uniform/process.json"),
        weights: include_bytes!("../../assets/words-uniform/model.safetensors"),
        data: include_bytes!("../../assets/words-uniform/examples.safetensors"),
        card: include_str!("../../assets/words-uniform/card.json"),
    },
    Shipped {
        name: "promoter-multinomial",
        family: Family::Sequence,
        summary: "multinomial diffusion (Hoogeboom) over 50-nt ACGT promoter-like sequences (synthetic σ70 \
                  boxes TTGACA / TATAAT, 100 steps)",
        config: include_str!("../../assets/promoter-multinomial/config.json"),
        process: include_str!("../../assets/promoter-multinomial/process.json"),
        weights: include_bytes!("../../assets/promoter-multinomial/model.safetensors"),
        data: include_bytes!("../../assets/promoter-multinomial/examples.safetensors"),
        card: include_str!("../../assets/promoter-multinomial/card.json"),
    },
    Shipped {
        name: "planar-digress",
        family: Family::Graph,
        summary:
            "DiGress on 16-node planar graphs (Delaunay triangulations, SPECTRE recipe scaled down)",
        config: include_str!("../../assets/planar-digress/config.json"),
        process: "",
        weights: include_bytes!("../../assets/planar-digress/model.safetensors"),
        data: include_bytes!("../../assets/planar-digress/dataset.json"),
        card: include_str!("../../assets/planar-digress/card.json"),
    },
    Shipped {
        name: "sbm-digress",
        family: Family::Graph,
        summary: "DiGress on SBM graphs (2-3 blocks of 6-10 nodes)",
        config: include_str!("../../assets/sbm-digress/config.json"),
        process: "",
        weights: include_bytes!("../../assets/sbm-digress/model.safetensors"),
        data: include_bytes!("../../assets/sbm-digress/dataset.json"),
        card: include_str!("../../assets/sbm-digress/card.json"),
    },
];

/// The shipped models of one family.
pub fn family(f: Family) -> impl Iterator<Item = &'static Shipped> {
    MODELS.iter().filter(move |m| m.family == f)
}

/// A shipped model by name, of any family.
pub fn find(name: &str) -> Option<&'static Shipped> {
    MODELS.iter().find(|m| m.name == name)
}

/// A shipped model of family `f`; the error lists that family's models.
pub fn shipped_in(f: Family, name: &str) -> Result<&'static Shipped> {
    find(name).filter(|m| m.family == f).ok_or_else(|| {
        let names: Vec<&str> = family(f).map(|m| m.name).collect();
        let what = f.adjective();
        Error::Invalid(format!(
            "no shipped {what}model \"{name}\"; shipped {what}models: {}",
            names.join(", ")
        ))
    })
}

/// The model the app opens with.
pub const DEFAULT_MODEL: &str = "toy2d-mlp";

/// A loaded Gaussian model: its denoiser and its process.
pub struct GaussianModel {
    pub name: String,
    pub denoiser: Box<dyn Denoiser>,
    pub process: Gaussian,
    /// Display names of the labels (index = label id), if conditional.
    pub labels: Vec<String>,
    /// The data range samples live in (e.g. [-1, 1]).
    pub data_range: [f32; 2],
}

/// A shipped Gaussian model.
pub fn shipped(name: &str) -> Result<&'static Shipped> {
    shipped_in(Family::Gaussian, name)
}

/// Build a model from a config, a scheduler config and weights (whatever their source).
pub fn build(
    gpu: &Gpu,
    name: &str,
    config: &str,
    config_file: &str,
    scheduler: &str,
    scheduler_file: &str,
    weights: Weights,
) -> Result<GaussianModel> {
    let v: serde_json::Value = serde_json::from_str(config).map_err(|e| Error::Config {
        file: config_file.to_string(),
        detail: format!("not valid JSON ({e})"),
    })?;
    let process = Gaussian::new(SchedulerConfig::from_json(scheduler, scheduler_file)?)?;
    if v.get("architecture").and_then(|a| a.as_str()) == Some("film_mlp") {
        let cfg = FilmMlp::parse_config(config, config_file)?;
        let labels = cfg.labels.clone();
        let range = cfg.data_range.unwrap_or([-1.0, 1.0]);
        let m = FilmMlp::load(gpu, cfg, weights)?;
        return Ok(GaussianModel {
            name: name.to_string(),
            denoiser: Box::new(m),
            process,
            labels,
            data_range: range,
        });
    }
    if v.get("_class_name").and_then(|a| a.as_str()) == Some("UNet2DModel") {
        let cfg = UNetConfig::from_json(config, config_file)?;
        let m = UNet2D::load(gpu, cfg, weights)?;
        let labels = (0..m.num_labels().unwrap_or(0))
            .map(|i| i.to_string())
            .collect();
        return Ok(GaussianModel {
            name: name.to_string(),
            denoiser: Box::new(m),
            process,
            labels,
            data_range: [-1.0, 1.0],
        });
    }
    let class = v
        .get("_class_name")
        .and_then(|a| a.as_str())
        .or_else(|| v.get("architecture").and_then(|a| a.as_str()))
        .unwrap_or("(none)");
    Err(Error::Config {
        file: config_file.to_string(),
        detail: format!("unsupported architecture \"{class}\" (supported: film_mlp, UNet2DModel)"),
    })
}

pub fn load_shipped(gpu: &Gpu, name: &str) -> Result<GaussianModel> {
    let m = shipped(name)?;
    let w = Weights::from_bytes(m.weights, &format!("{name}/model.safetensors"))?;
    build(
        gpu,
        name,
        m.config,
        &format!("{name}/config.json"),
        m.process,
        &format!("{name}/scheduler_config.json"),
        w,
    )
}

/// Build a model from files a user handed over (dropped on the window, or picked in the browser):
/// `config.json`, `scheduler_config.json` and one `.safetensors` weights file, by file name.
pub fn load_files(gpu: &Gpu, name: &str, files: &[(String, Vec<u8>)]) -> Result<GaussianModel> {
    let base = |f: &str| f.rsplit(['/', '\\']).next().unwrap_or(f).to_string();
    let find = |want: &str| files.iter().find(|(f, _)| base(f) == want);
    let text = |want: &str| -> Result<String> {
        let (f, b) = find(want).ok_or_else(|| Error::Config {
            file: want.to_string(),
            detail: format!(
                "missing: a model needs config.json, scheduler_config.json and one .safetensors file \
                 (got {})",
                files.iter().map(|(f, _)| base(f)).collect::<Vec<_>>().join(", ")
            ),
        })?;
        String::from_utf8(b.clone()).map_err(|_| Error::Config {
            file: f.clone(),
            detail: "not UTF-8 text".into(),
        })
    };
    let config = text("config.json")?;
    let scheduler = text("scheduler_config.json")?;
    let st: Vec<&(String, Vec<u8>)> = files
        .iter()
        .filter(|(f, _)| f.ends_with(".safetensors") && !base(f).starts_with("examples"))
        .collect();
    let (wf, wb) = match st.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::Config {
                file: name.to_string(),
                detail: "no .safetensors weights among the files (pickled .bin files are not read)"
                    .into(),
            })
        }
        many => {
            return Err(Error::Config {
                file: name.to_string(),
                detail: format!("{} .safetensors files; expected one", many.len()),
            })
        }
    };
    let w = Weights::from_bytes(wb, wf)?;
    build(
        gpu,
        name,
        &config,
        "config.json",
        &scheduler,
        "scheduler_config.json",
        w,
    )
}

/// Load a model folder: `config.json`, `scheduler_config.json` (or `scheduler/scheduler_config.json`,
/// as in diffusers pipelines; `unet/` subfolders too) and one `.safetensors` weights file.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_dir(gpu: &Gpu, dir: &std::path::Path) -> Result<GaussianModel> {
    use std::path::PathBuf;
    let io = |p: &std::path::Path, e: std::io::Error| Error::Config {
        file: p.display().to_string(),
        detail: e.to_string(),
    };
    let model_dir: PathBuf = if dir.join("unet/config.json").exists() {
        dir.join("unet")
    } else {
        dir.to_path_buf()
    };
    let cfg_path = model_dir.join("config.json");
    let config = std::fs::read_to_string(&cfg_path).map_err(|e| io(&cfg_path, e))?;
    let sched_path = [
        dir.join("scheduler_config.json"),
        dir.join("scheduler/scheduler_config.json"),
        model_dir.join("scheduler_config.json"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .ok_or_else(|| Error::Config {
        file: dir.display().to_string(),
        detail: "no scheduler_config.json (or scheduler/scheduler_config.json) in the folder"
            .into(),
    })?;
    let scheduler = std::fs::read_to_string(&sched_path).map_err(|e| io(&sched_path, e))?;
    let mut st: Vec<PathBuf> = std::fs::read_dir(&model_dir)
        .map_err(|e| io(&model_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("examples"))
        })
        .collect();
    st.sort();
    let weights_path = match st.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::Config {
                file: model_dir.display().to_string(),
                detail: "no .safetensors weights in the folder (pickled .bin files are not read)"
                    .into(),
            })
        }
        many => {
            return Err(Error::Config {
                file: model_dir.display().to_string(),
                detail: format!("{} .safetensors files; expected one", many.len()),
            })
        }
    };
    let w = Weights::from_file(&weights_path)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    build(
        gpu,
        &name,
        &config,
        &cfg_path.display().to_string(),
        &scheduler,
        &sched_path.display().to_string(),
        w,
    )
}

/// A loaded discrete model: the sequence transformer, its process and the process settings (vocab,
/// sequence length, special tokens).
pub struct DiscreteModel {
    pub name: String,
    pub denoiser: crate::models::seq_transformer::SeqTransformer,
    pub process: crate::process::discrete::Process,
    pub config: crate::process::discrete::ProcessConfig,
}

impl DiscreteModel {
    /// One character per class id.
    pub fn vocab(&self) -> Vec<char> {
        self.config.vocab.chars().collect()
    }

    /// A text line as ids: each character must be in the vocabulary (and not the mask token); a line
    /// shorter than the sequence is padded with the pad token, if the model has one.
    pub fn encode(&self, line: &str, what: &str) -> Result<Vec<u32>> {
        let vocab = self.vocab();
        let l = self.config.seq_len;
        let mut ids = Vec::with_capacity(l);
        for (i, c) in line.chars().enumerate() {
            let id = vocab
                .iter()
                .position(|&v| v == c)
                .filter(|&id| {
                    Some(id) != self.config.mask_token && Some(id) != self.config.pad_token
                })
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{what}: character {c:?} at position {} is not in {}'s vocabulary \"{}\"",
                        i + 1,
                        self.name,
                        self.data_chars()
                    ))
                })?;
            ids.push(id as u32);
        }
        if ids.len() > l || (ids.len() < l && self.config.pad_token.is_none()) {
            return Err(Error::Invalid(format!(
                "{what}: length {} but {} takes {} {l}",
                ids.len(),
                self.name,
                if self.config.pad_token.is_some() {
                    "at most"
                } else {
                    "exactly"
                }
            )));
        }
        ids.resize(l, self.config.pad_token.unwrap_or(0) as u32);
        Ok(ids)
    }

    /// The characters data may contain.
    pub fn data_chars(&self) -> String {
        self.vocab()
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                Some(*i) != self.config.mask_token && Some(*i) != self.config.pad_token
            })
            .map(|(_, c)| *c)
            .collect()
    }

    /// Ids as text; trailing pad tokens are dropped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let vocab = self.vocab();
        let mut end = ids.len();
        if let Some(p) = self.config.pad_token {
            while end > 0 && ids[end - 1] as usize == p {
                end -= 1;
            }
        }
        ids[..end]
            .iter()
            .map(|&i| vocab.get(i as usize).copied().unwrap_or('?'))
            .collect()
    }
}

/// A shipped sequence model, if `name` is one.
pub fn shipped_discrete(name: &str) -> Option<&'static Shipped> {
    find(name).filter(|m| m.family == Family::Sequence)
}

/// Build a discrete model from its `config.json`, `process.json` and weights.
pub fn build_discrete(
    gpu: &Gpu,
    name: &str,
    config: &str,
    config_file: &str,
    process: &str,
    process_file: &str,
    weights: Weights,
) -> Result<DiscreteModel> {
    use crate::models::seq_transformer::SeqTransformer;
    use crate::process::discrete::{Process, ProcessConfig};
    let cfg = SeqTransformer::parse_config(config, config_file)?;
    let pc: ProcessConfig = serde_json::from_str(process).map_err(|e| Error::Config {
        file: process_file.to_string(),
        detail: e.to_string(),
    })?;
    if cfg.vocab != pc.num_classes || cfg.out_classes != pc.num_classes || cfg.seq_len != pc.seq_len
    {
        return Err(Error::Config {
            file: config_file.to_string(),
            detail: format!(
                "the model (vocab {}, out_classes {}, seq_len {}) does not fit the process ({} classes, length {})",
                cfg.vocab, cfg.out_classes, cfg.seq_len, pc.num_classes, pc.seq_len
            ),
        });
    }
    for (what, tok) in [("pad_token", pc.pad_token), ("mask_token", pc.mask_token)] {
        if tok.is_some_and(|t| t >= pc.num_classes) {
            return Err(Error::Config {
                file: process_file.to_string(),
                detail: format!("{what} is not below num_classes = {}", pc.num_classes),
            });
        }
    }
    let process = Process::from_config(gpu, &pc, process_file)?;
    let denoiser = SeqTransformer::load(gpu, cfg, weights)?;
    Ok(DiscreteModel {
        name: name.to_string(),
        denoiser,
        process,
        config: pc,
    })
}

pub fn load_shipped_discrete(gpu: &Gpu, name: &str) -> Result<DiscreteModel> {
    let m = shipped_in(Family::Sequence, name)?;
    let w = Weights::from_bytes(m.weights, &format!("{name}/model.safetensors"))?;
    build_discrete(
        gpu,
        name,
        m.config,
        &format!("{name}/config.json"),
        m.process,
        &format!("{name}/process.json"),
        w,
    )
}

/// A discrete model folder: `config.json`, `process.json` and `model.safetensors`.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_dir_discrete(gpu: &Gpu, dir: &std::path::Path) -> Result<DiscreteModel> {
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read_to_string(&p).map_err(|e| Error::Config {
            file: p.display().to_string(),
            detail: e.to_string(),
        })
    };
    let config = read("config.json")?;
    let process = read("process.json")?;
    let w = Weights::from_file(&dir.join("model.safetensors"))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    build_discrete(
        gpu,
        &name,
        &config,
        &dir.join("config.json").display().to_string(),
        &process,
        &dir.join("process.json").display().to_string(),
        w,
    )
}
