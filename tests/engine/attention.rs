//! Flash-style attention against a materialised-softmax f64 CPU reference. A reduction:
//! `assert_close` with rtol 1e-4, atol 1e-5 (outputs are convex combinations of values in [−1, 1]).

use crate::common::{assert_close, on_each_backend, Rng};
use diffscope::ops::attention;
use diffscope::Device;
use diffscope::{Error, Tensor};

struct Shape {
    b: usize,
    lq: usize,
    lk: usize,
    heads: usize,
    d: usize,
}

fn cpu_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    s: &Shape,
    scale: f64,
    mask: Option<&[f32]>,
) -> Vec<f32> {
    let hd = s.heads * s.d;
    let mut out = vec![0f32; s.b * s.lq * hd];
    for b in 0..s.b {
        for h in 0..s.heads {
            for i in 0..s.lq {
                let qi = &q[(b * s.lq + i) * hd + h * s.d..][..s.d];
                let mut scores = Vec::with_capacity(s.lk);
                for j in 0..s.lk {
                    let kj = &k[(b * s.lk + j) * hd + h * s.d..][..s.d];
                    let dot: f64 = qi.iter().zip(kj).map(|(&a, &c)| a as f64 * c as f64).sum();
                    let m = mask.map_or(0.0, |m| m[b * s.lk + j] as f64);
                    scores.push(dot * scale + m);
                }
                let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if mx == f64::NEG_INFINITY {
                    continue; // every key masked: the kernel writes zeros
                }
                let w: Vec<f64> = scores.iter().map(|&sc| (sc - mx).exp()).collect();
                let z: f64 = w.iter().sum();
                for d in 0..s.d {
                    let acc: f64 = (0..s.lk)
                        .map(|j| w[j] * v[(b * s.lk + j) * hd + h * s.d + d] as f64)
                        .sum();
                    out[(b * s.lq + i) * hd + h * s.d + d] = (acc / z) as f32;
                }
            }
        }
    }
    out
}

/// Self attention; cross attention with odd lengths and an odd head dimension; 255 keys; one key;
/// the largest head dimension of the fused kernel and two wider ones; a long sequence whose 1024 keys stream through 64 key blocks.
fn attention_shapes() -> Vec<Shape> {
    vec![
        Shape {
            b: 2,
            lq: 7,
            lk: 7,
            heads: 2,
            d: 8,
        },
        // Cross attention with odd lengths and an odd head dimension.
        Shape {
            b: 1,
            lq: 257,
            lk: 13,
            heads: 3,
            d: 29,
        },
        Shape {
            b: 1,
            lq: 255,
            lk: 255,
            heads: 1,
            d: 64,
        },
        Shape {
            b: 1,
            lq: 65,
            lk: 1,
            heads: 4,
            d: 1,
        },
        Shape {
            b: 1,
            lq: 29,
            lk: 33,
            heads: 2,
            d: 128,
        },
        // Heads wider than the fused GPU kernel holds (the DDPM UNets' one head of 256–512
        // channels): the scores are materialised, batched over batch × heads.
        Shape {
            b: 2,
            lq: 37,
            lk: 19,
            heads: 2,
            d: 200,
        },
        Shape {
            b: 1,
            lq: 64,
            lk: 64,
            heads: 1,
            d: 512,
        },
        // A large odd batch of short sequences: the CPU backend splits batch entries across
        // threads (over 2 × 2^17 outputs).
        Shape {
            b: 67,
            lq: 33,
            lk: 21,
            heads: 4,
            d: 32,
        },
        // A long sequence: 1024 keys stream through 64 key blocks.
        Shape {
            b: 1,
            lq: 1024,
            lk: 1024,
            heads: 1,
            d: 16,
        },
    ]
}

#[test]
fn attention_matches_cpu() {
    on_each_backend(attention_matches_cpu_on);
}

fn attention_matches_cpu_on(g: Device) {
    let mut rng = Rng::new(31);
    for s in attention_shapes() {
        let hd = s.heads * s.d;
        let q = rng.vec(s.b * s.lq * hd, -1.0, 1.0);
        let k = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
        let v = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
        let tq = Tensor::from_f32(&g, &[s.b, s.lq, hd], &q).unwrap();
        let tk = Tensor::from_f32(&g, &[s.b, s.lk, hd], &k).unwrap();
        let tv = Tensor::from_f32(&g, &[s.b, s.lk, hd], &v).unwrap();
        let got = attention::attention(&tq, &tk, &tv, s.heads, None).unwrap();
        assert_eq!(got.shape(), &[s.b, s.lq, hd]);
        let want = cpu_attention(&q, &k, &v, &s, 1.0 / (s.d as f64).sqrt(), None);
        let what = format!(
            "attention b{} lq{} lk{} h{} d{}",
            s.b, s.lq, s.lk, s.heads, s.d
        );
        assert_close(&what, &got.to_f32().unwrap(), &want, 1e-4, 1e-5);
    }
}

#[test]
fn attention_explicit_scale_sharpens() {
    on_each_backend(attention_explicit_scale_sharpens_on);
}

fn attention_explicit_scale_sharpens_on(g: Device) {
    let mut rng = Rng::new(32);
    let s = Shape {
        b: 2,
        lq: 13,
        lk: 29,
        heads: 2,
        d: 7,
    };
    let hd = s.heads * s.d;
    let q = rng.vec(s.b * s.lq * hd, -1.0, 1.0);
    let k = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
    let v = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
    let tq = Tensor::from_f32(&g, &[s.b, s.lq, hd], &q).unwrap();
    let tk = Tensor::from_f32(&g, &[s.b, s.lk, hd], &k).unwrap();
    let tv = Tensor::from_f32(&g, &[s.b, s.lk, hd], &v).unwrap();
    // A large scale gives peaked softmaxes: the online rescaling must still be exact.
    let got = attention::attention(&tq, &tk, &tv, s.heads, Some(6.0)).unwrap();
    let want = cpu_attention(&q, &k, &v, &s, 6.0, None);
    assert_close(
        "attention scale 6",
        &got.to_f32().unwrap(),
        &want,
        1e-4,
        1e-5,
    );
}

/// Three batch entries with an additive key mask: padded keys removed with −∞ (0), finite biases and
/// one key removed inside a key block (1), every key removed (2). Returns (shape, q, k, v, mask).
fn masked_case(rng: &mut Rng) -> (Shape, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let s = Shape {
        b: 3,
        lq: 13,
        lk: 37,
        heads: 2,
        d: 16,
    };
    let hd = s.heads * s.d;
    let q = rng.vec(s.b * s.lq * hd, -1.0, 1.0);
    let k = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
    let v = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
    let mut mask = vec![0f32; s.b * s.lk];
    // Batch 0: padded graph nodes (the last 11 keys) removed with −∞.
    for m in &mut mask[26..37] {
        *m = f32::NEG_INFINITY;
    }
    // Batch 1: finite additive biases, and one key removed in the middle of a key block.
    for (j, m) in mask[37..74].iter_mut().enumerate() {
        *m = if j == 20 {
            f32::NEG_INFINITY
        } else {
            rng.uniform(-2.0, 1.0)
        };
    }
    // Batch 2: every key removed.
    for m in &mut mask[74..] {
        *m = f32::NEG_INFINITY;
    }
    (s, q, k, v, mask)
}

#[test]
fn attention_mask_removes_and_biases_keys() {
    on_each_backend(attention_mask_removes_and_biases_keys_on);
}

fn attention_mask_removes_and_biases_keys_on(g: Device) {
    let mut rng = Rng::new(33);
    let (s, q, k, v, mask) = masked_case(&mut rng);
    let hd = s.heads * s.d;
    let tq = Tensor::from_f32(&g, &[s.b, s.lq, hd], &q).unwrap();
    let tk = Tensor::from_f32(&g, &[s.b, s.lk, hd], &k).unwrap();
    let tv = Tensor::from_f32(&g, &[s.b, s.lk, hd], &v).unwrap();
    let tm = Tensor::from_f32(&g, &[s.b, s.lk], &mask).unwrap();
    let got = attention::attention_masked(&tq, &tk, &tv, s.heads, None, &tm)
        .unwrap()
        .to_f32()
        .unwrap();
    let want = cpu_attention(&q, &k, &v, &s, 0.25, Some(&mask));
    assert_close("attention masked", &got, &want, 1e-4, 1e-5);
    assert!(got[2 * s.lq * hd..].iter().all(|&x| x == 0.0));
}

#[test]
fn attention_errors_are_typed() {
    on_each_backend(attention_errors_are_typed_on);
}

fn attention_errors_are_typed_on(g: Device) {
    let q = Tensor::from_f32(&g, &[1, 4, 6], &[0.0; 24]).unwrap();
    let k = Tensor::from_f32(&g, &[1, 5, 6], &[0.0; 30]).unwrap();
    let k8 = Tensor::from_f32(&g, &[1, 5, 8], &[0.0; 40]).unwrap();
    assert!(matches!(
        attention::attention(&q, &k, &k, 4, None),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        attention::attention(&q, &k8, &k8, 2, None),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        attention::attention(&q, &k, &k8, 2, None),
        Err(Error::Shape { .. })
    ));
    let bad_mask = Tensor::from_f32(&g, &[1, 4], &[0.0; 4]).unwrap();
    assert!(matches!(
        attention::attention_masked(&q, &k, &k, 2, None, &bad_mask),
        Err(Error::Shape { .. })
    ));
    let u = Tensor::from_u32(&g, &[1, 4, 6], &[0; 24]).unwrap();
    assert!(matches!(
        attention::attention(&u, &k, &k, 2, None),
        Err(Error::DType { .. })
    ));
}

/// The CPU backend's attention against the same reference and tolerance as the GPU kernel, on the
/// same shapes, with an additive mask that removes padded keys, biases others and removes every key
/// of one batch entry (zeros), and the same typed errors.
#[test]
fn cpu_attention_matches_the_reference() {
    use diffscope::ops::attention::cpu;
    let mut rng = Rng::new(34);
    for s in attention_shapes() {
        let hd = s.heads * s.d;
        let q = rng.vec(s.b * s.lq * hd, -1.0, 1.0);
        let k = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
        let v = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
        let (qs, ks) = ([s.b, s.lq, hd], [s.b, s.lk, hd]);
        let got = cpu::attention((&q, &qs), (&k, &ks), (&v, &ks), s.heads, None, None).unwrap();
        let want = cpu_attention(&q, &k, &v, &s, 1.0 / (s.d as f64).sqrt(), None);
        let what = format!(
            "cpu attention b{} lq{} lk{} h{} d{}",
            s.b, s.lq, s.lk, s.heads, s.d
        );
        assert_close(&what, &got, &want, 1e-4, 1e-5);
    }
    let (s, q, k, v, mask) = masked_case(&mut rng);
    let hd = s.heads * s.d;
    let (qs, ks, ms) = ([s.b, s.lq, hd], [s.b, s.lk, hd], [s.b, s.lk]);
    let got = cpu::attention(
        (&q, &qs),
        (&k, &ks),
        (&v, &ks),
        s.heads,
        Some(0.25),
        Some((&mask, &ms)),
    )
    .unwrap();
    let want = cpu_attention(&q, &k, &v, &s, 0.25, Some(&mask));
    assert_close("cpu attention masked", &got, &want, 1e-4, 1e-5);
    assert!(got[2 * s.lq * hd..].iter().all(|&x| x == 0.0));
    let z = [0.0f32; 24];
    assert!(matches!(
        cpu::attention(
            (&z, &[1, 2, 12]),
            (&z, &[1, 2, 12]),
            (&z, &[1, 2, 12]),
            5,
            None,
            None
        ),
        Err(Error::Shape {
            op: "attention",
            ..
        })
    ));
    assert!(matches!(
        cpu::attention(
            (&z, &[1, 2, 12]),
            (&z, &[1, 2, 12]),
            (&z, &[1, 2, 12]),
            2,
            None,
            Some((&z[..3], &[1, 3]))
        ),
        Err(Error::Shape {
            op: "attention_masked",
            ..
        })
    ));
}

/// Wide heads whose scores would not fit one storage binding are computed in query chunks: on a GPU
/// capped at 512 KB per binding, 2 × 400 × 400 scores (1.3 MB; 640 KB per batch entry) still match
/// the reference.
#[test]
fn wide_attention_splits_scores_larger_than_a_binding() {
    let capped = diffscope::Gpu::new_capped(
        &Default::default(),
        diffscope::gpu::LimitCaps {
            max_storage_buffer_binding_size: Some(512 << 10),
            max_buffer_size: Some(512 << 10),
        },
    )
    .unwrap();
    let g = Device::Gpu(capped);
    let s = Shape {
        b: 2,
        lq: 400,
        lk: 400,
        heads: 1,
        d: 130,
    };
    let mut rng = Rng::new(3);
    let hd = s.heads * s.d;
    let q = rng.vec(s.b * s.lq * hd, -1.0, 1.0);
    let k = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
    let v = rng.vec(s.b * s.lk * hd, -1.0, 1.0);
    let tq = Tensor::from_f32(&g, &[s.b, s.lq, hd], &q).unwrap();
    let tk = Tensor::from_f32(&g, &[s.b, s.lk, hd], &k).unwrap();
    let tv = Tensor::from_f32(&g, &[s.b, s.lk, hd], &v).unwrap();
    let got = attention::attention(&tq, &tk, &tv, s.heads, None).unwrap();
    let want = cpu_attention(&q, &k, &v, &s, 1.0 / (s.d as f64).sqrt(), None);
    assert_close(
        "chunked wide attention",
        &got.to_f32().unwrap(),
        &want,
        1e-4,
        1e-5,
    );
}
