//! A graph model's train / val / test graphs (`dataset.json`): the forward explorer's examples and
//! the reference sets of the metrics.

use super::shipped_graph;
use crate::error::{Error, Result};
use crate::process::graph::Graph;

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
    let file = format!("{name}/dataset.json");
    let data = m.data()?;
    let json = std::str::from_utf8(&data).map_err(|e| Error::Config {
        file: file.clone(),
        detail: e.to_string(),
    })?;
    parse_dataset(json, &file)
}
