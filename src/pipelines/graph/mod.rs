//! DiGress models: the graph transformer and its structural input features paired with the DiGress
//! process, loaded from a folder (`config.json`, `model.safetensors`, optionally `dataset.json`) or
//! the shipped zoo. [`run`] steps it; [`dataset`] reads its train / val / test graphs.

pub mod dataset;
pub mod elbo;
pub mod run;

use super::zoo::{self, Family, Shipped};
use crate::error::{Error, Result};
use crate::models::graph_features::{graph_features, X_FEATURES, Y_FEATURES};
use crate::models::graph_transformer::{DigressConfig, Dims, GraphOutput, GraphTransformer};
use crate::ops::graph::{onehot, NONE};
use crate::process::graph::{sample_node_counts, Digress, GraphBatch};
use crate::tensor::{Device, Tensor};
use crate::weights::Weights;

pub struct DigressModel {
    pub name: String,
    pub config: DigressConfig,
    pub net: GraphTransformer,
    pub process: Digress,
}

impl DigressModel {
    pub fn parse_config(json: &str, file: &str) -> Result<DigressConfig> {
        let c: DigressConfig = serde_json::from_str(json).map_err(|e| Error::Config {
            file: file.to_string(),
            detail: e.to_string(),
        })?;
        let bad = |d: String| Error::Config {
            file: file.to_string(),
            detail: d,
        };
        if c.architecture != "digress_graph_transformer" {
            return Err(bad(format!(
                "architecture is \"{}\", expected \"digress_graph_transformer\"",
                c.architecture
            )));
        }
        if c.noise_schedule != "cosine" || !["marginal", "uniform"].contains(&c.transition.as_str())
        {
            return Err(bad(format!(
                "noise_schedule \"{}\" / transition \"{}\": only cosine with marginal or uniform is supported",
                c.noise_schedule, c.transition
            )));
        }
        if c.extra_features != "all" {
            return Err(bad(format!(
                "extra_features \"{}\": only \"all\" is supported",
                c.extra_features
            )));
        }
        {
            use crate::weights::limits as lim;
            // n² edge pairs per graph: 1,024 nodes is already a million pairs per step.
            lim::size(file, "max_n_nodes", c.max_n_nodes, 1..=1024)?;
            lim::size(file, "n_layers", c.n_layers, 1..=lim::MAX_DEPTH)?;
            lim::size(
                file,
                "diffusion_steps",
                c.diffusion_steps,
                1..=lim::MAX_TRAIN_TIMESTEPS,
            )?;
            for (map, what) in [
                (&c.input_dims, "input_dims"),
                (&c.hidden_mlp_dims, "hidden_mlp_dims"),
                (&c.hidden_dims, "hidden_dims"),
                (&c.output_dims, "output_dims"),
            ] {
                for (k, &v) in map {
                    lim::size(file, &format!("{what}.{k}"), v, 0..=lim::MAX_WIDTH)?;
                }
            }
        }
        if c.node_count_hist.len() != c.max_n_nodes + 1 {
            return Err(bad(format!(
                "node_count_hist has {} entries, expected max_n_nodes + 1 = {}",
                c.node_count_hist.len(),
                c.max_n_nodes + 1
            )));
        }
        Ok(c)
    }

    pub fn load(
        device: &Device,
        name: &str,
        config: DigressConfig,
        weights: Weights,
        file: &str,
    ) -> Result<DigressModel> {
        let dims = Dims::from_maps(
            config.n_layers,
            &config.input_dims,
            &config.hidden_mlp_dims,
            &config.hidden_dims,
            &config.output_dims,
            file,
        )?;
        let (dx, de) = (config.x_marginals.len(), config.e_marginals.len());
        if dims.x_out != dx
            || dims.e_out != de
            || dims.x_in != dx + X_FEATURES
            || dims.y_in != Y_FEATURES + 1
        {
            return Err(Error::Config {
                file: file.to_string(),
                detail: format!(
                    "dims {dims:?} do not fit {dx} node and {de} edge classes with the 'all' extra features \
                     (X_in = classes + {X_FEATURES}, y_in = {})",
                    Y_FEATURES + 1
                ),
            });
        }
        let (xl, el) = if config.transition == "uniform" {
            (vec![1.0 / dx as f32; dx], vec![1.0 / de as f32; de])
        } else {
            (config.x_marginals.clone(), config.e_marginals.clone())
        };
        let process = Digress::new(device, config.diffusion_steps, &xl, &el)?;
        let net = GraphTransformer::load(device, dims, weights)?;
        Ok(DigressModel {
            name: name.to_string(),
            config,
            net,
            process,
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir(device: &Device, dir: &std::path::Path) -> Result<DigressModel> {
        let cfg_path = dir.join("config.json");
        let json = std::fs::read_to_string(&cfg_path)?;
        let file = cfg_path.display().to_string();
        let config = Self::parse_config(&json, &file)?;
        let weights = Weights::from_file(&dir.join("model.safetensors"))?;
        let name = super::folder_name(dir);
        Self::load(device, &name, config, weights, &file)
    }

    /// The largest graph this model samples or reads.
    pub fn max_nodes(&self) -> usize {
        self.config.max_n_nodes
    }

    /// The network's logits at z_t (t in 1..=T): structural features on the host from `host_e` (the
    /// batch's edge ids, `[B·n·n]`), the rest on the device.
    pub fn predict(&self, z: &GraphBatch, host_e: &[u32], t: usize) -> Result<GraphOutput> {
        let (b, n) = (z.len(), z.n());
        if host_e.len() != b * n * n {
            return Err(Error::shape(
                "DigressModel::predict",
                "host edge ids do not match the batch",
            ));
        }
        let device = z.x.device();
        let mut xf = Vec::with_capacity(b * n * X_FEATURES);
        let mut yf = Vec::with_capacity(b * (Y_FEATURES + 1));
        let tn = t as f32 / self.process.steps() as f32;
        for g in 0..b {
            let c = z.counts[g];
            let mut adj = vec![0u8; c * c];
            for i in 0..c {
                for j in 0..c {
                    let v = host_e[(g * n + i) * n + j];
                    adj[i * c + j] = u8::from(v != 0 && v != NONE);
                }
            }
            let (x, y) = graph_features(&adj, c, n, self.config.max_n_nodes);
            xf.extend(x);
            yf.extend(y);
            yf.push(tn);
        }
        // Uploads first: a write after recorded work would split the step into two submissions.
        let extra = Tensor::from_f32(device, &[b, n, X_FEATURES], &xf)?;
        let y_in = Tensor::from_f32(device, &[b, Y_FEATURES + 1], &yf)?;
        let x_in = onehot(&z.x, self.process.dx, Some(&extra))?;
        let e_in = onehot(&z.e, self.process.de, None)?;
        self.net.forward(&x_in, &e_in, &y_in, &z.counts)
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.net.device()
    }

    pub fn sample_counts(&self, count: usize, seed: u64) -> Result<Vec<usize>> {
        sample_node_counts(&self.config.node_count_hist, count, seed)
    }
}

/// Whether `name` is a shipped graph model.
pub fn is_graph_model(name: &str) -> bool {
    zoo::find(name).is_some_and(|m| m.family == Family::Graph)
}

/// A shipped graph model.
pub fn shipped_graph(name: &str) -> Result<&'static Shipped> {
    zoo::shipped_in(Family::Graph, name)
}

pub fn load_graph_shipped(device: &Device, name: &str) -> Result<DigressModel> {
    let m = shipped_graph(name)?;
    let file = format!("{name}/config.json");
    let config = DigressModel::parse_config(m.config, &file)?;
    let w = Weights::from_bytes(&m.weights()?, &format!("{name}/model.safetensors"))?;
    DigressModel::load(device, name, config, w, &file)
}
