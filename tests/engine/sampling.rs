//! End to end on the shipped toy2d-mlp: samples land on the requested shape, and a trajectory is a
//! pure function of (model, settings): rerunning it, or resuming from a recorded step, gives the same
//! bits.

use crate::common::on_each_backend;
use diffscope::pipelines::gaussian::run as gaussian_run;
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::Device;

const EIGHT_GAUSSIANS: u32 = 1;

fn settings(seed: u64, n: usize) -> SampleSettings {
    SampleSettings {
        sampler: Sampler::Ddim { eta: 0.5 },
        steps: 20,
        seed,
        labels: Some(vec![EIGHT_GAUSSIANS; n]),
        guidance: None,
    }
}

#[test]
fn toy2d_samples_land_on_the_requested_shape() {
    on_each_backend(toy2d_samples_land_on_the_requested_shape_on);
}

fn toy2d_samples_land_on_the_requested_shape_on(g: Device) {
    let m = diffscope::pipelines::gaussian::load_shipped(&g, "toy2d-mlp").unwrap();
    let n = 256;
    let traj = gaussian_run::sample(&m, &settings(3, n), n, None, false).unwrap();
    let pts = traj.final_state();
    // The eight Gaussians of tools/toy2d.py sit on a circle of radius 0.75 with σ = 0.05.
    let near = pts
        .chunks_exact(2)
        .filter(|p| {
            (0..8).any(|k| {
                let a = k as f32 * std::f32::consts::FRAC_PI_4;
                let (cx, cy) = (0.75 * a.cos(), 0.75 * a.sin());
                ((p[0] - cx).powi(2) + (p[1] - cy).powi(2)).sqrt() < 0.2
            })
        })
        .count();
    assert!(
        near * 10 >= n * 8,
        "only {near}/{n} samples within 0.2 of a mode"
    );
    // Pure noise would put about 5 % there: the test can fail.
    let noise = m.process.initial(&g, n, &[2], 3).unwrap().to_f32().unwrap();
    let noisy_near = noise
        .chunks_exact(2)
        .filter(|p| ((p[0].hypot(p[1])) - 0.75).abs() < 0.05)
        .count();
    assert!(noisy_near * 4 < n, "{noisy_near}");
}

#[test]
fn trajectories_replay_and_resume_bit_for_bit() {
    on_each_backend(trajectories_replay_and_resume_bit_for_bit_on);
}

fn trajectories_replay_and_resume_bit_for_bit_on(g: Device) {
    let m = diffscope::pipelines::gaussian::load_shipped(&g, "toy2d-mlp").unwrap();
    let n = 64;
    let s = settings(11, n);
    let a = gaussian_run::sample(&m, &s, n, None, true).unwrap();
    let b = gaussian_run::sample(&m, &s, n, None, true).unwrap();
    assert_eq!(a.states, b.states, "same settings, same bits");
    assert_eq!(a.states.len(), 21);
    assert_eq!(a.x0.len(), 20);
    // Resume from step 7: the remaining steps use step-indexed noise, so the end is identical.
    let k = 7;
    let plan = m.process.plan(s.sampler, s.steps).unwrap();
    let mut x = diffscope::Tensor::from_f32(&g, &[n, 2], &a.states[k]).unwrap();
    for i in k..plan.len() {
        x = m
            .process
            .step(m.denoiser.as_ref(), &x, &plan, i, &s, Default::default())
            .unwrap()
            .x_prev;
    }
    assert_eq!(x.to_f32().unwrap(), a.final_state(), "resumed run diverged");
    let c = gaussian_run::sample(&m, &settings(12, n), n, None, false).unwrap();
    assert_ne!(
        c.final_state(),
        a.final_state(),
        "a new seed gives a new trajectory"
    );
}

#[test]
fn guided_sampling_runs_and_bad_settings_are_errors() {
    on_each_backend(guided_sampling_runs_and_bad_settings_are_errors_on);
}

fn guided_sampling_runs_and_bad_settings_are_errors_on(g: Device) {
    let m = diffscope::pipelines::gaussian::load_shipped(&g, "toy2d-mlp").unwrap();
    let mut s = settings(5, 16);
    s.guidance = Some(3.0);
    let t = gaussian_run::sample(&m, &s, 16, None, false).unwrap();
    assert!(t.final_state().iter().all(|v| v.is_finite()));
    s.steps = 201;
    let e = gaussian_run::sample(&m, &s, 16, None, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("201") && e.contains("200"), "{e}");
    let mut s = settings(5, 16);
    s.labels = Some(vec![9; 16]);
    let e = gaussian_run::sample(&m, &s, 16, None, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("9 is not below 7"), "{e}");
    assert!(matches!(
        diffscope::pipelines::gaussian::load_shipped(&g, "nope"),
        Err(diffscope::Error::UnknownModel { name, .. }) if name == "nope"
    ));
}
