//! The whole evaluation `diffscope eval-graphs` reports: MMD² against the test set, their ratio to
//! the train set's, V.U.N. and the validity of the test set itself.

use super::mmd::{mmds, Mmds};
use super::vun::{vun, Validity, Vun};
use super::{Adj, GraphEvalError};

/// The full report `diffscope eval-graphs` prints.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GraphEval {
    pub generated: usize,
    pub reference: usize,
    pub mmd: Mmds,
    /// MMD² of the train graphs against the test graphs (the denominators).
    pub mmd_train_test: Mmds,
    /// MMD²(generated, test) / MMD²(train, test), as in DiGress's paper tables.
    pub ratio: Mmds,
    pub vun: Vun,
    /// The valid fraction of the test graphs themselves (what the validity test makes of real data).
    pub reference_valid: f64,
    /// The same two figures under the validity's companion (DiGress's strict test for SBM graphs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub companion: Option<CompanionVerdict>,
}

/// V.U.N. and the test graphs' valid fraction under a second validity test.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompanionVerdict {
    pub validity: String,
    pub vun: Vun,
    pub reference_valid: f64,
}

/// Evaluates `generated` against the `test` graphs (MMD²) and the `train` graphs (novelty, and the
/// train-vs-test MMD² that the ratios divide by). The generated and test sets must not be empty.
pub fn evaluate(
    generated: &[Adj],
    train: &[Adj],
    test: &[Adj],
    validity: &Validity,
) -> Result<GraphEval, GraphEvalError> {
    for (set, graphs) in [("generated", generated), ("test", test)] {
        if graphs.is_empty() {
            return Err(GraphEvalError::EmptySet { set });
        }
    }
    let (g, tr, te) = (generated, train, test);
    let mmd = mmds(te, g);
    let base = mmds(te, tr);
    let valid_fraction = |v: &Validity| -> Result<f64, GraphEvalError> {
        let mut n = 0usize;
        for a in te {
            n += v.check(a)? as usize;
        }
        Ok(n as f64 / te.len() as f64)
    };
    let companion = match validity.companion() {
        Some(v) => Some(CompanionVerdict {
            validity: v.name().to_string(),
            vun: vun(g, tr, &v)?,
            reference_valid: valid_fraction(&v)?,
        }),
        None => None,
    };
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    Ok(GraphEval {
        generated: g.len(),
        reference: te.len(),
        ratio: Mmds {
            degree: div(mmd.degree, base.degree),
            clustering: div(mmd.clustering, base.clustering),
            orbit: div(mmd.orbit, base.orbit),
            spectral: div(mmd.spectral, base.spectral),
        },
        mmd,
        mmd_train_test: base,
        vun: vun(g, tr, validity)?,
        reference_valid: valid_fraction(validity)?,
        companion,
    })
}
