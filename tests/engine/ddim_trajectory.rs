//! A whole 50-step DDIM (η = 0) trajectory against diffusers 0.42.1's own loop (UNet2DModel forward +
//! DDIMScheduler.step, tools/fixtures_ddim_trajectory.py): the folder loads through `--model-dir`'s
//! loader, and from the same x_T every state x_50 … x_0 agrees, plainly conditional and with
//! classifier-free guidance formed in the loop. (The fixture's model is briefly trained: with random
//! weights the DDIM ODE is chaotic and diffusers' own float64 and float32 runs end 9 % apart; with
//! this one they agree to ~5e-6, so 1e-3 measures diffscope.)

use crate::common::{device, rel_l2};
use diffscope::pipelines::gaussian::run as gaussian_run;
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::weights::Weights;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ddim_trajectory"
);
const STEPS: usize = 50;

fn check(run: &str) {
    let g = device();
    let m = diffscope::pipelines::gaussian::load_dir(&g, DIR.as_ref()).unwrap();
    let mut f = Weights::from_file(format!("{DIR}/trajectory.safetensors").as_ref()).unwrap();
    let x_t = f.take("x_T", &[4, 1, 8, 8]).unwrap().data;
    let labels: Vec<u32> = f
        .take_ints("labels")
        .unwrap()
        .1
        .iter()
        .map(|&l| l as u32)
        .collect();
    let timesteps = f.take_ints("timesteps").unwrap().1;
    let guidance = f.take("guidance", &[1]).unwrap().data[0];
    let want = f
        .take(&format!("{run}.states"), &[STEPS + 1, 4, 1, 8, 8])
        .unwrap()
        .data;
    let settings = SampleSettings {
        sampler: Sampler::Ddim { eta: 0.0 },
        steps: STEPS,
        seed: 0,
        labels: Some(labels),
        guidance: (run == "guided").then_some(guidance),
    };
    let plan = m.process.plan(settings.sampler, STEPS).unwrap();
    let ours: Vec<i64> = plan.iter().map(|s| s.t as i64).collect();
    assert_eq!(ours, timesteps, "{run}: diffusers' timesteps");
    let traj = gaussian_run::sample(&m, &settings, 4, Some(&x_t), true).unwrap();
    assert_eq!(traj.states.len(), STEPS + 1);
    let per = want.len() / (STEPS + 1);
    let mut errs = Vec::new();
    for (k, got) in traj.states.iter().enumerate() {
        let err = rel_l2(got, &want[k * per..(k + 1) * per]);
        errs.push(err);
        // Measured: ≤ 1e-6 plain and ≤ 1e-5 guided on lavapipe (the issue asks for 1e-3 at the end).
        assert!(
            err <= 1e-4,
            "{run}: state after {k} steps (t = {}) has relative L2 error {err:e}",
            plan.get(k).map_or(0, |s| s.t)
        );
    }
    eprintln!(
        "{run}: relative L2 after 1/10/25/40/50 steps: {:.1e} {:.1e} {:.1e} {:.1e} {:.1e}",
        errs[1], errs[10], errs[25], errs[40], errs[50]
    );
    // The run moved far from x_T, so agreeing at the end is not agreeing at the start.
    assert!(rel_l2(&traj.states[STEPS], &x_t) > 0.5);
}

#[test]
fn ddim_50_steps_match_diffusers() {
    check("plain");
}

#[test]
fn ddim_50_steps_with_guidance_match_diffusers() {
    check("guided");
}
