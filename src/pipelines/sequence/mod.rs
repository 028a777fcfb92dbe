//! Sequence models (D3PM and multinomial diffusion over tokens): the sequence transformer paired with
//! its `process.json` (vocabulary, length, special tokens), loaded from the zoo or a folder; text in
//! and out. [`run`] steps it.

pub mod run;
pub mod variation;

use super::zoo::{find, shipped_in, Family, Shipped};
use crate::error::{Error, Result};
use crate::models::seq_transformer::SeqTransformer;
use crate::process::discrete::{Process, ProcessConfig};
use crate::tensor::Device;
use crate::weights::Weights;

/// A loaded sequence model: the sequence transformer, its process and the process settings (vocab,
/// sequence length, special tokens).
pub struct SequenceModel {
    pub name: String,
    pub denoiser: SeqTransformer,
    pub process: Process,
    pub config: ProcessConfig,
}

impl SequenceModel {
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

    /// The class that pads sequences at their end, when the model's steps can hold it there
    /// ([`crate::process::discrete::Padding::Suffix`]: a D3PM process with a pad class).
    pub fn pad_suffix(&self) -> Option<u32> {
        match self.process {
            Process::D3pm(_) => self.config.pad_token.map(|p| p as u32),
            Process::Multinomial(_) => None,
        }
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
pub fn shipped(name: &str) -> Option<&'static Shipped> {
    find(name).filter(|m| m.family == Family::Sequence)
}

/// Build a discrete model from its `config.json`, `process.json` and weights.
pub fn build(
    device: &Device,
    name: &str,
    config: &str,
    config_file: &str,
    process: &str,
    process_file: &str,
    weights: Weights,
) -> Result<SequenceModel> {
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
    if pc.pad_token.is_some() && pc.pad_token == pc.mask_token {
        return Err(Error::Config {
            file: process_file.to_string(),
            detail: "pad_token and mask_token are one class".into(),
        });
    }
    let process = Process::from_config(device, &pc, process_file)?;
    let denoiser = SeqTransformer::load(device, cfg, weights)?;
    Ok(SequenceModel {
        name: name.to_string(),
        denoiser,
        process,
        config: pc,
    })
}

pub fn load_shipped(device: &Device, name: &str) -> Result<SequenceModel> {
    let m = shipped_in(Family::Sequence, name)?;
    let w = Weights::from_bytes(&m.weights()?, &format!("{name}/model.safetensors"))?;
    build(
        device,
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
pub fn load_dir(device: &Device, dir: &std::path::Path) -> Result<SequenceModel> {
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
    let name = super::folder_name(dir);
    build(
        device,
        &name,
        &config,
        &dir.join("config.json").display().to_string(),
        &process,
        &dir.join("process.json").display().to_string(),
        w,
    )
}
