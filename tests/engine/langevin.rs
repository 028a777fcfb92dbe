//! The Langevin corrector (`ops::langevin`) against a float64 reference of diffusers'
//! `ScoreSdeVeScheduler.step_correct` on the variance-preserving state, on both backends, for row
//! lengths around the workgroup size and batches larger than one workgroup's reduction.

use crate::common::{assert_close, on_each_backend, Rng};
use diffscope::ops::langevin::{langevin_correct, Langevin};
use diffscope::{Device, Error, Tensor};

fn reference(x: &[f32], eps: &[f32], z: &[f32], rows: usize, l: &Langevin) -> Vec<f32> {
    let len = x.len() / rows;
    let norm = |v: &[f32]| v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt();
    let (sigma, alpha) = (l.sigma as f64, l.alpha as f64);
    // score = −ε̂/σ.
    let grad: f64 = eps.chunks(len).map(|r| norm(r) / sigma).sum::<f64>() / rows as f64;
    let noise: f64 = z.chunks(len).map(norm).sum::<f64>() / rows as f64;
    let step = 2.0 * (l.snr as f64 * noise / grad).powi(2);
    x.iter()
        .zip(eps)
        .zip(z)
        .map(|((&xi, &e), &w)| {
            let score = -(e as f64) / sigma;
            let ve = xi as f64 / alpha + step * score + (2.0 * step).sqrt() * w as f64;
            (alpha * ve) as f32
        })
        .collect()
}

#[test]
fn langevin_correction_matches_the_reference() {
    on_each_backend(langevin_correction_matches_the_reference_on);
}

fn langevin_correction_matches_the_reference_on(g: Device) {
    let mut rng = Rng::new(23);
    for (rows, len, sigma) in [
        (1, 1, 0.5f32),
        (2, 255, 348.0),
        (3, 257, 12.0),
        (300, 7, 1.0),
        (4, 3 * 64 * 64, 1348.0),
    ] {
        let n = rows * len;
        let alpha = (1.0 / (1.0 + (sigma as f64).powi(2)).sqrt()) as f32;
        let x = rng.vec(n, -1.0, 1.0);
        let eps = rng.vec(n, -2.0, 2.0);
        let z = rng.vec(n, -2.0, 2.0);
        let l = Langevin {
            alpha,
            sigma,
            snr: 0.16,
        };
        let t = |v: &[f32]| Tensor::from_f32(&g, &[rows, len], v).unwrap();
        let got = langevin_correct(&t(&x), &t(&eps), &t(&z), &l)
            .unwrap()
            .to_f32()
            .unwrap();
        let want = reference(&x, &eps, &z, rows, &l);
        let what = format!("langevin {rows}×{len} σ {sigma}");
        assert_close(&what, &got, &want, 1e-5, 1e-6);
    }
    let a = Tensor::from_f32(&g, &[2, 3], &[0.0; 6]).unwrap();
    let b = Tensor::from_f32(&g, &[3, 2], &[0.0; 6]).unwrap();
    let l = Langevin {
        alpha: 0.5,
        sigma: 1.0,
        snr: 0.1,
    };
    assert!(matches!(
        langevin_correct(&a, &b, &a, &l),
        Err(Error::Shape { .. })
    ));
    let bad = Langevin { sigma: 0.0, ..l };
    assert!(matches!(
        langevin_correct(&a, &a, &a, &bad),
        Err(Error::Invalid(_))
    ));
}
