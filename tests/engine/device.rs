//! Device limits and device errors: a model too large for a device's bindings is refused with a
//! message that names the tensor and the limit (tested on devices opened with artificially low
//! limits); an invalid dispatch's uncaptured validation error is surfaced as `Error::Validation`; a lost
//! device is reported as `Error::DeviceLost` (no panic, no hang) and a recreated device carries the
//! trajectory on from its host copy, bit for bit.

use diffscope::gpu::{Access, KernelSpec};
use diffscope::pipelines::gaussian::run as gaussian_run;
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::{Device, Error, Gpu, LimitCaps, Tensor};

fn settings(n: usize, steps: usize) -> SampleSettings {
    SampleSettings {
        sampler: Sampler::Ddim { eta: 1.0 },
        steps,
        seed: 7,
        labels: Some(vec![2; n]),
        guidance: None,
    }
}

fn capped(caps: LimitCaps) -> Gpu {
    Gpu::new_capped(&Default::default(), caps).expect("open a capped device")
}

#[test]
fn a_weight_row_larger_than_the_binding_limit_is_refused_by_name() {
    // toy2d-mlp's 128×128 f32 matrices have 512-byte rows; a 256-byte binding cannot hold one.
    for caps in [
        LimitCaps {
            max_storage_buffer_binding_size: Some(256),
            ..Default::default()
        },
        LimitCaps {
            max_buffer_size: Some(256),
            ..Default::default()
        },
    ] {
        let g = capped(caps);
        assert_eq!(g.max_binding(), 256, "the device enforces the cap");
        let e = match diffscope::pipelines::gaussian::load_shipped(&Device::from(&g), "toy2d-mlp") {
            Ok(_) => panic!("{caps:?}: a model with 512-byte rows loaded"),
            Err(e) => e,
        };
        match &e {
            Error::TooLarge { what, bytes, limit } => {
                assert!(what.contains("time_mlp.0.weight"), "{e}");
                assert_eq!((*bytes, *limit), (65536, 256), "{e}");
            }
            other => panic!("{caps:?}: expected TooLarge, got {other}"),
        }
        eprintln!("{caps:?}: {e}");
        g.check().expect("refusing created no invalid GPU object");
    }
}

/// Weights larger than one storage binding are split into blocks of output rows, not refused:
/// toy2d-mlp's 64 KiB matrices on a device with 16 KiB bindings (four blocks each), and mnist-unet's
/// largest convolution, sample the same trajectory as on an uncapped device.
#[test]
fn weights_larger_than_the_binding_limit_are_split() {
    let g = capped(LimitCaps {
        max_storage_buffer_binding_size: Some(16 << 10),
        ..Default::default()
    });
    let small = Device::from(&g);
    let whole = Device::Gpu(Gpu::new(&Default::default()).unwrap());
    let run = |d: &Device| {
        let m = diffscope::pipelines::gaussian::load_shipped(d, "toy2d-mlp").unwrap();
        gaussian_run::sample(&m, &settings(16, 10), 16, None, false)
            .unwrap()
            .final_state()
            .to_vec()
    };
    let (a, b) = (run(&small), run(&whole));
    let e = crate::common::rel_l2(&a, &b);
    assert!(e <= 1e-5, "split weights: relative L2 {e:e}");
    g.check().unwrap();
    // Convolutions too: mnist-unet's 663 KB [96, 192, 3, 3] weight in two blocks of output
    // channels on a device with 512 KiB bindings (batch 1 fits its activations).
    let g = capped(LimitCaps {
        max_storage_buffer_binding_size: Some(512 << 10),
        ..Default::default()
    });
    let small = Device::from(&g);
    let run = |d: &Device| {
        let m = diffscope::pipelines::gaussian::load_shipped(d, "mnist-unet").unwrap();
        gaussian_run::sample(&m, &settings(1, 3), 1, None, false)
            .unwrap()
            .final_state()
            .to_vec()
    };
    let (a, b) = (run(&small), run(&whole));
    let e = crate::common::rel_l2(&a, &b);
    assert!(e <= 1e-5, "split convolution weights: relative L2 {e:e}");
    g.check().unwrap();
}

#[test]
fn activations_past_the_limit_are_refused_and_smaller_batches_run() {
    // 64 KiB: the weights fit exactly; a batch of 1024 needs [1024, 128] f32 = 512 KiB activations.
    let g = capped(LimitCaps {
        max_storage_buffer_binding_size: Some(64 << 10),
        ..Default::default()
    });
    let m = diffscope::pipelines::gaussian::load_shipped(&Device::from(&g), "toy2d-mlp")
        .expect("weights fit in 64 KiB bindings");
    let e = gaussian_run::sample(&m, &settings(1024, 3), 1024, None, false)
        .expect_err("a batch of 1024 must be refused");
    assert!(
        matches!(&e, Error::TooLarge { what, limit: 65536, .. } if what.contains("[1024, 128]")),
        "{e}"
    );
    eprintln!("batch 1024 on a 64 KiB device: {e}");
    // The refusal left the device usable, and a batch that fits gives the uncapped device's bits.
    let small = gaussian_run::sample(&m, &settings(64, 3), 64, None, false).unwrap();
    let reference =
        diffscope::pipelines::gaussian::load_shipped(&crate::common::device(), "toy2d-mlp")
            .unwrap();
    let want = gaussian_run::sample(&reference, &settings(64, 3), 64, None, false).unwrap();
    assert_eq!(small.final_state(), want.final_state());
    g.check().unwrap();
}

const COPY: &str = "
struct P { n: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < p.n { dst[gid.x] = src[gid.x]; }
}
";

#[test]
fn an_invalid_dispatch_is_surfaced_and_the_device_carries_on() {
    let g = Gpu::new(&Default::default()).unwrap();
    let spec = KernelSpec {
        family: "test",
        source: COPY,
        entry: "main",
        defines: "",
        bindings: &[Access::Read, Access::ReadWrite],
    };
    let x = Tensor::from_f32(&g, &[64], &[1.0; 64]).unwrap();
    let y = Tensor::zeros(&g, &[64], diffscope::DType::F32).unwrap();
    // Valid: distinct buffers.
    g.dispatch(
        &spec,
        &[64u32, 0, 0, 0],
        &[x.buffer().unwrap(), y.buffer().unwrap()],
        [1, 1, 1],
    )
    .unwrap();
    g.submit();
    g.check().expect("a valid dispatch reports nothing");
    assert_eq!(y.to_f32().unwrap(), vec![1.0; 64]);
    // Invalid: one buffer bound read-only and read-write in the same dispatch. wgpu reports this
    // outside any error scope; without the handler it would panic the process.
    g.dispatch(
        &spec,
        &[64u32, 0, 0, 0],
        &[x.buffer().unwrap(), x.buffer().unwrap()],
        [1, 1, 1],
    )
    .unwrap();
    g.submit();
    let _ = g.wait_idle();
    match g.check() {
        Err(Error::Validation(msg)) => eprintln!("invalid dispatch surfaced: {msg}"),
        other => panic!("expected a validation error, got {other:?}"),
    }
    g.check().expect("an error is reported once");
    // The device is still usable.
    let z = diffscope::ops::elementwise::affine(&y, 2.0, 1.0).unwrap();
    assert_eq!(z.to_f32().unwrap(), vec![3.0; 64]);
    g.check().unwrap();
}

#[test]
fn a_lost_device_is_reported_and_a_new_one_carries_on_bit_for_bit() {
    let g = Gpu::new(&Default::default()).unwrap();
    let m = diffscope::pipelines::gaussian::load_shipped(&Device::from(&g), "toy2d-mlp").unwrap();
    let (n, s) = (32, settings(32, 12));
    let full = gaussian_run::sample(&m, &s, n, None, true).unwrap();

    g.device().destroy();
    let _ = g.device().poll(wgpu::PollType::Poll);
    assert!(g.lost().is_some(), "the lost callback fired");
    match gaussian_run::sample(&m, &s, n, None, false) {
        Err(Error::DeviceLost(why)) => eprintln!("after destroy: {why}"),
        other => panic!("expected DeviceLost, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(g.check(), Err(Error::DeviceLost(_))));
    let x = Tensor::from_f32(&g, &[4], &[1.0; 4]);
    let read = x.and_then(|x| x.to_f32());
    assert!(
        matches!(read, Err(Error::DeviceLost(_))),
        "a readback on a lost device is an error, not a hang: {read:?}"
    );

    // Recreate, reload, and resume from the host copy of step k.
    let g2 = g.recreate().unwrap();
    assert!(g2.lost().is_none());
    let m2 = diffscope::pipelines::gaussian::load_shipped(&Device::from(&g2), "toy2d-mlp").unwrap();
    let plan = m2.process.plan(s.sampler, s.steps).unwrap();
    let k = 5;
    let mut x = Tensor::from_f32(&g2, &[n, 2], &full.states[k]).unwrap();
    for i in k..plan.len() {
        x = m2
            .process
            .step(m2.denoiser.as_ref(), &x, &plan, i, &s, Default::default())
            .unwrap()
            .x_prev;
    }
    assert_eq!(x.to_f32().unwrap(), full.final_state());
    g2.check().unwrap();
}
