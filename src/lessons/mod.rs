//! Lessons: short guided tours through the app, kept as data files (`lessons/*.json`, documented in
//! `lessons/README.md`) so a teacher can write one without touching code. A lesson is a list of
//! steps; each step says what to read (a title, a few sentences, the formula it is about) and which
//! app state shows it (a model, its settings, the forward explorer at t or the reverse run at step k,
//! and which controls to point at). The app carries a step out (`app::lesson`); this module only
//! reads and checks the files, so the CLI can list them without the GUI.

use crate::error::{Error, Result};
use crate::pipelines::zoo;
use crate::process::gaussian::Sampler;
use crate::process::varied::Varied as _;

/// The lessons that ship, in teaching order: (name, file text).
const SHIPPED: &[(&str, &str)] = &[
    (
        "forward-process",
        include_str!("../../lessons/forward-process.json"),
    ),
    (
        "reverse-step",
        include_str!("../../lessons/reverse-step.json"),
    ),
    (
        "noise-schedules",
        include_str!("../../lessons/noise-schedules.json"),
    ),
    ("samplers", include_str!("../../lessons/samplers.json")),
    ("guidance", include_str!("../../lessons/guidance.json")),
    (
        "absorbing-vs-uniform",
        include_str!("../../lessons/absorbing-vs-uniform.json"),
    ),
    ("dna-motifs", include_str!("../../lessons/dna-motifs.json")),
    (
        "digress-graphs",
        include_str!("../../lessons/digress-graphs.json"),
    ),
];

/// Controls a step may point at (`"highlight"`): the app outlines each where it is drawn.
pub const HIGHLIGHTS: &[(&str, &str)] = &[
    ("label", "the class the model is asked for"),
    ("guidance", "the classifier-free guidance weight w"),
    ("sampler", "the reverse sampler"),
    ("steps", "the number of reverse steps"),
    ("eta", "DDIM's η"),
    ("clip", "clipping x0_pred to the data range"),
    ("seed", "the seed"),
    ("compare", "comparing runs side by side"),
    ("temperature", "the sampling temperature (sequences)"),
    ("unmask", "the un-masking order (absorbing sequence models)"),
    (
        "padding",
        "holding padding at the end of each word (padded sequence models)",
    ),
    ("forward", "the forward explorer's switch"),
    ("forward-t", "the forward explorer's t"),
    ("forward-schedule", "the forward explorer's β schedule"),
    ("schedule", "the noise schedule plot"),
    ("timeline", "the timeline (play, step, scrub)"),
];

/// β schedules the forward explorer of a Gaussian model can show instead of the model's own.
pub const FORWARD_SCHEDULES: &[&str] = &["trained", "linear", "cosine"];

/// Settings a step asks of its model; the same keys a link carries (`app::Link`). Unset keys keep
/// what the earlier steps on the same model set, or else the model's defaults.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub seed: Option<u64>,
    pub sampler: Option<String>,
    pub steps: Option<usize>,
    pub guidance: Option<f32>,
    pub label: Option<u32>,
    pub n: Option<usize>,
    pub eta: Option<f32>,
    pub karras: Option<bool>,
    pub temperature: Option<f32>,
    /// Absorbing sequence models: `random`, `confident` or `annealed`
    /// (`process::discrete::Unmasking`).
    pub unmask: Option<String>,
    /// Padded sequence models: `suffix` or `free` (`process::discrete::Padding`).
    pub padding: Option<String>,
    /// Gaussian models: clip x0_pred to the data range (diffusers' `clip_sample`).
    pub clip: Option<bool>,
    /// Gaussian and sequence models: compare runs side by side.
    pub compare: Option<bool>,
    /// What the compared runs differ in, `kind:values` (Gaussian: `process::gaussian::Variation`,
    /// e.g. `guidance:0,1,3,5`; sequences: `pipelines::sequence::variation`, e.g.
    /// `unmask:random,confident`); turns the comparison on.
    pub vary: Option<String>,
    /// 2-D Gaussian models: draw the score field.
    pub score: Option<bool>,
    /// Gaussian models: which β schedule the forward explorer draws with (`FORWARD_SCHEDULES`).
    pub forward_schedule: Option<String>,
}

impl Settings {
    /// `later`'s values over these.
    fn overlaid(&self, later: &Settings) -> Settings {
        Settings {
            seed: later.seed.or(self.seed),
            sampler: later.sampler.clone().or_else(|| self.sampler.clone()),
            steps: later.steps.or(self.steps),
            guidance: later.guidance.or(self.guidance),
            label: later.label.or(self.label),
            n: later.n.or(self.n),
            eta: later.eta.or(self.eta),
            karras: later.karras.or(self.karras),
            temperature: later.temperature.or(self.temperature),
            unmask: later.unmask.clone().or_else(|| self.unmask.clone()),
            padding: later.padding.clone().or_else(|| self.padding.clone()),
            clip: later.clip.or(self.clip),
            compare: later.compare.or(self.compare),
            vary: later.vary.clone().or_else(|| self.vary.clone()),
            score: later.score.or(self.score),
            forward_schedule: later
                .forward_schedule
                .clone()
                .or_else(|| self.forward_schedule.clone()),
        }
    }
}

/// What a step shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The reverse run, playing on.
    Reverse,
    /// The reverse run, played up to step k (x_T is step 0) and paused there.
    ReverseAt(usize),
    /// The forward explorer at timestep t.
    Forward(usize),
}

/// One step of a lesson as written in the file.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    title: String,
    text: String,
    #[serde(default)]
    formula: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    forward_t: Option<usize>,
    #[serde(default)]
    at_step: Option<usize>,
    #[serde(default)]
    highlight: Vec<String>,
}

#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonFile {
    title: String,
    summary: String,
    steps: Vec<StepFile>,
}

/// One step, resolved: its model and the settings in force (the earlier steps' on the same model
/// overlaid with its own).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub title: String,
    pub text: String,
    pub formula: Option<String>,
    pub model: String,
    pub settings: Settings,
    pub view: View,
    pub highlight: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Lesson {
    pub name: String,
    pub title: String,
    pub summary: String,
    pub steps: Vec<Step>,
}

impl Lesson {
    /// A lesson file's text, checked: every step names (or inherits) a shipped model, a sampler
    /// diffscope has, controls that exist and one view. `name` is what lists and links call it.
    pub fn parse(name: &str, json: &str) -> Result<Lesson> {
        let bad = |why: String| Error::Invalid(format!("lesson \"{name}\": {why}"));
        let file: LessonFile = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        if file.steps.is_empty() {
            return Err(bad("it has no steps".into()));
        }
        let mut steps = Vec::with_capacity(file.steps.len());
        let mut model: Option<String> = None;
        let mut settings = Settings::default();
        for (i, s) in file.steps.into_iter().enumerate() {
            let at = |why: String| bad(format!("step {}: {why}", i + 1));
            if s.title.trim().is_empty() || s.text.trim().is_empty() {
                return Err(at("a step needs a title and a text".into()));
            }
            match &s.model {
                Some(m) if model.as_deref() != Some(m) => {
                    let Some(z) = zoo::find(m) else {
                        return Err(at(format!(
                            "unknown model \"{m}\" (shipped: {})",
                            zoo::MODELS
                                .iter()
                                .map(|z| z.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    };
                    model = Some(z.name.to_string());
                    settings = s.settings.clone();
                }
                _ => settings = settings.overlaid(&s.settings),
            }
            let Some(m) = model.clone() else {
                return Err(at("the first step must name a model".into()));
            };
            check_settings(&m, &settings).map_err(at)?;
            let view = match (s.forward_t, s.at_step) {
                (Some(_), Some(_)) => {
                    return Err(at("forward_t and at_step: a step shows one view".into()))
                }
                (Some(t), None) => View::Forward(t),
                (None, Some(k)) => View::ReverseAt(k),
                (None, None) => View::Reverse,
            };
            if let Some(h) = s
                .highlight
                .iter()
                .find(|h| !HIGHLIGHTS.iter().any(|(k, _)| k == h))
            {
                return Err(at(format!(
                    "no control \"{h}\" to highlight (known: {})",
                    HIGHLIGHTS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            steps.push(Step {
                title: s.title,
                text: s.text,
                formula: s.formula,
                model: m,
                settings: settings.clone(),
                view,
                highlight: s.highlight,
            });
        }
        Ok(Lesson {
            name: name.to_string(),
            title: file.title,
            summary: file.summary,
            steps,
        })
    }
}

/// Settings that cannot apply to the model are errors in a lesson (a link just ignores them: a
/// lesson is checked by its author, a link is typed by anyone).
fn check_settings(model: &str, s: &Settings) -> std::result::Result<(), String> {
    let family = zoo::find(model).map(|z| z.family);
    let gaussian = family == Some(zoo::Family::Gaussian);
    if let Some(v) = &s.sampler {
        if !Sampler::NAMES.contains(&v.as_str()) {
            return Err(format!(
                "unknown sampler \"{v}\" (known: {})",
                Sampler::NAMES.join(", ")
            ));
        }
    }
    let gaussian_only = [
        ("sampler", s.sampler.is_some()),
        ("steps", s.steps.is_some()),
        ("guidance", s.guidance.is_some()),
        ("label", s.label.is_some()),
        ("eta", s.eta.is_some()),
        ("karras", s.karras.is_some()),
        ("clip", s.clip.is_some()),
        ("score", s.score.is_some()),
        ("forward_schedule", s.forward_schedule.is_some()),
    ];
    if let Some((k, _)) = gaussian_only.iter().find(|(_, set)| *set && !gaussian) {
        return Err(format!(
            "\"{k}\" is a setting of Gaussian models, not of {model}"
        ));
    }
    if s.temperature.is_some() && family != Some(zoo::Family::Sequence) {
        return Err(format!(
            "\"temperature\" is a setting of sequence models, not of {model}"
        ));
    }
    if let Some(v) = &s.unmask {
        if family != Some(zoo::Family::Sequence) {
            return Err(format!(
                "\"unmask\" is a setting of absorbing sequence models, not of {model}"
            ));
        }
        crate::process::discrete::Unmasking::parse(v).map_err(|e| e.to_string())?;
    }
    if let Some(v) = &s.padding {
        if family != Some(zoo::Family::Sequence) {
            return Err(format!(
                "\"padding\" is a setting of padded sequence models, not of {model}"
            ));
        }
        crate::process::discrete::Padding::parse(v).map_err(|e| e.to_string())?;
    }
    if let Some(v) = &s.forward_schedule {
        if !FORWARD_SCHEDULES.contains(&v.as_str()) {
            return Err(format!(
                "unknown forward_schedule \"{v}\" (known: {})",
                FORWARD_SCHEDULES.join(", ")
            ));
        }
    }
    // Runs side by side: Gaussian and sequence models, each varying its own settings.
    let sequence = family == Some(zoo::Family::Sequence);
    if (s.compare.is_some() || s.vary.is_some()) && !gaussian && !sequence {
        return Err(format!(
            "\"compare\" and \"vary\" are settings of Gaussian and sequence models, not of {model}"
        ));
    }
    if let Some(v) = &s.vary {
        if gaussian {
            crate::process::gaussian::Variation::parse(v).map_err(|e| e.to_string())?;
        } else {
            crate::pipelines::sequence::variation::SeqVariation::parse(v)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The shipped lessons, parsed once (the app's list draws them every frame; each is checked by the
/// tests, so none fails here).
pub fn shipped() -> &'static [Lesson] {
    static PARSED: std::sync::OnceLock<Vec<Lesson>> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        SHIPPED
            .iter()
            .filter_map(|(name, json)| Lesson::parse(name, json).ok())
            .collect()
    })
}

/// A shipped lesson by name.
pub fn find(name: &str) -> Result<Lesson> {
    match shipped().iter().find(|l| l.name == name) {
        Some(l) => Ok(l.clone()),
        None => Err(Error::Invalid(format!(
            "no lesson \"{name}\" (shipped: {}; or give a lesson file's path)",
            SHIPPED
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The shipped lessons' files, unparsed (for the tests).
pub fn shipped_files() -> &'static [(&'static str, &'static str)] {
    SHIPPED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_lesson_parses() {
        for (name, json) in SHIPPED {
            let l = Lesson::parse(name, json).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                l.steps.len() >= 3,
                "{name} has only {} steps",
                l.steps.len()
            );
        }
        assert_eq!(shipped().len(), SHIPPED.len());
    }

    fn step(extra: &str) -> String {
        format!(
            r#"{{"title": "T", "summary": "S", "steps": [{{"title": "a", "text": "b"{extra}}}]}}"#
        )
    }

    #[test]
    fn a_bad_lesson_is_an_error_naming_the_problem() {
        let err = |json: &str| Lesson::parse("x", json).unwrap_err().to_string();
        assert!(err(&step("")).contains("must name a model"));
        assert!(err(&step(r#", "model": "nope""#)).contains("unknown model \"nope\""));
        assert!(err(&step(
            r#", "model": "mnist-unet", "settings": {"sampler": "dpm3"}"#
        ))
        .contains("unknown sampler"));
        assert!(err(&step(
            r#", "model": "words-absorb", "settings": {"guidance": 2}"#
        ))
        .contains("Gaussian models"));
        assert!(err(&step(
            r#", "model": "mnist-unet", "settings": {"temperature": 2}"#
        ))
        .contains("sequence models"));
        assert!(
            err(&step(r#", "model": "mnist-unet", "highlight": ["knob"]"#))
                .contains("no control \"knob\"")
        );
        assert!(err(&step(
            r#", "model": "mnist-unet", "forward_t": 3, "at_step": 2"#
        ))
        .contains("one view"));
        assert!(err(&step(r#", "model": "mnist-unet", "colour": 2"#)).contains("colour"));
        assert!(err(r#"{"title": "T", "summary": "S", "steps": []}"#).contains("no steps"));
        assert!(err("{").contains("lesson \"x\""));
        assert!(find("nope")
            .unwrap_err()
            .to_string()
            .contains("forward-process"));
    }

    #[test]
    fn settings_carry_over_within_a_model_and_reset_with_a_new_one() {
        let l = Lesson::parse(
            "x",
            r#"{"title": "T", "summary": "S", "steps": [
                {"title": "1", "text": "t", "model": "mnist-unet", "settings": {"sampler": "ddim", "seed": 3}, "forward_t": 500},
                {"title": "2", "text": "t", "settings": {"guidance": 4}, "at_step": 7, "highlight": ["guidance"]},
                {"title": "3", "text": "t", "model": "toy2d-mlp", "settings": {"n": 512}}
            ]}"#,
        )
        .unwrap();
        let s = &l.steps;
        assert_eq!(s[0].view, View::Forward(500));
        assert_eq!(s[1].model, "mnist-unet");
        assert_eq!(s[1].view, View::ReverseAt(7));
        assert_eq!(s[1].settings.sampler.as_deref(), Some("ddim"));
        assert_eq!(
            (s[1].settings.seed, s[1].settings.guidance),
            (Some(3), Some(4.0))
        );
        assert_eq!(s[2].view, View::Reverse);
        assert_eq!(
            s[2].settings,
            Settings {
                n: Some(512),
                ..Default::default()
            }
        );
    }
}
