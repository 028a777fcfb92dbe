//! The shipped models: one list, [`MODELS`], each entry tagged with the family that loads it
//! (`super::gaussian`, `super::sequence`, `super::graph`). Their texts (config, process settings,
//! card) are compiled in everywhere. Their weights and data are embedded in the native binary, so
//! the desktop works offline; the browser build leaves them out (a visitor should not download
//! seven models to see one) and the page fetches a model's folder — `models/<name>/`, the same files
//! `assets/<name>/` holds and `--model-dir` reads — when it is opened, handing the bytes over with
//! [`provide`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

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

/// One of a shipped model's binary files (`assets/<name>/<file>`): embedded in the native binary,
/// fetched on demand in the browser.
pub struct Payload {
    pub file: &'static str,
    embedded: Option<&'static [u8]>,
}

/// A payload of `assets/<dir>/<file>`: its bytes natively, only its name in the browser build.
macro_rules! payload {
    ($dir:literal, $file:literal) => {
        Payload {
            file: $file,
            #[cfg(not(target_arch = "wasm32"))]
            embedded: Some(include_bytes!(concat!("../../assets/", $dir, "/", $file))),
            #[cfg(target_arch = "wasm32")]
            embedded: None,
        }
    };
}

/// Files handed over at run time ([`provide`]): model name → file name → bytes.
static PROVIDED: Mutex<BTreeMap<String, BTreeMap<String, Vec<u8>>>> = Mutex::new(BTreeMap::new());

/// Hand over a shipped model's file fetched at run time (the browser build).
pub fn provide(model: &str, file: &str, bytes: Vec<u8>) {
    PROVIDED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(model.to_string())
        .or_default()
        .insert(file.to_string(), bytes);
}

/// A model shipped in `assets/`.
pub struct Shipped {
    pub name: &'static str,
    pub family: Family,
    pub summary: &'static str,
    pub config: &'static str,
    /// The process settings: `scheduler_config.json` (Gaussian) or `process.json` (sequence); empty
    /// for graphs, whose `config.json` holds them.
    pub process: &'static str,
    pub weights: Payload,
    /// Held-out data for the forward-process explorer and the metrics: `examples.safetensors`
    /// (Gaussian, sequence) or `dataset.json`, the train / val / test graphs (graph).
    pub data: Payload,
    pub card: &'static str,
    /// `thumbnail.png`: the picture of a finished run that the app's landing strip shows (made by
    /// `tools/make_thumbnails.sh` with the app itself).
    pub thumbnail: Payload,
}

/// Every shipped model, in gallery order within each family.
pub const MODELS: &[Shipped] = &[
    Shipped {
        name: "toy2d-mlp",
        family: Family::Gaussian,
        summary: "FiLM-MLP on six labelled 2-D shapes: watch particles flow (DDPM, 200 steps)",
        config: include_str!("../../assets/toy2d-mlp/config.json"),
        process: include_str!("../../assets/toy2d-mlp/scheduler_config.json"),
        weights: payload!("toy2d-mlp", "model.safetensors"),
        data: payload!("toy2d-mlp", "examples.safetensors"),
        card: include_str!("../../assets/toy2d-mlp/card.json"),
        thumbnail: payload!("toy2d-mlp", "thumbnail.png"),
    },
    Shipped {
        name: "mnist-unet",
        family: Family::Gaussian,
        summary: "class-conditional diffusers UNet2DModel on MNIST digits (1.3 M parameters, \
                  1000 steps; opens with 50 DDIM steps, guidance 3)",
        config: include_str!("../../assets/mnist-unet/config.json"),
        process: include_str!("../../assets/mnist-unet/scheduler_config.json"),
        weights: payload!("mnist-unet", "diffusion_pytorch_model.safetensors"),
        data: payload!("mnist-unet", "examples.safetensors"),
        card: include_str!("../../assets/mnist-unet/card.json"),
        thumbnail: payload!("mnist-unet", "thumbnail.png"),
    },
    Shipped {
        name: "emoji-unet",
        family: Family::Gaussian,
        summary: "class-conditional diffusers UNet2DModel on 32×32 colour emoji (Twemoji and Noto), \
                  9 categories (2.7 M parameters, 1000 steps; opens with 50 DDIM steps, guidance 3)",
        config: include_str!("../../assets/emoji-unet/config.json"),
        process: include_str!("../../assets/emoji-unet/scheduler_config.json"),
        weights: payload!("emoji-unet", "diffusion_pytorch_model.safetensors"),
        data: payload!("emoji-unet", "examples.safetensors"),
        card: include_str!("../../assets/emoji-unet/card.json"),
        thumbnail: payload!("emoji-unet", "thumbnail.png"),
    },
    Shipped {
        name: "words-absorb",
        family: Family::Sequence,
        summary: "D3PM (absorbing/mask noise, moco) over English words of 2–12 letters (100 steps)",
        config: include_str!("../../assets/words-absorb/config.json"),
        process: include_str!("../../assets/words-absorb/process.json"),
        weights: payload!("words-absorb", "model.safetensors"),
        data: payload!("words-absorb", "examples.safetensors"),
        card: include_str!("../../assets/words-absorb/card.json"),
        thumbnail: payload!("words-absorb", "thumbnail.png"),
    },
    Shipped {
        name: "words-uniform",
        family: Family::Sequence,
        summary: "D3PM (uniform noise, moco) over English words of 2–12 letters (100 steps)",
        config: include_str!("../../assets/words-uniform/config.json"),
        process: include_str!("../../assets/words-uniform/process.json"),
        weights: payload!("words-uniform", "model.safetensors"),
        data: payload!("words-uniform", "examples.safetensors"),
        card: include_str!("../../assets/words-uniform/card.json"),
        thumbnail: payload!("words-uniform", "thumbnail.png"),
    },
    Shipped {
        name: "promoter-multinomial",
        family: Family::Sequence,
        summary: "multinomial diffusion (Hoogeboom) over 50-nt ACGT promoter-like sequences (synthetic σ70 \
                  boxes TTGACA / TATAAT, 100 steps)",
        config: include_str!("../../assets/promoter-multinomial/config.json"),
        process: include_str!("../../assets/promoter-multinomial/process.json"),
        weights: payload!("promoter-multinomial", "model.safetensors"),
        data: payload!("promoter-multinomial", "examples.safetensors"),
        card: include_str!("../../assets/promoter-multinomial/card.json"),
        thumbnail: payload!("promoter-multinomial", "thumbnail.png"),
    },
    Shipped {
        name: "planar-digress",
        family: Family::Graph,
        summary:
            "DiGress on 16-node planar graphs (Delaunay triangulations, SPECTRE recipe scaled down)",
        config: include_str!("../../assets/planar-digress/config.json"),
        process: "",
        weights: payload!("planar-digress", "model.safetensors"),
        data: payload!("planar-digress", "dataset.json"),
        card: include_str!("../../assets/planar-digress/card.json"),
        thumbnail: payload!("planar-digress", "thumbnail.png"),
    },
    Shipped {
        name: "sbm-digress",
        family: Family::Graph,
        summary: "DiGress on SBM graphs (2-3 blocks of 6-10 nodes)",
        config: include_str!("../../assets/sbm-digress/config.json"),
        process: "",
        weights: payload!("sbm-digress", "model.safetensors"),
        data: payload!("sbm-digress", "dataset.json"),
        card: include_str!("../../assets/sbm-digress/card.json"),
        thumbnail: payload!("sbm-digress", "thumbnail.png"),
    },
];

impl Shipped {
    /// The weights (safetensors).
    pub fn weights(&self) -> Result<Cow<'static, [u8]>> {
        self.bytes(&self.weights)
    }

    /// The held-out data (see [`Shipped::data`]'s field).
    pub fn data(&self) -> Result<Cow<'static, [u8]>> {
        self.bytes(&self.data)
    }

    /// The files that must be fetched before this model opens (none natively).
    pub fn missing(&self) -> Vec<&'static str> {
        [&self.weights, &self.data]
            .into_iter()
            .filter(|p| p.embedded.is_none() && self.provided(p.file).is_none())
            .map(|p| p.file)
            .collect()
    }

    /// Every binary file of the model, embedded or not (what a web build must serve beside the
    /// texts in `models/<name>/`).
    pub fn files(&self) -> [&'static str; 2] {
        [self.weights.file, self.data.file]
    }

    /// The thumbnail's PNG bytes: embedded natively; in the browser once fetched (the landing
    /// strip fetches it on its own, not with the model).
    pub fn thumbnail(&self) -> Result<Cow<'static, [u8]>> {
        self.bytes(&self.thumbnail)
    }

    fn provided(&self, file: &str) -> Option<Vec<u8>> {
        let map = PROVIDED.lock().unwrap_or_else(|p| p.into_inner());
        map.get(self.name).and_then(|m| m.get(file)).cloned()
    }

    fn bytes(&self, p: &Payload) -> Result<Cow<'static, [u8]>> {
        if let Some(b) = p.embedded {
            return Ok(Cow::Borrowed(b));
        }
        self.provided(p.file).map(Cow::Owned).ok_or_else(|| {
            Error::NotReady(format!("{}/{} is not downloaded yet", self.name, p.file))
        })
    }
}

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
