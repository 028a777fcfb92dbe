//! diffusers' UNet2DModel against diffusers 0.42.1 itself (random weights; tools/fixtures_unet.py), in
//! the mnist-unet layout, the google/ddpm-cifar10-32 layout, the score-SDE NCSN++ layout (skip
//! blocks, FIR resampling, Fourier time embedding) and with scale_shift time conditioning, on both
//! backends; and the config checks. The published checkpoints' exact configs: `unet_hub.rs`.

use crate::common::{device, on_each_backend, rel_l2};
use diffscope::models::unet::{UNet2D, UNetConfig};
use diffscope::nn::Denoiser;
use diffscope::weights::Weights;
use diffscope::Device;
use diffscope::Tensor;

fn dir(name: &str) -> String {
    format!("{}/tests/fixtures/unet_{name}", env!("CARGO_MANIFEST_DIR"))
}

fn load(g: &Device, name: &str) -> UNet2D {
    let d = dir(name);
    let cfg = std::fs::read_to_string(format!("{d}/config.json")).unwrap();
    let cfg = UNetConfig::from_json(&cfg, "config.json").unwrap();
    let w =
        Weights::from_file(format!("{d}/diffusion_pytorch_model.safetensors").as_ref()).unwrap();
    UNet2D::load(g, cfg, w).unwrap()
}

fn check(name: &str) {
    on_each_backend(|g| check_on(&g, name));
}

fn check_on(g: &Device, name: &str) {
    let g = g.clone();
    let m = load(&g, name);
    let mut io = Weights::from_file(format!("{}/io.safetensors", dir(name)).as_ref()).unwrap();
    let shape = io.shape_of("x").unwrap().to_vec();
    let x = io.take("x", &shape).unwrap();
    let t = io.take_numbers("t", &[shape[0]]).unwrap();
    let labels = io.contains("label").then(|| {
        let l: Vec<u32> = io
            .take_ints("label")
            .unwrap()
            .1
            .iter()
            .map(|&v| v as u32)
            .collect();
        Tensor::from_u32(&g, &[l.len()], &l).unwrap()
    });
    let want = io.take("out", &shape).unwrap();
    let xt = Tensor::from_f32(&g, &shape, &x.data).unwrap();
    let tt = Tensor::from_f32(&g, &[shape[0]], &t.data).unwrap();
    let got = m
        .forward(&xt, &tt, labels.as_ref())
        .unwrap()
        .to_f32()
        .unwrap();
    let err = rel_l2(&got, &want.data);
    eprintln!("{name}: relative L2 error {err:.2e}");
    assert!(err <= 1e-4, "{name}: relative L2 error {err:e}");
}

#[test]
fn unet_matches_diffusers_ncsnpp_layout() {
    check("ncsnpp_like");
}

#[test]
fn unet_matches_diffusers_with_scale_shift() {
    check("scale_shift");
}

/// A Fourier-embedded (score-SDE) UNet takes σ: integer timesteps are refused, not misread.
#[test]
fn fourier_unet_refuses_integer_timesteps() {
    let g = crate::common::cpu();
    let m = load(&g, "ncsnpp_like");
    let x = Tensor::from_f32(&g, &[1, 3, 8, 8], &[0.0; 192]).unwrap();
    let t = Tensor::from_u32(&g, &[1], &[10]).unwrap();
    let e = m.forward(&x, &t, None).err().unwrap().to_string();
    assert!(e.contains("float σ"), "{e}");
}

#[test]
fn unet_matches_diffusers_mnist_layout() {
    check("mnist_like");
}

#[test]
fn unet_matches_diffusers_cifar10_layout() {
    check("cifar_like");
}

#[test]
fn unet_config_errors_name_the_field() {
    let cfg = std::fs::read_to_string(format!("{}/config.json", dir("cifar_like"))).unwrap();
    let bad = cfg.replace("\"DownBlock2D\"", "\"CrossAttnDownBlock2D\"");
    let e = UNetConfig::from_json(&bad, "c.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("CrossAttnDownBlock2D"), "{e}");
    let bad = cfg.replace("\"act_fn\"", "\"act_fun\"");
    let e = UNetConfig::from_json(&bad, "c.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field \"act_fun\""), "{e}");
    // Label names: a map of numbers to names is read; anything else is refused.
    let named = cfg.replacen('{', r#"{"id2label": {"0": "cat", "1": "dog"},"#, 1);
    assert!(UNetConfig::from_json(&named, "c.json").is_ok());
    let bad = cfg.replacen('{', r#"{"id2label": ["cat", "dog"],"#, 1);
    let e = UNetConfig::from_json(&bad, "c.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("id2label"), "{e}");
    // Null groups need the skip blocks' own; the skip blocks need a 3-channel image.
    let bad = cfg.replace("\"norm_num_groups\": 4", "\"norm_num_groups\": null");
    assert_ne!(bad, cfg);
    let e = UNetConfig::from_json(&bad, "c.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("norm_num_groups is null"), "{e}");
    let ncsn = std::fs::read_to_string(format!("{}/config.json", dir("ncsnpp_like"))).unwrap();
    let bad = ncsn.replace("\"in_channels\": 3", "\"in_channels\": 1");
    assert_ne!(bad, ncsn);
    let e = UNetConfig::from_json(&bad, "c.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Skip blocks carry a 3-channel image"), "{e}");
    let bad = ncsn.replace("\"fourier\"", "\"learned\"");
    let e = UNetConfig::from_json(&bad, "c.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("time_embedding_type") && e.contains("learned"),
        "{e}"
    );
    // Weights for another config: the missing or mis-shaped tensor is named.
    let c = UNetConfig::from_json(
        &cfg.replace("[8, 16]", "[8, 24]")
            .replace("[\n    8,\n    16\n  ]", "[8, 24]"),
        "c.json",
    )
    .unwrap();
    let w = Weights::from_file(
        format!("{}/diffusion_pytorch_model.safetensors", dir("cifar_like")).as_ref(),
    )
    .unwrap();
    let e = UNet2D::load(&device(), c, w).err().unwrap().to_string();
    assert!(e.contains("tensor \""), "{e}");
}

/// The app's loop over a UNet: a guided DDIM step (twice the batch through the model), with x, x̂0 and
/// ε̂ read back in the step's submission, again and again. Once warm, a step must create no buffer,
/// pipeline or bind group: the pool hands a repeated allocation pattern the same buffers, so the bind
/// groups (keyed on buffer ids) come from the cache.
#[test]
fn repeated_unet_steps_create_nothing_after_warm_up() {
    use diffscope::ops::update::Extras;
    use diffscope::process::gaussian::{SampleSettings, Sampler};
    use diffscope::Gpu;
    // Its own device: the counters are per device.
    let g = diffscope::Device::Gpu(Gpu::new(&Default::default()).unwrap());
    let d = dir("mnist_like");
    let m = diffscope::pipelines::gaussian::build(
        &g,
        "unet fixture",
        &std::fs::read_to_string(format!("{d}/config.json")).unwrap(),
        "config.json",
        r#"{"_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_schedule": "linear",
            "prediction_type": "epsilon", "clip_sample": true}"#,
        "scheduler (test)",
        Weights::from_file(format!("{d}/diffusion_pytorch_model.safetensors").as_ref()).unwrap(),
    )
    .unwrap();
    let n = 2;
    let settings = SampleSettings {
        sampler: Sampler::Ddim { eta: 0.0 },
        steps: 40,
        seed: 3,
        labels: m.denoiser.num_labels().map(|_| vec![1; n]),
        guidance: Some(3.0),
    };
    assert!(
        settings.labels.is_some(),
        "the fixture is class-conditional"
    );
    let plan = m.process.plan(settings.sampler, settings.steps).unwrap();
    let mut x = m
        .process
        .initial(&g, n, m.denoiser.sample_shape(), settings.seed)
        .unwrap();
    let mut counts = Vec::new();
    for k in 0..plan.len() {
        let before = g.counters();
        let out = m
            .process
            .step(
                m.denoiser.as_ref(),
                &x,
                &plan,
                k,
                &settings,
                Extras {
                    x0: true,
                    eps: true,
                },
            )
            .unwrap();
        let (x0, eps) = (out.x0.unwrap(), out.eps.unwrap());
        let back = Tensor::read_many(&[&out.x_prev, &x0, &eps]);
        for r in back {
            assert!(pollster::block_on(r.f32())
                .unwrap()
                .iter()
                .all(|v| v.is_finite()));
        }
        x = out.x_prev;
        counts.push(g.counters() - before);
    }
    // The state x moves through the pool one step behind the temporaries (it is dropped after the
    // next step is recorded), so the free set takes a few steps to settle: measured, step 0 creates
    // 173 bind groups, steps 1-8 one each (17 at step 2, the first DDIM step past t = T), then none.
    let warm = 10;
    for (k, c) in counts.iter().enumerate().skip(warm) {
        assert_eq!(
            (
                c.buffers_created,
                c.pipelines_created,
                c.bind_groups_created
            ),
            (0, 0, 0),
            "step {k} created GPU objects: {c:?} (step 0: {:?})",
            counts[0]
        );
    }
    assert!(counts[0].bind_groups_created > 20, "{:?}", counts[0]);
}

/// The bench's loop over the shipped mnist-unet (`diffscope bench`): DDPM steps from the middle of
/// the schedule, label 0, no guidance, one submission per step. The state x is a fresh pooled buffer
/// each step, and the one before it is retired until the next submission, so x settles into a
/// rotation over three buffers; until it does, the two dispatches that touch x (the first
/// convolution and the DDPM update) meet new buffer combinations. Measured: steps 1-4 create
/// 2, 3, 2, 1 bind groups (step 1 also one buffer), then nothing. A bench that warms up for fewer
/// steps counts the settling as the cost of a step.
#[test]
fn mnist_unet_steps_create_nothing_once_the_state_has_settled() {
    use diffscope::ops::update::Extras;
    use diffscope::process::gaussian::{SampleSettings, Sampler};
    use diffscope::Gpu;
    // Its own device: the counters are per device.
    let g = diffscope::Device::Gpu(Gpu::new(&Default::default()).unwrap());
    let m = diffscope::pipelines::gaussian::load_shipped(&g, "mnist-unet").unwrap();
    const SETTLED: usize = 5;
    for batch in [1, 3] {
        let settings = SampleSettings {
            sampler: Sampler::Ddpm,
            steps: m.process.train_timesteps(),
            seed: 1,
            labels: m.denoiser.num_labels().map(|_| vec![0; batch]),
            guidance: None,
        };
        let plan = m.process.plan(settings.sampler, settings.steps).unwrap();
        let mut x = m
            .process
            .initial(&g, batch, m.denoiser.sample_shape(), settings.seed)
            .unwrap();
        let first = plan.len() / 2;
        let mut counts = Vec::new();
        for k in first..first + SETTLED + 6 {
            let before = g.counters();
            let out = m
                .process
                .step(
                    m.denoiser.as_ref(),
                    &x,
                    &plan,
                    k,
                    &settings,
                    Extras::default(),
                )
                .unwrap();
            g.submit();
            x = out.x_prev;
            counts.push(g.counters() - before);
        }
        g.check().unwrap();
        for (s, c) in counts.iter().enumerate().skip(SETTLED) {
            assert_eq!(
                (
                    c.submissions,
                    c.buffers_created,
                    c.pipelines_created,
                    c.bind_groups_created
                ),
                (1, 0, 0, 0),
                "batch {batch}, step {s} after warm-up created GPU objects: {c:?} (all: {counts:?})"
            );
        }
        assert!(counts[0].bind_groups_created > 20, "{:?}", counts[0]);
    }
}

/// A batch the device cannot hold is refused when the run starts, before anything is allocated,
/// with the numbers: on a GPU whose bindings are capped the largest tensor names itself; on the CPU
/// backend the estimate is held against the memory the system has.
#[test]
fn a_batch_too_large_for_the_device_is_refused_with_the_numbers() {
    use diffscope::pipelines::gaussian::{load_shipped, run::GaussianRun};
    use diffscope::process::gaussian::{SampleSettings, Sampler};
    let settings = SampleSettings {
        sampler: Sampler::Ddim { eta: 0.0 },
        steps: 4,
        seed: 0,
        labels: None,
        guidance: None,
    };
    // 8 MB per binding: mnist-unet's batch 1 fits, batch 64 does not.
    let capped = diffscope::Gpu::new_capped(
        &Default::default(),
        diffscope::gpu::LimitCaps {
            max_storage_buffer_binding_size: Some(8 << 20),
            max_buffer_size: Some(8 << 20),
        },
    )
    .unwrap();
    let dev = diffscope::Device::Gpu(capped);
    let m = load_shipped(&dev, "mnist-unet").unwrap();
    let f = m.denoiser.footprint(1).unwrap();
    assert!(
        f.param_bytes > 1 << 20 && f.largest_bytes < 8 << 20,
        "{f:?}"
    );
    let labels = |n: usize| Some(vec![3u32; n]);
    GaussianRun::start(
        &m,
        &SampleSettings {
            labels: labels(1),
            ..settings.clone()
        },
        1,
        None,
    )
    .unwrap();
    let before = dev.gpu().unwrap().counters();
    let e = GaussianRun::start(
        &m,
        &SampleSettings {
            labels: labels(64),
            ..settings.clone()
        },
        64,
        None,
    )
    .err()
    .expect("batch 64 does not fit 8 MB bindings")
    .to_string();
    for needle in [
        "mnist-unet",
        "batch 64",
        "per buffer",
        "MB",
        "smaller batch",
    ] {
        assert!(e.contains(needle), "{needle:?} not in: {e}");
    }
    assert_eq!(
        (dev.gpu().unwrap().counters() - before).buffers_created,
        0,
        "refused before allocating"
    );
    // The CPU backend: a batch whose activations exceed any machine's memory.
    let cpu = crate::common::cpu();
    let m = load_shipped(&cpu, "mnist-unet").unwrap();
    let n = 4_000_000;
    let e = GaussianRun::start(
        &m,
        &SampleSettings {
            labels: labels(n),
            ..settings
        },
        n,
        None,
    )
    .err()
    .expect("four million digits do not fit")
    .to_string();
    for needle in ["mnist-unet", "memory is available", "weights"] {
        assert!(e.contains(needle), "{needle:?} not in: {e}");
    }
}
