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
fn every_sampler_samples_and_init_sets_the_batch() {
    let dir = std::env::temp_dir().join(format!("diffscope-cli-samplers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let init = dir.join("init.safetensors");
    std::fs::write(
        &init,
        st_file(&[("x", vec![3, 2], vec![0.5, -1.0, 0.25, 2.0, -0.5, 1.5])]),
    )
    .unwrap();
    for sampler in [
        "ddpm",
        "ddim",
        "dpm++2m",
        "dpm++2m-sde",
        "euler",
        "euler-a",
        "heun",
        "unipc",
        "pndm",
        "plms",
    ] {
        let out = dir.join(format!("{sampler}.safetensors"));
        let mut args = vec![
            "sample",
            "--model",
            "toy2d-mlp",
            "--sampler",
            sampler,
            "--steps",
            "6",
            "--init",
            init.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if matches!(sampler, "dpm++2m" | "euler" | "heun" | "unipc") {
            args.push("--karras");
        }
        let (code, text) = run(&args);
        assert_eq!(code, 0, "{sampler}: {text}");
        // --n defaults to the batch of --init.
        let mut w = Weights::from_file(&out).unwrap();
        let x = w.take("samples", &[3, 2]).unwrap().data;
        assert!(x.iter().all(|v| v.is_finite()), "{sampler}: {x:?}");
        assert!(
            text.contains(&format!("{sampler} steps")),
            "{sampler}: {text}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A score-SDE folder (NCSN++ UNet, ScoreSdeVeScheduler) samples with sde-ve unless told otherwise,
/// refuses the other samplers, and `forward` feeds it float σ whatever the folder's scheduler.
#[test]
fn a_score_sde_folder_samples_with_its_own_sampler() {
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/unet_ncsnpp_like"
    );
    let dir = std::env::temp_dir().join(format!("diffscope-cli-ve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("ve.safetensors");
    let (code, text) = run(&[
        "--backend",
        "cpu",
        "sample",
        "--model-dir",
        model,
        "--n",
        "2",
        "--steps",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("4 sde-ve steps (8 model evaluations)"),
        "{text}"
    );
    let x = Weights::from_file(&out)
        .unwrap()
        .take("samples", &[2, 3, 8, 8])
        .unwrap()
        .data;
    assert!(x.iter().all(|v| v.is_finite()));
    let (code, text) = run(&[
        "sample",
        "--model-dir",
        model,
        "--sampler",
        "euler",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("samples with sde-ve"), "{text}");
    let io = format!("{model}/io.safetensors");
    let fo = dir.join("forward.safetensors");
    let (code, text) = run(&[
        "--backend",
        "cpu",
        "forward",
        "--model-dir",
        model,
        "--inputs",
        &io,
        "--out",
        fo.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let got = Weights::from_file(&fo)
        .unwrap()
        .take("out", &[2, 3, 8, 8])
        .unwrap()
        .data;
    let want = Weights::from_file(io.as_ref())
        .unwrap()
        .take("out", &[2, 3, 8, 8])
        .unwrap()
        .data;
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        .sqrt()
        / want.iter().map(|b| (*b as f64).powi(2)).sum::<f64>().sqrt();
    assert!(err < 1e-5, "forward: relative L2 {err:e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// One bad invocation: arguments, the exit code it must give (2: clap's usage errors; 1: everything
/// diffscope checks itself) and words the message must contain.
struct Bad<'a> {
    args: Vec<std::ffi::OsString>,
    code: i32,
    needles: &'a [&'a str],
    no_display: bool,
}

fn bad<'a>(args: &[&str], code: i32, needles: &'a [&'a str]) -> Bad<'a> {
    Bad {
        args: args.iter().map(|a| a.into()).collect(),
        code,
        needles,
        no_display: false,
    }
}

fn st_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.2.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.1.clone(), b)
                .unwrap();
            (t.0.to_string(), v)
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn every_bad_invocation_is_a_clear_error_with_a_nonzero_exit() {
    let dir = std::env::temp_dir().join(format!("diffscope-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_string_lossy().to_string();
    let toy = diffscope::pipelines::gaussian::shipped("toy2d-mlp").unwrap();
    // Model folders, each broken in one way.
    let folder = |name: &str, files: &[(&str, &[u8])]| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (f, b) in files {
            std::fs::write(d.join(f), b).unwrap();
        }
        d.to_string_lossy().to_string()
    };
    let (cfg, sch, w) = (
        toy.config.as_bytes(),
        toy.process.as_bytes(),
        &*toy.weights().unwrap(),
    );
    let md_noweights = folder(
        "noweights",
        &[("config.json", cfg), ("scheduler_config.json", sch)],
    );
    let md_pickle = folder(
        "pickle",
        &[
            ("config.json", cfg),
            ("scheduler_config.json", sch),
            ("pytorch_model.bin", b"PK"),
        ],
    );
    let md_nosched = folder("nosched", &[("config.json", cfg), ("model.safetensors", w)]);
    let md_truncated = folder(
        "truncated",
        &[
            ("config.json", cfg),
            ("scheduler_config.json", sch),
            ("model.safetensors", &w[..w.len() / 2]),
        ],
    );
    let md_two = folder(
        "two",
        &[
            ("config.json", cfg),
            ("scheduler_config.json", sch),
            ("a.safetensors", w),
            ("b.safetensors", w),
        ],
    );
    let huge = toy.config.replace("\"dim\": 128", "\"dim\": 1099511627776");
    assert_ne!(huge, toy.config);
    let md_hugecfg = folder(
        "hugecfg",
        &[
            ("config.json", huge.as_bytes()),
            ("scheduler_config.json", sch),
            ("model.safetensors", w),
        ],
    );
    std::fs::write(
        p("init_wrong.safetensors"),
        st_file(&[("x", vec![3, 2], vec![0.0; 6])]),
    )
    .unwrap();
    std::fs::write(
        p("init_nan.safetensors"),
        st_file(&[("x", vec![4, 2], vec![f32::NAN; 8])]),
    )
    .unwrap();
    std::fs::write(p("text.safetensors"), b"hello, not safetensors").unwrap();
    std::fs::write(
        p("in_nox.safetensors"),
        st_file(&[("t", vec![2], vec![1.0, 2.0])]),
    )
    .unwrap();
    std::fs::write(
        p("in_badx.safetensors"),
        st_file(&[
            ("x", vec![2, 3], vec![0.0; 6]),
            ("t", vec![2], vec![1.0, 2.0]),
        ]),
    )
    .unwrap();
    std::fs::write(
        p("in_badt.safetensors"),
        st_file(&[
            ("x", vec![2, 2], vec![0.0; 4]),
            ("t", vec![3], vec![1.0; 3]),
        ]),
    )
    .unwrap();
    let out_png = p("o.png");
    let out_st = p("o.safetensors");
    let s = |v: &str| v.to_string();
    let sample = |extra: &[String]| -> Vec<String> {
        let mut v: Vec<String> = ["sample", "--model", "toy2d-mlp"]
            .iter()
            .map(|x| s(x))
            .collect();
        v.extend_from_slice(extra);
        v
    };
    let owned: Vec<(Vec<String>, i32, &[&str])> = vec![
        (vec![s("frobnicate")], 2, &["unrecognized subcommand"]),
        (vec![s("sample")], 2, &["--model"]),
        (
            vec![s("sample"), s("--model"), s("toy2d-mlp")],
            2,
            &["--out"],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s("toy2d-mlp"),
                s("--model-dir"),
                s("/tmp"),
                s("--out"),
                out_png.clone(),
            ],
            2,
            &["cannot be used with"],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s("no-such-model"),
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["no-such-model", "toy2d-mlp"],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s(""),
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["no shipped model"],
        ),
        (
            sample(&[s("--out"), p("o.txt")]),
            1,
            &[".safetensors or .png"],
        ),
        (
            sample(&[s("--clip-sample"), s("maybe"), s("--out"), out_png.clone()]),
            2,
            &["--clip-sample", "on", "off"],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s("words-absorb"),
                s("--clip-sample"),
                s("off"),
                s("--out"),
                p("w.txt"),
            ],
            1,
            &["--clip-sample is for Gaussian models"],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s("promoter-multinomial"),
                s("--unmask"),
                s("confident"),
                s("--out"),
                p("d.fasta"),
            ],
            1,
            &["needs an absorbing model", "promoter-multinomial"],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s("words-absorb"),
                s("--unmask"),
                s("sideways"),
                s("--out"),
                p("w.txt"),
            ],
            1,
            &[
                "un-masking order",
                "sideways",
                "random, confident or annealed",
            ],
        ),
        (
            sample(&[s("--unmask"), s("confident"), s("--out"), out_png.clone()]),
            1,
            &["--padding are for sequence"],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s("words-absorb"),
                s("--profile"),
                s("--out"),
                p("w.txt"),
            ],
            1,
            &["--profile times a Gaussian model's GPU kernels"],
        ),
        (
            sample(&[s("--padding"), s("free"), s("--out"), out_png.clone()]),
            1,
            &["--padding are for sequence"],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s("words-absorb"),
                s("--padding"),
                s("middle"),
                s("--out"),
                p("w.txt"),
            ],
            1,
            &["padding \"middle\"", "suffix or free"],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s("promoter-multinomial"),
                s("--padding"),
                s("suffix"),
                s("--out"),
                p("d.fasta"),
            ],
            1,
            &[
                "--padding is for D3PM models with a pad class",
                "promoter-multinomial",
            ],
        ),
        (
            vec![
                s("sample"),
                s("--model"),
                s("planar-digress"),
                s("--steps"),
                s("5"),
                s("--out"),
                p("g.json"),
            ],
            1,
            &["graph models sample ancestrally", "--steps"],
        ),
        (
            sample(&[s("--out"), p("noext")]),
            1,
            &[".safetensors or .png"],
        ),
        (sample(&[s("--out"), s("")]), 2, &["--out"]),
        (
            sample(&[s("--out"), s("/nonexistent-dir/o.png")]),
            1,
            &["/nonexistent-dir", "does not exist"],
        ),
        (
            sample(&[s("--out"), p("o.png"), s("--trajectory"), p("t.png")]),
            1,
            &["--trajectory", ".safetensors"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--trajectory"),
                s("/nonexistent-dir/t.safetensors"),
            ]),
            1,
            &["/nonexistent-dir"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--n"), s("0")]),
            1,
            &["--n 0"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--n"), s("100000")]),
            1,
            &["--n 100000"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--n"), s("abc")]),
            2,
            &["--n"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--n"), s("-5")]),
            2,
            &["-5"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--n"),
                s("99999999999999999999999"),
            ]),
            2,
            &["--n"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--steps"), s("0")]),
            1,
            &["0 sampling steps", "1..=200"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--steps"), s("201")]),
            1,
            &["201 sampling steps"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--sampler"), s("lms")]),
            2,
            &["euler", "ddpm"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--eta"), s("nan")]),
            1,
            &["--eta NaN"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--eta=-1")]),
            1,
            &["--eta -1"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--cfg"), s("inf")]),
            1,
            &["--cfg inf"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--cfg"), s("1e40")]),
            1,
            &["--cfg inf"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--cfg=-2")]),
            1,
            &["--cfg -2"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--label"), s("99")]),
            1,
            &["--label 99 is out of range", "two_moons"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--label"), s("-1")]),
            2,
            &["-1"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--seed"),
                s("18446744073709551616"),
            ]),
            2,
            &["--seed"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--init"),
                s("/nonexistent.safetensors"),
            ]),
            1,
            &["/nonexistent.safetensors", "could not read"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--init"),
                dir.to_string_lossy().to_string(),
            ]),
            1,
            &["is a directory"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--init"),
                p("text.safetensors"),
            ]),
            1,
            &["text.safetensors", "header"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--n"),
                s("16"),
                s("--init"),
                p("init_wrong.safetensors"),
            ]),
            1,
            &["--init", "\"x\"", "[3, 2]", "[16, 2]"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--sampler"),
                s("ddim"),
                s("--karras"),
            ]),
            1,
            &["--karras", "ddim", "euler"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--sampler"),
                s("euler"),
                s("--eta"),
                s("0.5"),
            ]),
            1,
            &["--eta", "ddim"],
        ),
        (
            sample(&[s("--out"), out_png.clone(), s("--sampler"), s("dpm++3m")]),
            2,
            &["dpm++3m", "dpm++2m"],
        ),
        (
            sample(&[
                s("--out"),
                out_png.clone(),
                s("--init"),
                p("init_nan.safetensors"),
            ]),
            1,
            &["\"x\"", "non-finite"],
        ),
        (
            vec![
                s("sample"),
                s("--model-dir"),
                s("/nonexistent-model"),
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["/nonexistent-model"],
        ),
        (
            vec![
                s("sample"),
                s("--model-dir"),
                p("text.safetensors"),
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["text.safetensors"],
        ),
        (
            vec![
                s("sample"),
                s("--model-dir"),
                md_noweights,
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["no .safetensors weights"],
        ),
        (
            vec![
                s("sample"),
                s("--model-dir"),
                md_pickle,
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["pickled .bin files are not read"],
        ),
        (
            vec![
                s("sample"),
                s("--model-dir"),
                md_nosched,
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["no scheduler_config.json"],
        ),
        (
            vec![
                s("sample"),
                s("--model-dir"),
                md_truncated,
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["model.safetensors", "truncated"],
        ),
        (
            vec![
                s("sample"),
                s("--model-dir"),
                md_two,
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["2 .safetensors files"],
        ),
        (
            vec![
                s("sample"),
                s("--model-dir"),
                md_hugecfg,
                s("--out"),
                out_png.clone(),
            ],
            1,
            &["\"dim\"", "1099511627776"],
        ),
        (
            vec![
                s("forward"),
                s("--model"),
                s("toy2d-mlp"),
                s("--inputs"),
                s("/nonexistent.safetensors"),
                s("--out"),
                out_st.clone(),
            ],
            1,
            &["/nonexistent.safetensors"],
        ),
        (
            vec![
                s("forward"),
                s("--model"),
                s("toy2d-mlp"),
                s("--inputs"),
                p("in_nox.safetensors"),
                s("--out"),
                out_st.clone(),
            ],
            1,
            &["no tensor \"x\""],
        ),
        (
            vec![
                s("forward"),
                s("--model"),
                s("toy2d-mlp"),
                s("--inputs"),
                p("in_badx.safetensors"),
                s("--out"),
                out_st.clone(),
            ],
            1,
            &["\"x\"", "[2, 3]"],
        ),
        (
            vec![
                s("forward"),
                s("--model"),
                s("toy2d-mlp"),
                s("--inputs"),
                p("in_badt.safetensors"),
                s("--out"),
                out_st.clone(),
            ],
            1,
            &["\"t\"", "[3]"],
        ),
        (
            vec![
                s("forward"),
                s("--model"),
                s("toy2d-mlp"),
                s("--inputs"),
                p("in_badt.safetensors"),
                s("--out"),
                p("o.png"),
            ],
            1,
            &["--out", ".safetensors"],
        ),
        (
            vec![
                s("forward"),
                s("--model"),
                s("toy2d-mlp"),
                s("--inputs"),
                p("in_badt.safetensors"),
                s("--out"),
                s("/nonexistent-dir/o.safetensors"),
            ],
            1,
            &["/nonexistent-dir"],
        ),
        (
            vec![s("--adapter"), s("no-such-gpu"), s("info")],
            1,
            &["no-such-gpu"],
        ),
        (vec![s("info"), s("--bogus")], 2, &["--bogus"]),
        (vec![s("bench"), s("--bogus")], 2, &["--bogus"]),
    ];
    let mut cases: Vec<Bad> = owned
        .iter()
        .map(|(a, c, n)| Bad {
            args: a.iter().map(|x| x.into()).collect(),
            code: *c,
            needles: n,
            no_display: false,
        })
        .collect();
    {
        use std::os::unix::ffi::OsStrExt;
        let mut c = bad(&["sample", "--model"], 2, &["invalid UTF-8"]);
        c.args.push(std::ffi::OsStr::from_bytes(b"toy\xff").into());
        cases.push(c);
    }
    let mut app = bad(&[], 1, &["needs a display", "headless"]);
    app.no_display = true;
    cases.push(app);

    eprintln!("| invocation | exit | message |\n|---|---|---|");
    let mut failures = Vec::new();
    for c in &cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_diffscope"));
        cmd.args(&c.args);
        if c.no_display {
            cmd.env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY")
                .env_remove("WAYLAND_SOCKET");
        }
        let out = cmd.output().expect("run diffscope");
        let err = String::from_utf8_lossy(&out.stderr);
        let shown: Vec<String> = c
            .args
            .iter()
            .map(|a| a.to_string_lossy().replace(&*dir.to_string_lossy(), "$TMP"))
            .collect();
        let first = err
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or("")
            .replace(&*dir.to_string_lossy(), "$TMP");
        eprintln!(
            "| `diffscope {}` | {} | {} |",
            shown.join(" "),
            out.status.code().unwrap_or(-1),
            first.replace('|', "\\|")
        );
        for bad_word in [
            "panicked",
            "RUST_BACKTRACE",
            "stack backtrace",
            "internal error",
        ] {
            if err.contains(bad_word) {
                failures.push(format!("{shown:?}: {bad_word}: {err}"));
            }
        }
        if out.status.code() != Some(c.code) {
            failures.push(format!(
                "{shown:?}: exit {:?}, want {}: {err}",
                out.status.code(),
                c.code
            ));
        }
        for n in c.needles {
            if !err.contains(n) {
                failures.push(format!("{shown:?} should mention {n:?}: {err}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_closed_stdout_is_an_error_not_a_panic() {
    // A pipe whose reading end is closed before the child starts: its first write fails with EPIPE
    // whatever the timing (closing it after spawning raced with a fast child on a busy machine).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_diffscope"))
        .args(["info", "--models"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stdout was closed"), "{err}");
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
    let graphs: Vec<diffscope::process::graph::Graph> =
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

/// `bench --steps-only` times real models through the product's step: on the GPU one submission and
/// no new buffers per step once warm, for the FiLM-MLP and for a UNet folder given by `--model-dir`;
/// on the CPU backend the same rows with the same keys, and no GPU work at all.
#[test]
fn bench_times_model_steps_from_a_model_dir() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ddim_trajectory"
    );
    let bench = |backend: &str| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_diffscope"))
            .args([
                "--backend",
                backend,
                "bench",
                "--quick",
                "--steps-only",
                "--json",
                "--model-dir",
                dir,
            ])
            .output()
            .expect("run diffscope");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (gpu, cpu) = (bench("gpu"), bench("cpu"));
    assert_eq!(gpu["backend"], "gpu");
    assert_eq!(cpu["backend"], "cpu");
    for v in [&gpu, &cpu] {
        let steps = v["model_steps"].as_array().unwrap();
        let names: Vec<&str> = steps.iter().map(|s| s["model"].as_str().unwrap()).collect();
        assert_eq!(names, ["toy2d-mlp", "ddim_trajectory", "ddim_trajectory"]);
        assert!(v["kernels"].is_null());
        for s in steps {
            assert!(s["ms_per_step"].as_f64().unwrap() > 0.0, "{s}");
            let (subs, dispatches) = (&s["per_step"]["submissions"], &s["per_step"]["dispatches"]);
            if v["backend"] == "gpu" {
                assert_eq!(*subs, 1, "{s}");
                assert_eq!(s["per_step"]["buffers_created"], 0, "{s}");
                assert!(dispatches.as_u64().unwrap() > 10, "{s}");
            } else {
                assert_eq!(
                    (subs.as_u64(), dispatches.as_u64()),
                    (Some(0), Some(0)),
                    "{s}"
                );
            }
        }
    }
}

/// A device lost in the middle of a run stops it: every family's CLI sampling fails with exit 1 and a
/// message that says so, and writes no output (a state computed on a lost device would be wrong).
#[test]
fn a_device_lost_mid_run_fails_sampling_in_every_family() {
    let dir = std::env::temp_dir().join(format!("diffscope-lost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (model, file) in [
        ("toy2d-mlp", "points.safetensors"),
        ("words-absorb", "words.txt"),
        ("promoter-multinomial", "dna.fasta"),
        ("planar-digress", "graphs.json"),
    ] {
        let out = dir.join(file);
        let run = Command::new(env!("CARGO_BIN_EXE_diffscope"))
            .env("DIFFSCOPE_LOSE_DEVICE_AFTER", "6")
            // Only a GPU device can be lost (auto may take the CPU backend here).
            .args([
                "--backend",
                "gpu",
                "sample",
                "--model",
                model,
                "--n",
                "2",
                "--out",
            ])
            .arg(&out)
            .output()
            .expect("run diffscope");
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{model}: {err}");
        assert!(err.contains("lost"), "{model}: {err}");
        assert!(!err.contains("panicked"), "{model}: {err}");
        assert!(!out.exists(), "{model}: wrote {} anyway", out.display());
        // The same run without the drill succeeds: the failure above is the lost device's.
        if model == "words-absorb" {
            let ok = Command::new(env!("CARGO_BIN_EXE_diffscope"))
                .args(["sample", "--model", model, "--n", "2", "--out"])
                .arg(&out)
                .output()
                .expect("run diffscope");
            assert!(
                ok.status.success(),
                "{}",
                String::from_utf8_lossy(&ok.stderr)
            );
            assert!(out.exists());
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
