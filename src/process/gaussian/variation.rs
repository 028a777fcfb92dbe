//! Runs that differ in one setting: what "compare runs side by side" starts. A variation is the
//! setting varied and its values — several samplers, or one of guidance w, the number of steps,
//! DDIM's η or the noise seed over a list — and turns a run's settings into one set per value. It
//! is written `kind:v1,v2,…` in links and lessons (`guidance:0,1,3,5`, `sampler:ddim,heun`).

use super::{SampleSettings, Sampler};
use crate::error::{Error, Result};
use crate::process::varied::{self, Varied};

/// The most runs one comparison holds (columns side by side).
pub const MOST_RUNS: usize = 6;

/// The setting the compared runs differ in, with its values in column order.
#[derive(Clone, Debug, PartialEq)]
pub enum Variation {
    /// Names of [`Sampler::NAMES`]; each at the run's steps, η and Karras choice.
    Sampler(Vec<&'static str>),
    /// Classifier-free guidance weights w (class-conditional models).
    Guidance(Vec<f32>),
    /// Numbers of reverse steps.
    Steps(Vec<usize>),
    /// DDIM's η (the run's sampler must be DDIM).
    Eta(Vec<f32>),
    /// Seeds of the noise drawn during the run; x_T stays the run's own (drawn from its seed), so a
    /// deterministic sampler gives the same picture for every seed and a stochastic one does not.
    Seed(Vec<u64>),
}

impl Default for Variation {
    fn default() -> Self {
        Variation::Sampler(vec!["ddim", "dpm++2m", "euler-a", "heun"])
    }
}

/// One run of a comparison: its column heading and settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub label: String,
    pub settings: SampleSettings,
}

impl Varied for Variation {
    const KINDS: &'static [&'static str] = &["sampler", "guidance", "steps", "eta", "seed"];

    fn kind(&self) -> &'static str {
        match self {
            Variation::Sampler(_) => "sampler",
            Variation::Guidance(_) => "guidance",
            Variation::Steps(_) => "steps",
            Variation::Eta(_) => "eta",
            Variation::Seed(_) => "seed",
        }
    }

    fn default_of(kind: &str) -> Result<Variation> {
        Ok(match kind {
            "sampler" => Variation::default(),
            "guidance" => Variation::Guidance(vec![0.0, 1.0, 3.0, 5.0]),
            "steps" => Variation::Steps(vec![10, 25, 50]),
            "eta" => Variation::Eta(vec![0.0, 0.5, 1.0]),
            "seed" => Variation::Seed(vec![0, 1, 2]),
            o => return Err(unknown_kind(o)),
        })
    }

    /// `kind` over the comma-separated `values` (the text a user types: `0, 1, 3`); at least one
    /// value, at most [`MOST_RUNS`], each one the setting can take.
    fn with_values(kind: &str, values: &str) -> Result<Variation> {
        let items = varied::values(kind, values, MOST_RUNS)?;
        let bad =
            |v: &str, what: &str| Error::Invalid(format!("compare {kind}: \"{v}\" is not {what}"));
        let floats = |lo: f32, hi: f32, what: &str| -> Result<Vec<f32>> {
            items
                .iter()
                .map(|v| {
                    v.parse::<f32>()
                        .ok()
                        .filter(|x| (lo..=hi).contains(x))
                        .ok_or_else(|| bad(v, what))
                })
                .collect()
        };
        Ok(match kind {
            "sampler" => Variation::Sampler(
                items
                    .iter()
                    .map(|v| {
                        Sampler::NAMES
                            .iter()
                            .copied()
                            .find(|n| n == v)
                            .ok_or_else(|| {
                                bad(v, &format!("a sampler ({})", Sampler::NAMES.join(", ")))
                            })
                    })
                    .collect::<Result<_>>()?,
            ),
            "guidance" => {
                Variation::Guidance(floats(0.0, 100.0, "a guidance weight from 0 to 100")?)
            }
            "eta" => Variation::Eta(floats(0.0, 1.0, "an η from 0 to 1")?),
            "steps" => Variation::Steps(
                items
                    .iter()
                    .map(|v| {
                        v.parse::<usize>()
                            .ok()
                            .filter(|&s| s >= 1)
                            .ok_or_else(|| bad(v, "a number of steps (1 or more)"))
                    })
                    .collect::<Result<_>>()?,
            ),
            "seed" => Variation::Seed(
                items
                    .iter()
                    .map(|v| {
                        v.parse::<u64>()
                            .map_err(|_| bad(v, "a seed (a whole number)"))
                    })
                    .collect::<Result<_>>()?,
            ),
            o => return Err(unknown_kind(o)),
        })
    }

    fn values_text(&self) -> String {
        let v: Vec<String> = match self {
            Variation::Sampler(v) => v.iter().map(|s| s.to_string()).collect(),
            Variation::Guidance(v) | Variation::Eta(v) => v.iter().map(f32::to_string).collect(),
            Variation::Steps(v) => v.iter().map(usize::to_string).collect(),
            Variation::Seed(v) => v.iter().map(u64::to_string).collect(),
        };
        v.join(", ")
    }
}

impl Variation {
    /// One set of settings per value, from the run's `base` (`eta` and `karras` are the menu's, for
    /// samplers that take them), or why this model or run cannot vary this setting.
    /// `conditional`: the model takes a class label (guidance needs one).
    pub fn variants(
        &self,
        base: &SampleSettings,
        eta: f32,
        karras: bool,
        conditional: bool,
    ) -> Result<Vec<Variant>> {
        let with = |label: String, f: &dyn Fn(&mut SampleSettings)| {
            let mut settings = base.clone();
            f(&mut settings);
            Variant { label, settings }
        };
        Ok(match self {
            Variation::Sampler(names) => names
                .iter()
                .map(|&name| {
                    Ok(Variant {
                        label: name.to_string(),
                        settings: SampleSettings {
                            sampler: Sampler::parse(name, eta, karras)?,
                            ..base.clone()
                        },
                    })
                })
                .collect::<Result<_>>()?,
            Variation::Guidance(ws) => {
                if !conditional {
                    return Err(Error::Invalid(
                        "guidance needs a class-conditional model; this one has no labels".into(),
                    ));
                }
                ws.iter()
                    .map(|&w| with(format!("w = {w}"), &|s| s.guidance = Some(w)))
                    .collect()
            }
            Variation::Steps(ns) => ns
                .iter()
                .map(|&n| with(format!("{n} steps"), &|s| s.steps = n))
                .collect(),
            Variation::Eta(es) => {
                if !matches!(base.sampler, Sampler::Ddim { .. }) {
                    return Err(Error::Invalid(format!(
                        "η is DDIM's; this run's sampler is {} (choose ddim to vary η)",
                        base.sampler.name()
                    )));
                }
                es.iter()
                    .map(|&e| {
                        with(format!("η = {e}"), &|s| {
                            s.sampler = Sampler::Ddim { eta: e }
                        })
                    })
                    .collect()
            }
            Variation::Seed(seeds) => seeds
                .iter()
                .map(|&seed| with(format!("noise seed {seed}"), &|s| s.seed = seed))
                .collect(),
        })
    }
}

fn unknown_kind(kind: &str) -> Error {
    Error::Invalid(format!(
        "cannot compare runs by \"{kind}\" (one of {})",
        Variation::KINDS.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SampleSettings {
        SampleSettings {
            sampler: Sampler::Ddim { eta: 0.0 },
            steps: 50,
            seed: 4,
            labels: Some(vec![7; 2]),
            guidance: Some(1.0),
        }
    }

    #[test]
    fn a_spec_reads_back_as_itself() {
        for spec in [
            "sampler:ddim,heun",
            "guidance:0,1,3.5",
            "steps:10,25",
            "eta:0,0.5,1",
            "seed:0,18446744073709551615",
        ] {
            let v = Variation::parse(spec).unwrap();
            assert_eq!(v.spec(), spec);
            assert_eq!(Variation::parse(&v.spec()).unwrap(), v);
        }
        for kind in Variation::KINDS {
            assert_eq!(Variation::parse(kind).unwrap().kind(), *kind);
        }
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        for (spec, says) in [
            ("colour:1,2", "cannot compare runs by \"colour\""),
            ("steps:0,10", "\"0\" is not a number of steps"),
            ("eta:2", "\"2\" is not an η"),
            ("guidance:nan", "\"nan\" is not a guidance weight"),
            ("sampler:ddim,magic", "\"magic\" is not a sampler"),
            ("seed:-1", "\"-1\" is not a seed"),
            ("guidance:", "give 1 to 6 values"),
            ("steps:1,2,3,4,5,6,7", "give 1 to 6 values"),
        ] {
            let e = Variation::parse(spec).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }

    #[test]
    fn each_value_changes_only_its_setting() {
        let b = base();
        let runs = Variation::parse("guidance:0,3")
            .unwrap()
            .variants(&b, 0.0, false, true)
            .unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].label, "w = 3");
        assert_eq!(
            runs[1].settings,
            SampleSettings {
                guidance: Some(3.0),
                ..b.clone()
            }
        );
        let runs = Variation::parse("eta:0.5")
            .unwrap()
            .variants(&b, 0.0, false, true)
            .unwrap();
        assert_eq!(runs[0].settings.sampler, Sampler::Ddim { eta: 0.5 });
        assert_eq!(runs[0].settings.seed, b.seed);
        let runs = Variation::parse("seed:9")
            .unwrap()
            .variants(&b, 0.0, false, true)
            .unwrap();
        assert_eq!((runs[0].settings.seed, runs[0].settings.steps), (9, 50));
        let runs = Variation::parse("steps:10")
            .unwrap()
            .variants(&b, 0.0, false, true)
            .unwrap();
        assert_eq!(
            (runs[0].settings.steps, runs[0].label.as_str()),
            (10, "10 steps")
        );
        let runs = Variation::parse("sampler:dpm++2m")
            .unwrap()
            .variants(&b, 0.3, true, true)
            .unwrap();
        assert_eq!(
            runs[0].settings.sampler,
            Sampler::DpmSolver {
                sde: false,
                karras: true
            }
        );
    }

    #[test]
    fn a_setting_the_run_cannot_vary_says_why() {
        let b = base();
        let e = Variation::parse("guidance")
            .unwrap()
            .variants(&b, 0.0, false, false)
            .unwrap_err();
        assert!(e.to_string().contains("class-conditional"), "{e}");
        let heun = SampleSettings {
            sampler: Sampler::Heun { karras: false },
            ..b
        };
        let e = Variation::parse("eta")
            .unwrap()
            .variants(&heun, 0.0, false, true)
            .unwrap_err();
        assert!(e.to_string().contains("sampler is heun"), "{e}");
    }
}
