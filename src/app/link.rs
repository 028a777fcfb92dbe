//! Settings a link carries (`?model=…&seed=…&sampler=…`): read when the page opens, applied to the
//! model the link opens once it is open (in the browser that is after its files arrive), before its
//! first trajectory starts. Values that do not fit the model are ignored rather than refused: a
//! link is a suggestion, and the app opens either way.
//!
//! Keys: `model`, `seed` and `n` (images, points, sequences or graphs) for every family; `sampler` (a
//! name of `Sampler::NAMES`), `steps`, `guidance`, `label`, `eta`, `karras` (`1`/`true`) for
//! Gaussian models, and `clip` (`1`/`0`) and `forward_schedule` (the forward explorer's β schedule:
//! `trained`, `linear` or `cosine`); `temperature` for sequence models. `lesson` opens a lesson
//! (`lessons::find`) at `lesson_step` (from 1), whose steps set the model and the rest.

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
    pub clip: Option<bool>,
    pub forward_schedule: Option<String>,
    pub lesson: Option<String>,
    /// Counted from 1, as the lesson panel shows it.
    pub lesson_step: Option<usize>,
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
            clip: s.clip,
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
                "forward_schedule" => l.forward_schedule = Some(v),
                "lesson" if !v.is_empty() => l.lesson = Some(v),
                "lesson_step" => l.lesson_step = v.parse().ok().filter(|&k| k >= 1),
                "temperature" => l.temperature = num(&v).map(|x| x as f32),
                _ => {}
            }
        }
        l
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
}
