//! DiGress against our PyTorch port of DiGress's own functions (tools/fixtures_digress.py, branch
//! fixed_bug): schedule, prior draw, apply_noise, the exact posterior and sample_p_zs_given_zt with
//! injected uniforms, the structural features and one graph-transformer forward pass.

use crate::common::{assert_close, on_each_backend, rel_l2};
use diffscope::linalg::jacobi_eigh;
use diffscope::models::graph_features::graph_features;
use diffscope::models::graph_transformer::{Dims, GraphTransformer};
use diffscope::ops::graph::{onehot, NONE};
use diffscope::process::graph::{
    sample_node_counts, Digress, DigressSchedule, GraphBatch, GraphNoise,
};
use diffscope::weights::{HostTensor, Weights};
use diffscope::Tensor;
use diffscope::{Device, Error};
use std::collections::BTreeMap;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/digress");

fn fixture(name: &str) -> Weights {
    Weights::from_file(format!("{DIR}/{name}").as_ref()).unwrap()
}

fn any(w: &mut Weights, name: &str) -> HostTensor {
    let shape = w
        .shape_of(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_vec();
    w.take(name, &shape).unwrap()
}

fn ints(w: &mut Weights, name: &str) -> (Vec<usize>, Vec<u32>) {
    let (s, v) = w.take_ints(name).unwrap();
    (
        s,
        v.iter()
            .map(|&x| if x < 0 { NONE } else { x as u32 })
            .collect(),
    )
}

#[test]
fn digress_schedule_matches_reference() {
    let mut f = fixture("schedule.safetensors");
    for t in [500usize, 20] {
        let s = DigressSchedule::cosine(t).unwrap();
        let b = any(&mut f, &format!("betas_{t}"));
        let ab = any(&mut f, &format!("alphas_bar_{t}"));
        assert_eq!(s.betas.len(), t + 1);
        assert_eq!(s.betas, b.data, "betas T={t} must be bit-identical");
        assert_close(
            &format!("alphas_bar T={t}"),
            &s.alphas_bar,
            &ab.data,
            2e-6,
            1e-12,
        );
        assert_eq!(s.betas[t], 1.0, "β_T = 1 exactly");
    }
    assert!(
        matches!(DigressSchedule::cosine(0), Err(Error::Invalid(m)) if m.contains("diffusion steps, got 0"))
    );
}

struct Batch {
    counts: Vec<usize>,
    n: usize,
}

fn batch_of(f: &mut Weights) -> Batch {
    let (_, c) = ints(f, "counts");
    let n = f.shape_of("x0").unwrap()[1];
    Batch {
        counts: c.iter().map(|&v| v as usize).collect(),
        n,
    }
}

fn upload(g: &Device, f: &mut Weights, name: &str) -> Tensor {
    let t = any(f, name);
    Tensor::from_f32(g, &t.shape, &t.data).unwrap()
}

#[test]
fn digress_process_matches_reference() {
    on_each_backend(digress_process_matches_reference_on);
}

fn digress_process_matches_reference_on(g: Device) {
    let mut f = fixture("process.safetensors");
    let bt = batch_of(&mut f);
    let (b, n) = (bt.counts.len(), bt.n);
    let marg = any(&mut f, "e_marginals").data;
    let p = Digress::new(&g, 20, &[1.0], &marg).unwrap();
    let (_, x0) = ints(&mut f, "x0");
    let (_, e0) = ints(&mut f, "e0");
    let clean = GraphBatch::from_host(&g, &bt.counts, n, &x0, &e0, 1, 2).unwrap();

    // Prior z_T: strict upper triangle mirrored, all-zero diagonal, padding.
    let (ux, ue) = (
        upload(&g, &mut f, "prior_uX"),
        upload(&g, &mut f, "prior_uE"),
    );
    let z = p
        .prior(&g, &bt.counts, n, GraphNoise::Injected { x: &ux, e: &ue })
        .unwrap();
    assert_eq!(
        z.x.to_u32().unwrap(),
        ints(&mut f, "prior_x").1,
        "prior nodes"
    );
    let prior_e = z.e.to_u32().unwrap();
    assert_eq!(prior_e, ints(&mut f, "prior_e").1, "prior edges");

    // apply_noise at per-graph t.
    let (_, t) = ints(&mut f, "noise_t");
    let t: Vec<usize> = t.iter().map(|&v| v as usize).collect();
    let (ux, ue) = (
        upload(&g, &mut f, "noise_uX"),
        upload(&g, &mut f, "noise_uE"),
    );
    let zt = p
        .apply_noise(&clean, &t, GraphNoise::Injected { x: &ux, e: &ue })
        .unwrap();
    assert_eq!(
        zt.x.to_u32().unwrap(),
        ints(&mut f, "noise_x").1,
        "noised nodes"
    );
    assert_eq!(
        zt.e.to_u32().unwrap(),
        ints(&mut f, "noise_e").1,
        "noised edges"
    );
    let _ = any(&mut f, "noise_probE");

    // Reverse steps: probabilities (off-diagonal valid pairs and valid nodes, where DiGress does not
    // overwrite them) and the sampled graph.
    for name in ["step", "last", "first"] {
        let (_, s) = ints(&mut f, &format!("{name}_s"));
        let lx = upload(&g, &mut f, &format!("{name}_logX"));
        let le = upload(&g, &mut f, &format!("{name}_logE"));
        let (ux, ue) = (
            upload(&g, &mut f, &format!("{name}_uX")),
            upload(&g, &mut f, &format!("{name}_uE")),
        );
        let (zs, px, pe) = p
            .step(
                &lx,
                &le,
                &zt,
                s[0] as usize,
                GraphNoise::Injected { x: &ux, e: &ue },
            )
            .unwrap();
        let want_px = any(&mut f, &format!("{name}_probX")).data;
        let want_pe = any(&mut f, &format!("{name}_probE")).data;
        assert_close(
            &format!("{name} probX"),
            &px.to_f32().unwrap(),
            &want_px,
            1e-5,
            1e-7,
        );
        let got_pe = pe.to_f32().unwrap();
        assert_close(&format!("{name} probE"), &got_pe, &want_pe, 2e-5, 1e-7);
        assert_eq!(
            zs.x.to_u32().unwrap(),
            ints(&mut f, &format!("{name}_x")).1,
            "{name} nodes"
        );
        assert_eq!(
            zs.e.to_u32().unwrap(),
            ints(&mut f, &format!("{name}_e")).1,
            "{name} edges"
        );
    }

    // From the prior: its all-zero diagonal and padding rows take the zero-row rule (uniform).
    let le = upload(&g, &mut f, "prior_step_logE");
    let lx = Tensor::from_f32(&g, &[b, n, 1], &vec![0.0; b * n]).unwrap();
    let (_, pe) = p.step_probs(&lx, &le, &z, 19).unwrap();
    assert_close(
        "prior step probE",
        &pe.to_f32().unwrap(),
        &any(&mut f, "prior_step_probE").data,
        2e-5,
        1e-7,
    );

    // Uniform transitions over three edge classes.
    let p3 = Digress::new(&g, 20, &[1.0], &[1.0 / 3.0; 3]).unwrap();
    let (_, e3) = ints(&mut f, "u3_e0");
    let clean3 = GraphBatch::from_host(&g, &bt.counts, n, &x0, &e3, 1, 3).unwrap();
    let (ux, ue) = (upload(&g, &mut f, "u3_uX"), upload(&g, &mut f, "u3_uE"));
    let z3 = p3
        .apply_noise(&clean3, &[5, 9, 2], GraphNoise::Injected { x: &ux, e: &ue })
        .unwrap();
    assert_eq!(
        z3.e.to_u32().unwrap(),
        ints(&mut f, "u3_noise_e").1,
        "uniform noised edges"
    );
    let le = upload(&g, &mut f, "u3_logE");
    let (ux, ue) = (upload(&g, &mut f, "u3_uX2"), upload(&g, &mut f, "u3_uE2"));
    let lx = Tensor::from_f32(&g, &[b, n, 1], &vec![0.3; b * n]).unwrap();
    let (zs, _, pe) = p3
        .step(&lx, &le, &z3, 4, GraphNoise::Injected { x: &ux, e: &ue })
        .unwrap();
    assert_close(
        "uniform probE",
        &pe.to_f32().unwrap(),
        &any(&mut f, "u3_probE").data,
        2e-5,
        1e-7,
    );
    assert_eq!(
        zs.e.to_u32().unwrap(),
        ints(&mut f, "u3_e").1,
        "uniform step edges"
    );
}

#[test]
fn digress_philox_draws_are_symmetric_and_replay() {
    on_each_backend(digress_philox_draws_are_symmetric_and_replay_on);
}

fn digress_philox_draws_are_symmetric_and_replay_on(g: Device) {
    let p = Digress::new(&g, 10, &[1.0], &[0.6, 0.4]).unwrap();
    let counts = [5, 9, 1];
    let a = p.prior(&g, &counts, 9, GraphNoise::Philox(7)).unwrap();
    let b = p.prior(&g, &counts, 9, GraphNoise::Philox(7)).unwrap();
    let c = p.prior(&g, &counts, 9, GraphNoise::Philox(8)).unwrap();
    let (ea, eb, ec) = (
        a.e.to_u32().unwrap(),
        b.e.to_u32().unwrap(),
        c.e.to_u32().unwrap(),
    );
    assert_eq!(ea, eb, "same seed, same draw");
    assert_ne!(ea, ec, "another seed, another draw");
    for (gi, &cnt) in counts.iter().enumerate() {
        for i in 0..9 {
            for j in 0..9 {
                let v = ea[(gi * 9 + i) * 9 + j];
                assert_eq!(v, ea[(gi * 9 + j) * 9 + i]);
                let valid = i < cnt && j < cnt && i != j;
                assert_eq!(valid, v != NONE, "graph {gi} ({i}, {j}) = {v}");
            }
        }
    }
    // Statistically the prior edge draws follow the marginal: 0.4 edges.
    let big = p
        .prior(&g, &[60; 8], 60, GraphNoise::Philox(1))
        .unwrap()
        .e
        .to_u32()
        .unwrap();
    let (mut on, mut tot) = (0f64, 0f64);
    for (r, &v) in big.iter().enumerate() {
        if (r / 60) % 60 < r % 60 {
            tot += 1.0;
            on += f64::from(v == 1);
        }
    }
    let frac = on / tot;
    let sd = (0.4 * 0.6 / tot).sqrt();
    assert!(
        (frac - 0.4).abs() < 5.0 * sd,
        "edge fraction {frac} vs 0.4 (sd {sd})"
    );
    // Node counts follow their histogram and never hit empty bins.
    let hist = [0.0, 0.0, 0.25, 0.0, 0.75];
    let ns = sample_node_counts(&hist, 4000, 3).unwrap();
    assert!(ns.iter().all(|&n| n == 2 || n == 4));
    let f4 = ns.iter().filter(|&&n| n == 4).count() as f64 / 4000.0;
    assert!(
        (f4 - 0.75).abs() < 5.0 * (0.75f64 * 0.25 / 4000.0).sqrt(),
        "{f4}"
    );
    assert!(
        matches!(sample_node_counts(&[0.5, 0.5], 3, 0), Err(Error::Invalid(m)) if m.contains("none on 0"))
    );
}

#[test]
fn digress_bad_graphs_are_rejected() {
    on_each_backend(digress_bad_graphs_are_rejected_on);
}

fn digress_bad_graphs_are_rejected_on(g: Device) {
    let p = Digress::new(&g, 10, &[1.0], &[0.6, 0.4]).unwrap();
    let x = [0u32, 0, NONE];
    let mut e = vec![NONE; 9];
    e[1] = 1; // (0, 1) without (1, 0)
    e[3] = 0;
    assert!(
        matches!(GraphBatch::from_host(&g, &[2], 3, &x, &e, 1, 2), Err(Error::Invalid(m)) if m.contains("is not symmetric"))
    );
    e[3] = 1;
    assert!(GraphBatch::from_host(&g, &[2], 3, &x, &e, 1, 2).is_ok());
    e[1] = 5;
    e[3] = 5;
    assert!(
        matches!(GraphBatch::from_host(&g, &[2], 3, &x, &e, 1, 2), Err(Error::Invalid(m)) if m.contains("has class 5")),
        "class out of range"
    );
    assert!(
        matches!(GraphBatch::from_host(&g, &[4], 3, &x, &e, 1, 2), Err(Error::Invalid(m)) if m.contains("more than 3")),
        "more nodes than n"
    );
    assert!(
        matches!(p.prior(&g, &[0], 3, GraphNoise::Philox(0)), Err(Error::Invalid(m)) if m.contains("must be between 1 and 3"))
    );
    assert!(
        matches!(Digress::new(&g, 10, &[1.0], &[0.6, 0.6]), Err(Error::Invalid(m)) if m.contains("edge marginals"))
    );
}

#[test]
fn digress_features_match_reference() {
    let mut f = fixture("features.safetensors");
    let (s, e) = ints(&mut f, "e");
    let (_, counts) = ints(&mut f, "counts");
    let t = any(&mut f, "t").data;
    let want_x = any(&mut f, "extra_x").data;
    let want_y = any(&mut f, "extra_y").data;
    let n = s[1];
    for (gi, &c) in counts.iter().enumerate() {
        let c = c as usize;
        let mut adj = vec![0u8; c * c];
        for i in 0..c {
            for j in 0..c {
                adj[i * c + j] = u8::from(e[(gi * n + i) * n + j] == 1);
            }
        }
        let (x, mut y) = graph_features(&adj, c, n, 9);
        y.push(t[gi]);
        assert_close(
            &format!("graph {gi} y"),
            &y,
            &want_y[gi * 12..(gi + 1) * 12],
            1e-5,
            1e-5,
        );
        let wx = &want_x[gi * n * 6..(gi + 1) * n * 6];
        // Cycle counts exactly; the LCC indicator where the zero eigenvalue is simple (connected).
        let ncc = y[5] as usize;
        for i in 0..n {
            for k in 0..3 {
                assert_eq!(
                    x[i * 6 + k],
                    wx[i * 6 + k],
                    "graph {gi} node {i} cycles {k}"
                );
            }
            if ncc == 1 {
                assert_eq!(x[i * 6 + 3], wx[i * 6 + 3], "graph {gi} node {i} non-LCC");
            }
        }
        // Eigenvectors up to sign where their eigenvalue is simple.
        let mut l = vec![0f64; c * c];
        for i in 0..c {
            for j in 0..c {
                l[i * c + j] = -(adj[i * c + j] as f64);
            }
            l[i * c + i] = adj[i * c..(i + 1) * c].iter().map(|&v| v as f64).sum();
        }
        let (vals, _) = jacobi_eigh(&l, c);
        for m in 0..2 {
            let k = ncc + m;
            let simple = k < c
                && (k == 0 || vals[k] - vals[k - 1] > 1e-3)
                && (k + 1 >= c || vals[k + 1] - vals[k] > 1e-3);
            if !simple {
                continue;
            }
            let got: Vec<f32> = (0..n).map(|i| x[i * 6 + 4 + m]).collect();
            let want: Vec<f32> = (0..n).map(|i| wx[i * 6 + 4 + m]).collect();
            let dot: f32 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
            let signed: Vec<f32> = got.iter().map(|v| v * dot.signum()).collect();
            assert_close(
                &format!("graph {gi} eigvec {m}"),
                &signed,
                &want,
                1e-4,
                1e-5,
            );
        }
    }
}

#[test]
fn digress_jacobi_diagonalises() {
    let n = 6;
    let mut m = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let v = ((i * 7 + j * 3) % 5) as f64 - 2.0;
            m[i * n + j] = v;
            m[j * n + i] = v;
        }
    }
    let (vals, vecs) = jacobi_eigh(&m, n);
    for k in 0..n {
        for i in 0..n {
            let mv: f64 = (0..n).map(|j| m[i * n + j] * vecs[j * n + k]).sum();
            assert!((mv - vals[k] * vecs[i * n + k]).abs() < 1e-9);
        }
    }
    assert!(vals.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn digress_transformer_matches_pytorch() {
    on_each_backend(digress_transformer_matches_pytorch_on);
}

fn digress_transformer_matches_pytorch_on(g: Device) {
    let cfg: BTreeMap<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(format!("{DIR}/transformer/config.json")).unwrap(),
    )
    .unwrap();
    let map =
        |k: &str| -> BTreeMap<String, usize> { serde_json::from_value(cfg[k].clone()).unwrap() };
    let dims = Dims::from_maps(
        cfg["n_layers"].as_u64().unwrap() as usize,
        &map("input_dims"),
        &map("hidden_mlp_dims"),
        &map("hidden_dims"),
        &map("output_dims"),
        "config.json",
    )
    .unwrap();
    let w = Weights::from_file(format!("{DIR}/transformer/model.safetensors").as_ref()).unwrap();
    let net = GraphTransformer::load(&g, dims, w).unwrap();
    let mut io = Weights::from_file(format!("{DIR}/transformer/io.safetensors").as_ref()).unwrap();
    let x = upload(&g, &mut io, "x");
    let y = upload(&g, &mut io, "y");
    let (s, e) = ints(&mut io, "e");
    let (_, counts) = ints(&mut io, "counts");
    let counts: Vec<usize> = counts.iter().map(|&c| c as usize).collect();
    let e = onehot(&Tensor::from_u32(&g, &s, &e).unwrap(), 2, None).unwrap();
    let out = net.forward(&x, &e, &y, &counts).unwrap();
    let want_x = any(&mut io, "out_x").data;
    let want_e = any(&mut io, "out_e").data;
    let gx = out.x.to_f32().unwrap();
    let ge = out.e.to_f32().unwrap();
    let (ex, ee) = (rel_l2(&gx, &want_x), rel_l2(&ge, &want_e));
    assert!(ex < 1e-4 && ee < 1e-4, "relative L2: X {ex:e}, E {ee:e}");
    assert_close("transformer E", &ge, &want_e, 1e-3, 1e-4);
    // Bad inputs: wrong widths and too many nodes are errors, not panics.
    assert!(matches!(
        net.forward(&y, &e, &y, &counts),
        Err(Error::Shape {
            op: "GraphTransformer::forward",
            ..
        })
    ));
    assert!(
        matches!(net.forward(&x, &e, &y, &[9, 9, 9]), Err(Error::Invalid(m)) if m.contains("node counts"))
    );
}

#[test]
fn digress_graph_files_are_validated() {
    use diffscope::process::graph::{validate_graphs, Graph};
    let ok = Graph {
        num_nodes: 3,
        node_classes: vec![0; 3],
        edges: vec![(0, 1, 1), (2, 1, 1)],
    };
    assert!(validate_graphs(std::slice::from_ref(&ok), 1, 2, 16).is_ok());
    let bad = |f: &dyn Fn(&mut Graph), want: &str| {
        let mut g = ok.clone();
        f(&mut g);
        let e = validate_graphs(&[g], 1, 2, 16).unwrap_err();
        assert!(
            matches!(&e, diffscope::Error::Data { what, .. } if what == "graph 0"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains(want), "{e}");
    };
    bad(&|g| g.edges.push((1, 1, 1)), "self-loop");
    bad(&|g| g.edges.push((1, 0, 2)), "out of range");
    bad(&|g| g.edges[1].2 = 2, "class 2");
    bad(&|g| g.edges.push((1, 2, 1)), "listed twice");
    bad(&|g| g.edges.push((0, 7, 1)), "outside");
    bad(&|g| g.node_classes[0] = 3, "node class 3");
    bad(
        &|g| g.node_classes.pop().map(drop).unwrap_or(()),
        "2 node classes for 3 nodes",
    );
    bad(
        &|g| {
            g.num_nodes = 40;
            g.node_classes = vec![0; 40];
        },
        "supports 1 to 16",
    );
    // Asymmetric: the same pair in both orders with different classes (three edge classes).
    let mut g = ok.clone();
    g.edges.push((1, 0, 2));
    let e = validate_graphs(&[g], 1, 3, 16).unwrap_err().to_string();
    assert!(e.contains("asymmetric"), "{e}");
}

/// A DiGress reverse step is one submission (its host features are uploaded into fresh buffers without
/// flushing the recorded work) and creates no buffers once warmed up, and after a few more steps —
/// when the pool's buffers have settled into the places the step's allocations find them — no bind
/// groups either.
#[test]
fn digress_steps_are_one_submission_and_create_no_buffers_or_bind_groups() {
    use diffscope::pipelines::graph::run::GraphRun;
    use diffscope::Gpu;
    // Its own device: the counters are per device.
    let g = diffscope::Device::Gpu(Gpu::new(&Default::default()).unwrap());
    let m = diffscope::pipelines::graph::load_graph_shipped(&g, "planar-digress").unwrap();
    let counts = m.sample_counts(3, 5).unwrap();
    let mut run = GraphRun::start(&m, &counts, 5).unwrap();
    let mut host_e = run.state().e.to_u32().unwrap();
    let mut per_step = Vec::new();
    for _ in 0..24 {
        let before = g.counters();
        run.step(&m, &host_e).unwrap();
        host_e = run.state().e.to_u32().unwrap();
        per_step.push(g.counters() - before);
    }
    // The first step also tunes the matmul tiles (their own submissions) and fills the pool.
    for (i, c) in per_step.iter().enumerate().skip(2) {
        assert_eq!(c.submissions, 1, "step {i}: {c:?}");
        assert_eq!(c.buffers_created, 0, "step {i}: {c:?}");
    }
    // The state carried between steps takes different pooled buffers for the first few steps, and
    // each new combination is a new (cached) bind group; then the pattern repeats.
    for (i, c) in per_step.iter().enumerate().skip(12) {
        assert_eq!(c.bind_groups_created, 0, "step {i}: {c:?}");
    }
}

/// The ELBO's step term for a graph (the app's loss curve): both posteriors are distributions over
/// every node and pair, the KL is finite and non-negative, the same on both backends, and a model
/// that knew G_0 would pay nothing (the true posterior against itself).
#[test]
fn graph_step_terms_are_distributions_and_agree_across_backends() {
    use diffscope::pipelines::graph::{dataset, elbo, load_graph_shipped};
    let g = dataset::shipped_dataset("planar-digress").unwrap().test[0].clone();
    let mut kls = Vec::new();
    for device in crate::common::backends() {
        let m = load_graph_shipped(&device, "planar-digress").unwrap();
        let (dx, de) = (m.process.dx, m.process.de);
        for t in [2, 250, 500] {
            let sp = elbo::step_posteriors(&m, &g, t, 2, 5).unwrap();
            let [tx, te, mx, me] =
                [&sp.truth.0, &sp.truth.1, &sp.model.0, &sp.model.1].map(|t| t.to_f32().unwrap());
            for (v, k) in [(&tx, dx), (&te, de), (&mx, dx), (&me, de)] {
                for row in v.chunks(k) {
                    let s: f32 = row.iter().sum();
                    assert!((s - 1.0).abs() < 1e-4, "t = {t}: a row sums to {s}");
                }
            }
            let kl = elbo::step_kl_nats(sp.nodes, (dx, de), (&tx, &te), (&mx, &me));
            assert!(kl.is_finite() && kl >= 0.0, "t = {t}: {kl}");
            let zero = elbo::step_kl_nats(sp.nodes, (dx, de), (&tx, &te), (&tx, &te));
            assert_eq!(zero, 0.0);
            kls.push(kl);
        }
        // Out of range asks are refused, not computed.
        assert!(elbo::step_posteriors(&m, &g, 1, 2, 5).is_err());
        assert!(elbo::step_posteriors(&m, &g, 501, 2, 5).is_err());
    }
    let (gpu, cpu) = kls.split_at(3);
    for (a, b) in gpu.iter().zip(cpu) {
        assert!(
            (a - b).abs() <= 1e-3 * a.abs().max(1e-3),
            "{gpu:?} vs {cpu:?}"
        );
    }
}
