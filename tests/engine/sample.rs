use crate::common::{device, on_each_backend, Rng};
use diffscope::ops::sample::{self, Categorical, Noise};
use diffscope::rng::{Philox, Substream};
use diffscope::Device;
use diffscope::{Error, Tensor};

/// moco's Gumbel-max on the CPU, in f32 like the kernel.
fn cpu_gumbel_max(
    x: &[f32],
    k: usize,
    u: &[f32],
    m: &dyn Fn(usize) -> f32,
    tau: f32,
    u_min: f32,
    probs: bool,
) -> Vec<u32> {
    (0..x.len() / k)
        .map(|r| {
            let mut best: Option<(f32, u32)> = None;
            for c in 0..k {
                let mut v = x[r * k + c];
                if probs {
                    if v <= 0.0 {
                        continue;
                    }
                    v = v.ln();
                }
                let mut s = v / tau;
                let mr = m(r);
                if mr != 0.0 {
                    let uu = u[r * k + c].max(u_min);
                    s += mr * -(-uu.ln()).ln();
                }
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, c as u32));
                }
            }
            best.map_or(0, |b| b.1)
        })
        .collect()
}

fn upload(d: &Device, shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(d, shape, v).unwrap()
}

/// Shapes and temperatures of the injected-uniform tests (GPU and CPU). K = 1500 takes the GPU's
/// workgroup-per-row kernel.
const INJECTED_CASES: &[(&[usize], f32)] = &[
    (&[3, 5, 7], 1.0),
    (&[40, 29], 0.7),
    (&[6, 1], 1.0),
    (&[257, 3], 2.5),
    (&[2, 3, 1500], 1.0),
    (&[5, 600], 0.5),
];

/// Shapes of the Philox-noise tests.
const PHILOX_SHAPES: &[&[usize]] = &[&[33, 17], &[4, 700]];

#[test]
fn injected_uniforms_match_cpu_exactly() {
    on_each_backend(injected_uniforms_match_cpu_exactly_on);
}

fn injected_uniforms_match_cpu_exactly_on(g: Device) {
    let mut rng = Rng::new(11);
    for &(shape, tau) in INJECTED_CASES {
        let k = *shape.last().unwrap();
        let n: usize = shape.iter().product();
        let logits = rng.vec(n, -4.0, 4.0);
        let mut u = rng.vec(n, 0.0, 1.0);
        // Below the clip, and u = 1 (g = +inf), as torch.rand can give.
        u[0] = 1e-9;
        u[n / 2] = 1.0;
        let tl = upload(&g, shape, &logits);
        let tu = upload(&g, shape, &u);
        let opts = Categorical::new(Noise::Injected(&tu)).temperature(tau);
        let got = sample::gumbel_max(&tl, &opts).unwrap();
        assert_eq!(got.shape(), &shape[..shape.len() - 1]);
        let want = cpu_gumbel_max(&logits, k, &u, &|_| 1.0, tau, 1e-6, false);
        assert_eq!(got.to_u32().unwrap(), want, "logits {shape:?} τ={tau}");

        // Probabilities with zeros: never drawn, even under u = 1.
        let mut p: Vec<f32> = logits.iter().map(|v| v.exp()).collect();
        for i in (0..n).step_by(3) {
            p[i] = 0.0;
        }
        p[n / 2] = 0.0;
        let tp = upload(&g, shape, &p);
        let got = sample::sample_probs(&tp, &opts).unwrap().to_u32().unwrap();
        let want = cpu_gumbel_max(&p, k, &u, &|_| 1.0, tau, 1e-6, true);
        assert_eq!(got, want, "probs {shape:?}");
        for (r, &c) in got.iter().enumerate() {
            let row = &p[r * k..r * k + k];
            assert!(
                row[c as usize] > 0.0 || row.iter().all(|&v| v <= 0.0),
                "row {r} drew a zero-probability class"
            );
        }
    }
}

#[test]
fn philox_noise_equals_injected_cpu_philox_uniforms() {
    on_each_backend(philox_noise_equals_injected_cpu_philox_uniforms_on);
}

fn philox_noise_equals_injected_cpu_philox_uniforms_on(g: Device) {
    let mut rng = Rng::new(12);
    for &shape in PHILOX_SHAPES {
        let n: usize = shape.iter().product();
        let logits = rng.vec(n, -3.0, 3.0);
        let tl = upload(&g, shape, &logits);
        let key = Philox::new(77, 12, Substream::Gumbel);
        let tu = Tensor::from_f32(&g, shape, &key.uniforms(n)).unwrap();
        let a = sample::gumbel_max(&tl, &Categorical::new(Noise::Philox(key)))
            .unwrap()
            .to_u32()
            .unwrap();
        let b = sample::gumbel_max(&tl, &Categorical::new(Noise::Injected(&tu)))
            .unwrap()
            .to_u32()
            .unwrap();
        assert_eq!(a, b, "{shape:?}");
        // And the CPU agrees (a near-tie within transcendental error would be astronomically rare).
        let want = cpu_gumbel_max(
            &logits,
            shape[1],
            &key.uniforms(n),
            &|_| 1.0,
            1.0,
            1e-6,
            false,
        );
        assert_eq!(a, want);
    }
}

/// Wilson–Hilferty upper quantile of χ²(df) at standard-normal quantile z.
fn chi2_crit(df: f64, z: f64) -> f64 {
    let h = 2.0 / (9.0 * df);
    df * (1.0 - h + z * h.sqrt()).powi(3)
}

fn softmax(l: &[f64]) -> Vec<f64> {
    let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = l.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Draw `draws` samples from each of the rows (`[rows, K]`, repeated on the leading axis) with one
/// Philox key and return the χ² statistic and its degrees of freedom against `target` probabilities;
/// classes with zero target must never be drawn.
#[allow(clippy::too_many_arguments)]
fn chi2_of_draws(
    d: &Device,
    x: &[f32],
    k: usize,
    draws: usize,
    target: &[Vec<f64>],
    opts: &dyn Fn(Noise<'static>) -> Categorical<'static>,
    probs: bool,
    seed: u64,
) -> (f64, f64) {
    let rows = x.len() / k;
    let big: Vec<f32> = x.iter().cycle().take(x.len() * draws).cloned().collect();
    let t = upload(d, &[draws, rows, k], &big);
    let key = Philox::new(seed, 0, Substream::Gumbel);
    let o = opts(Noise::Philox(key));
    let out = if probs {
        sample::sample_probs(&t, &o)
    } else {
        sample::gumbel_max(&t, &o)
    }
    .unwrap()
    .to_u32()
    .unwrap();
    let mut counts = vec![0usize; rows * k];
    for (i, &c) in out.iter().enumerate() {
        assert!((c as usize) < k);
        counts[(i % rows) * k + c as usize] += 1;
    }
    let (mut chi2, mut df) = (0.0, 0.0);
    for r in 0..rows {
        let mut support = 0;
        for c in 0..k {
            let e = target[r][c] * draws as f64;
            let o = counts[r * k + c] as f64;
            if target[r][c] == 0.0 {
                assert_eq!(o, 0.0, "row {r} drew zero-probability class {c}");
                continue;
            }
            assert!(e >= 5.0, "test design: expected count {e} too small");
            chi2 += (o - e) * (o - e) / e;
            support += 1;
        }
        df += (support - 1) as f64;
    }
    (chi2, df)
}

#[test]
fn chi_square_against_target_probabilities() {
    on_each_backend(chi_square_against_target_probabilities_on);
}

fn chi_square_against_target_probabilities_on(g: Device) {
    let mut rng = Rng::new(13);
    let (rows, draws) = (20, 5000);
    for (i, k) in [3usize, 7, 29].into_iter().enumerate() {
        let logits = rng.vec(rows * k, -1.5, 1.5);
        let target: Vec<Vec<f64>> = logits
            .chunks(k)
            .map(|r| softmax(&r.iter().map(|&v| v as f64).collect::<Vec<_>>()))
            .collect();
        let (chi2, df) = chi2_of_draws(
            &g,
            &logits,
            k,
            draws,
            &target,
            &Categorical::new,
            false,
            100 + i as u64,
        );
        // z = 4.5: a correct sampler fails about once in 300,000 seeds; the seeds here are fixed.
        let crit = chi2_crit(df, 4.5);
        assert!(chi2 < crit, "K={k}: χ² = {chi2:.1} ≥ {crit:.1} (df {df})");
    }
}

#[test]
fn chi_square_for_probabilities_with_zeros() {
    on_each_backend(chi_square_for_probabilities_with_zeros_on);
}

fn chi_square_for_probabilities_with_zeros_on(g: Device) {
    let mut rng = Rng::new(14);
    let (rows, k, draws) = (20, 7, 5000);
    let mut p = rng.vec(rows * k, 0.2, 1.0);
    for r in 0..rows {
        p[r * k + r % k] = 0.0; // a zero in every row, at varying classes
    }
    p[3] = 0.0;
    // Unnormalised on purpose: the kernel takes log p, so only ratios matter.
    let target: Vec<Vec<f64>> = p
        .chunks(k)
        .map(|r| {
            let s: f64 = r.iter().map(|&v| v as f64).sum();
            r.iter().map(|&v| v as f64 / s).collect()
        })
        .collect();
    let (chi2, df) = chi2_of_draws(&g, &p, k, draws, &target, &Categorical::new, true, 200);
    let crit = chi2_crit(df, 4.5);
    assert!(chi2 < crit, "χ² = {chi2:.1} ≥ {crit:.1} (df {df})");
}

#[test]
fn temperature_divides_the_logits() {
    on_each_backend(temperature_divides_the_logits_on);
}

fn temperature_divides_the_logits_on(g: Device) {
    let mut rng = Rng::new(15);
    let (rows, k, draws) = (20, 7, 5000);
    let logits = rng.vec(rows * k, -1.0, 1.0);
    for (i, tau) in [0.5f32, 2.0].into_iter().enumerate() {
        let target: Vec<Vec<f64>> = logits
            .chunks(k)
            .map(|r| softmax(&r.iter().map(|&v| v as f64 / tau as f64).collect::<Vec<_>>()))
            .collect();
        let (chi2, df) = chi2_of_draws(
            &g,
            &logits,
            k,
            draws,
            &target,
            &|n| Categorical::new(n).temperature(tau),
            false,
            300 + i as u64,
        );
        let crit = chi2_crit(df, 4.5);
        assert!(chi2 < crit, "τ={tau}: χ² = {chi2:.1} ≥ {crit:.1}");
    }
    // A tiny temperature is an argmax: logit gaps of ≥ 0.05 become ≥ 500, beyond any Gumbel gap (< 20).
    let rows = 64;
    let mut l: Vec<f32> = Vec::new();
    for _ in 0..rows {
        let mut r: Vec<f32> = (0..k).map(|c| c as f32 * 0.05).collect();
        for i in (1..k).rev() {
            r.swap(i, rng.below(i + 1));
        }
        l.extend(r);
    }
    let t = upload(&g, &[rows, k], &l);
    let key = Philox::new(1, 2, Substream::Gumbel);
    let got = sample::gumbel_max(&t, &Categorical::new(Noise::Philox(key)).temperature(1e-4))
        .unwrap()
        .to_u32()
        .unwrap();
    let want = sample::argmax(&t).unwrap().to_u32().unwrap();
    assert_eq!(got, want);
}

#[test]
fn masked_rows_are_exact_argmax() {
    on_each_backend(masked_rows_are_exact_argmax_on);
}

fn masked_rows_are_exact_argmax_on(g: Device) {
    let mut rng = Rng::new(16);
    let (b, n, k) = (4, 9, 5);
    let logits = rng.vec(b * n * k, -2.0, 2.0);
    let t = upload(&g, &[b, n, k], &logits);
    let key = Philox::new(8, 3, Substream::Gumbel);
    let u = key.uniforms(b * n * k);
    let argmax = cpu_gumbel_max(&logits, k, &u, &|_| 0.0, 0.8, 1e-6, false);
    // Per-batch mask [B] (moco's `t != last_time_idx`) and per-row mask [B, N].
    let mb = [1.0f32, 0.0, 1.0, 0.0];
    let mr: Vec<f32> = (0..b * n).map(|i| (i % 2) as f32).collect();
    for (mask, shape, per) in [(&mb[..], vec![b], n), (&mr[..], vec![b, n], 1)] {
        let tm = Tensor::from_f32(&g, &shape, mask).unwrap();
        let opts = Categorical::new(Noise::Philox(key))
            .temperature(0.8)
            .mask(&tm);
        let got = sample::gumbel_max(&t, &opts).unwrap().to_u32().unwrap();
        let want = cpu_gumbel_max(&logits, k, &u, &|r| mask[r / per], 0.8, 1e-6, false);
        assert_eq!(got, want, "mask {shape:?}");
        for r in 0..b * n {
            if mask[r / per] == 0.0 {
                assert_eq!(got[r], argmax[r], "masked row {r}");
            }
        }
    }
    // No noise at all: argmax of logits/τ, ties to the first index.
    let tie = upload(
        &g,
        &[3, 4],
        &[
            1.0, 3.0, 3.0, 0.0, 5.0, 5.0, 5.0, 5.0, -1.0, -2.0, -0.5, -0.5,
        ],
    );
    assert_eq!(
        sample::argmax(&tie).unwrap().to_u32().unwrap(),
        vec![1, 0, 2]
    );
}

#[test]
fn bad_arguments_are_typed_errors() {
    on_each_backend(bad_arguments_are_typed_errors_on);
}

fn bad_arguments_are_typed_errors_on(g: Device) {
    let t = upload(&g, &[2, 3], &[0.0; 6]);
    let key = Philox::new(0, 0, Substream::Gumbel);
    for tau in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let e = sample::gumbel_max(&t, &Categorical::new(Noise::Philox(key)).temperature(tau))
            .unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "τ={tau}: {e}");
    }
    let e = sample::gumbel_max(&t, &Categorical::new(Noise::Philox(key)).u_min(1.0)).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let u = upload(&g, &[3, 2], &[0.5; 6]);
    let e = sample::gumbel_max(&t, &Categorical::new(Noise::Injected(&u))).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let m = upload(&g, &[3], &[1.0; 3]);
    let e = sample::gumbel_max(&t, &Categorical::new(Noise::Philox(key)).mask(&m)).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let ids = Tensor::from_u32(&g, &[2, 3], &[0; 6]).unwrap();
    let e = sample::gumbel_max(&ids, &Categorical::new(Noise::None)).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    let scalar = upload(&g, &[], &[1.0]);
    let e = sample::argmax(&scalar).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let empty = upload(&g, &[2, 0], &[]);
    let e = sample::argmax(&empty).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    // A single row [K] gives a 0-d result.
    let one = upload(&g, &[4], &[0.0, 2.0, 1.0, 2.0]);
    let r = sample::argmax(&one).unwrap();
    assert_eq!(r.shape(), &[] as &[usize]);
    assert_eq!(r.to_u32().unwrap(), vec![1]);
}

#[test]
fn golden_gumbel_transform() {
    // ANCHOR_MATH §7.2: moco's −log(−log(clip(u, 1e-6, 1))) at u = [1e-6, 0.5, 0.999999].
    let u = upload(&device(), &[5], &[1e-6, 0.5, 0.999999, 1e-9, 1.0]);
    let g = sample::gumbel_noise(&u, 1e-6).unwrap().to_f32().unwrap();
    assert!((g[0] - -2.625792).abs() < 1e-5, "{}", g[0]);
    assert!((g[1] - 0.366513).abs() < 1e-5, "{}", g[1]);
    // The golden 13.81551 is for u = 0.999999 in f64; f32(0.999999) = 1 − 1.0133e-6 gives 13.80232.
    let u32_ = 0.999999f32 as f64;
    let want = -(-u32_.ln()).ln();
    assert!((g[2] as f64 - want).abs() < 1e-4, "{} vs {want}", g[2]);
    assert!((13.81551 - want).abs() > 1e-2);
    // Clipped below at u_min; u = 1 gives +inf in IEEE arithmetic (as torch), at least something huge.
    assert_eq!(g[3], g[0]);
    assert!(g[4] > 15.0, "{}", g[4]);
}

// ---- the CPU backend's sampler (ops::sample::cpu) against the same references and cases ----

mod host {
    pub use diffscope::ops::sample::cpu::{argmax, gumbel_max, gumbel_noise, sample_probs};
    pub use diffscope::ops::sample::cpu::{Categorical, Noise};
}

/// The injected-uniform, Philox, mask and tie cases of the GPU tests above, with the same reference
/// (`cpu_gumbel_max`) and exact class equality.
#[test]
fn cpu_sampling_matches_the_references() {
    let mut rng = Rng::new(11);
    for &(shape, tau) in INJECTED_CASES {
        let k = *shape.last().unwrap();
        let n: usize = shape.iter().product();
        let logits = rng.vec(n, -4.0, 4.0);
        let mut u = rng.vec(n, 0.0, 1.0);
        u[0] = 1e-9;
        u[n / 2] = 1.0;
        let opts = host::Categorical::new(host::Noise::Injected(&u, shape)).temperature(tau);
        let got = host::gumbel_max(&logits, shape, &opts).unwrap();
        assert_eq!(got.len(), n / k);
        let want = cpu_gumbel_max(&logits, k, &u, &|_| 1.0, tau, 1e-6, false);
        assert_eq!(got, want, "cpu logits {shape:?} τ={tau}");

        let mut p: Vec<f32> = logits.iter().map(|v| v.exp()).collect();
        for i in (0..n).step_by(3) {
            p[i] = 0.0;
        }
        p[n / 2] = 0.0;
        let got = host::sample_probs(&p, shape, &opts).unwrap();
        let want = cpu_gumbel_max(&p, k, &u, &|_| 1.0, tau, 1e-6, true);
        assert_eq!(got, want, "cpu probs {shape:?}");
        for (r, &c) in got.iter().enumerate() {
            let row = &p[r * k..r * k + k];
            assert!(
                row[c as usize] > 0.0 || row.iter().all(|&v| v <= 0.0),
                "row {r} drew a zero-probability class"
            );
        }
    }

    let mut rng = Rng::new(12);
    for &shape in PHILOX_SHAPES {
        let n: usize = shape.iter().product();
        let logits = rng.vec(n, -3.0, 3.0);
        let key = Philox::new(77, 12, Substream::Gumbel);
        let u = key.uniforms(n);
        let a = host::gumbel_max(
            &logits,
            shape,
            &host::Categorical::new(host::Noise::Philox(key)),
        )
        .unwrap();
        let b = host::gumbel_max(
            &logits,
            shape,
            &host::Categorical::new(host::Noise::Injected(&u, shape)),
        )
        .unwrap();
        assert_eq!(a, b, "cpu {shape:?}");
        let want = cpu_gumbel_max(&logits, shape[1], &u, &|_| 1.0, 1.0, 1e-6, false);
        assert_eq!(a, want);
    }

    let mut rng = Rng::new(16);
    let (b, n, k) = (4, 9, 5);
    let logits = rng.vec(b * n * k, -2.0, 2.0);
    let key = Philox::new(8, 3, Substream::Gumbel);
    let u = key.uniforms(b * n * k);
    let argmax = cpu_gumbel_max(&logits, k, &u, &|_| 0.0, 0.8, 1e-6, false);
    let mb = [1.0f32, 0.0, 1.0, 0.0];
    let mr: Vec<f32> = (0..b * n).map(|i| (i % 2) as f32).collect();
    for (mask, shape, per) in [(&mb[..], vec![b], n), (&mr[..], vec![b, n], 1)] {
        let opts = host::Categorical::new(host::Noise::Philox(key))
            .temperature(0.8)
            .mask(mask, &shape);
        let got = host::gumbel_max(&logits, &[b, n, k], &opts).unwrap();
        let want = cpu_gumbel_max(&logits, k, &u, &|r| mask[r / per], 0.8, 1e-6, false);
        assert_eq!(got, want, "cpu mask {shape:?}");
        for r in 0..b * n {
            if mask[r / per] == 0.0 {
                assert_eq!(got[r], argmax[r], "cpu masked row {r}");
            }
        }
        // A keep value of 0 writes class 0 (moco's step(mask=…)); 1 keeps the draw.
        let keep: Vec<f32> = (0..mask.len()).map(|i| ((i + 1) % 2) as f32).collect();
        let kept = host::gumbel_max(&logits, &[b, n, k], &opts.keep(&keep, &shape)).unwrap();
        for r in 0..b * n {
            let want = if keep[r / per] == 0.0 { 0 } else { got[r] };
            assert_eq!(kept[r], want, "cpu keep {shape:?} row {r}");
        }
    }
    let tie = [
        1.0, 3.0, 3.0, 0.0, 5.0, 5.0, 5.0, 5.0, -1.0, -2.0, -0.5, -0.5,
    ];
    assert_eq!(host::argmax(&tie, &[3, 4]).unwrap(), vec![1, 0, 2]);
    let one = host::argmax(&[0.0, 2.0, 1.0, 2.0], &[4]).unwrap();
    assert_eq!(one, vec![1]);

    // The golden Gumbel transform (ANCHOR_MATH §7.2), as `golden_gumbel_transform`.
    let g = host::gumbel_noise(&[1e-6, 0.5, 0.999999, 1e-9, 1.0], 1e-6).unwrap();
    assert!((g[0] - -2.625792).abs() < 1e-5, "{}", g[0]);
    assert!((g[1] - 0.366513).abs() < 1e-5, "{}", g[1]);
    let u32_ = 0.999999f32 as f64;
    let want = -(-u32_.ln()).ln();
    assert!((g[2] as f64 - want).abs() < 1e-4, "{} vs {want}", g[2]);
    assert_eq!(g[3], g[0]);
    assert!(g[4] > 15.0, "{}", g[4]);
}

/// The typed errors of `bad_arguments_are_typed_errors`, from the CPU sampler.
#[test]
fn cpu_bad_arguments_are_typed_errors() {
    let t = [0.0f32; 6];
    let key = Philox::new(0, 0, Substream::Gumbel);
    let philox = || host::Categorical::new(host::Noise::Philox(key));
    for tau in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let e = host::gumbel_max(&t, &[2, 3], &philox().temperature(tau)).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "τ={tau}: {e}");
    }
    let e = host::gumbel_max(&t, &[2, 3], &philox().u_min(1.0)).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let e = host::gumbel_noise(&t, 1.0).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let u = [0.5f32; 6];
    let opts = host::Categorical::new(host::Noise::Injected(&u, &[3, 2]));
    let e = host::gumbel_max(&t, &[2, 3], &opts).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let m = [1.0f32; 3];
    let e = host::gumbel_max(&t, &[2, 3], &philox().mask(&m, &[3])).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = host::gumbel_max(&t, &[2, 3], &philox().keep(&m, &[3])).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = host::argmax(&[1.0], &[]).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = host::argmax(&[], &[2, 0]).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    // Host data that does not fill its shape.
    let e = host::argmax(&t[..5], &[2, 3]).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}

/// The CPU sampler against the GPU kernels on random logits with Philox noise, a temperature, a
/// per-batch mask with zeros and a keep mask, for logits, probabilities with zeros and a row wide
/// enough for the workgroup-per-row kernel: the same class in every row (a near-tie within the
/// GPU's `log` rounding would be astronomically rare).
#[test]
fn cpu_sampling_equals_the_gpu() {
    let mut rng = Rng::new(17);
    let key = Philox::new(rng.next_u64(), 5, Substream::Gumbel);
    for shape in [[6usize, 50, 37], [2, 3, 700]] {
        let (b, n, k) = (shape[0], shape[1], shape[2]);
        let len = b * n * k;
        let logits = rng.vec(len, -3.0, 3.0);
        let mut probs: Vec<f32> = logits.iter().map(|v| v.exp()).collect();
        for i in (0..len).step_by(5) {
            probs[i] = 0.0;
        }
        let mask: Vec<f32> = (0..b).map(|i| (i % 3 != 1) as u8 as f32).collect();
        let keep: Vec<f32> = (0..b * n).map(|_| rng.below(4).min(1) as f32).collect();
        let (mask_shape, keep_shape) = ([b], [b, n]);
        let (tm, tk) = (
            upload(&device(), &mask_shape, &mask),
            upload(&device(), &keep_shape, &keep),
        );
        let gpu_opts = Categorical::new(Noise::Philox(key))
            .temperature(0.7)
            .mask(&tm)
            .keep(&tk);
        let cpu_opts = host::Categorical::new(host::Noise::Philox(key))
            .temperature(0.7)
            .mask(&mask, &mask_shape)
            .keep(&keep, &keep_shape);
        for (x, is_probs) in [(&logits, false), (&probs, true)] {
            let t = upload(&device(), &shape, x);
            let (want, got) = if is_probs {
                (
                    sample::sample_probs(&t, &gpu_opts),
                    host::sample_probs(x, &shape, &cpu_opts),
                )
            } else {
                (
                    sample::gumbel_max(&t, &gpu_opts),
                    host::gumbel_max(x, &shape, &cpu_opts),
                )
            };
            assert_eq!(
                got.unwrap(),
                want.unwrap().to_u32().unwrap(),
                "cpu vs gpu {shape:?} probs={is_probs}"
            );
        }
    }
}
