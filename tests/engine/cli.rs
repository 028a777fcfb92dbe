//! The `diffscope` binary: headless sampling works end to end, and nonsense arguments get a one-line
//! error and a non-zero exit code, never a panic.

use diffscope::weights::Weights;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_diffscope"))
        .args(args)
        .output()
        .expect("run diffscope");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{args:?} panicked: {text}");
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn sample_writes_safetensors_and_png() {
    let dir = std::env::temp_dir().join(format!("diffscope-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let st = dir.join("s.safetensors");
    let (code, text) = run(&[
        "sample",
        "--model",
        "toy2d-mlp",
        "--n",
        "8",
        "--sampler",
        "ddim",
        "--steps",
        "4",
        "--label",
        "3",
        "--out",
        st.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let mut w = Weights::from_file(&st).unwrap();
    assert_eq!(w.take("samples", &[8, 2]).unwrap().data.len(), 16);
    assert_eq!(w.take_ints("labels").unwrap().1, vec![3; 8]);
    let png = dir.join("s.png");
    let (code, text) = run(&[
        "sample",
        "--model",
        "toy2d-mlp",
        "--n",
        "8",
        "--sampler",
        "ddim",
        "--steps",
        "2",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn nonsense_arguments_are_clear_errors() {
    let (code, text) = run(&["frobnicate"]);
    assert_eq!(code, 2, "{text}");
    let (code, text) = run(&[
        "sample",
        "--model",
        "no-such-model",
        "--out",
        "/tmp/x.safetensors",
    ]);
    assert_eq!(code, 1);
    assert!(
        text.contains("toy2d-mlp"),
        "should list the shipped models: {text}"
    );
    let (code, text) = run(&["sample", "--model", "toy2d-mlp", "--out", "/tmp/x.txt"]);
    assert_eq!(code, 1);
    assert!(text.contains(".safetensors or .png"), "{text}");
    let (code, text) = run(&[
        "sample",
        "--model",
        "toy2d-mlp",
        "--label",
        "99",
        "--out",
        "/tmp/x.png",
    ]);
    assert_eq!(code, 1);
    assert!(text.contains("--label 99 is out of range"), "{text}");
    let (code, text) = run(&[
        "sample",
        "--model",
        "toy2d-mlp",
        "--n",
        "0",
        "--out",
        "/tmp/x.png",
    ]);
    assert_eq!(code, 1);
    assert!(text.contains("--n 0"), "{text}");
    let (code, _) = run(&["sample", "--out", "/tmp/x.png"]);
    assert_eq!(code, 2, "a model is required");
    let (code, text) = run(&[
        "forward",
        "--model",
        "toy2d-mlp",
        "--inputs",
        "/nonexistent.safetensors",
        "--out",
        "/tmp/o.safetensors",
    ]);
    assert_eq!(code, 1);
    assert!(text.contains("/nonexistent.safetensors"), "{text}");
    let (code, text) = run(&["--adapter", "no-such-gpu", "info"]);
    assert_eq!(code, 1);
    assert!(text.contains("no-such-gpu"), "{text}");
}

/// `bench --steps-only` times real models through the product's step: one submission and no new
/// buffers per step once warm, for the FiLM-MLP and for a UNet folder given by `--model-dir`.
#[test]
fn bench_times_model_steps_from_a_model_dir() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ddim_trajectory");
    let out = Command::new(env!("CARGO_BIN_EXE_diffscope"))
        .args(["bench", "--quick", "--steps-only", "--json", "--model-dir", dir])
        .output()
        .expect("run diffscope");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = v["model_steps"].as_array().unwrap();
    let names: Vec<&str> = steps
        .iter()
        .map(|s| s["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["toy2d-mlp", "ddim_trajectory", "ddim_trajectory"]);
    for s in steps {
        assert!(s["ms_per_step"].as_f64().unwrap() > 0.0, "{s}");
        assert_eq!(s["per_step"]["submissions"], 1, "{s}");
        assert_eq!(s["per_step"]["buffers_created"], 0, "{s}");
        assert!(s["per_step"]["dispatches"].as_u64().unwrap() > 10, "{s}");
    }
    assert!(v["kernels"].is_null());
}
