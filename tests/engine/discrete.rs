//! Discrete diffusion against its references (fixtures from tools/fixtures_discrete.py): bionemo-moco
//! 0.0.2.2's D3PM (uniform, absorbing and custom priors; cosine and linear schedules; last_time_idx 0
//! and 1), Hoogeboom's multinomial diffusion, the sequence transformer, and the ELBO of a fixed model
//! on fixed data with the x_t draws injected.

use crate::common::{assert_close, on_each_backend, rel_l2};
use diffscope::models::seq_transformer::SeqTransformer;
use diffscope::nn::Denoiser;
use diffscope::ops::sample::Noise;
use diffscope::ops::transition::X0;
use diffscope::process::discrete::{
    hoogeboom_cosine_alphas, moco_cosine_alphas, moco_linear_alphas, transition_matrix, D3pm,
    DiscretePrior, Multinomial, Process,
};
use diffscope::weights::Weights;
use diffscope::{Device, Error, Tensor};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/discrete");

fn open(name: &str) -> Weights {
    Weights::from_file(format!("{DIR}/{name}").as_ref()).unwrap()
}

fn f32s(w: &mut Weights, name: &str) -> (Vec<usize>, Vec<f32>) {
    let shape = w.shape_of(name).unwrap().to_vec();
    let t = w.take(name, &shape).unwrap();
    (shape, t.data)
}

fn ints(w: &mut Weights, name: &str) -> (Vec<usize>, Vec<u32>) {
    let (s, v) = w.take_ints(name).unwrap();
    (s, v.iter().map(|&x| x as u32).collect())
}

fn upload_f32(g: &Device, w: &mut Weights, name: &str) -> (Tensor, Vec<f32>) {
    let (s, v) = f32s(w, name);
    (Tensor::from_f32(g, &s, &v).unwrap(), v)
}

fn upload_u32(g: &Device, w: &mut Weights, name: &str) -> (Tensor, Vec<u32>) {
    let (s, v) = ints(w, name);
    (Tensor::from_u32(g, &s, &v).unwrap(), v)
}

fn d3pm_for(g: &Device, case: &serde_json::Value, prior: &[f32]) -> D3pm {
    let k = case["K"].as_u64().unwrap() as usize;
    let t = case["T"].as_u64().unwrap() as usize;
    let alphas = match case["schedule"].as_str().unwrap() {
        "cosine" => moco_cosine_alphas(t, 1.0, 0.008),
        _ => moco_linear_alphas(t, 1e-4, 0.02),
    };
    let p = match case["prior"].as_str().unwrap() {
        "uniform" => DiscretePrior::Uniform,
        "absorbing" => DiscretePrior::Absorbing(k - 1),
        _ => DiscretePrior::Custom(prior.to_vec()),
    };
    D3pm::new(
        g,
        k,
        alphas,
        p,
        case["last_time_idx"].as_u64().unwrap() as usize,
    )
    .unwrap()
}

#[test]
fn d3pm_matches_bionemo_moco() {
    on_each_backend(d3pm_matches_bionemo_moco_on);
}

fn d3pm_matches_bionemo_moco_on(g: Device) {
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/d3pm_cases.json")).unwrap())
            .unwrap();
    for (name, case) in cases.as_object().unwrap() {
        let mut w = open(&format!("d3pm_{name}.safetensors"));
        let (_, prior) = f32s(&mut w, "prior");
        let d = d3pm_for(&g, case, &prior);
        let k = d.k;
        let last = d.last_time_idx;

        // Schedules and matrices.
        let (_, alphas) = f32s(&mut w, "alphas");
        assert_close(&format!("{name} alphas"), &d.alphas, &alphas, 0.0, 1e-6);
        let (_, qt) = f32s(&mut w, "Qt");
        let (_, qbar) = f32s(&mut w, "Qt_bar");
        // The app's host-side matrices (heatmaps) against moco's too.
        let host = Process::D3pm(d3pm_for(&g, case, &prior));
        for i in 0..d.nsteps {
            for (bar, want) in [(false, &qt), (true, &qbar)] {
                let (a, pi) = host.transition(i + last, bar).unwrap();
                assert_close(
                    &format!("{name} host Q{}_{i}", if bar { "̄" } else { "" }),
                    &transition_matrix(a, &pi),
                    &want[i * k * k..(i + 1) * k * k],
                    1e-5,
                    1e-6,
                );
            }
            let got = d.matrix(&g, i + last, false).unwrap().to_f32().unwrap();
            assert_close(
                &format!("{name} Q_{i}"),
                &got,
                &qt[i * k * k..(i + 1) * k * k],
                0.0,
                1e-6,
            );
            let got = d.matrix(&g, i + last, true).unwrap().to_f32().unwrap();
            assert_close(
                &format!("{name} Q̄_{i}"),
                &got,
                &qbar[i * k * k..(i + 1) * k * k],
                1e-5,
                1e-6,
            );
        }

        let (_, t) = ints(&mut w, "t");
        let t: Vec<usize> = t.iter().map(|&v| v as usize).collect();
        assert_eq!(t, vec![d.nsteps - 1 + last, d.nsteps / 2 + last, last]);
        let (x0, _) = upload_u32(&g, &mut w, "x0");
        let (xt, _) = upload_u32(&g, &mut w, "xt");
        let (logits, _) = upload_f32(&g, &mut w, "logits");
        let (u, _) = upload_f32(&g, &mut w, "uniforms");

        // Forward process: probabilities and the Gumbel draw with moco's uniforms.
        let (_, want) = f32s(&mut w, "forward_probs");
        let got = d.forward_probs(&x0, &t).unwrap().to_f32().unwrap();
        assert_close(&format!("{name} forward probs"), &got, &want, 1e-5, 1e-6);
        let (_, want) = ints(&mut w, "forward_sample");
        let got = d
            .forward_sample(&x0, &t, Noise::Injected(&u))
            .unwrap()
            .to_u32()
            .unwrap();
        assert_eq!(got, want, "{name} forward sample");

        // Posterior logits at t = T−1, a middle t and t = ℓ (one per batch element).
        let (_, want) = f32s(&mut w, "posterior_logits");
        let got = d
            .posterior_logits(X0::Logits(&logits), &xt, &t)
            .unwrap()
            .to_f32()
            .unwrap();
        assert_close(&format!("{name} posterior logits"), &got, &want, 1e-5, 2e-5);
        let (_, want) = f32s(&mut w, "posterior_logits_ids");
        let got = d
            .posterior_logits(X0::Ids { ids: &x0, k }, &xt, &t)
            .unwrap()
            .to_f32()
            .unwrap();
        assert_close(
            &format!("{name} posterior logits (ids)"),
            &got,
            &want,
            1e-5,
            2e-5,
        );

        // The step with injected uniforms, at τ = 1 and 0.7; the t = ℓ element is an argmax.
        for (key, temp) in [("step", 1.0), ("step_temp07", 0.7)] {
            let (_, want) = ints(&mut w, key);
            let (got, _) = d.step(&logits, &xt, &t, temp, Noise::Injected(&u)).unwrap();
            assert_eq!(got.to_u32().unwrap(), want, "{name} {key}");
            // moco's `step(mask=m)` is this step's draw times m (`x_next * mask`): per position and
            // per batch element.
            let rows = want.len();
            let b = xt.shape()[0];
            for shape in [xt.shape().to_vec(), vec![b]] {
                let n: usize = shape.iter().product();
                let m: Vec<f32> = (0..n)
                    .map(|i| ((i * 7 + 3) % 3 != 0) as u32 as f32)
                    .collect();
                let mt = Tensor::from_f32(&g, &shape, &m).unwrap();
                let (got, _) = d
                    .step_masked(&logits, &xt, &t, temp, Noise::Injected(&u), Some(&mt))
                    .unwrap();
                let masked: Vec<u32> = (0..rows)
                    .map(|r| want[r] * m[r / (rows / n)] as u32)
                    .collect();
                assert!(
                    masked.iter().zip(&want).any(|(a, b)| a != b),
                    "the mask bites"
                );
                assert_eq!(
                    got.to_u32().unwrap(),
                    masked,
                    "{name} {key} masked {shape:?}"
                );
            }
        }

        // The loss, without and with the variational term.
        for (key, vb) in [("loss_vb0", 0.0), ("loss_vb05", 0.5)] {
            let (_, want) = f32s(&mut w, key);
            let got = d.loss(&logits, &x0, &xt, &t, vb).unwrap();
            assert_close(&format!("{name} {key}"), &got, &want, 1e-5, 1e-5);
        }
    }
}

#[test]
fn multinomial_matches_hoogeboom() {
    on_each_backend(multinomial_matches_hoogeboom_on);
}

fn multinomial_matches_hoogeboom_on(g: Device) {
    let mut w = open("multinomial.safetensors");
    let m = Multinomial::new(4, 100).unwrap();
    let (_, la) = f32s(&mut w, "log_alpha");
    let (_, lca) = f32s(&mut w, "log_cumprod_alpha");
    let got: Vec<f32> = m.alphas.iter().map(|a| a.ln()).collect();
    assert_close("log α", &got, &la, 1e-6, 1e-7);
    let got: Vec<f32> = m.alpha_bars.iter().map(|a| a.ln()).collect();
    assert_close("log ᾱ", &got, &lca, 1e-6, 1e-6);
    // ANCHOR_MATH §7.1 goldens.
    let a = hoogeboom_cosine_alphas(100, 0.008);
    assert!((a[0] - 0.99968431).abs() < 1e-8 && (a[99] - 0.031622777).abs() < 1e-8);
    assert!((m.alpha_bars[99] - 4.92805e-4).abs() < 1e-8);
    let _ = f32s(&mut w, "log_1_min_alpha");
    let _ = f32s(&mut w, "log_1_min_cumprod_alpha");

    let (_, t) = ints(&mut w, "t");
    let t: Vec<usize> = t.iter().map(|&v| v as usize).collect();
    let (x0, _) = upload_u32(&g, &mut w, "x0");
    let (xt, _) = upload_u32(&g, &mut w, "xt");
    let (logits, _) = upload_f32(&g, &mut w, "logits");
    let (u, _) = upload_f32(&g, &mut w, "uniforms");

    let (_, want) = f32s(&mut w, "q_pred");
    let got: Vec<f32> = m
        .forward_probs(&x0, &t)
        .unwrap()
        .to_f32()
        .unwrap()
        .iter()
        .map(|p| p.ln())
        .collect();
    assert_close("q_pred", &got, &want, 1e-5, 1e-5);
    // The host-side Q̄_t (the app's views): row x0 of Q̄_t is q(x_t | x0).
    let host = Process::Multinomial(Multinomial::new(4, 100).unwrap());
    let ids = x0.to_u32().unwrap();
    let per = ids.len() / t.len();
    let mut from_host = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let (a, pi) = host.transition(t[i / per], true).unwrap();
        let q = transition_matrix(a, &pi);
        from_host.extend(
            q[id as usize * 4..id as usize * 4 + 4]
                .iter()
                .map(|p| p.ln()),
        );
    }
    assert_close("host Q̄_t rows", &from_host, &want, 1e-5, 1e-5);
    let (_, want) = f32s(&mut w, "q_posterior");
    let got = m
        .posterior_log(X0::Ids { ids: &x0, k: 4 }, &xt, &t)
        .unwrap()
        .to_f32()
        .unwrap();
    // Entries that are log(≈1e-30) in both agree only to a few digits of an irrelevant number.
    let (gc, wc): (Vec<f32>, Vec<f32>) = got
        .iter()
        .zip(&want)
        .map(|(&a, &b)| (a.max(-60.0), b.max(-60.0)))
        .unzip();
    assert_close("q_posterior", &gc, &wc, 1e-5, 2e-5);
    let (_, want) = f32s(&mut w, "p_pred");
    let got = m
        .posterior_log(X0::Logits(&logits), &xt, &t)
        .unwrap()
        .to_f32()
        .unwrap();
    assert_close("p_pred", &got, &want, 1e-5, 2e-5);
    let (_, want) = ints(&mut w, "step");
    let (got, _) = m.step(&logits, &xt, &t, 1.0, Noise::Injected(&u)).unwrap();
    assert_eq!(got.to_u32().unwrap(), want, "multinomial step");
}

fn model(g: &Device, name: &str) -> SeqTransformer {
    let cfgs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DIR}/model_configs.json")).unwrap(),
    )
    .unwrap();
    let cfg = SeqTransformer::parse_config(&cfgs[name].to_string(), "model_configs.json").unwrap();
    SeqTransformer::load(g, cfg, open(&format!("model_{name}.safetensors"))).unwrap()
}

#[test]
fn seq_transformer_matches_pytorch() {
    on_each_backend(seq_transformer_matches_pytorch_on);
}

fn seq_transformer_matches_pytorch_on(g: Device) {
    for name in ["mt", "d3"] {
        let m = model(&g, name);
        let mut io = open(&format!("model_{name}_io.safetensors"));
        let (x, _) = upload_u32(&g, &mut io, "x");
        let (t, _) = upload_f32(&g, &mut io, "t");
        let (_, want) = f32s(&mut io, "logits");
        let got = m.forward(&x, &t, None).unwrap().to_f32().unwrap();
        let err = rel_l2(&got, &want);
        assert!(err <= 1e-5, "{name}: relative L2 error {err:e}");
        assert_close(&format!("{name} logits"), &got, &want, 1e-4, 1e-4);
    }
}

#[test]
fn elbo_matches_pytorch_with_injected_draws() {
    on_each_backend(elbo_matches_pytorch_with_injected_draws_on);
}

fn elbo_matches_pytorch_with_injected_draws_on(g: Device) {
    for name in ["mt", "d3"] {
        let m = model(&g, name);
        let process = if name == "mt" {
            Process::Multinomial(Multinomial::new(4, 100).unwrap())
        } else {
            let k = 6;
            Process::D3pm(
                D3pm::new(
                    &g,
                    k,
                    moco_cosine_alphas(10, 1.0, 0.008),
                    DiscretePrior::Absorbing(k - 1),
                    0,
                )
                .unwrap(),
            )
        };
        let mut io = open(&format!("model_{name}_io.safetensors"));
        let (x0, _) = upload_u32(&g, &mut io, "x0");
        let (s, xts) = ints(&mut io, "xts");
        let per = s[1] * s[2];
        let inj: Vec<Tensor> = (0..s[0])
            .map(|i| Tensor::from_u32(&g, &s[1..], &xts[i * per..(i + 1) * per]).unwrap())
            .collect();
        let (ts, want) = f32s(&mut io, "elbo_terms");
        let terms = process.elbo_terms(&m, &x0, 0, Some(&inj)).unwrap();
        assert_eq!(terms.len(), ts[0]);
        for (i, row) in terms.iter().enumerate() {
            for (b, &v) in row.iter().enumerate() {
                let w = want[i * ts[1] + b] as f64;
                assert!(
                    (v - w).abs() <= 1e-4 * w.abs() + 2e-5,
                    "{name} ELBO term {i} sequence {b}: got {v}, want {w}"
                );
            }
        }
        // The step terms with every row at its own timestep (the app's loss curve): the first
        // sequence at steps 1..T−1 in one batch, each against the reference's term.
        let l = s[2];
        let (_, x0_host) = {
            let mut io = open(&format!("model_{name}_io.safetensors"));
            ints(&mut io, "x0")
        };
        let steps: Vec<usize> = (1..s[0]).collect();
        let rows = steps.len();
        let x0_rows: Vec<u32> = (0..rows).flat_map(|_| x0_host[..l].to_vec()).collect();
        let xt_rows: Vec<u32> = steps
            .iter()
            .flat_map(|&i| xts[i * per..i * per + l].to_vec())
            .collect();
        let x0_rows = Tensor::from_u32(&g, &[rows, l], &x0_rows).unwrap();
        let xt_rows = Tensor::from_u32(&g, &[rows, l], &xt_rows).unwrap();
        let kl = process
            .step_kl(&m, &x0_rows, &xt_rows, &steps)
            .unwrap()
            .to_f32()
            .unwrap();
        for (r, &i) in steps.iter().enumerate() {
            let v: f64 = kl[r * l..(r + 1) * l].iter().map(|&x| x as f64).sum();
            let w = want[i * ts[1]] as f64;
            assert!(
                (v - w).abs() <= 1e-4 * w.abs() + 2e-5,
                "{name} step term {i} with per-row timesteps: got {v}, want {w}"
            );
        }
        for b in 0..ts[1] {
            let got: f64 = terms.iter().map(|r| r[b]).sum();
            let w: f64 = (0..ts[0]).map(|i| want[i * ts[1] + b] as f64).sum();
            assert!(
                (got - w).abs() <= 1e-4 * w.abs(),
                "{name} ELBO of sequence {b}: got {got}, want {w}"
            );
        }
    }
}

#[test]
fn discrete_rejects_bad_input() {
    on_each_backend(discrete_rejects_bad_input_on);
}

fn discrete_rejects_bad_input_on(g: Device) {
    let d = D3pm::new(
        &g,
        5,
        moco_cosine_alphas(10, 1.0, 0.008),
        DiscretePrior::Uniform,
        0,
    )
    .unwrap();
    let x = Tensor::from_u32(&g, &[2, 3], &[0; 6]).unwrap();
    assert!(
        matches!(d.forward_probs(&x, &[10]), Err(Error::Invalid(m)) if m.contains("outside 0..10")),
        "t past the schedule"
    );
    assert!(
        matches!(d.forward_probs(&x, &[1, 2, 3]), Err(Error::Invalid(m)) if m.contains("3 timesteps for a batch of 2")),
        "3 timesteps for 2"
    );
    let logits = Tensor::from_f32(&g, &[2, 3, 5], &[0.0; 30]).unwrap();
    assert!(
        matches!(d.step(&logits, &x, &[3], 0.0, Noise::None), Err(Error::Invalid(m)) if m.contains("temperature must be positive")),
        "τ = 0"
    );
    assert!(
        matches!(d.step(&logits, &x, &[3], -1.0, Noise::None), Err(Error::Invalid(m)) if m.contains("temperature must be positive")),
        "τ < 0"
    );
    let bad_mask = Tensor::from_f32(&g, &[3], &[1.0; 3]).unwrap();
    assert!(
        matches!(
            d.step_masked(&logits, &x, &[3], 1.0, Noise::None, Some(&bad_mask)),
            Err(Error::Shape {
                op: "gumbel_max",
                ..
            })
        ),
        "a mask that is not a prefix of [2, 3]"
    );
    assert!(
        matches!(D3pm::new(&g, 5, vec![0.9], DiscretePrior::Absorbing(5), 0), Err(Error::Invalid(m)) if m.contains("absorbing class 5"))
    );
    assert!(matches!(D3pm::new(
        &g,
        3,
        vec![0.9],
        DiscretePrior::Custom(vec![0.5, 0.6, 0.1]),
        0
    ), Err(Error::Invalid(m)) if m.contains("custom prior")));
    let m = model(&g, "mt");
    let short = Tensor::from_u32(&g, &[2, 7], &[0; 14]).unwrap();
    let t = Tensor::from_f32(&g, &[2], &[0.0; 2]).unwrap();
    assert!(
        matches!(
            m.forward(&short, &t, None),
            Err(Error::Shape {
                op: "seq_transformer",
                ..
            })
        ),
        "wrong sequence length"
    );
}

/// The step's Gumbel-max draws follow softmax(posterior logits): chi-square over many rows.
#[test]
fn multinomial_step_samples_its_posterior() {
    on_each_backend(multinomial_step_samples_its_posterior_on);
}

fn multinomial_step_samples_its_posterior_on(g: Device) {
    let m = Multinomial::new(4, 100).unwrap();
    let rows = 4000;
    let logits: Vec<f32> = (0..rows).flat_map(|_| [1.0f32, 0.0, -1.0, 0.5]).collect();
    let logits = Tensor::from_f32(&g, &[1, rows, 4], &logits).unwrap();
    let xt = Tensor::from_u32(&g, &[1, rows], &vec![2; rows]).unwrap();
    let key = diffscope::rng::Philox::new(7, 0, diffscope::rng::Substream::Gumbel);
    let (x, lp) = m
        .step(&logits, &xt, &[30], 1.0, Noise::Philox(key))
        .unwrap();
    let p: Vec<f64> = lp.to_f32().unwrap()[..4]
        .iter()
        .map(|v| (*v as f64).exp())
        .collect();
    let mut counts = [0f64; 4];
    for v in x.to_u32().unwrap() {
        counts[v as usize] += 1.0;
    }
    let chi2: f64 = (0..4)
        .map(|c| (counts[c] - rows as f64 * p[c]).powi(2) / (rows as f64 * p[c]))
        .sum();
    // 3 degrees of freedom: P(χ² > 16.27) = 0.001.
    assert!(chi2 < 16.27, "χ² = {chi2}, counts {counts:?}, p {p:?}");
}

/// A tiny word model folder for the CLI: the fixture's random d3 transformer (K = 6: pad, a–d, mask;
/// length 8) with an absorbing D3PM of 10 steps.
fn tiny_model_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("diffscope-discrete-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfgs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DIR}/model_configs.json")).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("config.json"), cfgs["d3"].to_string()).unwrap();
    std::fs::write(
        dir.join("process.json"),
        r#"{"process":"d3pm","num_classes":6,"seq_len":8,"nsteps":10,"schedule":{"kind":"cosine","nu":1.0,"s":0.008},"prior":"absorbing","last_time_idx":0,"mask_token":5,"pad_token":0,"vocab":"_abcd?"}"#,
    )
    .unwrap();
    std::fs::copy(
        format!("{DIR}/model_d3.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    dir
}

fn run(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diffscope"))
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
fn cli_samples_sequences_and_computes_nll() {
    let dir = tiny_model_dir("cli");
    let md = dir.to_str().unwrap();
    let txt = dir.join("w.txt");
    let traj = dir.join("traj.safetensors");
    let (code, text) = run(&[
        "sample",
        "--model-dir",
        md,
        "--n",
        "5",
        "--seed",
        "3",
        "--out",
        txt.to_str().unwrap(),
        "--trajectory",
        traj.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let lines: Vec<String> = std::fs::read_to_string(&txt)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(
        lines
            .iter()
            .all(|l| l.len() <= 8 && l.chars().all(|c| "_abcd?".contains(c))),
        "{lines:?}"
    );
    let mut w = Weights::from_file(&traj).unwrap();
    let (s, states) = w.take_ints("x_t").unwrap();
    assert_eq!(s, vec![11, 5, 8]);
    // Absorbing: the run starts all-mask.
    assert!(states[..40].iter().all(|&v| v == 5));
    let p = w.take("probs", &[10, 5, 8, 6]).unwrap().data;
    for row in p.chunks(6) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    // The same seed replays bit for bit; safetensors output holds the ids.
    let st = dir.join("w.safetensors");
    let (code, text) = run(&[
        "sample",
        "--model-dir",
        md,
        "--n",
        "5",
        "--seed",
        "3",
        "--out",
        st.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let (shape, ids) = Weights::from_file(&st)
        .unwrap()
        .take_ints("tokens")
        .unwrap();
    assert_eq!(shape, vec![5, 8]);
    assert_eq!(&ids[..], &states[10 * 40..]);

    // nll on a word file; errors for characters outside the vocabulary and for long words.
    let data = dir.join("d.txt");
    std::fs::write(&data, "abc\ndd\nabcdabcd\n").unwrap();
    let (code, text) = run(&[
        "nll",
        "--model-dir",
        md,
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&text[text.find('{').unwrap()..=text.rfind('}').unwrap()]).unwrap();
    assert_eq!(v["sequences"], 3);
    let bpt = v["bits_per_token"].as_f64().unwrap();
    assert!(bpt > 0.0);
    // Bits per character spread each word's bits (padding included) over its 3 + 2 + 8 letters.
    assert_eq!(v["characters"], 13);
    let bpc = v["bits_per_character"].as_f64().unwrap();
    assert!(
        (bpc - bpt * 24.0 / 13.0).abs() < 1e-9 * bpc,
        "{bpc} vs {bpt}"
    );
    let bps = v["bits_per_sequence"].as_f64().unwrap();
    assert!((bps - bpt * 8.0).abs() < 1e-9 * bps, "{bps} vs {bpt}");
    for (content, want) in [
        ("abz\n", "'z'"),
        ("abcdabcda\n", "length 9"),
        ("a?b\n", "'?'"),
    ] {
        std::fs::write(&data, content).unwrap();
        let (code, text) = run(&["nll", "--model-dir", md, "--data", data.to_str().unwrap()]);
        assert_ne!(code, 0);
        assert!(text.contains(want), "{content:?}: {text}");
    }
    // Token ids ≥ K and a wrong length in safetensors data; bad temperatures.
    let bad = dir.join("bad.safetensors");
    let write_ids = |shape: Vec<usize>, ids: Vec<i64>| {
        let bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, shape, &bytes).unwrap();
        std::fs::write(
            &bad,
            safetensors::serialize(vec![("tokens".to_string(), view)], None).unwrap(),
        )
        .unwrap();
    };
    write_ids(vec![1, 8], vec![0, 1, 2, 6, 0, 0, 0, 0]);
    let (code, text) = run(&["nll", "--model-dir", md, "--data", bad.to_str().unwrap()]);
    assert!(code != 0 && text.contains("token id 6"), "{text}");
    write_ids(vec![1, 7], vec![0; 7]);
    let (code, text) = run(&["nll", "--model-dir", md, "--data", bad.to_str().unwrap()]);
    assert!(code != 0 && text.contains("[N, 8]"), "{text}");
    for t in ["0", "-1", "nan"] {
        let arg = format!("--temperature={t}");
        let (code, text) = run(&[
            "sample",
            "--model-dir",
            md,
            "--out",
            txt.to_str().unwrap(),
            &arg,
        ]);
        assert!(code != 0 && text.contains("temperature"), "{t}: {text}");
    }
}

#[test]
fn shipped_discrete_models_load_and_encode() {
    on_each_backend(shipped_discrete_models_load_and_encode_on);
}

fn shipped_discrete_models_load_and_encode_on(g: Device) {
    for s in diffscope::pipelines::zoo::family(diffscope::pipelines::zoo::Family::Sequence) {
        let m = diffscope::pipelines::sequence::load_shipped(&g, s.name).unwrap();
        assert_eq!(m.process.k(), m.config.num_classes, "{}", s.name);
        let card: serde_json::Value = serde_json::from_str(s.card).unwrap();
        assert_eq!(card["name"], s.name);
        // The held-out examples are valid ids of the right length, and text round-trips.
        let (shape, ids) = Weights::from_bytes(&s.data().unwrap(), "examples")
            .unwrap()
            .take_ints("tokens")
            .unwrap();
        assert_eq!(shape[1], m.config.seq_len);
        assert!(ids.iter().all(|&v| v >= 0 && (v as usize) < m.process.k()));
        let row: Vec<u32> = ids[..shape[1]].iter().map(|&v| v as u32).collect();
        let text = m.decode(&row);
        assert_eq!(m.encode(&text, "round trip").unwrap(), row, "{}", s.name);
    }
    assert!(
        matches!(diffscope::pipelines::sequence::load_shipped(&g, "nope"), Err(Error::UnknownModel { name, family: "sequence ", shipped }) if name == "nope" && shipped.iter().any(|s| s == "words-absorb"))
    );
}
