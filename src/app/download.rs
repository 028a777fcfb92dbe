//! A shipped model's files fetched before it opens (the browser build, whose wasm carries no
//! weights): progress in bytes and per cent, a clear message and a retry when a fetch fails.
//!
//! The fetching itself is the page's (`index.html`, `window.diffscopeModels`): `fetch` with a
//! streamed body for progress and the Cache API, so a second visit starts offline. This side starts
//! it, polls its state each frame (no callbacks into the app), and hands the arrived bytes to
//! [`zoo::provide`]. Natively every shipped file is embedded, so nothing is ever downloaded.

use crate::pipelines::zoo;

/// Where a download stands.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum State {
    Loading { loaded: f64, total: Option<f64> },
    Done,
    Failed(String),
}

pub(super) struct Download {
    pub model: String,
    /// The page's name for this fetch: the model's, or another for files fetched on their own
    /// (a thumbnail), so the two do not replace each other.
    job: String,
    files: Vec<&'static str>,
    pub state: State,
}

impl Download {
    /// Start fetching `files` of shipped model `model`.
    pub fn start(model: &str, files: Vec<&'static str>) -> Download {
        Self::start_as(model, model, files)
    }

    /// [`Download::start`] as the page's fetch named `job`.
    pub fn start_as(job: &str, model: &str, files: Vec<&'static str>) -> Download {
        page::start(job, model, &files);
        Download {
            model: model.to_string(),
            job: job.to_string(),
            files,
            state: State::Loading {
                loaded: 0.0,
                total: None,
            },
        }
    }

    /// Fetch again after a failure.
    pub fn retry(&mut self) {
        page::start(&self.job, &self.model, &self.files);
        self.state = State::Loading {
            loaded: 0.0,
            total: None,
        };
    }

    /// Update the state; once everything has arrived the bytes are handed to the zoo and the state
    /// is `Done`.
    pub fn poll(&mut self) -> &State {
        if let State::Loading { .. } = self.state {
            self.state = page::state(&self.job);
            if self.state == State::Done {
                for f in &self.files {
                    match page::take(&self.job, f) {
                        Some(bytes) => zoo::provide(&self.model, f, bytes),
                        None => {
                            self.state = State::Failed(format!("{}/{f} arrived empty", self.model));
                            break;
                        }
                    }
                }
            }
        }
        &self.state
    }

    /// One line for the UI and the status JSON.
    pub fn describe(&self) -> String {
        let mb = |b: f64| b / 1e6;
        match &self.state {
            State::Loading {
                loaded,
                total: Some(t),
            } if *t > 0.0 => format!(
                "downloading {}: {:.1} of {:.1} MB ({:.0} %)",
                self.model,
                mb(*loaded),
                mb(*t),
                100.0 * loaded / t
            ),
            State::Loading { loaded, .. } => {
                format!("downloading {}: {:.1} MB", self.model, mb(*loaded))
            }
            State::Done => format!("{} downloaded", self.model),
            State::Failed(e) => format!("could not download {}: {e}", self.model),
        }
    }

    /// Fraction done, when the size is known.
    pub fn fraction(&self) -> Option<f32> {
        match &self.state {
            State::Loading {
                loaded,
                total: Some(t),
            } if *t > 0.0 => Some((loaded / t) as f32),
            State::Done => Some(1.0),
            _ => None,
        }
    }
}

/// The page's loader, `window.diffscopeModels` (see `index.html`).
#[cfg(target_arch = "wasm32")]
mod page {
    use super::State;
    use wasm_bindgen::{JsCast, JsValue};

    fn loader() -> Option<JsValue> {
        let w = web_sys::window()?;
        js_sys::Reflect::get(&w, &"diffscopeModels".into())
            .ok()
            .filter(|v| v.is_object())
    }

    fn call(name: &str, args: &[JsValue]) -> Result<JsValue, String> {
        let l = loader().ok_or("the page has no model loader (window.diffscopeModels)")?;
        let f: js_sys::Function = js_sys::Reflect::get(&l, &name.into())
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| format!("the page's model loader has no {name}()"))?;
        let arr = js_sys::Array::new();
        for a in args {
            arr.push(a);
        }
        f.apply(&l, &arr).map_err(|e| format!("{e:?}"))
    }

    pub fn start(job: &str, model: &str, files: &[&str]) {
        let list = js_sys::Array::new();
        for f in files {
            list.push(&JsValue::from_str(f));
        }
        if let Err(e) = call("start", &[model.into(), list.into(), job.into()]) {
            log::error!("{e}");
        }
    }

    pub fn state(job: &str) -> State {
        let s = match call("state", &[job.into()]) {
            Ok(s) => s,
            Err(e) => return State::Failed(e),
        };
        let get = |k: &str| js_sys::Reflect::get(&s, &k.into()).ok();
        if let Some(e) = get("error").and_then(|v| v.as_string()) {
            return State::Failed(e);
        }
        if get("done").and_then(|v| v.as_bool()) == Some(true) {
            return State::Done;
        }
        State::Loading {
            loaded: get("loaded").and_then(|v| v.as_f64()).unwrap_or(0.0),
            total: get("total").and_then(|v| v.as_f64()),
        }
    }

    pub fn take(job: &str, file: &str) -> Option<Vec<u8>> {
        let v = call("take", &[job.into(), file.into()]).ok()?;
        v.dyn_into::<js_sys::Uint8Array>().ok().map(|a| a.to_vec())
    }
}

/// Natively every shipped file is embedded: a download is never started, and one would fail.
#[cfg(not(target_arch = "wasm32"))]
mod page {
    use super::State;

    pub fn start(_job: &str, _model: &str, _files: &[&str]) {}

    pub fn state(_job: &str) -> State {
        State::Failed("shipped models are embedded in the native app".into())
    }

    pub fn take(_job: &str, _file: &str) -> Option<Vec<u8>> {
        None
    }
}
