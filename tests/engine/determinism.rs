//! Determinism for every model family: the same (model, sampler settings, seed) gives the same bits
//! twice, and re-running from a recorded step k reproduces the rest of the trajectory bit for bit
//! (noise is keyed by (seed, step, element), never by how the run got there). A new family adds a
//! row to `families()`.

use crate::common::{device, on_each_backend};
use diffscope::pipelines::gaussian::run as gaussian_run;
use diffscope::pipelines::gaussian::GaussianModel;
use diffscope::pipelines::sequence::run::SequenceRun;
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::weights::Weights;
use diffscope::Device;
use diffscope::Tensor;

const SCHEDULER: &str = r#"{"_class_name": "DDPMScheduler", "num_train_timesteps": 40,
    "beta_schedule": "squaredcos_cap_v2", "clip_sample": true, "variance_type": "fixed_small"}"#;

fn unet_fixture(g: &Device, name: &str) -> GaussianModel {
    let d = format!("{}/tests/fixtures/unet_{name}", env!("CARGO_MANIFEST_DIR"));
    let cfg = std::fs::read_to_string(format!("{d}/config.json")).unwrap();
    let w =
        Weights::from_file(format!("{d}/diffusion_pytorch_model.safetensors").as_ref()).unwrap();
    diffscope::pipelines::gaussian::build(
        g,
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
fn families(g: &Device) -> Vec<(&'static str, GaussianModel)> {
    vec![
        (
            "film_mlp (toy2d-mlp, conditional)",
            diffscope::pipelines::gaussian::load_shipped(g, "toy2d-mlp").unwrap(),
        ),
        (
            "unet (mnist layout, conditional)",
            unet_fixture(g, "mnist_like"),
        ),
        (
            "unet (cifar10 layout, unconditional)",
            unet_fixture(g, "cifar_like"),
        ),
    ]
}

#[test]
fn every_family_replays_and_resumes_bit_for_bit() {
    on_each_backend(every_family_replays_and_resumes_bit_for_bit_on);
}

fn every_family_replays_and_resumes_bit_for_bit_on(g: Device) {
    for (family, m) in families(&g) {
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
            let a = gaussian_run::sample(&m, &s, n, None, true).unwrap();
            let b = gaussian_run::sample(&m, &s, n, None, true).unwrap();
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
            let c = gaussian_run::sample(&m, &other, n, None, false).unwrap();
            assert_ne!(
                c.final_state(),
                a.final_state(),
                "{what}: the seed is ignored"
            );
        }
        eprintln!("determinism: {family}: ok");
    }
}

/// Every step of a discrete run as host ids: x_T first.
fn discrete_run(
    m: &diffscope::pipelines::sequence::SequenceModel,
    start: Vec<u32>,
    first_index: usize,
    n: usize,
    seed: u64,
    temperature: f32,
) -> Vec<Vec<u32>> {
    assert_eq!(start.len(), n * m.config.seq_len);
    let mut run = SequenceRun::resume(m, &start, first_index, seed, temperature).unwrap();
    let mut out = vec![start];
    while !run.done() {
        run.step(m).unwrap();
        out.push(run.state().to_u32().unwrap());
    }
    out
}

/// The discrete families (absorbing and uniform D3PM, multinomial): the same bits twice, a resumed run
/// equal to the rest of the first, and a new seed that changes the result.
#[test]
fn discrete_families_replay_and_resume_bit_for_bit() {
    on_each_backend(discrete_families_replay_and_resume_bit_for_bit_on);
}

fn discrete_families_replay_and_resume_bit_for_bit_on(g: Device) {
    for name in ["words-absorb", "words-uniform", "promoter-multinomial"] {
        let m = diffscope::pipelines::sequence::load_shipped(&g, name).unwrap();
        let n = 3;
        let x_t = m
            .process
            .prior_sample(&g, n, m.config.seq_len, 7)
            .unwrap()
            .to_u32()
            .unwrap();
        let a = discrete_run(&m, x_t.clone(), 0, n, 7, 0.9);
        let b = discrete_run(&m, x_t.clone(), 0, n, 7, 0.9);
        assert_eq!(a, b, "{name}: two runs differ");
        assert_eq!(a.len(), m.process.timesteps().len() + 1);
        for k in [1, a.len() / 2, a.len() - 2] {
            let resumed = discrete_run(&m, a[k].clone(), k, n, 7, 0.9);
            assert_eq!(resumed[..], a[k..], "{name}: resumed from step {k}");
        }
        let c = discrete_run(&m, x_t, 0, n, 8, 0.9);
        assert_ne!(c.last(), a.last(), "{name}: the seed is ignored");
        eprintln!("determinism: {name}: ok");
    }
}

/// DiGress: the same graphs twice, and a run resumed from host copies of step k (as the app's fork
/// and device recovery do) equal to the rest of the first.
#[test]
fn graph_family_replays_and_resumes_bit_for_bit() {
    use diffscope::pipelines::graph::run::GraphRun;
    let g = device();
    let m = diffscope::pipelines::graph::load_graph_shipped(&g, "planar-digress").unwrap();
    let counts = m.sample_counts(2, 5).unwrap();
    let n = *counts.iter().max().unwrap();
    // A short stretch of a reverse run from t = T: (x, e) ids after each step.
    let stretch = |mut run: GraphRun, steps: usize| -> Vec<(Vec<u32>, Vec<u32>)> {
        let ids = |r: &GraphRun| (r.state().x.to_u32().unwrap(), r.state().e.to_u32().unwrap());
        let mut host = ids(&run);
        let mut out = vec![host.clone()];
        for _ in 0..steps {
            run.step(&m, &host.1).unwrap();
            host = ids(&run);
            out.push(host.clone());
        }
        out
    };
    let prior = |seed: u64| {
        assert_eq!(counts.iter().copied().max(), Some(n));
        GraphRun::start(&m, &counts, 5).map(|mut r| {
            r.seed = seed;
            r
        })
    };
    let a = stretch(prior(5).unwrap(), 6);
    let b = stretch(prior(5).unwrap(), 6);
    assert_eq!(a, b, "two graph runs differ");
    for k in [1, 3] {
        let (x, e) = &a[k];
        let resumed = stretch(GraphRun::resume(&m, &counts, x, e, k, 5).unwrap(), 6 - k);
        assert_eq!(resumed[..], a[k..], "resumed from step {k}");
    }
    let c = stretch(prior(6).unwrap(), 6);
    assert_ne!(c.last(), a.last(), "the seed is ignored");
}
