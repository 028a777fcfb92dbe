//! Sequence runs that differ in one setting, for "compare runs side by side": the sampling
//! temperature over a list of values, or the un-masking order (absorbing models). Written
//! `kind:v1,v2,…` in links and lessons, as the Gaussian variations are (`temperature:0.7,1`,
//! `unmask:random,confident`).

use crate::error::{Error, Result};
use crate::process::discrete::Unmasking;
use crate::process::varied::{self, Varied};

/// The most runs one comparison holds.
pub const MOST_RUNS: usize = 4;

/// The setting the compared runs differ in, with its values in column order.
#[derive(Clone, Debug, PartialEq)]
pub enum SeqVariation {
    /// Temperatures (0.05 to 2, as the app's slider).
    Temperature(Vec<f32>),
    /// Un-masking orders (absorbing models only).
    Unmask(Vec<Unmasking>),
}

impl Default for SeqVariation {
    fn default() -> Self {
        SeqVariation::Temperature(vec![1.0, 0.7])
    }
}

/// One run of a comparison: its heading, temperature and order.
#[derive(Clone, Debug, PartialEq)]
pub struct SeqVariant {
    pub label: String,
    pub temperature: f32,
    pub order: Unmasking,
}

impl Varied for SeqVariation {
    const KINDS: &'static [&'static str] = &["temperature", "unmask"];

    fn kind(&self) -> &'static str {
        match self {
            SeqVariation::Temperature(_) => "temperature",
            SeqVariation::Unmask(_) => "unmask",
        }
    }

    fn default_of(kind: &str) -> Result<SeqVariation> {
        match kind {
            "temperature" => Ok(SeqVariation::default()),
            "unmask" => Ok(SeqVariation::Unmask(vec![
                Unmasking::Random,
                Unmasking::Confident,
                Unmasking::Annealed,
            ])),
            o => Err(unknown_kind(o)),
        }
    }

    /// `kind` over comma-separated values: 1 to [`MOST_RUNS`].
    fn with_values(kind: &str, values: &str) -> Result<SeqVariation> {
        let items = varied::values(kind, values, MOST_RUNS)?;
        match kind {
            "temperature" => Ok(SeqVariation::Temperature(
                items
                    .iter()
                    .map(|v| {
                        v.parse::<f32>()
                            .ok()
                            .filter(|t| (0.05..=2.0).contains(t))
                            .ok_or_else(|| {
                                Error::Invalid(format!(
                                    "compare temperature: \"{v}\" is not a temperature from 0.05 to 2"
                                ))
                            })
                    })
                    .collect::<Result<_>>()?,
            )),
            "unmask" => Ok(SeqVariation::Unmask(
                items
                    .iter()
                    .map(|v| Unmasking::parse(v))
                    .collect::<Result<_>>()?,
            )),
            o => Err(unknown_kind(o)),
        }
    }

    fn values_text(&self) -> String {
        let v: Vec<String> = match self {
            SeqVariation::Temperature(v) => v.iter().map(f32::to_string).collect(),
            SeqVariation::Unmask(v) => v.iter().map(|o| o.name().to_string()).collect(),
        };
        v.join(", ")
    }
}

impl SeqVariation {
    /// One run per value from the run's own temperature and order, or why this model cannot vary
    /// this setting (`absorbing`: the model has a mask token).
    pub fn variants(
        &self,
        temperature: f32,
        order: Unmasking,
        absorbing: bool,
    ) -> Result<Vec<SeqVariant>> {
        Ok(match self {
            SeqVariation::Temperature(ts) => ts
                .iter()
                .map(|&t| SeqVariant {
                    label: format!("temperature {t}"),
                    temperature: t,
                    order,
                })
                .collect(),
            SeqVariation::Unmask(os) => {
                if !absorbing {
                    return Err(Error::Invalid(
                        "the un-masking order is an absorbing model's; this one has no mask".into(),
                    ));
                }
                os.iter()
                    .map(|&o| SeqVariant {
                        label: format!(
                            "{} first",
                            if o == Unmasking::Random {
                                "random"
                            } else {
                                "most confident"
                            }
                        ),
                        temperature,
                        order: o,
                    })
                    .collect()
            }
        })
    }
}

fn unknown_kind(kind: &str) -> Error {
    Error::Invalid(format!(
        "cannot compare sequence runs by \"{kind}\" (one of {})",
        SeqVariation::KINDS.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_back_and_nonsense_says_why() {
        for spec in ["temperature:0.5,1,1.5", "unmask:random,confident"] {
            assert_eq!(SeqVariation::parse(spec).unwrap().spec(), spec);
        }
        for (spec, says) in [
            ("temperature:3", "not a temperature"),
            ("unmask:sideways", "unknown un-masking order"),
            ("guidance:1", "cannot compare sequence runs by \"guidance\""),
            ("temperature:1,1,1,1,1", "give 1 to 4 values"),
        ] {
            let e = SeqVariation::parse(spec).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
        let e = SeqVariation::parse("unmask")
            .unwrap()
            .variants(1.0, Unmasking::Random, false)
            .unwrap_err();
        assert!(e.to_string().contains("no mask"), "{e}");
        let v = SeqVariation::parse("temperature:0.5")
            .unwrap()
            .variants(1.0, Unmasking::Confident, true)
            .unwrap();
        assert_eq!((v[0].temperature, v[0].order), (0.5, Unmasking::Confident));
    }
}
