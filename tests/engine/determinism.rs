//! Determinism for every model family: the same (model, sampler settings, seed) gives the same bits
//! twice, and re-running from a recorded step k reproduces the rest of the trajectory bit for bit
//! (noise is keyed by (seed, step, element), never by how the run got there). A new family adds a
//! row to `families()`.

use crate::common::gpu;
use diffscope::models::zoo::{self, GaussianModel};
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::trajectory::sample_blocking;
use diffscope::weights::Weights;
use diffscope::Tensor;

const SCHEDULER: &str = r#"{"_class_name": "DDPMScheduler", "num_train_timesteps": 40,
    "beta_schedule": "squaredcos_cap_v2", "clip_sample": true, "variance_type": "fixed_small"}"#;

fn unet_fixture(name: &str) -> GaussianModel {
    let d = format!("{}/tests/fixtures/unet_{name}", env!("CARGO_MANIFEST_DIR"));
    let cfg = std::fs::read_to_string(format!("{d}/config.json")).unwrap();
    let w =
        Weights::from_file(format!("{d}/diffusion_pytorch_model.safetensors").as_ref()).unwrap();
    zoo::build(
        &gpu(),
        name,
        &cfg,
        "config.json",
        SCHEDULER,
        "scheduler_config.json",
        w,
    )
    .unwrap()
}

/// (family, model) — one row per model family diffscope runs.
fn families() -> Vec<(&'static str, GaussianModel)> {
    vec![
        (
            "film_mlp (toy2d-mlp, conditional)",
            zoo::load_shipped(&gpu(), "toy2d-mlp").unwrap(),
        ),
        (
            "unet (mnist layout, conditional)",
            unet_fixture("mnist_like"),
        ),
        (
            "unet (cifar10 layout, unconditional)",
            unet_fixture("cifar_like"),
        ),
    ]
}

#[test]
fn every_family_replays_and_resumes_bit_for_bit() {
    let g = gpu();
    for (family, m) in families() {
        let n = 4;
        let labels = m
            .denoiser
            .num_labels()
            .map(|k| (0..n as u32).map(|i| i % k as u32).collect());
        let guided = m.denoiser.num_labels().is_some();
        let mut cases = vec![
            (Sampler::Ddpm, 8, None),
            (Sampler::Ddim { eta: 0.7 }, 8, None),
            (Sampler::Ddim { eta: 0.0 }, 5, None),
        ];
        if guided {
            cases.push((Sampler::Ddpm, 6, Some(2.5)));
        }
        for (sampler, steps, guidance) in cases {
            let what = format!("{family}, {sampler:?}, {steps} steps, guidance {guidance:?}");
            let s = SampleSettings {
                sampler,
                steps,
                seed: 1234,
                labels: labels.clone(),
                guidance,
            };
            let a = sample_blocking(&m, &s, n, None, true).unwrap();
            let b = sample_blocking(&m, &s, n, None, true).unwrap();
            assert_eq!(a.states, b.states, "{what}: two runs differ");
            assert_eq!(a.x0, b.x0, "{what}: x̂0 differs");
            assert!(a.final_state().iter().all(|v| v.is_finite()), "{what}");
            let plan = m.process.plan(s.sampler, s.steps).unwrap();
            let mut shape = vec![n];
            shape.extend_from_slice(m.denoiser.sample_shape());
            for k in [1, steps / 2, steps - 1] {
                let mut x = Tensor::from_f32(&g, &shape, &a.states[k]).unwrap();
                for i in k..plan.len() {
                    x = m
                        .process
                        .step(m.denoiser.as_ref(), &x, &plan, i, &s, Default::default())
                        .unwrap()
                        .x_prev;
                    assert_eq!(
                        x.to_f32().unwrap(),
                        a.states[i + 1],
                        "{what}: resumed from step {k}, step {} differs",
                        i + 1
                    );
                }
            }
            // The test could fail: a different seed gives a different trajectory.
            let other = SampleSettings {
                seed: 99,
                ..s.clone()
            };
            let c = sample_blocking(&m, &other, n, None, false).unwrap();
            assert_ne!(
                c.final_state(),
                a.final_state(),
                "{what}: the seed is ignored"
            );
        }
        eprintln!("determinism: {family}: ok");
    }
}
