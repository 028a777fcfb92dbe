//! The shipped DiGress graph models (embedded like the Gaussian zoo) and their datasets.

use super::digress::{DigressModel, Graph};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::weights::Weights;

pub struct ShippedGraph {
    pub name: &'static str,
    pub summary: &'static str,
    pub config: &'static str,
    pub weights: &'static [u8],
    /// `{"train": [[n, [[i, j], ..]], ..], "val": .., "test": ..}` (the reference sets for metrics).
    pub dataset: &'static str,
    pub card: &'static str,
}

pub const GRAPH_MODELS: &[ShippedGraph] = &[
    ShippedGraph {
        name: "planar-digress",
        summary:
            "DiGress on 16-node planar graphs (Delaunay triangulations, SPECTRE recipe scaled down)",
        config: include_str!("../../assets/planar-digress/config.json"),
        weights: include_bytes!("../../assets/planar-digress/model.safetensors"),
        dataset: include_str!("../../assets/planar-digress/dataset.json"),
        card: include_str!("../../assets/planar-digress/card.json"),
    },
    ShippedGraph {
        name: "sbm-digress",
        summary: "DiGress on SBM graphs (2-3 blocks of 6-10 nodes), barely trained (52 steps)",
        config: include_str!("../../assets/sbm-digress/config.json"),
        weights: include_bytes!("../../assets/sbm-digress/model.safetensors"),
        dataset: include_str!("../../assets/sbm-digress/dataset.json"),
        card: include_str!("../../assets/sbm-digress/card.json"),
    },
];

pub fn is_graph_model(name: &str) -> bool {
    GRAPH_MODELS.iter().any(|m| m.name == name)
}

pub fn shipped_graph(name: &str) -> Result<&'static ShippedGraph> {
    GRAPH_MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = GRAPH_MODELS.iter().map(|m| m.name).collect();
        Error::Invalid(format!(
            "no shipped graph model \"{name}\"; graph models: {}",
            names.join(", ")
        ))
    })
}

pub fn load_graph_shipped(gpu: &Gpu, name: &str) -> Result<DigressModel> {
    let m = shipped_graph(name)?;
    let file = format!("{name}/config.json");
    let config = DigressModel::parse_config(m.config, &file)?;
    let w = Weights::from_bytes(m.weights, &format!("{name}/model.safetensors"))?;
    DigressModel::load(gpu, name, config, w, &file)
}

/// A model's train / val / test graphs.
pub struct GraphDataset {
    pub train: Vec<Graph>,
    pub val: Vec<Graph>,
    pub test: Vec<Graph>,
}

pub fn parse_dataset(json: &str, file: &str) -> Result<GraphDataset> {
    #[derive(serde::Deserialize)]
    struct Raw {
        train: Vec<(usize, Vec<(usize, usize)>)>,
        val: Vec<(usize, Vec<(usize, usize)>)>,
        test: Vec<(usize, Vec<(usize, usize)>)>,
    }
    let r: Raw = serde_json::from_str(json).map_err(|e| Error::Config {
        file: file.to_string(),
        detail: e.to_string(),
    })?;
    let conv = |v: Vec<(usize, Vec<(usize, usize)>)>| -> Vec<Graph> {
        v.into_iter()
            .map(|(n, edges)| Graph {
                num_nodes: n,
                node_classes: vec![0; n],
                edges: edges.into_iter().map(|(i, j)| (i, j, 1)).collect(),
            })
            .collect()
    };
    Ok(GraphDataset {
        train: conv(r.train),
        val: conv(r.val),
        test: conv(r.test),
    })
}

pub fn shipped_dataset(name: &str) -> Result<GraphDataset> {
    let m = shipped_graph(name)?;
    parse_dataset(m.dataset, &format!("{name}/dataset.json"))
}
