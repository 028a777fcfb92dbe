use crate::common::{assert_close, device, on_each_backend, Rng};
use diffscope::ops::random::{self, cpu, Distribution};
use diffscope::rng::{Philox, Substream};
use diffscope::Device;
use diffscope::Error;

const KEYS: &[(u64, u32, Substream)] = &[
    (0, 0, Substream::Init),
    (42, 7, Substream::StepNoise),
    (0xDEAD_BEEF_0123_4567, 999, Substream::Gumbel),
    (u64::MAX, u32::MAX, Substream::Other),
];

#[test]
fn words_and_uniforms_are_bit_identical_to_cpu() {
    on_each_backend(words_and_uniforms_are_bit_identical_to_cpu_on);
}

fn words_and_uniforms_are_bit_identical_to_cpu_on(g: Device) {
    let n = 100_003;
    for &(seed, stream, sub) in KEYS {
        let key = Philox::new(seed, stream, sub);
        let w = random::words(&g, &[n], key, 0).unwrap();
        assert_eq!(w.shape(), &[n, 4]);
        let got = w.to_u32().unwrap();
        let u = random::uniform(&g, &[n], key).unwrap().to_f32().unwrap();
        for i in 0..n {
            let want = key.words(i as u32);
            assert_eq!(
                &got[4 * i..4 * i + 4],
                &want,
                "words, key {key:?}, element {i}"
            );
            assert_eq!(
                u[i].to_bits(),
                key.uniform(i as u32).to_bits(),
                "uniform, key {key:?}, element {i}"
            );
        }
    }
}

#[test]
fn first_index_offsets_the_draws() {
    on_each_backend(first_index_offsets_the_draws_on);
}

fn first_index_offsets_the_draws_on(g: Device) {
    let key = Philox::new(5, 3, Substream::Other);
    let first = u32::MAX - 99;
    let got = random::fill(&g, &[100], key, Distribution::Uniform, first)
        .unwrap()
        .to_f32()
        .unwrap();
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v.to_bits(), key.uniform(first + i as u32).to_bits());
    }
    let w = random::words(&g, &[2, 3], key, 17).unwrap();
    assert_eq!(w.shape(), &[2, 3, 4]);
    assert_eq!(&w.to_u32().unwrap()[..4], &key.words(17));
    // One past the last index would wrap around and repeat draws.
    let e = random::fill(&g, &[101], key, Distribution::Uniform, first).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
}

#[test]
fn normals_and_gumbels_match_cpu() {
    on_each_backend(normals_and_gumbels_match_cpu_on);
}

fn normals_and_gumbels_match_cpu_on(g: Device) {
    let n = 131_071;
    for &(seed, stream, sub) in KEYS {
        let key = Philox::new(seed, stream, sub);
        let z = random::normal(&g, &[n], key).unwrap().to_f32().unwrap();
        assert_close(&format!("normal {key:?}"), &z, &key.normals(n), 0.0, 1e-5);
        let gb = random::gumbel(&g, &[n], key).unwrap().to_f32().unwrap();
        let want: Vec<f32> = (0..n as u32).map(|i| key.gumbel(i)).collect();
        assert_close(&format!("gumbel {key:?}"), &gb, &want, 1e-6, 1e-5);
    }
}

/// Mean, variance and tail frequencies of `x` (in f64).
fn moments(x: &[f32]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

/// The keys and size of the normal-statistics tests (GPU and CPU).
const NORMAL_STAT_SEEDS: [u64; 2] = [1, 2];
const NORMAL_STAT_N: usize = 1 << 21;
/// The key and size of the Gumbel-statistics tests.
const GUMBEL_STAT_KEY: (u64, u32, Substream) = (3, 1, Substream::Gumbel);
const GUMBEL_STAT_N: usize = 1 << 20;

fn normal_stat_key(seed: u64) -> Philox {
    Philox::new(seed, 0, Substream::StepNoise)
}

#[test]
fn normal_statistics() {
    on_each_backend(normal_statistics_on);
}

fn normal_statistics_on(g: Device) {
    for seed in NORMAL_STAT_SEEDS {
        let z = random::normal(&g, &[NORMAL_STAT_N], normal_stat_key(seed))
            .unwrap()
            .to_f32()
            .unwrap();
        assert_normal_statistics(&z);
    }
}

/// Moments and tail frequencies of a standard-normal fill.
#[track_caller]
fn assert_normal_statistics(z: &[f32]) {
    let nf = z.len() as f64;
    let (mean, var) = moments(z);
    // Five standard errors: a fixed seed passes with a wide margin, a biased transform does not.
    assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
    assert!(
        (var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(),
        "variance {var}"
    );
    for (c, p) in [
        (1.0, 0.317_310_507_862_914),
        (2.0, 0.045_500_263_896_358),
        (3.0, 0.002_699_796_063_260),
    ] {
        let f = z.iter().filter(|v| v.abs() > c).count() as f64 / nf;
        let se = (p * (1.0 - p) / nf).sqrt();
        assert!(
            (f - p).abs() < 5.0 * se,
            "P(|z|>{c}) = {f}, want {p} ± {se}"
        );
    }
    // Box–Muller on 23-bit uniforms cannot exceed sqrt(-2 ln(2^-24)) ≈ 5.77.
    assert!(z.iter().all(|v| v.is_finite() && v.abs() < 5.8));
}

#[test]
fn gumbel_statistics() {
    on_each_backend(gumbel_statistics_on);
}

fn gumbel_statistics_on(g: Device) {
    let (seed, stream, sub) = GUMBEL_STAT_KEY;
    let key = Philox::new(seed, stream, sub);
    let x = random::gumbel(&g, &[GUMBEL_STAT_N], key)
        .unwrap()
        .to_f32()
        .unwrap();
    assert_gumbel_statistics(&x);
}

/// Mean and variance of a standard-Gumbel fill.
#[track_caller]
fn assert_gumbel_statistics(x: &[f32]) {
    let nf = x.len() as f64;
    assert!(x.iter().all(|v| v.is_finite()));
    let (mean, var) = moments(x);
    let euler = 0.577_215_664_901_532_9;
    let var_want = std::f64::consts::PI.powi(2) / 6.0;
    assert!(
        (mean - euler).abs() < 5.0 * (var_want / nf).sqrt(),
        "mean {mean}"
    );
    // Var of the sample variance ≈ (μ4 − σ⁴)/n with excess kurtosis 2.4 for the Gumbel.
    let se_var = (var_want * var_want * (2.0 + 2.4) / nf).sqrt();
    assert!((var - var_want).abs() < 5.0 * se_var, "variance {var}");
}

#[test]
fn draws_depend_on_every_key_part() {
    on_each_backend(draws_depend_on_every_key_part_on);
}

fn draws_depend_on_every_key_part_on(g: Device) {
    let base = Philox::new(9, 4, Substream::StepNoise);
    let variants = [
        Philox::new(10, 4, Substream::StepNoise),
        Philox::new(9, 5, Substream::StepNoise),
        Philox::new(9, 4, Substream::Init),
        Philox::new(9 | (1 << 40), 4, Substream::StepNoise),
    ];
    let a = random::uniform(&g, &[64], base).unwrap().to_f32().unwrap();
    for v in variants {
        let b = random::uniform(&g, &[64], v).unwrap().to_f32().unwrap();
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same < 2, "{v:?} repeats {base:?}");
    }
}

// ---- the CPU backend's fills (ops::random::cpu) against the same references and tolerances ----

#[test]
fn cpu_words_and_uniforms_are_bit_identical_to_rng() {
    let n = 100_003;
    for &(seed, stream, sub) in KEYS {
        let key = Philox::new(seed, stream, sub);
        let w = cpu::words(&[n], key, 0).unwrap();
        assert_eq!(w.len(), 4 * n);
        let u = cpu::uniform(&[n], key).unwrap();
        for i in 0..n {
            let want = key.words(i as u32);
            assert_eq!(
                &w[4 * i..4 * i + 4],
                &want,
                "words, key {key:?}, element {i}"
            );
            assert_eq!(
                u[i].to_bits(),
                key.uniform(i as u32).to_bits(),
                "uniform, key {key:?}, element {i}"
            );
        }
    }
}

#[test]
fn cpu_first_index_offsets_the_draws() {
    let key = Philox::new(5, 3, Substream::Other);
    let first = u32::MAX - 99;
    let got = cpu::fill(&[100], key, Distribution::Uniform, first).unwrap();
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v.to_bits(), key.uniform(first + i as u32).to_bits());
    }
    let w = cpu::words(&[2, 3], key, 17).unwrap();
    assert_eq!(w.len(), 2 * 3 * 4);
    assert_eq!(&w[..4], &key.words(17));
    // One past the last index would wrap around and repeat draws: the GPU's error.
    let e = cpu::fill(&[101], key, Distribution::Uniform, first).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let e = cpu::words(&[101], key, first).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    // More than 2^32 output words, and a shape whose count overflows, as the driver refuses them.
    let e = cpu::words(&[1 << 30], key, 0).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = cpu::fill(&[usize::MAX, 2], key, Distribution::Normal, 0).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
}

#[test]
fn cpu_normals_and_gumbels_match_rng() {
    let n = 131_071;
    for &(seed, stream, sub) in KEYS {
        let key = Philox::new(seed, stream, sub);
        let z = cpu::normal(&[n], key).unwrap();
        assert_close(
            &format!("cpu normal {key:?}"),
            &z,
            &key.normals(n),
            0.0,
            1e-5,
        );
        let gb = cpu::gumbel(&[n], key).unwrap();
        let want: Vec<f32> = (0..n as u32).map(|i| key.gumbel(i)).collect();
        assert_close(&format!("cpu gumbel {key:?}"), &gb, &want, 1e-6, 1e-5);
    }
}

#[test]
fn cpu_normal_statistics() {
    for seed in NORMAL_STAT_SEEDS {
        let z = cpu::normal(&[NORMAL_STAT_N], normal_stat_key(seed)).unwrap();
        assert_normal_statistics(&z);
    }
}

#[test]
fn cpu_gumbel_statistics() {
    let (seed, stream, sub) = GUMBEL_STAT_KEY;
    let x = cpu::gumbel(&[GUMBEL_STAT_N], Philox::new(seed, stream, sub)).unwrap();
    assert_gumbel_statistics(&x);
}

/// The CPU fills against the GPU's on a random key, shape and offset: words and uniforms bit for bit,
/// normals and Gumbel draws within the GPU-vs-rng tolerances above.
#[test]
fn cpu_fills_equal_the_gpu() {
    cpu_fills_equal_the_gpu_on(device());
}

fn cpu_fills_equal_the_gpu_on(g: Device) {
    let mut rng = Rng::new(41);
    let key = Philox {
        seed: rng.next_u64(),
        stream: rng.next_u64() as u32,
        substream: rng.below(5) as u32,
    };
    let shape = [3 + rng.below(40), 1 + rng.below(300)];
    let first = rng.next_u64() as u32 >> 1;
    let w = random::words(&g, &shape, key, first)
        .unwrap()
        .to_u32()
        .unwrap();
    assert_eq!(cpu::words(&shape, key, first).unwrap(), w, "words {key:?}");
    for dist in [
        Distribution::Uniform,
        Distribution::Normal,
        Distribution::Gumbel,
    ] {
        let gpu_fill = random::fill(&g, &shape, key, dist, first)
            .unwrap()
            .to_f32()
            .unwrap();
        let cpu_fill = cpu::fill(&shape, key, dist, first).unwrap();
        let what = format!("cpu vs gpu {dist:?} {key:?} {shape:?} from {first}");
        match dist {
            Distribution::Uniform => {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&cpu_fill), bits(&gpu_fill), "{what}");
            }
            Distribution::Normal => assert_close(&what, &cpu_fill, &gpu_fill, 0.0, 1e-5),
            Distribution::Gumbel => assert_close(&what, &cpu_fill, &gpu_fill, 1e-6, 1e-5),
        }
    }
}
