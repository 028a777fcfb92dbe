use crate::common::gpu;
use diffscope::ops::elementwise as ew;
use diffscope::{Error, Tensor};

#[test]
fn recorded_ops_submit_once_and_reuse_buffers() {
    // Its own device: the counters are per device and other tests run concurrently on the shared one.
    let g = diffscope::Gpu::new(&Default::default()).unwrap();
    let x = Tensor::from_f32(&g, &[64, 33], &vec![0.5; 64 * 33]).unwrap();
    let step = |x: &Tensor| -> Tensor {
        let a = ew::silu(x).unwrap();
        let b = ew::add(&a, x).unwrap();
        let c = ew::affine(&b, 0.5, 0.0).unwrap();
        g.submit();
        c
    };
    // Warm up: pipelines, bind groups and pool classes.
    let mut y = step(&x);
    for _ in 0..3 {
        y = step(&y);
    }
    let before = g.counters();
    for _ in 0..5 {
        y = step(&y);
    }
    let d = g.counters() - before;
    assert_eq!(d.submissions, 5, "one submission per step: {d:?}");
    assert_eq!(d.dispatches, 15);
    assert_eq!(
        d.buffers_created, 0,
        "no buffer creation in steady state: {d:?}"
    );
    assert_eq!(d.pipelines_created, 0);
    assert_eq!(d.bytes_read_back, 0);
    let v = y.to_f32().unwrap();
    assert!(v.iter().all(|v| v.is_finite()));
}

#[test]
fn reshape_shares_storage_and_checks_count() {
    let g = gpu();
    let x = Tensor::from_f32(&g, &[2, 6], &(0..12).map(|v| v as f32).collect::<Vec<_>>()).unwrap();
    let y = x.reshape(&[3, 4]).unwrap();
    assert_eq!(y.shape(), &[3, 4]);
    assert_eq!(y.to_f32().unwrap(), x.to_f32().unwrap());
    assert!(matches!(x.reshape(&[5]), Err(Error::Shape { .. })));
}

#[test]
fn write_after_recorded_read_keeps_order() {
    // A recorded op reads x; a later host write to x must not overtake it.
    let g = gpu();
    let x = Tensor::from_f32(&g, &[4], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let y = ew::affine(&x, 2.0, 0.0).unwrap();
    x.write_f32(&[10.0, 20.0, 30.0, 40.0]).unwrap();
    assert_eq!(y.to_f32().unwrap(), vec![2.0, 4.0, 6.0, 8.0]);
    assert_eq!(x.to_f32().unwrap(), vec![10.0, 20.0, 30.0, 40.0]);
}

#[test]
fn too_large_and_bad_indices_are_errors() {
    let g = gpu();
    let limit = g.max_binding();
    let n = (limit / 4 + 1) as usize;
    match Tensor::empty(&g, &[n], diffscope::DType::F32) {
        Err(Error::TooLarge {
            bytes, limit: l, ..
        }) => assert!(bytes > l),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let e = Tensor::from_indices(&g, &[3], &[0, 5, 1], 4, "token ids").unwrap_err();
    assert!(e.to_string().contains("5 is not below 4"), "{e}");
}

#[test]
fn async_readback_completes_without_blocking_calls() {
    let g = gpu();
    let x = Tensor::from_f32(&g, &[1000], &vec![3.0; 1000]).unwrap();
    let y = ew::affine(&x, 1.0, 1.0).unwrap();
    let mut rb = y.read();
    let mut spins = 0u64;
    let v = loop {
        if let Some(r) = rb.try_f32() {
            break r.unwrap();
        }
        spins += 1;
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(spins < 60_000, "readback never completed");
    };
    assert!(v.iter().all(|&v| v == 4.0));
    assert!(
        matches!(rb.try_f32().unwrap(), Err(Error::Readback(m)) if m.contains("already taken")),
        "a second take is an error, not a panic"
    );
}

#[test]
fn adapter_choice_that_matches_nothing_is_an_error() {
    let e = diffscope::Gpu::new(&diffscope::GpuOptions {
        adapter: Some("no-such-adapter-xyz".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(e, Error::NoAdapter(_)), "{e}");
    assert!(e.to_string().contains("no-such-adapter-xyz"));
}

#[test]
fn several_readbacks_with_the_recorded_step_are_one_submission() {
    let g = gpu();
    let a = Tensor::from_f32(&g, &[3, 5], &(0..15).map(|i| i as f32).collect::<Vec<_>>()).unwrap();
    let b = Tensor::from_f32(&g, &[7], &[0.5; 7]).unwrap();
    g.wait_idle().unwrap();
    let before = g.counters();
    // Recorded work (two kernels) plus three readbacks: one submission.
    let c = ew::unary_affine(&a, ew::Unary::Identity, -1.0, 0.0).unwrap();
    let d = ew::unary_affine(&b, ew::Unary::Identity, -1.0, 0.0).unwrap();
    let rbs = Tensor::read_many(&[&a, &c, &d]);
    let after = g.counters();
    assert_eq!(after.submissions - before.submissions, 1);
    let got: Vec<Vec<f32>> = rbs
        .into_iter()
        .map(|r| pollster::block_on(r.f32()).unwrap())
        .collect();
    assert_eq!(got[0][14], 14.0);
    assert_eq!(got[1][14], -14.0);
    assert_eq!(got[2], vec![-0.5; 7]);
    assert!(Tensor::read_many(&[]).is_empty());
}
