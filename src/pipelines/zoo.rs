//! The shipped models, embedded in the binary (and the web build) so everything works offline: one
//! list, [`MODELS`], each entry tagged with the family that loads it (`super::gaussian`,
//! `super::sequence`, `super::graph`).

use crate::error::{Error, Result};

/// What a shipped model loads into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// A [`super::gaussian::GaussianModel`]: DDPM/DDIM over images or points.
    Gaussian,
    /// A [`super::sequence::SequenceModel`]: D3PM or multinomial diffusion over token sequences.
    Sequence,
    /// A [`super::graph::DigressModel`]: DiGress over graphs.
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
    find(name)
        .filter(|m| m.family == f)
        .ok_or_else(|| Error::UnknownModel {
            name: name.to_string(),
            family: f.adjective(),
            shipped: family(f).map(|m| m.name.to_string()).collect(),
        })
}

/// The model the app opens with.
pub const DEFAULT_MODEL: &str = "toy2d-mlp";
