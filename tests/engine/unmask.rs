//! Un-masking by confidence (`ops::unmask::confident`) on both backends: against a plain reference on
//! random shapes (with and without choice noise), the count of revealed positions against the
//! process's chance, the token draws against softmax(logits/τ) without the mask class, the choice
//! noise's pull from most-confident-first towards a random order, unmasked positions untouched,
//! typed errors.

use crate::common::{on_each_backend, Rng, SEQUENCE_SHAPES};
use diffscope::ops::unmask::{self, Unmask};
use diffscope::rng::{Philox, Substream};
use diffscope::{Device, Error, Tensor};

fn opts(seed: u64, stream: u32, mask: u32, tau: f32) -> Unmask {
    Unmask {
        mask_token: mask,
        temperature: tau,
        u_min: 1e-6,
        gumbel: Philox::new(seed, stream, Substream::Gumbel),
        reveal: Philox::new(seed, stream, Substream::Reveal),
        choice_noise: 0.0,
        choice: Philox::new(seed, stream, Substream::Choice),
    }
}

/// The rule, written plainly (f64 confidences): per row, draw each masked position's token by
/// Gumbel-max without the mask class, count the reveal coins, reveal that many of the most
/// confident positions after the choice noise (lower position first on ties).
fn reference(
    logits: &[f32],
    b: usize,
    l: usize,
    k: usize,
    x_t: &[u32],
    reveal: &[f32],
    o: &Unmask,
) -> Vec<u32> {
    let mask = o.mask_token as usize;
    let mut out = x_t.to_vec();
    for row in 0..b {
        let mut cand: Vec<(usize, f64, u32)> = Vec::new();
        let mut count = 0;
        for pos in 0..l {
            let r = row * l + pos;
            if x_t[r] as usize != mask {
                continue;
            }
            let z: Vec<f32> = (0..k).map(|c| logits[r * k + c] / o.temperature).collect();
            let mut best: Option<(f32, usize)> = None;
            for c in (0..k).filter(|&c| c != mask) {
                let u = o.gumbel.uniform((r * k + c) as u32).max(o.u_min);
                let s = z[c] + -(-(u as f64).ln()).ln() as f32;
                if best.is_none_or(|(bs, _)| s > bs) {
                    best = Some((s, c));
                }
            }
            let (_, arg) = best.unwrap();
            let lse = {
                let m = (0..k)
                    .filter(|&c| c != mask)
                    .map(|c| z[c] as f64)
                    .fold(f64::NEG_INFINITY, f64::max);
                m + (0..k)
                    .filter(|&c| c != mask)
                    .map(|c| (z[c] as f64 - m).exp())
                    .sum::<f64>()
                    .ln()
            };
            let u = o.choice.uniform(r as u32).max(o.u_min);
            let noise = o.choice_noise as f64 * -(-(u as f64).ln()).ln();
            cand.push((pos, (z[arg] as f64 - lse).min(0.0) + noise, arg as u32));
            if o.reveal.uniform(r as u32) < reveal[row] {
                count += 1;
            }
        }
        // Most confident first; the lower position first among equals (a stable sort).
        cand.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
        for (pos, _, tok) in cand.into_iter().take(count) {
            out[row * l + pos] = tok;
        }
    }
    out
}

fn run(
    d: &Device,
    logits: &[f32],
    shape: [usize; 3],
    x_t: &[u32],
    reveal: &[f32],
    o: &Unmask,
) -> diffscope::Result<Vec<u32>> {
    let [b, l, _] = shape;
    let lg = Tensor::from_f32(d, &shape, logits)?;
    let x = Tensor::from_u32(d, &[b, l], x_t)?;
    let rv = Tensor::from_f32(d, &[b], reveal)?;
    unmask::confident(&lg, &x, &rv, o)?.to_u32()
}

#[test]
fn confident_unmasking_matches_the_reference_on_random_shapes() {
    on_each_backend(|d| {
        let mut rng = Rng::new(11);
        for (i, &(b, l, k)) in SEQUENCE_SHAPES.iter().enumerate() {
            let mask = (i * 7 % k) as u32;
            let logits = rng.vec(b * l * k, -3.0, 3.0);
            // About half the positions masked; the rest hold other classes.
            let x_t: Vec<u32> = (0..b * l)
                .map(|_| {
                    if rng.uniform(0.0, 1.0) < 0.5 {
                        mask
                    } else {
                        ((mask as usize + 1 + rng.below(k - 1)) % k) as u32
                    }
                })
                .collect();
            // Some rows reveal nothing, some everything, the rest a chance in between.
            let reveal: Vec<f32> = (0..b)
                .map(|r| match r % 4 {
                    0 => 0.0,
                    1 => 1.0,
                    _ => rng.uniform(0.0, 1.0),
                })
                .collect();
            for (tau, noise) in [(1.0, 0.0), (0.6, 0.0), (1.0, 2.5)] {
                let o = Unmask {
                    choice_noise: noise,
                    ..opts(5 + i as u64, 3, mask, tau)
                };
                let got = run(&d, &logits, [b, l, k], &x_t, &reveal, &o).unwrap();
                let want = reference(&logits, b, l, k, &x_t, &reveal, &o);
                let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(
                    diff, 0,
                    "[{b}, {l}, {k}] τ {tau} noise {noise}: {diff} positions differ from the reference"
                );
                for (r, (&g, &x)) in got.iter().zip(&x_t).enumerate() {
                    if x != mask {
                        assert_eq!(g, x, "an unmasked position changed at {r}");
                    }
                }
            }
        }
    });
}

#[test]
fn a_step_reveals_as_many_positions_as_the_process_and_draws_tokens_from_the_prediction() {
    on_each_backend(|d| {
        // Every position masked, one logit row for all: 4,000 rows of 12, reveal chance 0.3.
        let (b, l, k, mask) = (4000usize, 12usize, 4usize, 3u32);
        let row = [1.0f32, 2.0, 0.0, 5.0]; // the mask class's logit must not matter
        let logits: Vec<f32> = (0..b * l).flat_map(|_| row).collect();
        let x_t = vec![mask; b * l];
        let c = 0.3f32;
        let o = opts(9, 0, mask, 0.5);
        let got = run(&d, &logits, [b, l, k], &x_t, &vec![c; b], &o).unwrap();
        let revealed: Vec<u32> = got.iter().copied().filter(|&v| v != mask).collect();
        // The count is Binomial(b·l, c): within 4.5 σ.
        let n = (b * l) as f64;
        let (mean, sd) = (n * c as f64, (n * c as f64 * (1.0 - c as f64)).sqrt());
        let z = (revealed.len() as f64 - mean) / sd;
        assert!(
            z.abs() < 4.5,
            "{} revealed, expected {mean:.0} ± {sd:.0}",
            revealed.len()
        );
        // Chance 1 reveals every position, and then the tokens are plain draws from softmax(logits/τ)
        // over the classes but the mask (χ², 2 degrees of freedom; 18.4 is p ≈ 1e-4).
        let all = run(&d, &logits, [b, l, k], &x_t, &vec![1.0; b], &o).unwrap();
        let z: Vec<f64> = row[..3].iter().map(|&v| v as f64 / 0.5).collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let p: Vec<f64> = e.iter().map(|v| v / e.iter().sum::<f64>()).collect();
        let share =
            |v: &[u32], cl: u32| v.iter().filter(|&&x| x == cl).count() as f64 / v.len() as f64;
        let chi2: f64 = (0..3)
            .map(|cl| {
                let want = all.len() as f64 * p[cl];
                (share(&all, cl as u32) * all.len() as f64 - want).powi(2) / want
            })
            .sum();
        assert!(chi2 < 18.4, "token draws: χ² {chi2:.1}");
        // When only some are revealed, the confident ones go first: the likeliest class is
        // over-represented among them (the quality-for-diversity trade of this order).
        assert!(
            share(&revealed, 1) > p[1] + 0.02,
            "class 1 is {:.3} of the revealed tokens, its probability {:.3}",
            share(&revealed, 1),
            p[1]
        );
        assert!(all.iter().all(|&v| v != mask), "a chance of 1 left masks");
    });
}

#[test]
fn the_most_confident_position_is_revealed_first() {
    on_each_backend(|d| {
        // Row of 5 masked positions; position 3's prediction is nearly certain, the others flat.
        let (l, k, mask) = (5usize, 4usize, 3u32);
        let mut logits = vec![0.0f32; l * k];
        logits[3 * k + 1] = 12.0;
        let x_t = vec![mask; l];
        // Reveal chance such that exactly one coin of the five comes up for some seed: scan seeds.
        let mut seen = 0;
        for seed in 0..200 {
            let o = opts(seed, 0, mask, 1.0);
            let got = run(&d, &logits, [1, l, k], &x_t, &[0.2], &o).unwrap();
            let shown: Vec<usize> = (0..l).filter(|&p| got[p] != mask).collect();
            if shown.len() == 1 {
                assert_eq!(
                    shown,
                    vec![3],
                    "seed {seed}: revealed {shown:?}, not the confident position"
                );
                assert_eq!(got[3], 1);
                seen += 1;
            }
        }
        assert!(seen > 20, "only {seen} seeds revealed exactly one position");
    });
}

/// Choice noise moves the order from most-confident-first towards random: with one sure position
/// among five and one reveal, noise 0 always picks it; noise that swamps the confidences picks it
/// about one time in five; a moderate noise in between.
#[test]
fn choice_noise_moves_the_order_towards_random() {
    on_each_backend(|d| {
        let (b, l, k, mask) = (3000usize, 5usize, 4usize, 3u32);
        let mut row = vec![0.0f32; l * k];
        row[3 * k + 1] = 12.0;
        let logits: Vec<f32> = (0..b).flat_map(|_| row.clone()).collect();
        let x_t = vec![mask; b * l];
        let share_sure = |noise: f32| {
            let o = Unmask {
                choice_noise: noise,
                ..opts(17, 2, mask, 1.0)
            };
            let got = run(&d, &logits, [b, l, k], &x_t, &vec![0.2; b], &o).unwrap();
            // Rows that revealed exactly one position: how often was it the sure one?
            let (mut one, mut sure) = (0, 0);
            for r in 0..b {
                let shown: Vec<usize> = (0..l).filter(|&p| got[r * l + p] != mask).collect();
                if shown.len() == 1 {
                    one += 1;
                    sure += (shown[0] == 3) as usize;
                }
            }
            assert!(one > 500, "only {one} rows revealed exactly one position");
            (sure as f64 / one as f64, one as f64)
        };
        let (p0, _) = share_sure(0.0);
        assert_eq!(p0, 1.0);
        let (p_big, n) = share_sure(1e4);
        let sd = (0.2 * 0.8 / n).sqrt();
        assert!(
            (p_big - 0.2).abs() < 4.5 * sd,
            "noise 1e4: sure position first in {p_big:.3}"
        );
        let (p_mid, _) = share_sure(1.5);
        assert!(p_mid > p_big + 0.1 && p_mid < 0.99, "noise 1.5: {p_mid:.3}");
    });
}

#[test]
fn bad_unmask_arguments_are_typed_errors() {
    on_each_backend(|d| {
        let lg = Tensor::from_f32(&d, &[2, 3, 4], &[0.0; 24]).unwrap();
        let x = Tensor::from_u32(&d, &[2, 3], &[3; 6]).unwrap();
        let rv = Tensor::from_f32(&d, &[2], &[0.5; 2]).unwrap();
        let ok = opts(1, 0, 3, 1.0);
        let bad_shape = |e: Error| matches!(e, Error::Shape { .. });
        let x_wrong = Tensor::from_u32(&d, &[3, 2], &[3; 6]).unwrap();
        assert!(bad_shape(
            unmask::confident(&lg, &x_wrong, &rv, &ok).unwrap_err()
        ));
        let rv_wrong = Tensor::from_f32(&d, &[3], &[0.5; 3]).unwrap();
        assert!(bad_shape(
            unmask::confident(&lg, &x, &rv_wrong, &ok).unwrap_err()
        ));
        let flat = Tensor::from_f32(&d, &[6, 4], &[0.0; 24]).unwrap();
        assert!(bad_shape(
            unmask::confident(&flat, &x, &rv, &ok).unwrap_err()
        ));
        assert!(bad_shape(
            unmask::confident(&lg, &x, &rv, &opts(1, 0, 4, 1.0)).unwrap_err()
        ));
        for tau in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let e = unmask::confident(&lg, &x, &rv, &opts(1, 0, 3, tau)).unwrap_err();
            assert!(matches!(e, Error::Invalid(_)), "τ {tau}: {e}");
        }
        let mut split = ok;
        split.reveal = Philox::new(2, 0, Substream::Reveal);
        assert!(matches!(
            unmask::confident(&lg, &x, &rv, &split).unwrap_err(),
            Error::Invalid(_)
        ));
        let mut split = ok;
        split.choice = Philox::new(1, 5, Substream::Choice);
        assert!(matches!(
            unmask::confident(&lg, &x, &rv, &split).unwrap_err(),
            Error::Invalid(_)
        ));
        for noise in [-1.0, f32::NAN, f32::INFINITY] {
            let o = Unmask {
                choice_noise: noise,
                ..ok
            };
            let e = unmask::confident(&lg, &x, &rv, &o).unwrap_err();
            assert!(matches!(e, Error::Invalid(_)), "choice noise {noise}: {e}");
        }
        // Ids as logits: a dtype error.
        let e = unmask::confident(&x, &x, &rv, &ok).unwrap_err();
        assert!(matches!(e, Error::DType { .. }), "{e}");
    });
}
