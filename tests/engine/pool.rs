//! The CPU backend gives the same bits whether an op runs inside a step on the thread pool
//! (`cpu::parallel::run_step`, where the GEMM splits even small products) or outside it (the page,
//! the deferred queue, a library caller), and several images' convolutions sharing the pool's
//! threads (one thread may run another's while its own product waits) do not trip over each other's
//! scratch.

use diffscope::cpu::parallel::run_step;
use diffscope::ops::conv::{cpu::conv2d, Padding};
use diffscope::ops::matmul::cpu::{matmul, HostMatmul, HostMatrix};
use diffscope::Tensor;

fn ramp(n: usize, mul: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * mul) % 1000) as f32 / 1000.0 * scale - scale / 2.0)
        .collect()
}

#[test]
fn ops_give_the_same_bits_on_and_off_the_pool() {
    let _cpu = diffscope::Cpu::new(&Default::default());
    // (batch, cin, side, cout, kernel, stride): mnist-unet's layers in both layouts, its 1×1
    // shortcuts and its last conv (one output channel: a vector × matrix product per image).
    for &(n, cin, side, cout, k, s) in &[
        (2usize, 1usize, 28usize, 16usize, 3usize, 1usize),
        (2, 16, 28, 16, 3, 2),
        (2, 32, 14, 32, 3, 1),
        (4, 96, 7, 96, 3, 1),
        (2, 48, 28, 16, 1, 1),
        (2, 16, 28, 1, 3, 1),
        (5, 16, 28, 16, 3, 1),
    ] {
        let x = ramp(n * cin * side * side, 7919, 2.0);
        let w = ramp(cout * cin * k * k, 104_729, 0.2);
        let b = ramp(cout, 31, 0.2);
        let f = || {
            let (xs, ws) = ([n, cin, side, side], [cout, cin, k, k]);
            conv2d((&x, &xs), (&w, &ws), Some(&b), s, Padding::same(k / 2))
                .unwrap()
                .0
        };
        assert_eq!(
            f(),
            run_step(f),
            "conv {n}×{cin}×{side}² → {cout}, {k}×{k} /{s}"
        );
    }
    // Products with one row (vector × matrix) and small ones the pool would split.
    for &(m, k, n) in &[
        (1usize, 144usize, 784usize),
        (1, 64, 300),
        (49, 8, 49),
        (98, 96, 288),
    ] {
        let (a, b) = (ramp(m * k, 7919, 2.0), ramp(k * n, 104_729, 2.0));
        let (sa, sb) = ([m, k], [k, n]);
        let f = || {
            let (am, bm) = (
                HostMatrix {
                    data: &a,
                    shape: &sa,
                },
                HostMatrix {
                    data: &b,
                    shape: &sb,
                },
            );
            matmul(am, bm, &HostMatmul::default()).unwrap().0
        };
        assert_eq!(f(), run_step(f), "matmul {m}×{k} @ {k}×{n}");
    }
    // A whole network pass.
    let c = crate::common::cpu();
    let unet = diffscope::pipelines::gaussian::load_shipped(&c, "mnist-unet").unwrap();
    let x = Tensor::from_f32(&c, &[2, 1, 28, 28], &ramp(2 * 784, 7919, 2.0)).unwrap();
    let t = Tensor::from_f32(&c, &[2], &[500.0, 20.0]).unwrap();
    let l = Tensor::from_u32(&c, &[2], &[3, 7]).unwrap();
    let f = || {
        let out = unet.denoiser.forward(&x, &t, Some(&l)).unwrap();
        out.to_f32().unwrap()
    };
    assert_eq!(f(), run_step(f), "mnist-unet forward");
}
