//! The CPU backend runs every shipped model with no change to model code: the same trajectory as
//! the GPU from the same seed (same Philox draws; differences only from f32 rounding, which for the
//! discrete models can flip a rare near-tied categorical draw), and ops given tensors of two devices
//! are refused with a typed error.

use crate::common::{cpu, device, rel_l2};
use diffscope::pipelines::gaussian::{self, run};
use diffscope::pipelines::{graph, sequence};
use diffscope::process::discrete::{Padding, Unmasking};
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::{Backend, Error, Tensor};

fn settings(sampler: Sampler, steps: usize, labels: Option<Vec<u32>>) -> SampleSettings {
    SampleSettings {
        sampler,
        steps,
        seed: 11,
        labels,
        guidance: None,
    }
}

/// Sample `model` on both backends and compare every recorded state.
fn same_trajectory(model: &str, n: usize, s: &SampleSettings, tol: f64) {
    let on = |d| {
        let m = gaussian::load_shipped(&d, model).unwrap();
        run::sample(&m, s, n, None, true).unwrap()
    };
    let (g, c) = (on(device()), on(cpu()));
    assert_eq!(g.states.len(), c.states.len());
    // x_T is the same Philox draw on both (normals agree to ~1e-6, uniforms bit for bit).
    let e0 = rel_l2(&c.states[0], &g.states[0]);
    assert!(e0 < 1e-5, "{model}: x_T differs by {e0:.2e}");
    for (k, (a, b)) in g.states.iter().zip(&c.states).enumerate() {
        let e = rel_l2(b, a);
        assert!(e < tol, "{model} step {k}: CPU vs GPU rel L2 {e:.2e}");
    }
    // The run moved: the check is not passing on constant states.
    assert!(rel_l2(&c.states[c.states.len() - 1], &c.states[0]) > 0.1);
}

#[test]
fn toy2d_mlp_samples_the_same_trajectory_on_the_cpu() {
    same_trajectory("toy2d-mlp", 64, &settings(Sampler::Ddpm, 40, None), 1e-4);
    same_trajectory(
        "toy2d-mlp",
        64,
        &settings(Sampler::Ddim { eta: 0.5 }, 25, None),
        1e-4,
    );
}

#[test]
fn mnist_unet_samples_the_same_trajectory_on_the_cpu() {
    let s = SampleSettings {
        guidance: Some(2.0),
        ..settings(Sampler::Ddim { eta: 0.0 }, 8, Some(vec![3, 7]))
    };
    same_trajectory("mnist-unet", 2, &s, 1e-3);
}

/// The colour model: three channels, attention at 8×8, ten class embeddings whose names come from
/// the config's `id2label` (nine categories; the tenth embedding is the null label).
#[test]
fn emoji_unet_samples_the_same_trajectory_on_the_cpu() {
    let m = gaussian::load_shipped(&cpu(), "emoji-unet").unwrap();
    assert_eq!(m.labels.len(), 9, "{:?}", m.labels);
    assert_eq!(m.labels[0], "0 Smileys & Emotion");
    assert_eq!(m.labels[8], "8 Flags");
    let s = SampleSettings {
        guidance: Some(3.0),
        ..settings(Sampler::Ddim { eta: 0.0 }, 4, Some(vec![0, 8]))
    };
    same_trajectory("emoji-unet", 2, &s, 1e-3);
}

#[test]
fn tensors_of_two_backends_are_refused_and_can_be_moved() {
    let a = Tensor::from_f32(device(), &[4], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let b = Tensor::from_f32(cpu(), &[4], &[1.0; 4]).unwrap();
    assert_eq!(b.device().backend(), Backend::Cpu);
    match diffscope::ops::elementwise::add(&a, &b) {
        Err(Error::Invalid(msg)) => assert!(msg.contains("different devices"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A second input of the other device, whichever backend the op dispatches on.
    let u = Tensor::from_f32(cpu(), &[2, 2], &[0.5; 4]).unwrap();
    let opts =
        diffscope::ops::sample::Categorical::new(diffscope::ops::sample::Noise::Injected(&u));
    let logits = Tensor::from_f32(device(), &[2, 2], &[0.0; 4]).unwrap();
    match diffscope::ops::sample::gumbel_max(&logits, &opts) {
        Err(Error::Invalid(msg)) => assert!(msg.contains("different devices"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let moved = a.to_device(&cpu()).unwrap();
    let sum = diffscope::ops::elementwise::add(&moved, &b).unwrap();
    assert_eq!(sum.to_f32().unwrap(), vec![2.0, 3.0, 4.0, 5.0]);
    let back = sum.to_device(&device()).unwrap();
    assert_eq!(back.device().backend(), Backend::Gpu);
    assert_eq!(back.to_f32().unwrap(), vec![2.0, 3.0, 4.0, 5.0]);
}

/// The fraction of equal entries.
fn agreement(a: &[u32], b: &[u32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// Every state of a reverse run of `name`, and the first step's logits, on one device.
fn sequence_run(
    d: diffscope::Device,
    name: &str,
    (order, padding): (Unmasking, Padding),
) -> (Vec<Vec<u32>>, Vec<f32>) {
    let m = sequence::load_shipped(&d, name).unwrap();
    let (mut states, mut first) = (Vec::new(), None);
    let last = sequence::run::sample(&m, 8, 5, (1.0, order, padding), |x_t, out| {
        states.push(x_t.to_u32()?);
        if first.is_none() {
            first = Some(out.logits.to_f32()?);
        }
        Ok(())
    })
    .unwrap();
    states.push(last);
    (states, first.unwrap())
}

#[test]
fn sequence_models_sample_the_same_trajectory_on_the_cpu() {
    let runs = [
        ("words-absorb", (Unmasking::Random, Padding::Suffix)),
        ("words-absorb", (Unmasking::Random, Padding::Free)),
        ("words-absorb", (Unmasking::Confident, Padding::Suffix)),
        ("words-absorb", (Unmasking::Annealed, Padding::Suffix)),
        ("words-uniform", (Unmasking::Random, Padding::Suffix)),
        ("promoter-multinomial", (Unmasking::Random, Padding::Suffix)),
    ];
    for (name, draw) in runs {
        let (g, g_logits) = sequence_run(device(), name, draw);
        let (c, c_logits) = sequence_run(cpu(), name, draw);
        assert_eq!(g[0], c[0], "{name}: x_T differs");
        // The first step's distribution (network forward + posterior), before any draw can differ.
        let e = rel_l2(&c_logits, &g_logits);
        assert!(e < 1e-4, "{name}: first-step logits rel L2 {e:.2e}");
        assert_eq!(g.len(), c.len());
        for (k, (a, b)) in g.iter().zip(&c).enumerate() {
            let agree = agreement(a, b);
            assert!(
                agree >= 0.99,
                "{name} step {k}: only {agree:.4} of tokens agree"
            );
        }
        assert!(
            agreement(&c[0], c.last().unwrap()) < 0.9,
            "{name}: the run did not move"
        );
    }
}

#[test]
fn graph_model_samples_the_same_graphs_on_the_cpu() {
    let on = |d: diffscope::Device| {
        let m = graph::load_graph_shipped(&d, "planar-digress").unwrap();
        let counts = m.sample_counts(4, 3).unwrap();
        let mut states = Vec::new();
        let z = graph::run::sample(&m, &counts, 3, |_, _, x, e| {
            states.push((x.to_vec(), e.to_vec()));
            Ok(())
        })
        .unwrap();
        (counts, states, z.e.to_u32().unwrap())
    };
    let (gc, g, ge) = on(device());
    let (cc, c, ce) = on(cpu());
    assert_eq!(
        gc, cc,
        "node counts are drawn on the host from the same seed"
    );
    assert_eq!(g.len(), c.len());
    for (k, ((gx, gee), (cx, cee))) in g.iter().zip(&c).enumerate() {
        let (ax, ae) = (agreement(gx, cx), agreement(gee, cee));
        assert!(
            ax >= 0.99 && ae >= 0.99,
            "step {k}: nodes {ax:.4}, edges {ae:.4} agree"
        );
    }
    // The graphs have edges: the comparison is not passing on empty states.
    for e in [&ge, &ce] {
        assert!(e.iter().filter(|&&v| v == 1).count() >= cc.iter().sum::<usize>());
    }
}
