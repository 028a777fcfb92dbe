//! Row gathers (exact: they move bits) and diffusers' timestep embedding, against a CPU port of
//! `get_timestep_embedding` that repeats torch's float32 steps and evaluates sin/cos in f64.

use crate::common::{assert_close, on_each_backend, Rng};
use diffscope::ops::embedding;
use diffscope::Device;
use diffscope::{Error, Tensor};

#[test]
fn gather_rows_matches_cpu_and_zeroes_bad_ids() {
    on_each_backend(gather_rows_matches_cpu_and_zeroes_bad_ids_on);
}

fn gather_rows_matches_cpu_and_zeroes_bad_ids_on(g: Device) {
    let mut rng = Rng::new(41);
    let (v, d) = (13, 29);
    let table = rng.vec(v * d, -1.0, 1.0);
    let tt = Tensor::from_f32(&g, &[v, d], &table).unwrap();
    // Some ids past the table: uploaded unchecked, they must read as zero rows.
    let ids: Vec<u32> = (0..21)
        .map(|i| {
            if i % 5 == 4 {
                13 + i
            } else {
                rng.below(v) as u32
            }
        })
        .collect();
    let ti = Tensor::from_u32(&g, &[3, 7], &ids).unwrap();
    let out = embedding::gather_rows(&tt, &ti).unwrap();
    assert_eq!(out.shape(), &[3, 7, d]);
    let table = &table;
    let want: Vec<f32> = ids
        .iter()
        .flat_map(|&id| {
            let id = id as usize;
            (0..d).map(move |c| if id < v { table[id * d + c] } else { 0.0 })
        })
        .collect();
    assert_close("gather f32", &out.to_f32().unwrap(), &want, 0.0, 0.0);

    // u32 tables gather the same way.
    let table_u: Vec<u32> = (0..7 * 3).collect();
    let tu = Tensor::from_u32(&g, &[7, 3], &table_u).unwrap();
    let ids = Tensor::from_indices(&g, &[4], &[6, 0, 3, 3], 7, "ids").unwrap();
    let out = embedding::gather_rows(&tu, &ids).unwrap();
    assert_eq!(
        out.to_u32().unwrap(),
        vec![18, 19, 20, 0, 1, 2, 9, 10, 11, 9, 10, 11]
    );
}

#[test]
fn gather_rows_errors_are_typed() {
    on_each_backend(gather_rows_errors_are_typed_on);
}

fn gather_rows_errors_are_typed_on(g: Device) {
    let table = Tensor::from_f32(&g, &[4, 2], &[0.0; 8]).unwrap();
    let fids = Tensor::from_f32(&g, &[2], &[0.0; 2]).unwrap();
    assert!(matches!(
        embedding::gather_rows(&table, &fids),
        Err(Error::DType { .. })
    ));
    let ids = Tensor::from_u32(&g, &[2], &[0; 2]).unwrap();
    let flat = Tensor::from_f32(&g, &[8], &[0.0; 8]).unwrap();
    assert!(matches!(
        embedding::gather_rows(&flat, &ids),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        Tensor::from_indices(&g, &[2], &[1, 4], 4, "ids"),
        Err(Error::IndexOutOfRange { index: 4, .. })
    ));
}

/// diffusers' float32 computation; returns each element with its angle (0 for the padding column).
fn cpu_timestep_embedding(
    t: &[f32],
    dim: usize,
    flip: bool,
    shift: f32,
    scale: f32,
    max_period: f32,
) -> Vec<(f32, f32)> {
    let half = dim / 2;
    let neg_log = -(max_period as f64).ln() as f32;
    let denom = half as f32 - shift;
    let mut out = Vec::new();
    for &tb in t {
        let args: Vec<f32> = (0..half)
            .map(|j| {
                let e = neg_log * j as f32 / denom;
                let freq = (e as f64).exp() as f32;
                scale * (tb * freq)
            })
            .collect();
        let sin = args.iter().map(|&a| ((a as f64).sin() as f32, a));
        let cos = args.iter().map(|&a| ((a as f64).cos() as f32, a));
        if flip {
            out.extend(cos.chain(sin));
        } else {
            out.extend(sin.chain(cos));
        }
        if dim % 2 == 1 {
            out.push((0.0, 0.0));
        }
    }
    out
}

/// sin and cos have slope up to 1 in their angle, and an f32 angle is only known to half an ulp
/// (torch's own float32 result carries the same rounding). So the tolerance is 2e-6 plus two ulps of
/// the angle: 2e-6 for t ≲ 10, about 1.2e-4 at t = 999, where |angle| ≈ 1000.
#[track_caller]
fn assert_embedding_close(what: &str, got: &[f32], want: &[(f32, f32)]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &(w, angle))) in got.iter().zip(want).enumerate() {
        let tol = 2e-6 + 2.0 * f32::EPSILON * angle.abs();
        assert!(
            (g - w).abs() <= tol,
            "{what}: element {i}: got {g}, want {w} (angle {angle}, tol {tol:e})"
        );
    }
}

#[test]
fn timestep_embedding_golden_values() {
    on_each_backend(timestep_embedding_golden_values_on);
}

fn timestep_embedding_golden_values_on(g: Device) {
    // ANCHOR_MATH §7.3, "correct" sinusoidal embedding, dim 8 at t = 3. It is diffusers' form with
    // flip_sin_to_cos = false and downscale_freq_shift = 1 (frequencies 10000^(−j/3)); shift 0
    // would give 0.29552 in position 1.
    let t = Tensor::from_f32(&g, &[1], &[3.0]).unwrap();
    let got = embedding::timestep_embedding(&t, 8, false, 1.0, 1.0, 10000.0)
        .unwrap()
        .to_f32()
        .unwrap();
    let want = [
        0.14112, 0.138798, 0.006463, 0.0003, -0.989992, 0.990321, 0.999979, 1.0,
    ];
    // The anchor is printed to 6 significant digits.
    assert_close("temb dim 8 t=3", &got, &want, 0.0, 1e-6);

    // ANCHOR_MATH §7.1: diffusers temb (dim 128, flip false, shift 1) at t = 999, printed to 5
    // decimals; at this angle (≈ 999 rad) float32 rounding of the angle alone is ~6e-5.
    let t = Tensor::from_f32(&g, &[1], &[999.0]).unwrap();
    let got = embedding::timestep_embedding(&t, 128, false, 1.0, 1.0, 10000.0)
        .unwrap()
        .to_f32()
        .unwrap();
    let first = [-0.02646, 0.72672, -0.92157, -0.27180];
    let second = [0.99965, -0.68694, -0.38822, -0.96235];
    assert_close("temb 128 t=999 [0:4]", &got[0..4], &first, 0.0, 6e-5);
    assert_close("temb 128 t=999 [64:68]", &got[64..68], &second, 0.0, 6e-5);
}

/// Timesteps from 0 to 999 (angles up to ≈ 1000 rad).
/// Distinct times, and runs of one time (a batch at one step: the CPU backend reuses the row).
const TEMB_TIMES: [f32; 11] = [
    0.0, 0.5, 1.0, 3.0, 17.25, 250.0, 250.0, 250.0, 999.0, 0.5, 0.5,
];

/// (dim, flip_sin_to_cos, downscale_freq_shift, scale, max_period): diffusers' two conventions,
/// odd dims, a scale, a short period, dims 1 and 2.
const TEMB_SETTINGS: &[(usize, bool, f32, f32, f32)] = &[
    (8, false, 1.0, 1.0, 10000.0),
    (128, true, 1.0, 1.0, 10000.0),
    (128, false, 0.0, 1.0, 10000.0),
    (13, true, 0.0, 0.5, 10000.0),
    (257, false, 1.0, 1.0, 100.0),
    (32, true, 0.0, 1000.0, 10000.0),
    (1, false, 1.0, 1.0, 10000.0),
    (2, true, 0.0, 1.0, 10000.0),
];

#[test]
fn timestep_embedding_matches_cpu() {
    on_each_backend(timestep_embedding_matches_cpu_on);
}

fn timestep_embedding_matches_cpu_on(g: Device) {
    let ts = TEMB_TIMES;
    let tt = Tensor::from_f32(&g, &[ts.len()], &ts).unwrap();
    for &(dim, flip, shift, scale, max_period) in TEMB_SETTINGS {
        let out = embedding::timestep_embedding(&tt, dim, flip, shift, scale, max_period).unwrap();
        assert_eq!(out.shape(), &[ts.len(), dim]);
        let want = cpu_timestep_embedding(&ts, dim, flip, shift, scale, max_period);
        assert_embedding_close(
            &format!("temb dim {dim} flip {flip} shift {shift} scale {scale} period {max_period}"),
            &out.to_f32().unwrap(),
            &want,
        );
    }
    // Integer timesteps are converted like torch's `.float()`.
    let tu = Tensor::from_u32(&g, &[3], &[0, 7, 999]).unwrap();
    let out = embedding::timestep_embedding(&tu, 64, true, 1.0, 1.0, 10000.0).unwrap();
    let want = cpu_timestep_embedding(&[0.0, 7.0, 999.0], 64, true, 1.0, 1.0, 10000.0);
    assert_embedding_close("temb u32 t", &out.to_f32().unwrap(), &want);
}

#[test]
fn timestep_embedding_errors_are_typed() {
    on_each_backend(timestep_embedding_errors_are_typed_on);
}

fn timestep_embedding_errors_are_typed_on(g: Device) {
    let t = Tensor::from_f32(&g, &[2, 1], &[0.0; 2]).unwrap();
    assert!(matches!(
        embedding::timestep_embedding(&t, 8, false, 1.0, 1.0, 10000.0),
        Err(Error::Shape { .. })
    ));
    let t = Tensor::from_f32(&g, &[2], &[0.0; 2]).unwrap();
    // half = 1 and shift 1 divide by zero in diffusers.
    assert!(matches!(
        embedding::timestep_embedding(&t, 2, false, 1.0, 1.0, 10000.0),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        embedding::timestep_embedding(&t, 8, false, 1.0, 1.0, 0.0),
        Err(Error::Invalid(_))
    ));
}

/// The CPU backend's embeddings against the same references and tolerances as the GPU kernels: the
/// anchor's golden values, every setting of `timestep_embedding_matches_cpu`, row gathers with
/// out-of-range ids reading zeros, and the same typed errors.
#[test]
fn cpu_embeddings_match_the_references() {
    use diffscope::ops::embedding::cpu;
    let got = cpu::timestep_embedding(&[3.0], 8, false, 1.0, 1.0, 10000.0).unwrap();
    let want = [
        0.14112, 0.138798, 0.006463, 0.0003, -0.989992, 0.990321, 0.999979, 1.0,
    ];
    assert_close("cpu temb dim 8 t=3", &got, &want, 0.0, 1e-6);
    let ts = TEMB_TIMES;
    for &(dim, flip, shift, scale, max_period) in TEMB_SETTINGS {
        let got = cpu::timestep_embedding(&ts, dim, flip, shift, scale, max_period).unwrap();
        let want = cpu_timestep_embedding(&ts, dim, flip, shift, scale, max_period);
        assert_embedding_close(&format!("cpu temb dim {dim} flip {flip}"), &got, &want);
    }
    let table: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let got = cpu::gather_rows(&table, &[4, 3], &[2, 0, 9, 3]).unwrap();
    assert_eq!(got, vec![6., 7., 8., 0., 1., 2., 0., 0., 0., 9., 10., 11.]);
    let ut: Vec<u32> = (0..6).collect();
    assert_eq!(cpu::gather_rows(&ut, &[3, 2], &[1]).unwrap(), vec![2, 3]);
    assert!(matches!(
        cpu::gather_rows(&table, &[12], &[0]),
        Err(Error::Shape {
            op: "gather_rows",
            ..
        })
    ));
    assert!(matches!(
        cpu::timestep_embedding(&[0.0; 2], 2, false, 1.0, 1.0, 10000.0),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        cpu::timestep_embedding(&[0.0; 2], 8, false, 1.0, 1.0, 0.0),
        Err(Error::Invalid(_))
    ));
}

/// diffusers' GaussianFourierProjection (ln σ, then sin and cos of 2π·w·ln σ) against f64, for σ from
/// 0.01 to 1348 (the NCSN++ range) and frequencies of ±16·N(0, 1) size, both halves' orders.
#[test]
fn fourier_embedding_matches_the_reference() {
    on_each_backend(fourier_embedding_matches_the_reference_on);
}

fn fourier_embedding_matches_the_reference_on(g: Device) {
    let mut rng = Rng::new(5);
    let sigmas = [0.01f32, 0.5, 1.0, 7.3, 90.0, 1348.0];
    let w = rng.vec(37, -40.0, 40.0);
    let ts = Tensor::from_f32(&g, &[sigmas.len()], &sigmas).unwrap();
    let tw = Tensor::from_f32(&g, &[w.len()], &w).unwrap();
    for flip in [false, true] {
        let got = embedding::fourier_embedding(&ts, &tw, flip, true)
            .unwrap()
            .to_f32()
            .unwrap();
        let mut want = vec![];
        for &s in &sigmas {
            // torch's float32 angle, then exact sin/cos.
            let angle: Vec<f64> = w
                .iter()
                .map(|&wj| {
                    f64::from(((f64::from(s).ln() as f32 * wj) * 2.0) * std::f32::consts::PI)
                })
                .collect();
            let sin = angle.iter().map(|a| a.sin() as f32);
            let cos = angle.iter().map(|a| a.cos() as f32);
            if flip {
                want.extend(cos.chain(sin));
            } else {
                want.extend(sin.chain(cos));
            }
        }
        // Angles reach ~1400: after the float32 ln, a few ulp of the reduction is ~1e-4 absolute.
        assert_close("fourier_embedding", &got, &want, 0.0, 2e-4);
    }
    let u = Tensor::from_u32(&g, &[1], &[3]).unwrap();
    assert!(matches!(
        embedding::fourier_embedding(&u, &tw, false, true),
        Err(Error::DType { .. })
    ));
}

/// Vector quantisation: each row's nearest table row (squared distance, first of ties) against a
/// brute-force reference, on both backends; a duplicated table row must resolve to the first.
#[test]
fn nearest_rows_matches_the_reference() {
    on_each_backend(nearest_rows_matches_the_reference_on);
}

fn nearest_rows_matches_the_reference_on(g: Device) {
    let mut rng = Rng::new(9);
    for (m, d, k) in [(1, 1, 1), (37, 3, 257), (300, 4, 32), (5, 7, 1000)] {
        let z = rng.vec(m * d, -2.0, 2.0);
        let mut table = rng.vec(k * d, -2.0, 2.0);
        if k > 2 {
            // Row 1 repeated as row k−1: ties go to the first.
            let row: Vec<f32> = table[d..2 * d].to_vec();
            table[(k - 1) * d..].copy_from_slice(&row);
        }
        let got = embedding::nearest_rows(
            &Tensor::from_f32(&g, &[m, d], &z).unwrap(),
            &Tensor::from_f32(&g, &[k, d], &table).unwrap(),
        )
        .unwrap()
        .to_u32()
        .unwrap();
        for (i, q) in z.chunks(d).enumerate() {
            let dist = |r: usize| -> f64 {
                q.iter()
                    .zip(&table[r * d..(r + 1) * d])
                    .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                    .sum()
            };
            let best = (0..k)
                .min_by(|&a, &b| dist(a).partial_cmp(&dist(b)).unwrap())
                .unwrap();
            assert!(
                got[i] as usize == best || (dist(got[i] as usize) - dist(best)).abs() < 1e-5,
                "{m}×{d} vs {k}: row {i} got {} want {best}",
                got[i]
            );
            if k > 2 {
                assert_ne!(got[i] as usize, k - 1, "a tie resolved to the later row");
            }
        }
    }
    let z = Tensor::from_f32(&g, &[2, 3], &[0.0; 6]).unwrap();
    let t = Tensor::from_f32(&g, &[4, 2], &[0.0; 8]).unwrap();
    assert!(matches!(
        embedding::nearest_rows(&z, &t),
        Err(Error::Shape { .. })
    ));
}
