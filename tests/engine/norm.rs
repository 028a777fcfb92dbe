//! Softmax, LayerNorm and GroupNorm against f64 CPU references. Tolerance: these are reductions, so
//! `assert_close` with rtol 1e-4 and atol 1e-5 (or 1e-6 where outputs are probabilities).

use crate::common::{assert_close, gpu, on_each_backend, Rng, ODD_SIZES};
use diffscope::ops::norm;
use diffscope::Device;
use diffscope::{Error, Tensor};

fn cpu_softmax(x: &[f32], n: usize, log: bool) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(n) {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        for &v in row {
            let v = v as f64;
            out.push(if log {
                v - m - s.ln()
            } else {
                (v - m).exp() / s
            } as f32);
        }
    }
    out
}

/// Normalise each of the `x.len() / n` contiguous rows; `affine(j)` gives (weight, bias) of element j.
fn cpu_norm_rows(
    x: &[f32],
    n: usize,
    eps: f32,
    affine: impl Fn(usize, usize) -> (f64, f64),
    silu: bool,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for (r, row) in x.chunks(n).enumerate() {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for (j, &v) in row.iter().enumerate() {
            let (w, b) = affine(r, j);
            let mut y = (v as f64 - mean) * inv * w + b;
            if silu {
                y /= 1.0 + (-y).exp();
            }
            out.push(y as f32);
        }
    }
    out
}

#[test]
fn softmax_and_log_softmax_match_cpu() {
    on_each_backend(softmax_and_log_softmax_match_cpu_on);
}

fn softmax_and_log_softmax_match_cpu_on(g: Device) {
    let mut rng = Rng::new(11);
    for &n in ODD_SIZES.iter().chain(&[1000, 1031]) {
        let rows = if n > 300 { 3 } else { 5 };
        // A large offset checks the max subtraction: a naive exp would overflow.
        let x: Vec<f32> = rng
            .vec(rows * n, -8.0, 8.0)
            .iter()
            .map(|v| v + 90.0)
            .collect();
        let t = Tensor::from_f32(&g, &[rows, n], &x).unwrap();
        let got = norm::softmax(&t).unwrap().to_f32().unwrap();
        assert_close(
            &format!("softmax n={n}"),
            &got,
            &cpu_softmax(&x, n, false),
            1e-4,
            1e-7,
        );
        let got = norm::log_softmax(&t).unwrap().to_f32().unwrap();
        assert_close(
            &format!("log_softmax n={n}"),
            &got,
            &cpu_softmax(&x, n, true),
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn softmax_over_many_rows_and_higher_rank() {
    on_each_backend(softmax_over_many_rows_and_higher_rank_on);
}

fn softmax_over_many_rows_and_higher_rank_on(g: Device) {
    let mut rng = Rng::new(12);
    let shape = [3, 29, 7];
    let x = rng.vec(3 * 29 * 7, -5.0, 5.0);
    let t = Tensor::from_f32(&g, &shape, &x).unwrap();
    let out = norm::softmax(&t).unwrap();
    assert_eq!(out.shape(), &shape);
    assert_close(
        "softmax [3,29,7]",
        &out.to_f32().unwrap(),
        &cpu_softmax(&x, 7, false),
        1e-4,
        1e-7,
    );
}

#[test]
fn softmax_many_short_rows() {
    // A discrete diffusion's shape: a softmax over 5 classes at each of 70,001 positions, more rows
    // than one grid dimension holds workgroups (the short-row path takes 256 rows per workgroup).
    let g = gpu();
    let mut rng = Rng::new(15);
    let (rows, n) = (70_001, 5);
    let x = rng.vec(rows * n, -6.0, 6.0);
    let t = Tensor::from_f32(&g, &[rows, n], &x).unwrap();
    let got = norm::softmax(&t).unwrap().to_f32().unwrap();
    assert_close(
        "softmax 70001x5",
        &got,
        &cpu_softmax(&x, n, false),
        1e-4,
        1e-7,
    );
}

#[test]
fn layer_norm_matches_cpu() {
    on_each_backend(layer_norm_matches_cpu_on);
}

fn layer_norm_matches_cpu_on(g: Device) {
    let mut rng = Rng::new(13);
    // 3 rows take the workgroup-per-row path, 70 rows the row-per-invocation path.
    for (&n, rows) in ODD_SIZES
        .iter()
        .chain(&[1000])
        .flat_map(|n| [(n, 3usize), (n, 70)])
    {
        let x: Vec<f32> = rng
            .vec(rows * n, -3.0, 3.0)
            .iter()
            .map(|v| v + 5.0)
            .collect();
        let w = rng.vec(n, 0.5, 1.5);
        let b = rng.vec(n, -1.0, 1.0);
        let tx = Tensor::from_f32(&g, &[rows, n], &x).unwrap();
        let tw = Tensor::from_f32(&g, &[n], &w).unwrap();
        let tb = Tensor::from_f32(&g, &[n], &b).unwrap();
        let eps = 1e-5;
        let got = norm::layer_norm(&tx, Some(&tw), Some(&tb), eps)
            .unwrap()
            .to_f32()
            .unwrap();
        let want = cpu_norm_rows(&x, n, eps, |_, j| (w[j] as f64, b[j] as f64), false);
        assert_close(
            &format!("layer_norm n={n} rows={rows}"),
            &got,
            &want,
            1e-4,
            1e-5,
        );
        let got = norm::layer_norm(&tx, None, None, eps)
            .unwrap()
            .to_f32()
            .unwrap();
        let want = cpu_norm_rows(&x, n, eps, |_, _| (1.0, 0.0), false);
        assert_close(&format!("layer_norm plain n={n}"), &got, &want, 1e-4, 1e-5);
    }
    // Weight without bias, and a large eps that visibly changes the result.
    let n = 13;
    let x = rng.vec(2 * n, -1.0, 1.0);
    let w = rng.vec(n, -2.0, 2.0);
    let tx = Tensor::from_f32(&g, &[2, n], &x).unwrap();
    let tw = Tensor::from_f32(&g, &[n], &w).unwrap();
    let got = norm::layer_norm(&tx, Some(&tw), None, 0.5)
        .unwrap()
        .to_f32()
        .unwrap();
    let want = cpu_norm_rows(&x, n, 0.5, |_, j| (w[j] as f64, 0.0), false);
    assert_close("layer_norm weight only", &got, &want, 1e-4, 1e-5);
}

/// (N, C, spatial, groups): UNet-like, odd spatial sizes, one group, one channel per group, a UNet
/// block's 32 groups of two channels, no spatial dimensions.
const GROUP_NORM_CASES: &[(usize, usize, &[usize], usize)] = &[
    (2, 8, &[7, 9], 4),
    (1, 6, &[13, 13], 1),
    (3, 5, &[29], 5),
    (1, 32, &[16, 16], 8),
    (1, 64, &[16, 16], 32),
    (2, 4, &[], 2),
    (1, 3, &[257], 3),
];

#[test]
fn group_norm_matches_cpu() {
    on_each_backend(group_norm_matches_cpu_on);
}

fn group_norm_matches_cpu_on(g: Device) {
    let mut rng = Rng::new(14);
    for &(n, c, spatial, groups) in GROUP_NORM_CASES {
        let s: usize = spatial.iter().product();
        let mut shape = vec![n, c];
        shape.extend_from_slice(spatial);
        let x: Vec<f32> = rng
            .vec(n * c * s, -2.0, 2.0)
            .iter()
            .map(|v| v + 3.0)
            .collect();
        let w = rng.vec(c, 0.5, 1.5);
        let b = rng.vec(c, -1.0, 1.0);
        let tx = Tensor::from_f32(&g, &shape, &x).unwrap();
        let tw = Tensor::from_f32(&g, &[c], &w).unwrap();
        let tb = Tensor::from_f32(&g, &[c], &b).unwrap();
        let cpg = c / groups;
        let eps = 1e-6;
        let aff = |r: usize, j: usize| {
            let ch = (r % groups) * cpg + j / s;
            (w[ch] as f64, b[ch] as f64)
        };
        let want = cpu_norm_rows(&x, cpg * s, eps, aff, false);
        let got = norm::group_norm(&tx, groups, Some(&tw), Some(&tb), eps).unwrap();
        assert_eq!(got.shape(), &shape[..]);
        assert_close(
            &format!("group_norm {shape:?} G={groups}"),
            &got.to_f32().unwrap(),
            &want,
            1e-4,
            1e-5,
        );
        let want = cpu_norm_rows(&x, cpg * s, eps, aff, true);
        let got = norm::group_norm_silu(&tx, groups, Some(&tw), Some(&tb), eps)
            .unwrap()
            .to_f32()
            .unwrap();
        assert_close(
            &format!("group_norm_silu {shape:?} G={groups}"),
            &got,
            &want,
            1e-4,
            1e-5,
        );
        let want = cpu_norm_rows(&x, cpg * s, eps, |_, _| (1.0, 0.0), false);
        let got = norm::group_norm(&tx, groups, None, None, eps)
            .unwrap()
            .to_f32()
            .unwrap();
        assert_close("group_norm no affine", &got, &want, 1e-4, 1e-5);
    }
}

#[test]
fn norm_errors_are_typed() {
    on_each_backend(norm_errors_are_typed_on);
}

fn norm_errors_are_typed_on(g: Device) {
    let x = Tensor::from_f32(&g, &[2, 6, 3], &[0.0; 36]).unwrap();
    let w4 = Tensor::from_f32(&g, &[4], &[1.0; 4]).unwrap();
    assert!(matches!(
        norm::group_norm(&x, 4, None, None, 1e-5),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        norm::group_norm(&x, 0, None, None, 1e-5),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        norm::group_norm(&x, 3, Some(&w4), None, 1e-5),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        norm::layer_norm(&x, None, Some(&w4), 1e-5),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        norm::layer_norm(&x, None, None, -1.0),
        Err(Error::Invalid(_))
    ));
    let u = Tensor::from_u32(&g, &[4], &[0; 4]).unwrap();
    assert!(matches!(norm::softmax(&u), Err(Error::DType { .. })));
    let w3 = Tensor::from_u32(&g, &[3], &[0; 3]).unwrap();
    assert!(matches!(
        norm::layer_norm(&x, Some(&w3), None, 1e-5),
        Err(Error::DType { .. })
    ));
}

/// The CPU backend's softmax, LayerNorm and GroupNorm (±SiLU) against the same references and
/// tolerances as the GPU kernels, on odd sizes, and the same typed errors.
#[test]
fn cpu_norms_match_the_references() {
    use diffscope::ops::norm::cpu;
    let mut rng = Rng::new(23);
    for &n in ODD_SIZES.iter().chain(&[1000]) {
        let rows = 5;
        let x = rng.vec(rows * n, -8.0, 8.0);
        for log in [false, true] {
            let got = if log {
                cpu::log_softmax(&x, &[rows, n])
            } else {
                cpu::softmax(&x, &[rows, n])
            }
            .unwrap();
            let want = cpu_softmax(&x, n, log);
            let atol = if log { 1e-5 } else { 1e-6 };
            assert_close(
                &format!("cpu softmax log={log} n={n}"),
                &got,
                &want,
                1e-4,
                atol,
            );
        }
        let x: Vec<f32> = rng
            .vec(rows * n, -3.0, 3.0)
            .iter()
            .map(|v| v + 5.0)
            .collect();
        let (w, b) = (rng.vec(n, 0.5, 1.5), rng.vec(n, -1.0, 1.0));
        let got = cpu::layer_norm(&x, &[rows, n], Some(&w), Some(&b), 1e-5).unwrap();
        let want = cpu_norm_rows(&x, n, 1e-5, |_, j| (w[j] as f64, b[j] as f64), false);
        assert_close(&format!("cpu layer_norm n={n}"), &got, &want, 1e-4, 1e-5);
        let got = cpu::layer_norm(&x, &[rows, n], None, None, 0.5).unwrap();
        let want = cpu_norm_rows(&x, n, 0.5, |_, _| (1.0, 0.0), false);
        assert_close(
            &format!("cpu layer_norm plain n={n}"),
            &got,
            &want,
            1e-4,
            1e-5,
        );
    }
    for &(n, c, spatial, groups) in GROUP_NORM_CASES {
        let s: usize = spatial.iter().product();
        let mut shape = vec![n, c];
        shape.extend_from_slice(spatial);
        let x: Vec<f32> = rng
            .vec(n * c * s, -2.0, 2.0)
            .iter()
            .map(|v| v + 3.0)
            .collect();
        let (w, b) = (rng.vec(c, 0.5, 1.5), rng.vec(c, -1.0, 1.0));
        let cpg = c / groups;
        let aff = |r: usize, j: usize| {
            let ch = (r % groups) * cpg + j / s.max(1);
            (w[ch] as f64, b[ch] as f64)
        };
        for silu in [false, true] {
            let got = cpu::group_norm(&x, &shape, groups, Some(&w), Some(&b), 1e-6, silu).unwrap();
            let want = cpu_norm_rows(&x, cpg * s, 1e-6, aff, silu);
            assert_close(
                &format!("cpu group_norm {shape:?} G={groups} silu={silu}"),
                &got,
                &want,
                1e-4,
                1e-5,
            );
        }
    }
    let x = [0.0f32; 12];
    assert!(matches!(
        cpu::group_norm(&x, &[1, 6, 2], 4, None, None, 1e-5, false),
        Err(Error::Shape {
            op: "group_norm",
            ..
        })
    ));
    assert!(matches!(
        cpu::layer_norm(&x, &[3, 4], Some(&[1.0; 3]), None, 1e-5),
        Err(Error::Shape {
            op: "layer_norm",
            ..
        })
    ));
    assert!(matches!(
        cpu::layer_norm(&x, &[3, 4], None, None, f32::NAN),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        cpu::softmax(&x, &[5, 2]),
        Err(Error::Shape { op: "softmax", .. })
    ));
    assert!(matches!(cpu::softmax(&x, &[]), Err(Error::Shape { .. })));
}
