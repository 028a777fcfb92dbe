//! DiGress (Vignac et al., ICLR 2023; cvignac/DiGress branch fixed_bug): discrete diffusion over node
//! and edge classes of dense, padded graph batches (ANCHOR_MATH §2).
//!
//! - Schedule: `cosine_beta_schedule_discrete(T)`, T + 1 betas (β_T = 1), `ᾱ = exp(cumsum(log(1 −
//!   clamp(β, 0, 0.9999))))` in f32 like `PredefinedNoiseScheduleDiscrete`.
//! - Transitions: `Q_t = β_t·1mᵀ + (1 − β_t) I`, `Q̄_t = ᾱ_t I + (1 − ᾱ_t) 1mᵀ`, with m the training
//!   marginals (`MarginalUniformTransition`) or uniform (`DiscreteUniformTransition`).
//! - State: u32 class ids, node ids `[B, n]` and edge ids `[B, n, n]`, where [`NONE`] is DiGress's
//!   all-zero one-hot (padding; the diagonal of the prior draw z_T). After any draw the diagonal of
//!   valid nodes is class 0, as DiGress's one-hot of `sample_discrete_features`' output.
//! - Reverse step s = t − 1: the exact posterior mixture `Σ_x0 p̂(x0) q(x_s | x_t, x0)` (dividing by
//!   q(x_t | x0), 0 → 1e-6; all-zero rows uniform), then one categorical draw per node and per ordered
//!   pair of which only the strict upper triangle is kept and mirrored.
//!
//! Draws are Gumbel-max over uniforms (Philox, or injected for parity): `argmax(log p − log(−log u))`,
//! u clipped below at 1e-6. Philox keys: stream = the reverse step's s (the forward process and the
//! prior use their own substreams); node draws use the substream itself, edge draws that substream +
//! [`EDGE_SUBSTREAM`].

use crate::error::{Error, Result};
use crate::ops::graph::{self, NONE};
use crate::ops::sample::{sample_probs, Categorical, Noise};
use crate::ops::transition::{self, Coef, DigressCoefs, Prior, X0};
use crate::rng::{Philox, Substream};
use crate::tensor::{DType, Device, Tensor};

/// Added to a substream for the edge draws, so node and edge draws of one step are independent.
pub const EDGE_SUBSTREAM: u32 = 0x100;

/// DiGress's discrete cosine schedule: `betas` and `alphas_bar`, each of length T + 1.
#[derive(Clone, Debug)]
pub struct DigressSchedule {
    pub steps: usize,
    pub betas: Vec<f32>,
    pub alphas_bar: Vec<f32>,
}

impl DigressSchedule {
    /// `cosine_beta_schedule_discrete(T, s = 0.008)` (float64, `linspace(0, T + 2, T + 2)`), stored as
    /// f32, then ᾱ in f32 as `exp(cumsum(log(1 − clamp(β, 0, 0.9999))))`.
    pub fn cosine(steps: usize) -> Result<DigressSchedule> {
        if steps == 0 || steps > 100_000 {
            return Err(Error::Invalid(format!(
                "DiGress needs 1 ≤ T ≤ 100000 diffusion steps, got {steps}"
            )));
        }
        let n = steps + 2;
        let s = 0.008f64;
        let ac: Vec<f64> = (0..n)
            .map(|i| {
                // np.linspace(0, n, n): n points spaced n / (n − 1).
                let x = i as f64 * (n as f64 / (n - 1) as f64);
                let v = (0.5 * std::f64::consts::PI * ((x / n as f64) + s) / (1.0 + s)).cos();
                v * v
            })
            .collect();
        let ac: Vec<f64> = ac.iter().map(|v| v / ac[0]).collect();
        let betas: Vec<f32> = (0..n - 1)
            .map(|i| (1.0 - ac[i + 1] / ac[i]) as f32)
            .collect();
        let mut cum = 0f32;
        let alphas_bar = betas
            .iter()
            .map(|&b| {
                let a = 1.0 - b.clamp(0.0, 0.9999);
                cum += a.ln();
                cum.exp()
            })
            .collect();
        Ok(DigressSchedule {
            steps,
            betas,
            alphas_bar,
        })
    }

    /// The coefficients of the reverse step s → with t = s + 1 (s in 0..T).
    pub fn step_coefs(&self, s: usize) -> Result<DigressCoefs> {
        if s >= self.steps {
            return Err(Error::Invalid(format!(
                "reverse step s = {s} is not below T = {}",
                self.steps
            )));
        }
        Ok(DigressCoefs {
            beta_t: self.betas[s + 1],
            alpha_bar_s: self.alphas_bar[s],
            alpha_bar_t: self.alphas_bar[s + 1],
        })
    }
}

/// A dense batch of graphs as class ids.
#[derive(Clone)]
pub struct GraphBatch {
    /// Node count of each graph (≤ n).
    pub counts: Vec<usize>,
    /// u32 `[B]` copy of `counts` on the device.
    pub counts_t: Tensor,
    /// u32 `[B, n]` node classes ([`NONE`] on padding).
    pub x: Tensor,
    /// u32 `[B, n, n]` edge classes, symmetric ([`NONE`] on padding).
    pub e: Tensor,
}

impl GraphBatch {
    pub fn n(&self) -> usize {
        self.x.dim(1)
    }
    pub fn len(&self) -> usize {
        self.counts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// From host ids: `x` `[B·n]`, `e` `[B·n·n]`, checked (classes below `dx`/`de` or NONE where
    /// DiGress has all-zero rows, symmetric edges, padding NONE).
    pub fn from_host(
        device: &Device,
        counts: &[usize],
        n: usize,
        x: &[u32],
        e: &[u32],
        dx: usize,
        de: usize,
    ) -> Result<GraphBatch> {
        let b = counts.len();
        if x.len() != b * n || e.len() != b * n * n {
            return Err(Error::shape(
                "GraphBatch::from_host",
                format!(
                    "{} node and {} edge ids for {b} graphs of {n} nodes",
                    x.len(),
                    e.len()
                ),
            ));
        }
        for (g, &c) in counts.iter().enumerate() {
            if c > n {
                return Err(Error::Invalid(format!(
                    "graph {g} has {c} nodes, more than {n}"
                )));
            }
            for i in 0..n {
                let xi = x[g * n + i];
                if xi != NONE && (i >= c || xi as usize >= dx) {
                    return Err(Error::Invalid(format!(
                        "graph {g}: node {i} has class {xi} (classes are below {dx}; padding is NONE)"
                    )));
                }
                for j in 0..n {
                    let v = e[(g * n + i) * n + j];
                    let valid = i < c && j < c;
                    if v != NONE && (!valid || v as usize >= de) {
                        return Err(Error::Invalid(format!(
                            "graph {g}: pair ({i}, {j}) has class {v} (classes are below {de}; padding is NONE)"
                        )));
                    }
                    if v != e[(g * n + j) * n + i] {
                        return Err(Error::Invalid(format!(
                            "graph {g}: edge ({i}, {j}) is not symmetric"
                        )));
                    }
                }
            }
        }
        Ok(GraphBatch {
            counts: counts.to_vec(),
            counts_t: counts_tensor(device, counts)?,
            x: Tensor::from_u32(device, &[b, n], x)?,
            e: Tensor::from_u32(device, &[b, n, n], e)?,
        })
    }
}

fn counts_tensor(device: &Device, counts: &[usize]) -> Result<Tensor> {
    let c: Vec<u32> = counts.iter().map(|&c| c as u32).collect();
    Tensor::from_u32(device, &[counts.len()], &c)
}

/// Where a step's uniforms come from.
#[derive(Clone, Copy, Debug)]
pub enum GraphNoise<'a> {
    /// Philox with this seed (the stream and substream are the caller's step and purpose).
    Philox(u64),
    /// Injected uniforms: nodes `[B, n, dx]`, edges `[B, n, n, de]` (for parity with a reference).
    Injected { x: &'a Tensor, e: &'a Tensor },
}

/// The DiGress process over `dx` node and `de` edge classes.
pub struct Digress {
    pub schedule: DigressSchedule,
    pub dx: usize,
    pub de: usize,
    /// The limit distributions (marginals, or uniform), host and device.
    pub x_limit: Vec<f32>,
    pub e_limit: Vec<f32>,
    x_limit_t: Tensor,
    e_limit_t: Tensor,
}

fn check_dist(what: &str, p: &[f32]) -> Result<()> {
    let s: f32 = p.iter().sum();
    if p.is_empty() || p.iter().any(|v| !v.is_finite() || *v < 0.0) || (s - 1.0).abs() > 1e-4 {
        return Err(Error::Invalid(format!(
            "{what} {p:?} must be a non-empty probability vector summing to 1"
        )));
    }
    Ok(())
}

impl Digress {
    /// `MarginalUniformTransition` with these marginals (pass uniform ones for
    /// `DiscreteUniformTransition`).
    pub fn new(device: &Device, steps: usize, x_limit: &[f32], e_limit: &[f32]) -> Result<Digress> {
        check_dist("node marginals", x_limit)?;
        check_dist("edge marginals", e_limit)?;
        Ok(Digress {
            schedule: DigressSchedule::cosine(steps)?,
            dx: x_limit.len(),
            de: e_limit.len(),
            x_limit: x_limit.to_vec(),
            e_limit: e_limit.to_vec(),
            x_limit_t: Tensor::from_f32(device, &[x_limit.len()], x_limit)?,
            e_limit_t: Tensor::from_f32(device, &[e_limit.len()], e_limit)?,
        })
    }

    pub fn steps(&self) -> usize {
        self.schedule.steps
    }

    #[allow(clippy::too_many_arguments)]
    fn draw(
        &self,
        px: &Tensor,
        pe: &Tensor,
        counts: &[usize],
        counts_t: &Tensor,
        noise: GraphNoise<'_>,
        stream: u32,
        sub: Substream,
        diag_none: bool,
    ) -> Result<GraphBatch> {
        let (xs, es) = match noise {
            GraphNoise::Philox(seed) => {
                let kx = Philox::new(seed, stream, sub);
                let ke = Philox {
                    substream: kx.substream + EDGE_SUBSTREAM,
                    ..kx
                };
                (
                    sample_probs(px, &Categorical::new(Noise::Philox(kx)))?,
                    sample_probs(pe, &Categorical::new(Noise::Philox(ke)))?,
                )
            }
            GraphNoise::Injected { x, e } => {
                if x.shape() != px.shape() || e.shape() != pe.shape() {
                    return Err(Error::shape(
                        "Digress::draw",
                        format!(
                            "uniforms {:?} / {:?} must be {:?} / {:?}",
                            x.shape(),
                            e.shape(),
                            px.shape(),
                            pe.shape()
                        ),
                    ));
                }
                (
                    sample_probs(px, &Categorical::new(Noise::Injected(x)))?,
                    sample_probs(pe, &Categorical::new(Noise::Injected(e)))?,
                )
            }
        };
        let (x, e) = graph::finalize(&xs, &es, counts_t, diag_none)?;
        Ok(GraphBatch {
            counts: counts.to_vec(),
            counts_t: counts_t.clone(),
            x,
            e,
        })
    }

    /// `sample_discrete_feature_noise`: z_T for graphs of these node counts, padded to `n`.
    pub fn prior(
        &self,
        device: &Device,
        counts: &[usize],
        n: usize,
        noise: GraphNoise<'_>,
    ) -> Result<GraphBatch> {
        if counts.is_empty() || counts.iter().any(|&c| c > n || c == 0) {
            return Err(Error::Invalid(format!(
                "node counts {counts:?} must be between 1 and {n}"
            )));
        }
        let b = counts.len();
        let zeros_x = Tensor::zeros(device, &[b, n], DType::U32)?;
        let zeros_e = Tensor::zeros(device, &[b, n, n], DType::U32)?;
        // q(x | x0) with ᾱ = 0 is the limit distribution in every row.
        let px = transition::forward_ids(
            &zeros_x,
            Coef::Shared(0.0),
            Prior::Marginal(&self.x_limit_t),
            self.dx,
        )?;
        let pe = transition::forward_ids(
            &zeros_e,
            Coef::Shared(0.0),
            Prior::Marginal(&self.e_limit_t),
            self.de,
        )?;
        let ct = counts_tensor(device, counts)?;
        self.draw(&px, &pe, counts, &ct, noise, 0, Substream::Init, true)
    }

    /// `apply_noise` at integer times `t[b]` (1..=T; 0 is allowed too): z_t ~ q(z_t | z_0).
    pub fn apply_noise(
        &self,
        clean: &GraphBatch,
        t: &[usize],
        noise: GraphNoise<'_>,
    ) -> Result<GraphBatch> {
        let b = clean.len();
        if t.len() != b || t.iter().any(|&t| t > self.steps()) {
            return Err(Error::Invalid(format!(
                "apply_noise needs {b} times in 0..={}, got {t:?}",
                self.steps()
            )));
        }
        let device = clean.x.device();
        let ab: Vec<f32> = t.iter().map(|&t| self.schedule.alphas_bar[t]).collect();
        let ab = Tensor::from_f32(device, &[b], &ab)?;
        let px = transition::forward_ids(
            &clean.x,
            Coef::PerBatch(&ab),
            Prior::Marginal(&self.x_limit_t),
            self.dx,
        )?;
        let pe = transition::forward_ids(
            &clean.e,
            Coef::PerBatch(&ab),
            Prior::Marginal(&self.e_limit_t),
            self.de,
        )?;
        let stream = t.first().copied().unwrap_or(0) as u32;
        self.draw(
            &px,
            &pe,
            &clean.counts,
            &clean.counts_t,
            noise,
            stream,
            Substream::Forward,
            false,
        )
    }

    /// p(z_s | z_t) for s = t − 1 from the network's logits (`x` `[B, n, dx]`, `e` `[B, n, n, de]`):
    /// (node probabilities, edge probabilities), each row normalised.
    pub fn step_probs(
        &self,
        logits_x: &Tensor,
        logits_e: &Tensor,
        z_t: &GraphBatch,
        s: usize,
    ) -> Result<(Tensor, Tensor)> {
        self.step_probs_from(X0::Logits(logits_x), X0::Logits(logits_e), z_t, s)
    }

    /// [`Self::step_probs`] from any x0 prediction: the network's logits, or the clean graph's ids
    /// (the true posterior q(z_s | z_t, z_0), which the ELBO's step term compares with).
    pub fn step_probs_from(
        &self,
        x0: X0<'_>,
        e0: X0<'_>,
        z_t: &GraphBatch,
        s: usize,
    ) -> Result<(Tensor, Tensor)> {
        let c = self.schedule.step_coefs(s)?;
        let px = transition::digress_step_probs(x0, &z_t.x, c, Prior::Marginal(&self.x_limit_t))?;
        let pe = transition::digress_step_probs(e0, &z_t.e, c, Prior::Marginal(&self.e_limit_t))?;
        Ok((px, pe))
    }

    /// One reverse step (`sample_p_zs_given_zt`): z_s from the logits at z_t.
    pub fn step(
        &self,
        logits_x: &Tensor,
        logits_e: &Tensor,
        z_t: &GraphBatch,
        s: usize,
        noise: GraphNoise<'_>,
    ) -> Result<(GraphBatch, Tensor, Tensor)> {
        let (px, pe) = self.step_probs(logits_x, logits_e, z_t, s)?;
        let z = self.draw(
            &px,
            &pe,
            &z_t.counts,
            &z_t.counts_t,
            noise,
            s as u32,
            Substream::StepNoise,
            false,
        )?;
        Ok((z, px, pe))
    }
}

/// DiGress's `DistributionNodes`: node counts drawn from a histogram `p[n]`, by inverse CDF on Philox
/// uniforms (key: seed, stream 0, substream Init + 0x200).
pub fn sample_node_counts(hist: &[f64], count: usize, seed: u64) -> Result<Vec<usize>> {
    let total: f64 = hist.iter().sum();
    if hist.iter().any(|p| !p.is_finite() || *p < 0.0)
        || total <= 0.0
        || hist.first().is_some_and(|&p| p > 0.0)
    {
        return Err(Error::Invalid(
            "the node-count histogram must be non-negative, with mass on some n ≥ 1 and none on 0"
                .into(),
        ));
    }
    let key = Philox {
        seed,
        stream: 0,
        substream: Substream::Init as u32 + 0x200,
    };
    Ok((0..count)
        .map(|i| {
            let u = key.uniform(i as u32) as f64 * total;
            let mut acc = 0.0;
            for (n, &p) in hist.iter().enumerate() {
                acc += p;
                if u < acc {
                    return n;
                }
            }
            hist.iter().rposition(|&p| p > 0.0).unwrap_or(1)
        })
        .collect())
}

/// One finished graph: node classes and the edges (i < j) with their class (≥ 1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Graph {
    pub num_nodes: usize,
    pub node_classes: Vec<u32>,
    pub edges: Vec<(usize, usize, u32)>,
}

/// The graphs of a batch from host ids.
pub fn graphs_from_ids(counts: &[usize], n: usize, x: &[u32], e: &[u32]) -> Vec<Graph> {
    counts
        .iter()
        .enumerate()
        .map(|(g, &c)| {
            let mut edges = Vec::new();
            for i in 0..c {
                for j in i + 1..c {
                    let v = e[(g * n + i) * n + j];
                    if v != 0 && v != NONE {
                        edges.push((i, j, v));
                    }
                }
            }
            Graph {
                num_nodes: c,
                node_classes: (0..c).map(|i| x[g * n + i]).collect(),
                edges,
            }
        })
        .collect()
}

/// Checks graphs read from a user's file against a model: node counts in 1..=`max_nodes`, node
/// classes below `dx`, edges between distinct existing nodes with a class in 1..`de`, each unordered
/// pair at most once (a pair listed in both orders with different classes is an asymmetric graph).
pub fn validate_graphs(graphs: &[Graph], dx: usize, de: usize, max_nodes: usize) -> Result<()> {
    for (g, gr) in graphs.iter().enumerate() {
        let bad = |detail: String| Error::Data {
            what: format!("graph {g}"),
            detail,
        };
        let n = gr.num_nodes;
        if n == 0 || n > max_nodes {
            return Err(bad(format!(
                "{n} nodes; this model supports 1 to {max_nodes}"
            )));
        }
        if gr.node_classes.len() != n {
            return Err(bad(format!(
                "{} node classes for {n} nodes",
                gr.node_classes.len()
            )));
        }
        if let Some(c) = gr.node_classes.iter().find(|&&c| c as usize >= dx) {
            return Err(bad(format!(
                "node class {c} is out of range (the model has {dx} node classes)"
            )));
        }
        let mut seen = std::collections::HashMap::new();
        for &(i, j, c) in &gr.edges {
            if i >= n || j >= n {
                return Err(bad(format!("edge ({i}, {j}) names a node outside 0..{n}")));
            }
            if i == j {
                return Err(bad(format!(
                    "self-loop at node {i} (DiGress graphs have none)"
                )));
            }
            if c == 0 || c as usize >= de {
                return Err(bad(format!(
                "edge ({i}, {j}) has class {c}, out of range: edge classes are 1 to {} (0 means no edge)",
                    de - 1
                )));
            }
            let key = (i.min(j), i.max(j));
            if let Some(&prev) = seen.get(&key) {
                return Err(bad(if prev != c {
                    format!("edge ({i}, {j}) is asymmetric (classes {prev} and {c})")
                } else {
                    format!("edge ({i}, {j}) is listed twice")
                }));
            }
            seen.insert(key, c);
        }
    }
    Ok(())
}
