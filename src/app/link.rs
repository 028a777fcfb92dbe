//! Settings a link carries (`?model=…&seed=…&sampler=…`): read when the page opens, applied to the
//! model the link opens once it is open (in the browser that is after its files arrive), before its
//! first trajectory starts. Values that do not fit the model are ignored rather than refused: a
//! link is a suggestion, and the app opens either way.
//!
//! Keys: `model`, `seed` and `n` (images, points, sequences or graphs) for every family; `sampler` (a
//! name of `Sampler::NAMES`), `steps`, `guidance`, `label`, `eta`, `karras` (`1`/`true`) for
//! Gaussian models, and `clip`, `compare` (runs side by side) and `score` (the 2-D score field),
//! each `1`/`0`, `vary` (what the compared runs differ in: `sampler:ddim,heun`, `guidance:0,1,3`,
//! `steps:…`, `eta:…` or `seed:…`; it turns the comparison on), and `forward_schedule` (the forward explorer's β schedule:
//! `trained`, `linear` or `cosine`); `temperature`, (absorbing models) `unmask` (`random`,
//! `confident` or `annealed`) and (padded models) `padding` (`suffix` or `free`) for sequence models. `lesson` opens a lesson
//! (`lessons::find`) at `lesson_step` (from 1), whose steps set the model and the rest. `step` is the
//! viewed step (x_T is 0): the run plays to it and pauses there. `backend` (`gpu` or `cpu`) makes the
//! page compute there instead of where it would choose (read when the page starts).
//!
//! The app writes its state back as a link ([`Link::query`], from each family's `OpenRun::link`):
//! the page's address follows the settings, and "Copy link" hands it on. A run is deterministic per
//! model, settings and seed, so the link reopens the same frame, bit for bit.

/// What a link asks for (each `None` where it says nothing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    pub model: Option<String>,
    pub seed: Option<u64>,
    pub sampler: Option<String>,
    pub steps: Option<usize>,
    pub guidance: Option<f32>,
    pub label: Option<u32>,
    pub n: Option<usize>,
    pub eta: Option<f32>,
    pub karras: Option<bool>,
    pub temperature: Option<f32>,
    /// Absorbing sequence models' un-masking order: `random`, `confident` or `annealed`.
    pub unmask: Option<String>,
    /// Padded sequence models' padding: `suffix` (only at the end) or `free`.
    pub padding: Option<String>,
    pub clip: Option<bool>,
    /// Gaussian models: run the same x_T through several samplers side by side.
    pub compare: Option<bool>,
    /// What the compared runs differ in (`process::gaussian::Variation::spec`: `guidance:0,1,3`).
    pub vary: Option<String>,
    /// 2-D Gaussian models: draw the score field.
    pub score: Option<bool>,
    pub forward_schedule: Option<String>,
    pub lesson: Option<String>,
    /// Counted from 1, as the lesson panel shows it.
    pub lesson_step: Option<usize>,
    /// The viewed step of the reverse run (x_T is 0); `None`: play on, following the newest step.
    pub step: Option<usize>,
    /// The page's compute backend (`gpu` or `cpu`) instead of its own choice; read when the page
    /// starts.
    pub backend: Option<String>,
}

impl From<&crate::lessons::Settings> for Link {
    /// A lesson step's settings, as the link that would ask for them.
    fn from(s: &crate::lessons::Settings) -> Link {
        Link {
            seed: s.seed,
            sampler: s.sampler.clone(),
            steps: s.steps,
            guidance: s.guidance,
            label: s.label,
            n: s.n,
            eta: s.eta,
            karras: s.karras,
            temperature: s.temperature,
            unmask: s.unmask.clone(),
            padding: s.padding.clone(),
            clip: s.clip,
            compare: s.compare,
            vary: s.vary.clone(),
            score: s.score,
            forward_schedule: s.forward_schedule.clone(),
            ..Link::default()
        }
    }
}

impl Link {
    /// A URL's query (`?a=1&b=2`, with or without the `?`): unknown keys and unreadable values are
    /// skipped; `%XX` escapes are decoded (a `+` is kept, so `dpm++2m` reads as written).
    pub fn parse(query: &str) -> Link {
        let mut l = Link::default();
        for kv in query.trim_start_matches('?').split('&') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v = percent_decode(v);
            let num = |v: &str| v.parse::<f64>().ok().filter(|x| x.is_finite());
            match k {
                "model" if !v.is_empty() => l.model = Some(v),
                "seed" => l.seed = v.parse().ok(),
                "sampler" => l.sampler = Some(v),
                "steps" => l.steps = v.parse().ok(),
                "guidance" => l.guidance = num(&v).map(|x| x as f32),
                "label" => l.label = v.parse().ok(),
                "n" => l.n = v.parse().ok(),
                "eta" => l.eta = num(&v).map(|x| x as f32),
                "karras" => l.karras = Some(flag(&v)),
                "clip" => l.clip = Some(flag(&v)),
                "compare" => l.compare = Some(flag(&v)),
                "vary" if !v.is_empty() => l.vary = Some(v),
                "score" => l.score = Some(flag(&v)),
                "forward_schedule" => l.forward_schedule = Some(v),
                "lesson" if !v.is_empty() => l.lesson = Some(v),
                "lesson_step" => l.lesson_step = v.parse().ok().filter(|&k| k >= 1),
                "temperature" => l.temperature = num(&v).map(|x| x as f32),
                "step" => l.step = v.parse().ok(),
                "unmask" => l.unmask = Some(v),
                "padding" => l.padding = Some(v),
                "backend" if !v.is_empty() => l.backend = Some(v),
                _ => {}
            }
        }
        l
    }

    /// The query that [`Link::parse`] reads back as this link (without the `?`): the keys that are
    /// set, in a fixed order, values percent-encoded where a URL needs it (`dpm++2m` → `dpm%2B%2B2m`);
    /// floats in Rust's shortest form that reads back as the same f32.
    pub fn query(&self) -> String {
        let mut q: Vec<(&str, String)> = Vec::new();
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                q.push((k, v));
            }
        };
        put("lesson", self.lesson.clone());
        put("lesson_step", self.lesson_step.map(|v| v.to_string()));
        put("model", self.model.clone());
        put("seed", self.seed.map(|v| v.to_string()));
        put("n", self.n.map(|v| v.to_string()));
        put("sampler", self.sampler.clone());
        put("steps", self.steps.map(|v| v.to_string()));
        put("eta", self.eta.map(|v| v.to_string()));
        put("karras", self.karras.map(|v| u8::from(v).to_string()));
        put("guidance", self.guidance.map(|v| v.to_string()));
        put("label", self.label.map(|v| v.to_string()));
        put("clip", self.clip.map(|v| u8::from(v).to_string()));
        put("compare", self.compare.map(|v| u8::from(v).to_string()));
        put("vary", self.vary.clone());
        put("score", self.score.map(|v| u8::from(v).to_string()));
        put("forward_schedule", self.forward_schedule.clone());
        put("temperature", self.temperature.map(|v| v.to_string()));
        put("unmask", self.unmask.clone());
        put("padding", self.padding.clone());
        put("step", self.step.map(|v| v.to_string()));
        put("backend", self.backend.clone());
        q.iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The shipped model this link opens: its lesson's (at its step), or the one it names.
    pub fn opens(&self) -> Option<String> {
        if let Some(lesson) = self
            .lesson
            .as_deref()
            .and_then(|n| crate::lessons::find(n).ok())
        {
            let k = self.lesson_step.unwrap_or(1).clamp(1, lesson.steps.len());
            return Some(lesson.steps[k - 1].model.clone());
        }
        self.model.clone()
    }
}

fn flag(v: &str) -> bool {
    matches!(v, "1" | "true" | "on")
}

/// Every byte but the unreserved ones (`A–Z a–z 0–9 - . _ ~`) as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` → the byte; invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_reads_its_settings_and_skips_the_rest() {
        let l = Link::parse(
            "?model=mnist-unet&seed=7&sampler=dpm++2m&steps=20&guidance=3.5&label=4&n=1&karras=1&x=y&eta=oops",
        );
        assert_eq!(l.model.as_deref(), Some("mnist-unet"));
        assert_eq!(
            (l.seed, l.steps, l.label, l.n),
            (Some(7), Some(20), Some(4), Some(1))
        );
        assert_eq!(l.sampler.as_deref(), Some("dpm++2m"));
        assert_eq!((l.guidance, l.karras, l.eta), (Some(3.5), Some(true), None));
        assert_eq!(
            Link::parse("sampler=dpm%2B%2B2m-sde").sampler.as_deref(),
            Some("dpm++2m-sde")
        );
        assert_eq!(Link::parse("guidance=NaN&n=-1&model=").guidance, None);
        assert_eq!(Link::parse(""), Link::default());
        assert_eq!(percent_decode("50%"), "50%");
        let l = Link::parse("lesson=guidance&lesson_step=3&clip=0&forward_schedule=cosine");
        assert_eq!(
            (l.lesson.as_deref(), l.lesson_step, l.clip),
            (Some("guidance"), Some(3), Some(false))
        );
        assert_eq!(l.forward_schedule.as_deref(), Some("cosine"));
        assert_eq!(l.opens().as_deref(), Some("mnist-unet"));
        assert_eq!(Link::parse("lesson_step=0").lesson_step, None);
        let dna = Link::parse("lesson=dna-motifs&model=toy2d-mlp");
        assert_eq!(dna.opens().as_deref(), Some("promoter-multinomial"));
    }

    #[test]
    fn a_link_written_as_a_query_reads_back_the_same() {
        let full = Link {
            model: Some("mnist-unet".into()),
            seed: Some(u64::MAX),
            sampler: Some("dpm++2m-sde".into()),
            steps: Some(20),
            guidance: Some(0.1 + 0.2),
            label: Some(7),
            n: Some(4),
            eta: Some(1.0 / 3.0),
            karras: Some(true),
            temperature: Some(0.7),
            unmask: Some("confident".into()),
            padding: Some("free".into()),
            clip: Some(false),
            compare: Some(true),
            vary: Some("guidance:0,1.5,3".into()),
            score: Some(false),
            forward_schedule: Some("cosine".into()),
            lesson: Some("a lesson & more=?#%".into()),
            lesson_step: Some(2),
            step: Some(0),
            backend: Some("cpu".into()),
        };
        let q = full.query();
        assert!(q.contains("sampler=dpm%2B%2B2m-sde"), "{q}");
        assert!(!q.contains(' ') && !q.contains('#'), "{q}");
        assert_eq!(Link::parse(&q), full, "{q}");
        assert_eq!(Link::parse(&format!("?{q}")), full);
        // Only what is set is written.
        let seed = Link {
            model: Some("toy2d-mlp".into()),
            seed: Some(3),
            ..Link::default()
        };
        assert_eq!(seed.query(), "model=toy2d-mlp&seed=3");
        assert_eq!(Link::default().query(), "");
        assert_eq!(Link::parse("step=12").step, Some(12));
    }
}
