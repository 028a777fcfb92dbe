//! The CPU backend runs the shipped Gaussian models with no change to model code: the same
//! trajectory as the GPU from the same seed (same Philox draws; differences only from f32 rounding),
//! and ops given tensors of two devices are refused with a typed error.

use crate::common::{cpu, device, rel_l2};
use diffscope::pipelines::gaussian::{self, run};
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

#[test]
fn tensors_of_two_backends_are_refused_and_can_be_moved() {
    let a = Tensor::from_f32(device(), &[4], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let b = Tensor::from_f32(cpu(), &[4], &[1.0; 4]).unwrap();
    assert_eq!(b.device().backend(), Backend::Cpu);
    match diffscope::ops::elementwise::add(&a, &b) {
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
