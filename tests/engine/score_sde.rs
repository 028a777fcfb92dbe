//! The score-SDE (variance-exploding) sampler with a real network: the NCSN++-layout UNet of
//! tests/fixtures/unet_ncsnpp_like (random weights) and google/ncsnpp-ffhq-1024's scheduler file,
//! sampled for 5 steps by diffusers 0.42.1's `ScoreSdeVePipeline` loop with its noise recorded
//! (tools/fixtures_samplers.py); diffscope, fed the same noise, must follow it on both backends.
//! (The scheduler alone is in `samplers.rs`' replay cases.)

use crate::common::{backends, rel_l2};
use diffscope::ops::update::{Extras, Noise};
use diffscope::process::gaussian::solver::{Memory, Solver};
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::tensor::Tensor;
use diffscope::weights::Weights;

const UNET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/unet_ncsnpp_like"
);

fn per_eval(t: &diffscope::weights::HostTensor) -> Vec<Vec<f32>> {
    let per = t.data.len() / t.shape[0];
    t.data.chunks(per).map(<[f32]>::to_vec).collect()
}

#[test]
fn score_sde_sampler_follows_diffusers_with_an_ncsnpp_unet() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/samplers/ve_trajectory.safetensors"
    );
    for dev in backends() {
        let what = dev.describe();
        let m = diffscope::pipelines::gaussian::load_dir(&dev, UNET.as_ref()).unwrap();
        assert!(m.process.is_ve());
        assert_eq!(m.data_range, [0.0, 1.0]);
        assert_eq!(Sampler::names_for(&m.process), ["sde-ve"]);
        let solver = Solver::new(&m.process, Sampler::ScoreSdeVe, 5)
            .unwrap()
            .unwrap();
        let n = solver.evals();
        assert_eq!(n, 10);
        let shape = [2, 3, 8, 8];
        let mut f = Weights::from_file(file.as_ref()).unwrap();
        let x_t = f.take("x_T", &shape).unwrap().data;
        let inputs = per_eval(&f.take("inputs", &[n, 2, 3, 8, 8]).unwrap());
        let noise = per_eval(&f.take("noise", &[n, 2, 3, 8, 8]).unwrap());
        let sigmas = f.take("timesteps", &[n]).unwrap().data;
        let want_final = f.take("final", &shape).unwrap().data;
        let s = SampleSettings {
            sampler: Sampler::ScoreSdeVe,
            steps: 5,
            seed: 0,
            labels: None,
            guidance: None,
        };
        let scaled: Vec<f32> = x_t.iter().map(|v| v * solver.init_scale()).collect();
        let mut x = Tensor::from_f32(&dev, &shape, &scaled).unwrap();
        let mut memory = Memory::default();
        let mut worst = 0.0f64;
        for k in 0..n {
            let sigma = solver.model_t(k);
            assert!(
                (sigma - sigmas[k]).abs() <= 1e-5 * sigmas[k],
                "{what}: σ at {k}"
            );
            // The state is variance preserving; diffusers' model input is σ-space.
            let fed: Vec<f32> = x
                .to_f32()
                .unwrap()
                .iter()
                .map(|v| v * (1.0 + sigma * sigma).sqrt())
                .collect();
            let e = rel_l2(&fed, &inputs[k]);
            worst = worst.max(e);
            assert!(e <= 1e-4, "{what}: model input at evaluation {k}: {e:e}");
            let z = Tensor::from_f32(&dev, &shape, &noise[k]).unwrap();
            let (out, next) = solver
                .step(
                    m.denoiser.as_ref(),
                    &x,
                    k,
                    &s,
                    &memory,
                    Some(Noise::Injected(&z)),
                    Extras {
                        x0: true,
                        eps: true,
                    },
                )
                .unwrap();
            dev.submit();
            assert!(out.x0.is_some() && out.eps.is_some());
            x = out.x_prev;
            memory = next;
        }
        let e = rel_l2(&x.to_f32().unwrap(), &want_final);
        eprintln!("{what}: {n} evaluations, worst input {worst:.1e}, final mean {e:.1e}");
        assert!(e <= 1e-4, "{what}: final mean: {e:e}");
    }
}

/// A VP sampler on a score-SDE model, and sde-ve on a VP model, are refused with the reason.
#[test]
fn samplers_of_the_other_process_are_refused() {
    let dev = crate::common::cpu();
    let ve = diffscope::pipelines::gaussian::load_dir(&dev, UNET.as_ref()).unwrap();
    let e = Solver::new(&ve.process, Sampler::Ddim { eta: 0.0 }, 10)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("score-SDE") && e.contains("sde-ve"), "{e}");
    let vp = diffscope::process::gaussian::Gaussian::new(Default::default()).unwrap();
    let e = Solver::new(&vp, Sampler::ScoreSdeVe, 10)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ScoreSdeVeScheduler"), "{e}");
}
