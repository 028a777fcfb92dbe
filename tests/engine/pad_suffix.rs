//! Padding held as a suffix (`ops::pad_suffix::redraw`) on both backends: against a plain reference
//! on random shapes (with and without noise, a mask that competes or not, rows that already break
//! the rule), the redraw's distribution against the step's own restricted to what fits (χ²), typed
//! errors, and whole words runs with no pad before a letter.

use crate::common::{cpu, on_each_backend, Rng, SEQUENCE_SHAPES};
use diffscope::ops::pad_suffix::{self, PadSuffix};
use diffscope::ops::sample::{gumbel_max, Categorical, Noise};
use diffscope::pipelines::sequence::{self, run};
use diffscope::process::discrete::{Padding, Unmasking};
use diffscope::rng::{Philox, Substream};
use diffscope::{Device, Error, Tensor};

/// The rule, written plainly: per row, left to right, a position decided in x_t keeps it; a drawn
/// token that puts a pad before a letter is replaced by the best perturbed score among the classes
/// that fit.
fn reference(
    scores: &[f32],
    [b, l, k]: [usize; 3],
    x_t: &[u32],
    drawn: &[u32],
    o: &PadSuffix,
) -> Vec<u32> {
    let mut out = drawn.to_vec();
    let decided = |v: u32| o.mask.is_some_and(|m| v != m);
    let letter = |v: u32| v != o.pad && Some(v) != o.mask;
    for row in 0..b {
        let xs = &x_t[row * l..(row + 1) * l];
        let mut pad_seen = false;
        for p in 0..l {
            let r = row * l + p;
            if decided(xs[p]) {
                out[r] = xs[p];
                pad_seen |= xs[p] == o.pad;
                continue;
            }
            let letter_after = (p + 1..l).any(|j| decided(xs[j]) && letter(xs[j]));
            let fits = |c: u32| match () {
                _ if Some(c) == o.mask => o.mask_competes,
                _ if pad_seen => c == o.pad,
                _ => !(letter_after && c == o.pad),
            };
            if Some(drawn[r]) != o.mask && !fits(drawn[r]) {
                let score = |c: u32| {
                    let e = r * k + c as usize;
                    let g = o.noise.map_or(0.0, |key| {
                        let u = key.uniform(e as u32).max(o.u_min) as f64;
                        -(-u.ln()).ln() as f32
                    });
                    scores[e] / o.temperature + g
                };
                let mut best: Option<(f32, u32)> = None;
                for c in (0..k as u32).filter(|&c| fits(c)) {
                    let s = score(c);
                    if !s.is_nan() && best.is_none_or(|(bs, _)| s > bs) {
                        best = Some((s, c));
                    }
                }
                if let Some((_, c)) = best {
                    out[r] = c;
                }
            }
            pad_seen |= out[r] == o.pad;
        }
    }
    out
}

fn run_op(
    d: &Device,
    scores: &[f32],
    shape: [usize; 3],
    x_t: &[u32],
    drawn: &[u32],
    o: &PadSuffix,
) -> diffscope::Result<Vec<u32>> {
    let [b, l, _] = shape;
    let s = Tensor::from_f32(d, &shape, scores)?;
    let x = Tensor::from_u32(d, &[b, l], x_t)?;
    let dr = Tensor::from_u32(d, &[b, l], drawn)?;
    pad_suffix::redraw(&s, &x, &dr, o)?.to_u32()
}

/// Whether a row holds a pad before a letter (the mask is neither).
fn breaks(row: &[u32], pad: u32, mask: Option<u32>) -> bool {
    let first_pad = row.iter().position(|&v| v == pad);
    first_pad.is_some_and(|p| row[p..].iter().any(|&v| v != pad && Some(v) != mask))
}

#[test]
fn pad_suffix_redraw_matches_the_reference_on_random_shapes() {
    on_each_backend(|d| {
        let mut rng = Rng::new(21);
        let mut redrawn = 0;
        for (i, &(b, l, k)) in SEQUENCE_SHAPES.iter().enumerate() {
            let pad = (i * 5 % k) as u32;
            let masked = i % 3 != 2;
            let mask = masked.then(|| ((pad as usize + 1 + i % (k - 1)) % k) as u32);
            let other = |rng: &mut Rng, not: &[u32]| loop {
                let c = rng.below(k) as u32;
                if !not.contains(&c) || k <= not.len() {
                    return c;
                }
            };
            let scores = rng.vec(b * l * k, -3.0, 3.0);
            let (mut x_t, mut drawn) = (Vec::new(), Vec::new());
            for row in 0..b {
                // Most rows a valid state: decided letters before a random length, decided pads
                // after it, masks between; every fifth row anything at all.
                let len = rng.below(l + 1);
                for p in 0..l {
                    let v = match mask {
                        Some(m) if row % 5 == 4 => {
                            if rng.uniform(0.0, 1.0) < 0.5 {
                                m
                            } else {
                                rng.below(k) as u32
                            }
                        }
                        Some(m) if rng.uniform(0.0, 1.0) < 0.6 => m,
                        Some(m) if p < len => other(&mut rng, &[pad, m]),
                        Some(_) => pad,
                        None => rng.below(k) as u32,
                    };
                    x_t.push(v);
                    // The step's draw: decided positions keep their token, the others anything.
                    drawn.push(if mask.is_some_and(|m| v != m) {
                        v
                    } else {
                        rng.below(k) as u32
                    });
                }
            }
            for (tau, noise, competes) in
                [(1.0, true, true), (0.6, true, false), (1.0, false, true)]
            {
                let o = PadSuffix {
                    pad,
                    mask,
                    mask_competes: competes,
                    temperature: tau,
                    u_min: 1e-6,
                    noise: noise.then(|| Philox::new(3 + i as u64, 7, Substream::Gumbel)),
                };
                let got = run_op(&d, &scores, [b, l, k], &x_t, &drawn, &o).unwrap();
                let want = reference(&scores, [b, l, k], &x_t, &drawn, &o);
                let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                redrawn += got.iter().zip(&drawn).filter(|(a, b)| a != b).count();
                assert_eq!(
                    diff, 0,
                    "[{b}, {l}, {k}] τ {tau} noise {noise} mask {mask:?} competes {competes}: \
                     {diff} positions differ from the reference"
                );
                for row in 0..b {
                    let (xs, ds, gs) = (
                        &x_t[row * l..(row + 1) * l],
                        &drawn[row * l..(row + 1) * l],
                        &got[row * l..(row + 1) * l],
                    );
                    for p in 0..l {
                        if mask.is_some_and(|m| xs[p] != m) {
                            assert_eq!(gs[p], xs[p], "a decided position changed");
                        }
                    }
                    if !breaks(xs, pad, mask) {
                        assert!(
                            !breaks(gs, pad, mask),
                            "row {row}: {gs:?} has a pad before a letter (x_t {xs:?}, drawn {ds:?})"
                        );
                    }
                    // A draw that already fits is left alone.
                    if !breaks(ds, pad, mask) && !breaks(xs, pad, mask) {
                        assert_eq!(gs, ds, "row {row}: a draw that fits was changed");
                    }
                }
            }
        }
        assert!(
            redrawn > 1000,
            "only {redrawn} positions were redrawn: the test shows little"
        );
    });
}

/// χ² of counts against probabilities (cells with p = 0 must be empty).
fn chi2(counts: &[usize], p: &[f64]) -> f64 {
    let n: usize = counts.iter().sum();
    counts
        .iter()
        .zip(p)
        .map(|(&c, &p)| {
            if p == 0.0 {
                assert_eq!(c, 0, "a cell of probability 0 was drawn");
                0.0
            } else {
                let e = n as f64 * p;
                (c as f64 - e).powi(2) / e
            }
        })
        .sum()
}

fn softmax(z: &[f64], keep: impl Fn(usize) -> bool) -> Vec<f64> {
    let e: Vec<f64> = z
        .iter()
        .enumerate()
        .map(|(c, v)| if keep(c) { v.exp() } else { 0.0 })
        .collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn a_redraw_draws_from_the_steps_distribution_restricted_to_what_fits() {
    on_each_backend(|d| {
        // Two positions, classes: pad 0, letters 1 and 2, mask 3; the step's Gumbel-max draw, then
        // the redraw with the same key. Left to right, the pair's law is: position 0 from its
        // distribution; position 1 from its own, restricted to {pad, mask} after a pad.
        let (b, k, pad, mask) = (20_000usize, 4usize, 0u32, 3u32);
        let z = [[0.4f32, 0.0, -0.5, -0.2], [-1.0, 0.6, 0.1, 0.3]];
        let scores: Vec<f32> = (0..b).flat_map(|_| z.iter().flatten().copied()).collect();
        let key = Philox::new(17, 2, Substream::Gumbel);
        let s = Tensor::from_f32(&d, &[b, 2, k], &scores).unwrap();
        let drawn = gumbel_max(&s, &Categorical::new(Noise::Philox(key))).unwrap();
        let o = PadSuffix {
            pad,
            mask: Some(mask),
            mask_competes: true,
            temperature: 1.0,
            u_min: 1e-6,
            noise: Some(key),
        };
        let zf: Vec<Vec<f64>> = z
            .iter()
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect();
        // Both masked.
        let x = Tensor::from_u32(&d, &[b, 2], &vec![mask; 2 * b]).unwrap();
        let got = pad_suffix::redraw(&s, &x, &drawn, &o)
            .unwrap()
            .to_u32()
            .unwrap();
        let mut counts = vec![0usize; k * k];
        for pair in got.chunks(2) {
            counts[pair[0] as usize * k + pair[1] as usize] += 1;
        }
        let p0 = softmax(&zf[0], |_| true);
        let p1 = softmax(&zf[1], |_| true);
        let p1_after_pad = softmax(&zf[1], |c| c == 0 || c == 3);
        let want: Vec<f64> = (0..k * k)
            .map(|cell| {
                let (a, c) = (cell / k, cell % k);
                p0[a] * if a == 0 { p1_after_pad[c] } else { p1[c] }
            })
            .collect();
        // 11 free cells (4 are impossible); 35 is p ≈ 2.5e-4.
        let c2 = chi2(&counts, &want);
        assert!(c2 < 35.0, "pairs from two masks: χ² {c2:.1}");
        // A letter decided at position 1: position 0 is drawn without the pad.
        let x: Vec<u32> = (0..b).flat_map(|_| [mask, 2]).collect();
        let x = Tensor::from_u32(&d, &[b, 2], &x).unwrap();
        let got = pad_suffix::redraw(&s, &x, &drawn, &o)
            .unwrap()
            .to_u32()
            .unwrap();
        let mut counts = vec![0usize; k];
        for pair in got.chunks(2) {
            assert_eq!(pair[1], 2, "the decided letter changed");
            counts[pair[0] as usize] += 1;
        }
        let c2 = chi2(&counts, &softmax(&zf[0], |c| c != 0));
        assert!(c2 < 20.0, "before a decided letter: χ² {c2:.1}");
    });
}

#[test]
fn pad_suffix_rejects_bad_shapes_and_options() {
    let d = cpu();
    let s = Tensor::from_f32(&d, &[2, 3, 4], &[0.0; 24]).unwrap();
    let x = Tensor::from_u32(&d, &[2, 3], &[0; 6]).unwrap();
    let short = Tensor::from_u32(&d, &[2, 2], &[0; 4]).unwrap();
    let o = PadSuffix {
        pad: 0,
        mask: Some(3),
        mask_competes: true,
        temperature: 1.0,
        u_min: 1e-6,
        noise: None,
    };
    assert!(pad_suffix::redraw(&s, &x, &x, &o).is_ok());
    let bad = |o: PadSuffix, drawn: &Tensor| pad_suffix::redraw(&s, &x, drawn, &o).unwrap_err();
    assert!(matches!(bad(o, &short), Error::Shape { .. }));
    assert!(matches!(
        bad(PadSuffix { pad: 4, ..o }, &x),
        Error::Shape { .. }
    ));
    assert!(matches!(
        bad(PadSuffix { mask: Some(9), ..o }, &x),
        Error::Shape { .. }
    ));
    assert!(matches!(
        bad(PadSuffix { mask: Some(0), ..o }, &x),
        Error::Invalid(_)
    ));
    for t in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            bad(
                PadSuffix {
                    temperature: t,
                    ..o
                },
                &x
            ),
            Error::Invalid(_)
        ));
    }
    assert!(matches!(
        bad(PadSuffix { u_min: 1.0, ..o }, &x),
        Error::Invalid(_)
    ));
    let f = Tensor::from_f32(&d, &[2, 3], &[0.0; 6]).unwrap();
    assert!(pad_suffix::redraw(&s, &x, &f, &o).is_err(), "an f32 draw");
}

/// Sequences from a words model on the CPU backend, and how many hold a pad before a letter.
fn words(name: &str, order: Unmasking, tau: f32, padding: Padding) -> (Vec<u32>, usize) {
    let m = sequence::load_shipped(&cpu(), name).unwrap();
    let pad = m.config.pad_token.unwrap() as u32;
    let ids = run::sample(&m, 96, 4, (tau, order, padding), |_, _| Ok(())).unwrap();
    let broken = ids
        .chunks(m.config.seq_len)
        .filter(|w| breaks(w, pad, None))
        .count();
    (ids, broken)
}

#[test]
fn words_models_end_every_word_with_its_padding() {
    // Hot (τ = 1.6), the absorbing model puts pads inside words when free; held, never — in every
    // order — and the uniform model's last step holds it too.
    let (_, free) = words("words-absorb", Unmasking::Random, 1.6, Padding::Free);
    assert!(
        free > 0,
        "a hot free run put no pad inside a word: the test shows nothing"
    );
    for order in [Unmasking::Random, Unmasking::Confident, Unmasking::Annealed] {
        let (ids, held) = words("words-absorb", order, 1.6, Padding::Suffix);
        assert_eq!(held, 0, "{order:?}: {held} of 96 words have a pad inside");
        assert!(ids.iter().all(|&v| v != 27), "{order:?}: a mask left");
    }
    let (_, held) = words("words-uniform", Unmasking::Random, 1.6, Padding::Suffix);
    assert_eq!(
        held, 0,
        "words-uniform: {held} of 96 words have a pad inside"
    );
}
