//! Inpainting by replacement on the shipped mnist-unet, both backends: the kept region ends as the
//! known image exactly, carries the known image noised to each step's timestep on the way, the rest
//! is the model's own (finite, and changed by what is kept); a mask of the wrong size is an error.

use crate::common::on_each_backend;
use diffscope::ops::update::Extras;
use diffscope::pipelines::gaussian::{self, run::GaussianRun};
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::Device;

fn settings(sampler: Sampler) -> SampleSettings {
    SampleSettings {
        sampler,
        steps: 10,
        seed: 4,
        labels: Some(vec![7]),
        guidance: None,
    }
}

/// Every state of a run of one image, inpainting `(known, keep)` if given.
fn states(g: &Device, s: &SampleSettings, inpaint: Option<(&[f32], &[f32])>) -> Vec<Vec<f32>> {
    let m = gaussian::load_shipped(g, "mnist-unet").unwrap();
    let mut run = GaussianRun::start(&m, s, 1, None).unwrap();
    if let Some((known, keep)) = inpaint {
        run = run.with_inpaint(&m, known, keep).unwrap();
    }
    let mut out = vec![run.state().to_f32().unwrap()];
    while !run.done() {
        let o = run.step(&m, Extras::default()).unwrap();
        g.submit();
        out.push(o.x_prev.to_f32().unwrap());
    }
    g.check().unwrap();
    out
}

#[test]
fn an_inpainted_run_keeps_the_known_region_and_draws_the_rest() {
    on_each_backend(|g| {
        // A known "1": a bright vertical bar on black, in the model's [-1, 1] range; keep the top half.
        let known: Vec<f32> = (0..28 * 28)
            .map(|i| {
                if (12..16).contains(&(i % 28)) {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        let keep: Vec<f32> = (0..28 * 28).map(|i| (i / 28 < 14) as u8 as f32).collect();
        for sampler in [
            Sampler::Ddim { eta: 0.0 },
            Sampler::DpmSolver {
                sde: false,
                karras: false,
            },
        ] {
            let s = settings(sampler);
            let with = states(&g, &s, Some((&known, &keep)));
            let without = states(&g, &s, None);
            let last = with.last().unwrap();
            for i in 0..28 * 28 {
                if keep[i] == 1.0 {
                    assert_eq!(
                        last[i].to_bits(),
                        known[i].to_bits(),
                        "{sampler:?}: kept pixel {i}"
                    );
                }
            }
            assert!(
                last.iter().all(|v| v.is_finite()),
                "{sampler:?}: non-finite pixels"
            );
            let drawn: Vec<usize> = (0..28 * 28).filter(|&i| keep[i] == 0.0).collect();
            let differs = drawn.iter().filter(|&&i| last[i] != known[i]).count();
            assert!(
                differs > drawn.len() / 2,
                "{sampler:?}: the free half copies the known image"
            );
            // What is kept reaches the free half: the run without inpainting ends elsewhere there.
            let moved = drawn
                .iter()
                .map(|&i| (last[i] - without.last().unwrap()[i]).abs())
                .fold(0.0f32, f32::max);
            assert!(
                moved > 0.1,
                "{sampler:?}: the kept half did not change the rest ({moved})"
            );
            // Halfway, the kept region is the known image under noise: near it, but not it.
            let mid = &with[with.len() / 2];
            let kept: Vec<usize> = (0..28 * 28).filter(|&i| keep[i] == 1.0).collect();
            let off = kept.iter().filter(|&&i| mid[i] != known[i]).count();
            let corr: f32 =
                kept.iter().map(|&i| mid[i] * known[i]).sum::<f32>() / kept.len() as f32;
            assert!(
                off == kept.len() && corr > 0.1,
                "{sampler:?}: mid-run kept region {off} off, corr {corr}"
            );
        }
        // A mask of another size is refused, not a panic.
        let m = gaussian::load_shipped(&g, "mnist-unet").unwrap();
        let run = GaussianRun::start(&m, &settings(Sampler::Ddpm), 1, None).unwrap();
        let Err(e) = run.with_inpaint(&m, &known, &keep[..100]) else {
            panic!("a 100-value mask for 28×28 images was taken");
        };
        assert!(e.to_string().contains("inpainting"), "{e}");
    });
}
