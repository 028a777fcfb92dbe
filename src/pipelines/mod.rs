//! Runnable models: a network from `crate::models` paired with its process from `crate::process`, its
//! data and its card — the layer the CLI, the app and the tests run. One folder per family, each with
//! the model (loading from the zoo, a folder or dropped files) and its `run` (the reverse loop: a
//! step-by-step run the app drives frame by frame, and a blocking `sample` for the CLI and the tests
//! that checks the device after every step).

pub mod gaussian;
pub mod graph;
pub mod sequence;
pub mod zoo;

/// What a model loaded from the folder `dir` is called: the folder's name.
#[cfg(not(target_arch = "wasm32"))]
fn folder_name(dir: &std::path::Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}
