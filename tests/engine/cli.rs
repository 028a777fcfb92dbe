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

/// A tiny DiGress folder: the transformer fixture's random weights, T = 4, up to 6 nodes, a few
/// planar train/test graphs.
fn tiny_digress(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let fx = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/digress/transformer"
    );
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{fx}/config.json")).unwrap())
            .unwrap();
    let extra = serde_json::json!({
        "architecture": "digress_graph_transformer", "diffusion_steps": 4, "noise_schedule": "cosine",
        "transition": "marginal", "x_marginals": [1.0], "e_marginals": [0.6, 0.4], "max_n_nodes": 6,
        "node_count_hist": [0.0, 0.0, 0.0, 0.0, 0.5, 0.25, 0.25], "extra_features": "all",
        "dataset": "planar"
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(
        format!("{fx}/model.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    // Train: a 4-cycle and a triangle with a tail; test: a 5-path and K4.
    let ds = r#"{"train": [[4, [[0,1],[1,2],[2,3],[0,3]]], [4, [[0,1],[1,2],[0,2],[2,3]]]],
        "val": [], "test": [[5, [[0,1],[1,2],[2,3],[3,4]]], [4, [[0,1],[0,2],[0,3],[1,2],[1,3],[2,3]]]]}"#;
    std::fs::write(dir.join("dataset.json"), ds).unwrap();
}

#[test]
fn graph_sampling_and_eval_end_to_end() {
    let tmp = std::env::temp_dir().join(format!("diffscope-cli-graph-{}", std::process::id()));
    let model = tmp.join("tiny");
    tiny_digress(&model);
    let m = model.to_str().unwrap();
    let out = tmp.join("g.json");
    let traj = tmp.join("t.json");
    let (code, text) = run(&[
        "sample",
        "--model-dir",
        m,
        "--n",
        "3",
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
        "--trajectory",
        traj.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let graphs: Vec<diffscope::models::digress::Graph> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(graphs.len(), 3);
    assert!(
        graphs.iter().all(|g| (4..=6).contains(&g.num_nodes)),
        "{graphs:?}"
    );
    let frames: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&traj).unwrap()).unwrap();
    assert_eq!(
        frames.as_array().unwrap().len(),
        4,
        "one frame per reverse step"
    );

    let (code, text) = run(&[
        "eval-graphs",
        "--model-dir",
        m,
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{text}");
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["generated"], 3);
    assert_eq!(r["reference"], 2);
    // The test set's path is connected and planar, K4 too: both valid.
    assert_eq!(r["reference_valid"], 1.0);

    // A known file: the train 4-cycle again (not novel), K4 twice (a duplicate), and a 5-star.
    let known = tmp.join("known.json");
    std::fs::write(
        &known,
        r#"[{"num_nodes":4,"node_classes":[0,0,0,0],"edges":[[0,1,1],[1,2,1],[2,3,1],[0,3,1]]},
            {"num_nodes":4,"node_classes":[0,0,0,0],"edges":[[0,1,1],[0,2,1],[0,3,1],[1,2,1],[1,3,1],[2,3,1]]},
            {"num_nodes":4,"node_classes":[0,0,0,0],"edges":[[3,1,1],[0,2,1],[0,3,1],[1,2,1],[1,0,1],[2,3,1]]},
            {"num_nodes":5,"node_classes":[0,0,0,0,0],"edges":[[0,1,1],[0,2,1],[0,3,1],[0,4,1]]}]"#,
    )
    .unwrap();
    let (code, text) = run(&[
        "eval-graphs",
        "--model-dir",
        m,
        known.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{text}");
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["vun"]["unique"], 0.75);
    assert_eq!(r["vun"]["unique_novel"], 0.5);
    assert_eq!(r["vun"]["vun"], 0.5);
    // Generated K4 and the path-like test set share no degree histogram: a positive MMD².
    assert!(r["mmd"]["degree"].as_f64().unwrap() > 0.0);

    // Bad input files are one-line errors naming the problem.
    for (body, want) in [
        (
            r#"[{"num_nodes":3,"node_classes":[0,0,0],"edges":[[1,1,1]]}]"#,
            "self-loop",
        ),
        (
            r#"[{"num_nodes":3,"node_classes":[0,0,0],"edges":[[0,1,1],[1,0,1]]}]"#,
            "listed twice",
        ),
        (
            r#"[{"num_nodes":9,"node_classes":[0,0,0,0,0,0,0,0,0],"edges":[]}]"#,
            "supports 1 to 6",
        ),
        (
            r#"[{"num_nodes":3,"node_classes":[0,0,0],"edges":[[0,1,2]]}]"#,
            "out of range",
        ),
        (r#"{"graphs": 1}"#, "JSON list of graphs"),
        ("[]", "no graphs"),
    ] {
        std::fs::write(&known, body).unwrap();
        let (code, text) = run(&["eval-graphs", "--model-dir", m, known.to_str().unwrap()]);
        assert_ne!(code, 0);
        assert!(text.contains(want), "{body}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{text}");
    }
    let (code, text) = run(&["eval-graphs", "--model", "no-such-model", "x.json"]);
    assert_ne!(code, 0);
    assert!(text.contains("no shipped graph model"), "{text}");
    std::fs::remove_dir_all(&tmp).ok();
}
