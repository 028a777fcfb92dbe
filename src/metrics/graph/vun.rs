//! V.U.N.: the fractions of generated graphs that are valid, unique, and novel against the
//! training set.

use super::isomorphism::{is_isomorphic, wl_key};
use super::planarity::is_planar;
use super::sbm::{is_sbm, is_sbm_digress_strict, SbmSpec, SBM_RECIPE};
use super::{Adj, GraphEvalError};
use crate::error::{Error, Result};

/// What "valid" means for a model's graphs.
#[derive(Clone, Copy, Debug)]
pub enum Validity {
    /// Connected and planar (DiGress's `is_planar_graph`).
    Planar,
    /// A plausible draw from the recipe's SBM ([`is_sbm`]).
    Sbm(SbmSpec),
    /// DiGress's strict SBM test ([`is_sbm_digress_strict`]), reported beside [`Validity::Sbm`].
    SbmDigressStrict(SbmSpec),
}

impl Validity {
    pub fn for_dataset(name: &str) -> Result<Validity> {
        match name {
            "planar" => Ok(Validity::Planar),
            "sbm" => Ok(Validity::Sbm(SBM_RECIPE)),
            o => Err(Error::Invalid(format!(
                "no validity test for dataset \"{o}\" (planar, sbm)"
            ))),
        }
    }

    pub fn check(&self, a: &Adj) -> Result<bool, GraphEvalError> {
        Ok(match self {
            Validity::Planar => a.is_connected() && is_planar(a)?,
            Validity::Sbm(s) => is_sbm(a, s),
            Validity::SbmDigressStrict(s) => is_sbm_digress_strict(a, s),
        })
    }

    /// How reports name the test.
    pub fn name(&self) -> &'static str {
        match self {
            Validity::Planar => "connected and planar",
            Validity::Sbm(_) => "SBM goodness of fit (chi-squared, alpha 0.05)",
            Validity::SbmDigressStrict(_) => "SBM, DiGress's strict Wald test",
        }
    }

    /// A second verdict reported beside this one: DiGress's strict test for SBM graphs.
    pub fn companion(&self) -> Option<Validity> {
        match self {
            Validity::Sbm(s) => Some(Validity::SbmDigressStrict(*s)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Vun {
    pub valid: f64,
    pub unique: f64,
    pub unique_novel: f64,
    pub vun: f64,
}

/// A graph's Weisfeiler–Lehman key: (nodes, edges, sorted colour hashes).
type WlKey = (usize, usize, Vec<u64>);

/// DiGress's `eval_fraction_unique_non_isomorphic_valid`, plus the plain valid fraction.
pub fn vun(generated: &[Adj], train: &[Adj], validity: &Validity) -> Result<Vun, GraphEvalError> {
    let total = generated.len().max(1) as f64;
    let train_keys: Vec<_> = train.iter().map(wl_key).collect();
    // (index into `generated`, its WL key)
    let mut uniques: Vec<(usize, WlKey)> = Vec::new();
    let (mut dup, mut iso, mut count, mut valid) = (0, 0, 0, 0);
    for (gi, g) in generated.iter().enumerate() {
        let ok = validity.check(g)?;
        valid += ok as usize;
        let key = wl_key(g);
        if uniques
            .iter()
            .any(|(u, k)| *k == key && is_isomorphic(g, &generated[*u]))
        {
            dup += 1;
            continue;
        }
        uniques.push((gi, key.clone()));
        if train_keys
            .iter()
            .zip(train)
            .any(|(k, t)| *k == key && is_isomorphic(g, t))
        {
            iso += 1;
            continue;
        }
        count += ok as usize;
    }
    Ok(Vun {
        valid: valid as f64 / total,
        unique: (generated.len() - dup) as f64 / total,
        unique_novel: (generated.len() - dup - iso) as f64 / total,
        vun: count as f64 / total,
    })
}
