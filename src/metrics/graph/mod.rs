//! DiGress's graph-generation metrics (`src/analysis/spectre_utils.py`, ANCHOR_MATH §2.9), on the
//! CPU: degree, clustering, 4-node orbit and spectral MMD² against reference graphs, and V.U.N.
//! (valid, unique, novel). Graphs are simple and undirected with at most 64 nodes (bitset rows).
//!
//! Our own code, checked against networkx and a brute-force Python reference
//! (tools/fixtures_graph_eval.py). Where DiGress calls tools we do not have, we say what we do instead:
//! - 4-node orbits: ORCA's 15 node orbits by enumerating every connected induced 3- and 4-node
//!   subgraph (exact; fine for n ≤ 64).
//! - planarity: Demoucron–Malgrange–Pertuiset on each biconnected component (exact).
//! - isomorphism: Weisfeiler–Lehman colours as a pre-check, then VF2 (petgraph) matching only nodes
//!   of equal colour (exact).
//! - SBM validity: graph-tool's blockmodel fit is replaced by a documented approximation, see
//!   [`SbmSpec`].
//!
//! Input arrives as [`Adj`], built by [`Adj::from_edges`], which is where user data is checked:
//! past that point every graph is simple with at most [`MAX_EVAL_NODES`] nodes, and no metric fails.

mod descriptors;
mod evaluate;
mod isomorphism;
mod mmd;
mod planarity;
mod sbm;
mod vun;

pub use descriptors::{
    clustering, clustering_histogram, degree_histogram, histogram,
    normalized_laplacian_eigenvalues, orbit_counts, orbit_descriptor, spectral_pmf,
};
pub use evaluate::{evaluate, CompanionVerdict, GraphEval};
pub use isomorphism::{is_isomorphic, wl_colours, wl_key};
pub use mmd::{gaussian_tv, mmd2, mmds, Mmds};
pub use planarity::is_planar;
pub use sbm::{chi2_sf, fit_sbm, is_sbm, is_sbm_digress_strict, SbmSpec, SBM_ALPHA, SBM_RECIPE};
pub use vun::{vun, Validity, Vun};

/// The largest graph the metrics take (one u64 adjacency row per node).
pub const MAX_EVAL_NODES: usize = 64;

/// Why a graph or a set of graphs cannot be evaluated. All but the last are bad input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphEvalError {
    #[error("graph metrics take at most {max} nodes, got {nodes}")]
    TooManyNodes { nodes: usize, max: usize },
    #[error("edge ({}, {}) names a node outside 0..{nodes}", edge.0, edge.1)]
    NodeOutOfRange { edge: (usize, usize), nodes: usize },
    #[error("self-loop at node {node} (the metrics take simple graphs)")]
    SelfLoop { node: usize },
    #[error("edge ({}, {}) is listed twice", edge.0, edge.1)]
    DuplicateEdge { edge: (usize, usize) },
    /// The generated or the test set is empty: MMD² and the fractions have nothing to average.
    #[error("no {set} graphs to evaluate")]
    EmptySet { set: &'static str },
    /// The planarity test found one of its own invariants broken: a bug to report, not bad input.
    #[error("the planarity test failed on a block of {nodes} nodes: {detail}")]
    PlanarityInvariant { nodes: usize, detail: &'static str },
}

impl From<GraphEvalError> for crate::error::Error {
    fn from(e: GraphEvalError) -> Self {
        match e {
            // A broken invariant of the planarity test is a bug, whatever graph reached it.
            GraphEvalError::PlanarityInvariant { .. } => {
                crate::error::Error::Internal(e.to_string())
            }
            _ => crate::error::Error::Data {
                what: "graphs".into(),
                detail: e.to_string(),
            },
        }
    }
}

/// A simple undirected graph as adjacency bitsets. The fields are private so that every `Adj` went
/// through [`Adj::from_edges`]: node ids below `n` ≤ 64, symmetric rows, no self-loops.
#[derive(Clone, Debug)]
pub struct Adj {
    n: usize,
    rows: Vec<u64>,
}

impl Adj {
    pub fn num_nodes(&self) -> usize {
        self.n
    }

    /// The graph on `n` nodes with the undirected `edges` (either orientation, each edge once).
    pub fn from_edges(
        n: usize,
        edges: impl IntoIterator<Item = (usize, usize)>,
    ) -> Result<Adj, GraphEvalError> {
        if n > MAX_EVAL_NODES {
            return Err(GraphEvalError::TooManyNodes {
                nodes: n,
                max: MAX_EVAL_NODES,
            });
        }
        let mut rows = vec![0u64; n];
        for (i, j) in edges {
            if i >= n || j >= n {
                return Err(GraphEvalError::NodeOutOfRange {
                    edge: (i, j),
                    nodes: n,
                });
            }
            if i == j {
                return Err(GraphEvalError::SelfLoop { node: i });
            }
            if rows[i] >> j & 1 == 1 {
                return Err(GraphEvalError::DuplicateEdge { edge: (i, j) });
            }
            rows[i] |= 1 << j;
            rows[j] |= 1 << i;
        }
        Ok(Adj { n, rows })
    }

    pub fn has(&self, i: usize, j: usize) -> bool {
        self.rows[i] >> j & 1 == 1
    }

    pub fn degree(&self, i: usize) -> usize {
        self.rows[i].count_ones() as usize
    }

    pub fn num_edges(&self) -> usize {
        self.rows
            .iter()
            .map(|r| r.count_ones() as usize)
            .sum::<usize>()
            / 2
    }

    pub fn is_connected(&self) -> bool {
        if self.n == 0 {
            return true;
        }
        let all = if self.n == 64 {
            u64::MAX
        } else {
            (1u64 << self.n) - 1
        };
        self.component(0) == all
    }

    /// The nodes reachable from `s` as a bitset.
    fn component(&self, s: usize) -> u64 {
        let mut seen = 1u64 << s;
        let mut frontier = seen;
        while frontier != 0 {
            let mut next = 0;
            let mut f = frontier;
            while f != 0 {
                let v = f.trailing_zeros() as usize;
                f &= f - 1;
                next |= self.rows[v];
            }
            frontier = next & !seen;
            seen |= next;
        }
        seen
    }
}
