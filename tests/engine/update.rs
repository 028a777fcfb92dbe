// Fixture values are pasted verbatim from diffusers (printed as f64), hence more digits than f32 holds.
#![allow(clippy::excessive_precision)]

use crate::common::{assert_close, device, on_each_backend, Rng};
use diffscope::ops::update::{
    self as up, CfgOrder, DdimStepParams, DdpmMean, DdpmStepParams, DdpmVariance, Extras, Guidance,
    GuidanceForm, ModelOutput, Noise, Prediction,
};
use diffscope::rng::{Philox, Substream};
use diffscope::Device;
use diffscope::{Error, Tensor};

// ---- plain-Rust reference of the same formulas, in f64 ----

#[derive(Clone, Copy, Debug)]
struct Ref {
    pred: Prediction,
    sab: f64,
    s1mab: f64,
    c_x0: f64,
    c_eps: f64,
    c_xt: f64,
    eps_form: bool,
    sigma: f64,
    clip: Option<f64>,
    eps_from_clipped: bool,
}

fn ddpm_ref(s: &DdpmStepParams) -> Ref {
    let (c_x0, c_eps, c_xt, eps_form) = match s.mean {
        DdpmMean::Posterior { coef_x0, coef_xt } => (coef_x0 as f64, 0.0, coef_xt as f64, false),
        DdpmMean::Epsilon { coef_xt, coef_eps } => (0.0, coef_eps as f64, coef_xt as f64, true),
    };
    Ref {
        pred: s.prediction,
        sab: s.sqrt_alpha_bar_t as f64,
        s1mab: s.sqrt_one_minus_alpha_bar_t as f64,
        c_x0,
        c_eps,
        c_xt,
        eps_form,
        sigma: s.sigma as f64,
        clip: s.clip.map(|c| c as f64),
        eps_from_clipped: eps_form && s.clip.is_some(),
    }
}

fn ddim_ref(s: &DdimStepParams) -> Ref {
    let (at, ap) = (s.alpha_bar_t as f64, s.alpha_bar_prev as f64);
    let sigma = s.eta as f64 * ((1.0 - ap) / (1.0 - at)).sqrt() * (1.0 - at / ap).sqrt();
    Ref {
        pred: s.prediction,
        sab: at.sqrt(),
        s1mab: (1.0 - at).sqrt(),
        c_x0: ap.sqrt(),
        c_eps: (1.0 - ap - sigma * sigma).sqrt(),
        c_xt: 0.0,
        eps_form: false,
        sigma,
        clip: s.clip.map(|c| c as f64),
        eps_from_clipped: s.use_clipped_model_output && s.clip.is_some(),
    }
}

/// (x_prev, x̂0, ε̂) for an already guidance-combined model output `m`.
fn cpu_step(r: &Ref, x: &[f32], m: &[f64], z: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut xp, mut x0s, mut epss) = (vec![], vec![], vec![]);
    for i in 0..x.len() {
        let (xi, mi) = (x[i] as f64, m[i]);
        let (mut x0, mut eps) = match r.pred {
            Prediction::Epsilon => ((xi - r.s1mab * mi) / r.sab, mi),
            Prediction::Sample => (mi, (xi - r.sab * mi) / r.s1mab),
            Prediction::V => (r.sab * xi - r.s1mab * mi, r.sab * mi + r.s1mab * xi),
        };
        if let Some(c) = r.clip {
            x0 = x0.clamp(-c, c);
            if r.eps_from_clipped {
                eps = (xi - r.sab * x0) / r.s1mab;
            }
        }
        let mut v = if r.eps_form {
            r.c_xt * (xi - r.c_eps * eps)
        } else {
            r.c_x0 * x0 + r.c_eps * eps + r.c_xt * xi
        };
        if r.sigma != 0.0 {
            v += r.sigma * z[i] as f64;
        }
        xp.push(v as f32);
        x0s.push(x0 as f32);
        epss.push(eps as f32);
    }
    (xp, x0s, epss)
}

/// uncond + w·(cond − uncond) from stacked halves.
fn combine(out: &[f32], n: usize, w: f64, order: CfgOrder) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let (c, u) = match order {
                CfgOrder::CondFirst => (out[i], out[i + n]),
                CfgOrder::UncondFirst => (out[i + n], out[i]),
            };
            u as f64 + w * (c as f64 - u as f64)
        })
        .collect()
}

/// Closeness relative to the tensor's scale: f32 cancellation in x̂0 = (x − √(1−ᾱ)ε)/√ᾱ makes a
/// per-element relative bound meaningless near zero crossings.
#[track_caller]
fn assert_rel(what: &str, got: &[f32], want: &[f32]) {
    let scale = want.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-3);
    assert_close(what, got, want, 1e-5, 2e-6 * scale);
}

fn upload(d: &Device, shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(d, shape, v).unwrap()
}

// ---- diffusers 0.42.1 fixtures ----
//
// Generated with diffusers 0.42.1 / torch 2.15 (float32): x_i = 1.5 sin(0.37 i + 0.1),
// model_i = 1.2 cos(0.61 i), z_i = 1.1 sin(1.7 i + 0.3), i = 0..8, shape [2, 4]; DDPM with
// `randn_tensor` patched to return z, DDIM (`set_timesteps(50)`) with `variance_noise = z`:
//   DDPMScheduler(variance_type, prediction_type, clip_sample).step(m, t, x)
//   DDIMScheduler(prediction_type, clip_sample).step(m, t, x, eta, use_clipped_model_output, variance_noise=z)

fn fixture_inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let f = |a: f64, b: f64, c: f64, sin: bool| -> Vec<f32> {
        (0..8)
            .map(|i| {
                let t = b * i as f64 + c;
                (a * if sin { t.sin() } else { t.cos() }) as f32
            })
            .collect()
    };
    (
        f(1.5, 0.37, 0.1, true),
        f(1.2, 0.61, 0.0, false),
        f(1.1, 1.7, 0.3, true),
    )
}

struct Fixture {
    name: &'static str,
    prev: [f32; 8],
    x0: [f32; 8],
}

/// diffusers' DDPM steps and their outputs on `fixture_inputs`.
fn ddpm_fixtures() -> Vec<(DdpmStepParams, Fixture)> {
    vec![
        (
            DdpmStepParams::diffusers(
                Prediction::Epsilon,
                0.07779665291309357,
                Some(0.07858723402023315),
                DdpmVariance::FixedSmall,
                Some(1.0),
            ),
            Fixture {
                name: "DDPM fixed_small epsilon clip t=500",
                prev: [
                    0.17839968, 0.77269542, 1.05500638, 1.31298625, 1.57454336, 1.4527880,
                    0.99791557, 0.61429125,
                ],
                x0: [-1.0, -0.95085907, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            },
        ),
        (
            DdpmStepParams::diffusers(
                Prediction::V,
                4.035830352222547e-05,
                Some(4.118194192415103e-05),
                DdpmVariance::FixedLarge,
                None,
            ),
            Fixture {
                name: "DDPM fixed_large v t=999",
                prev: [
                    0.19406319, 0.81382906, 1.02326262, 1.26914454, 1.59837997, 1.47057986,
                    0.95059359, 0.59235811,
                ],
                x0: [
                    -1.19902456,
                    -0.97924215,
                    -0.40527070,
                    0.31648257,
                    0.92608857,
                    1.20379817,
                    1.04928792,
                    0.51786780,
                ],
            },
        ),
        (
            DdpmStepParams::diffusers(
                Prediction::Sample,
                0.9998999834060669,
                None,
                DdpmVariance::FixedSmall,
                Some(1.0),
            ),
            Fixture {
                name: "DDPM fixed_small sample clip t=0",
                prev: [
                    1.0,
                    0.98357761,
                    0.41237488,
                    -0.30757308,
                    -0.91657823,
                    -1.0,
                    -1.0,
                    -0.51371962,
                ],
                x0: [
                    1.0,
                    0.98357761,
                    0.41237488,
                    -0.30757308,
                    -0.91657823,
                    -1.0,
                    -1.0,
                    -0.51371962,
                ],
            },
        ),
    ]
}

/// diffusers' DDIM steps and their outputs on `fixture_inputs`.
fn ddim_fixtures() -> Vec<(DdimStepParams, Fixture)> {
    let ddim = |prediction, at, ap, eta, clip: bool, ucmo| DdimStepParams {
        prediction,
        alpha_bar_t: at,
        alpha_bar_prev: ap,
        eta,
        clip: clip.then_some(1.0),
        use_clipped_model_output: ucmo,
    };
    vec![
        (
            ddim(
                Prediction::Epsilon,
                0.07779665291309357,
                0.09486869722604752,
                0.5,
                true,
                true,
            ),
            Fixture {
                name: "DDIM epsilon clip η=0.5 use_clipped t=500",
                prev: [
                    0.17449662, 0.82995826, 0.99528432, 1.21591902, 1.65629232, 1.52009439,
                    0.89642686, 0.58819711,
                ],
                x0: [-1.0, -0.95085907, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            },
        ),
        (
            ddim(
                Prediction::Sample,
                0.9937353134155273,
                0.9998999834060669,
                0.0,
                true,
                false,
            ),
            Fixture {
                name: "DDIM sample clip η=0 t=20",
                prev: [
                    0.86772323,
                    0.94547558,
                    0.50154495,
                    -0.09148961,
                    -0.61156130,
                    -0.67336977,
                    -0.72988153,
                    -0.36627680,
                ],
                x0: [
                    1.0,
                    0.98357761,
                    0.41237488,
                    -0.30757308,
                    -0.91657823,
                    -1.0,
                    -1.0,
                    -0.51371962,
                ],
            },
        ),
        (
            ddim(Prediction::V, 0.9998999834060669, 1.0, 1.0, false, false),
            Fixture {
                name: "DDIM v η=1 t=0 (final ᾱ = 1)",
                prev: [
                    0.13774164, 0.66945887, 1.11278474, 1.40642977, 1.50902808, 1.40532053,
                    1.10871637, 0.65970349,
                ],
                x0: [
                    0.13774164, 0.66945887, 1.11278474, 1.40642977, 1.50902808, 1.40532053,
                    1.10871637, 0.65970349,
                ],
            },
        ),
        (
            ddim(
                Prediction::Epsilon,
                5.90375202591531e-05,
                8.741306373849511e-05,
                0.7,
                true,
                false,
            ),
            Fixture {
                name: "DDIM epsilon clip η=0.7 t=980",
                prev: [
                    1.22067404,
                    1.29148304,
                    0.15505029,
                    -0.61170191,
                    -0.51133704,
                    -0.82981294,
                    -1.33237290,
                    -0.61887765,
                ],
                x0: [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            },
        ),
    ]
}

#[test]
fn diffusers_parity_fixtures() {
    let (x, m, z) = fixture_inputs();
    let tx = upload(&device(), &[2, 4], &x);
    let tm = upload(&device(), &[2, 4], &m);
    let tz = upload(&device(), &[2, 4], &z);
    let extras = Extras {
        x0: true,
        eps: false,
    };
    for (s, f) in ddpm_fixtures() {
        let out = up::ddpm_step(
            &tx,
            ModelOutput::Plain(&tm),
            &s,
            Noise::Injected(&tz),
            extras,
        )
        .unwrap();
        assert_rel(
            &format!("{} prev", f.name),
            &out.x_prev.to_f32().unwrap(),
            &f.prev,
        );
        assert_rel(
            &format!("{} x0", f.name),
            &out.x0.unwrap().to_f32().unwrap(),
            &f.x0,
        );
    }
    for (s, f) in ddim_fixtures() {
        let out = up::ddim_step(
            &tx,
            ModelOutput::Plain(&tm),
            &s,
            Noise::Injected(&tz),
            extras,
        )
        .unwrap();
        assert_rel(
            &format!("{} prev", f.name),
            &out.x_prev.to_f32().unwrap(),
            &f.prev,
        );
        assert_rel(
            &format!("{} x0", f.name),
            &out.x0.unwrap().to_f32().unwrap(),
            &f.x0,
        );
    }
}

/// diffusers' float32 linear schedule: torch.linspace (two-sided) then a float32 cumprod.
fn linear_alpha_bars() -> Vec<f32> {
    let (n, b0, b1) = (1000usize, 1e-4f32, 0.02f32);
    let step = (b1 - b0) / (n - 1) as f32;
    let mut ab = Vec::with_capacity(n);
    let mut acc = 1f32;
    for i in 0..n {
        let beta = if i < n / 2 {
            b0 + step * i as f32
        } else {
            b1 - step * (n - 1 - i) as f32
        };
        acc *= 1.0 - beta;
        ab.push(acc);
    }
    ab
}

#[test]
fn golden_diffusers_coefficients() {
    // ANCHOR_MATH §7.1 (diffusers linear schedule).
    let ab = linear_alpha_bars();
    let rel = |got: f64, want: f64, what: &str| {
        assert!(
            ((got - want) / want).abs() < 2e-4,
            "{what}: got {got:e}, want {want:e}"
        );
    };
    rel(ab[0] as f64, 0.999899983, "ᾱ_0");
    rel(ab[1] as f64, 0.999780059, "ᾱ_1");
    rel(ab[499] as f64, 0.0785872415, "ᾱ_499");
    rel(ab[999] as f64, 4.03583254e-05, "ᾱ_999");
    let s = DdpmStepParams::diffusers(
        Prediction::Epsilon,
        ab[999] as f64,
        Some(ab[998] as f64),
        DdpmVariance::FixedSmall,
        None,
    );
    let DdpmMean::Posterior { coef_x0, coef_xt } = s.mean else {
        panic!("diffusers uses the posterior form")
    };
    rel(coef_x0 as f64, 1.28351e-4, "x̂0 coefficient at t=999");
    rel(coef_xt as f64, 0.98994869, "x_t coefficient at t=999");
    for (v, want) in [
        (DdpmVariance::FixedSmall, 5.45348e-5),
        (DdpmVariance::FixedLarge, 1.199245e-4),
    ] {
        let s = DdpmStepParams::diffusers(
            Prediction::Epsilon,
            ab[1] as f64,
            Some(ab[0] as f64),
            v,
            None,
        );
        rel(
            (s.sigma as f64).powi(2),
            want,
            &format!("{v:?} variance at t=1"),
        );
    }
}

// ---- CPU-reference comparisons over prediction types, clip, guidance and noise ----

fn guidances() -> Vec<Option<(Guidance, CfgOrder)>> {
    vec![
        None,
        Some((
            Guidance {
                scale: 3.5,
                form: GuidanceForm::Diffusers,
            },
            CfgOrder::UncondFirst,
        )),
        Some((
            Guidance {
                scale: 0.0,
                form: GuidanceForm::SnippetLerp,
            },
            CfgOrder::CondFirst,
        )),
        Some((
            Guidance {
                scale: 1.5,
                form: GuidanceForm::HoSalimans,
            },
            CfgOrder::CondFirst,
        )),
    ]
}

enum Step {
    Ddpm(DdpmStepParams),
    Ddim(DdimStepParams),
}

fn steps() -> Vec<(String, Step)> {
    let ab = linear_alpha_bars();
    let mut v = Vec::new();
    for pred in [Prediction::Epsilon, Prediction::Sample, Prediction::V] {
        for clip in [None, Some(1.0f32)] {
            for (t, var) in [
                (600, DdpmVariance::FixedSmall),
                (37, DdpmVariance::FixedLarge),
            ] {
                v.push((
                    format!("DDPM {pred:?} clip={clip:?} t={t} {var:?}"),
                    Step::Ddpm(DdpmStepParams::diffusers(
                        pred,
                        ab[t] as f64,
                        Some(ab[t - 1] as f64),
                        var,
                        clip,
                    )),
                ));
            }
            // labml / snippet ε-form with σ = √β_t.
            let t = 250;
            let alpha_t = ab[t] as f64 / ab[t - 1] as f64;
            let mut s =
                DdpmStepParams::epsilon_form(pred, alpha_t, ab[t] as f64, (1.0 - alpha_t).sqrt());
            s.clip = clip;
            v.push((format!("DDPM ε-form {pred:?} clip={clip:?}"), Step::Ddpm(s)));
            for (eta, ucmo) in [(0.0, false), (0.6, true), (1.0, false)] {
                v.push((
                    format!("DDIM {pred:?} clip={clip:?} η={eta} use_clipped={ucmo}"),
                    Step::Ddim(DdimStepParams {
                        prediction: pred,
                        alpha_bar_t: ab[400],
                        alpha_bar_prev: ab[380],
                        eta,
                        clip,
                        use_clipped_model_output: ucmo,
                    }),
                ));
            }
        }
    }
    v
}

#[test]
fn steps_match_cpu_reference() {
    on_each_backend(steps_match_cpu_reference_on);
}

fn steps_match_cpu_reference_on(g: Device) {
    let mut rng = Rng::new(31);
    let shape = [3usize, 5, 7, 3];
    let n: usize = shape.iter().product();
    let x = rng.vec(n, -2.5, 2.5);
    let stacked = rng.vec(2 * n, -2.5, 2.5);
    let tx = upload(&g, &shape, &x);
    let mut shape2 = shape;
    shape2[0] *= 2;
    let tstack = upload(&g, &shape2, &stacked);
    let tplain = upload(&g, &shape, &stacked[..n]);
    let key = Philox::new(2024, 17, Substream::StepNoise);
    let z = key.normals(n);
    let tz = Tensor::from_f32(&g, &shape, &z).unwrap();
    let all = Extras {
        x0: true,
        eps: true,
    };
    for (name, step) in steps() {
        for cfg in guidances() {
            let (model, m) = match cfg {
                None => (
                    ModelOutput::Plain(&tplain),
                    stacked[..n].iter().map(|&v| v as f64).collect::<Vec<_>>(),
                ),
                Some((guidance, order)) => (
                    ModelOutput::Guided {
                        out: &tstack,
                        guidance,
                        order,
                    },
                    combine(&stacked, n, guidance.weight() as f64, order),
                ),
            };
            let run = |noise| match &step {
                Step::Ddpm(s) => up::ddpm_step(&tx, model, s, noise, all).unwrap(),
                Step::Ddim(s) => up::ddim_step(&tx, model, s, noise, all).unwrap(),
            };
            let r = match &step {
                Step::Ddpm(s) => ddpm_ref(s),
                Step::Ddim(s) => ddim_ref(s),
            };
            let (wp, w0, we) = cpu_step(&r, &x, &m, &z);
            let what = format!("{name} cfg={cfg:?}");
            let inj = run(Noise::Injected(&tz));
            let inj_prev = inj.x_prev.to_f32().unwrap();
            assert_rel(&format!("{what} x_prev"), &inj_prev, &wp);
            assert_rel(
                &format!("{what} x0"),
                &inj.x0.unwrap().to_f32().unwrap(),
                &w0,
            );
            assert_rel(
                &format!("{what} eps"),
                &inj.eps.unwrap().to_f32().unwrap(),
                &we,
            );
            // Philox noise on the GPU equals injected CPU Philox normals (up to transcendentals).
            let phi = run(Noise::Philox(key)).x_prev.to_f32().unwrap();
            assert_close(
                &format!("{what} Philox vs injected"),
                &phi,
                &inj_prev,
                1e-5,
                1e-5,
            );
        }
    }
}

#[test]
fn guidance_weights_and_snippet_discontinuity() {
    let w = |scale, form| Guidance { scale, form }.weight();
    assert_eq!(w(7.5, GuidanceForm::Diffusers), 7.5);
    assert_eq!(w(0.0, GuidanceForm::Diffusers), 0.0);
    assert_eq!(w(2.0, GuidanceForm::HoSalimans), 3.0);
    assert_eq!(w(0.0, GuidanceForm::HoSalimans), 1.0);
    assert_eq!(w(0.0, GuidanceForm::SnippetLerp), 1.0);
    assert_eq!(w(0.3, GuidanceForm::SnippetLerp), 0.3);

    // The snippet at scale 0 is the plain conditional step; diffusers at 0 the unconditional one.
    let mut rng = Rng::new(32);
    let n = 40;
    let x = upload(&device(), &[n], &rng.vec(n, -1.0, 1.0));
    let both = rng.vec(2 * n, -1.0, 1.0);
    let stacked = upload(&device(), &[2 * n], &both);
    let cond = upload(&device(), &[n], &both[..n]);
    let uncond = upload(&device(), &[n], &both[n..]);
    let s = DdimStepParams {
        prediction: Prediction::Epsilon,
        alpha_bar_t: 0.5,
        alpha_bar_prev: 0.6,
        eta: 0.0,
        clip: None,
        use_clipped_model_output: false,
    };
    let step = |m| {
        up::ddim_step(&x, m, &s, Noise::None, Extras::default())
            .unwrap()
            .x_prev
            .to_f32()
            .unwrap()
    };
    let guided = |scale, form| ModelOutput::Guided {
        out: &stacked,
        guidance: Guidance { scale, form },
        order: CfgOrder::CondFirst,
    };
    assert_eq!(
        step(guided(0.0, GuidanceForm::SnippetLerp)),
        step(ModelOutput::Plain(&cond))
    );
    assert_eq!(
        step(guided(0.0, GuidanceForm::Diffusers)),
        step(ModelOutput::Plain(&uncond))
    );
    assert_eq!(
        step(guided(1.0, GuidanceForm::Diffusers)),
        step(ModelOutput::Plain(&cond))
    );
}

#[test]
fn extras_are_optional_and_do_not_change_the_step() {
    let mut rng = Rng::new(33);
    let n = 300;
    let x = upload(&device(), &[3, n / 3], &rng.vec(n, -1.0, 1.0));
    let m = upload(&device(), &[3, n / 3], &rng.vec(n, -1.0, 1.0));
    let s = DdpmStepParams::diffusers(
        Prediction::V,
        0.3,
        Some(0.35),
        DdpmVariance::FixedSmall,
        Some(1.0),
    );
    let key = Philox::new(5, 9, Substream::StepNoise);
    let a = up::ddpm_step(
        &x,
        ModelOutput::Plain(&m),
        &s,
        Noise::Philox(key),
        Extras::default(),
    )
    .unwrap();
    assert!(a.x0.is_none() && a.eps.is_none());
    let b = up::ddpm_step(
        &x,
        ModelOutput::Plain(&m),
        &s,
        Noise::Philox(key),
        Extras {
            x0: true,
            eps: false,
        },
    )
    .unwrap();
    assert!(b.x0.is_some() && b.eps.is_none());
    assert_eq!(a.x_prev.to_f32().unwrap(), b.x_prev.to_f32().unwrap());
    // σ = 0 (the last step): the noise is never read, so none is needed.
    let last =
        DdpmStepParams::diffusers(Prediction::V, 0.9999, None, DdpmVariance::FixedLarge, None);
    assert_eq!(last.sigma, 0.0);
    up::ddpm_step(
        &x,
        ModelOutput::Plain(&m),
        &last,
        Noise::None,
        Extras::default(),
    )
    .unwrap();
}

#[test]
fn bad_arguments_are_typed_errors() {
    on_each_backend(bad_arguments_are_typed_errors_on);
}

fn bad_arguments_are_typed_errors_on(g: Device) {
    let x = upload(&g, &[2, 3], &[0.0; 6]);
    let m = upload(&g, &[2, 3], &[0.0; 6]);
    let s = DdpmStepParams::diffusers(
        Prediction::Epsilon,
        0.5,
        Some(0.6),
        DdpmVariance::FixedSmall,
        None,
    );
    let none = Extras::default();
    let key = Philox::new(0, 0, Substream::StepNoise);
    let e = up::ddpm_step(&x, ModelOutput::Plain(&m), &s, Noise::None, none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "σ > 0 without noise: {e}");
    let bad = upload(&g, &[3, 2], &[0.0; 6]);
    let e = up::ddpm_step(&x, ModelOutput::Plain(&bad), &s, Noise::Philox(key), none).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = up::ddpm_step(&x, ModelOutput::Plain(&m), &s, Noise::Injected(&bad), none).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let guided = ModelOutput::Guided {
        out: &m,
        guidance: Guidance {
            scale: 2.0,
            form: GuidanceForm::Diffusers,
        },
        order: CfgOrder::CondFirst,
    };
    let e = up::ddpm_step(&x, guided, &s, Noise::Philox(key), none).unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }),
        "unstacked guided output: {e}"
    );
    let mut c = s;
    c.clip = Some(0.0);
    let e = up::ddpm_step(&x, ModelOutput::Plain(&m), &c, Noise::Philox(key), none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let mut c = s;
    c.sqrt_alpha_bar_t = 0.0;
    let e = up::ddpm_step(&x, ModelOutput::Plain(&m), &c, Noise::Philox(key), none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "ε prediction at ᾱ = 0: {e}");
    let u = Tensor::from_u32(&g, &[2, 3], &[0; 6]).unwrap();
    let e = up::ddpm_step(&u, ModelOutput::Plain(&m), &s, Noise::Philox(key), none).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    let d = DdimStepParams {
        prediction: Prediction::Epsilon,
        alpha_bar_t: 1.0,
        alpha_bar_prev: 1.0,
        eta: 0.0,
        clip: None,
        use_clipped_model_output: false,
    };
    let e = up::ddim_step(&x, ModelOutput::Plain(&m), &d, Noise::None, none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let d = DdimStepParams {
        alpha_bar_t: 0.5,
        alpha_bar_prev: 0.6,
        eta: -1.0,
        ..d
    };
    let e = up::ddim_step(&x, ModelOutput::Plain(&m), &d, Noise::None, none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let scalar = upload(&g, &[], &[0.0]);
    let e = up::ddim_step(
        &scalar,
        ModelOutput::Plain(&scalar),
        &DdimStepParams { eta: 0.0, ..d },
        Noise::None,
        none,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}

// ---- the CPU backend's steps (ops::update::cpu) against the same references and cases ----

mod host {
    pub use diffscope::ops::update::cpu::{ddim_step, ddpm_step, ModelOutput, Noise};
}

#[test]
fn cpu_diffusers_parity_fixtures() {
    let (x, m, z) = fixture_inputs();
    let shape = [2usize, 4];
    let extras = Extras {
        x0: true,
        eps: false,
    };
    let model = host::ModelOutput::Plain(&m, &shape);
    let noise = host::Noise::Injected(&z, &shape);
    for (s, f) in ddpm_fixtures() {
        let out = host::ddpm_step(&x, &shape, model, &s, noise, extras).unwrap();
        assert_rel(&format!("cpu {} prev", f.name), &out.x_prev, &f.prev);
        assert_rel(&format!("cpu {} x0", f.name), &out.x0.unwrap(), &f.x0);
        assert!(out.eps.is_none());
    }
    for (s, f) in ddim_fixtures() {
        let out = host::ddim_step(&x, &shape, model, &s, noise, extras).unwrap();
        assert_rel(&format!("cpu {} prev", f.name), &out.x_prev, &f.prev);
        assert_rel(&format!("cpu {} x0", f.name), &out.x0.unwrap(), &f.x0);
    }
}

/// `steps_match_cpu_reference` on the CPU: every step, prediction, clip and guidance case against
/// the f64 reference with the same tolerances, and Philox noise against injected Philox normals.
#[test]
fn cpu_steps_match_the_reference() {
    let mut rng = Rng::new(31);
    let shape = [3usize, 5, 7, 3];
    let n: usize = shape.iter().product();
    let x = rng.vec(n, -2.5, 2.5);
    let stacked = rng.vec(2 * n, -2.5, 2.5);
    let mut shape2 = shape;
    shape2[0] *= 2;
    let key = Philox::new(2024, 17, Substream::StepNoise);
    let z = key.normals(n);
    let all = Extras {
        x0: true,
        eps: true,
    };
    for (name, step) in steps() {
        for cfg in guidances() {
            let (model, m) = match cfg {
                None => (
                    host::ModelOutput::Plain(&stacked[..n], &shape),
                    stacked[..n].iter().map(|&v| v as f64).collect::<Vec<_>>(),
                ),
                Some((guidance, order)) => (
                    host::ModelOutput::Guided {
                        out: &stacked,
                        shape: &shape2,
                        guidance,
                        order,
                    },
                    combine(&stacked, n, guidance.weight() as f64, order),
                ),
            };
            let run = |noise| match &step {
                Step::Ddpm(s) => host::ddpm_step(&x, &shape, model, s, noise, all).unwrap(),
                Step::Ddim(s) => host::ddim_step(&x, &shape, model, s, noise, all).unwrap(),
            };
            let r = match &step {
                Step::Ddpm(s) => ddpm_ref(s),
                Step::Ddim(s) => ddim_ref(s),
            };
            let (wp, w0, we) = cpu_step(&r, &x, &m, &z);
            let what = format!("cpu {name} cfg={cfg:?}");
            let inj = run(host::Noise::Injected(&z, &shape));
            assert_rel(&format!("{what} x_prev"), &inj.x_prev, &wp);
            assert_rel(&format!("{what} x0"), &inj.x0.unwrap(), &w0);
            assert_rel(&format!("{what} eps"), &inj.eps.unwrap(), &we);
            let phi = run(host::Noise::Philox(key)).x_prev;
            assert_close(
                &format!("{what} Philox vs injected"),
                &phi,
                &inj.x_prev,
                1e-5,
                1e-5,
            );
        }
    }
}

/// `guidance_weights_and_snippet_discontinuity`'s step equalities on the CPU.
#[test]
fn cpu_snippet_discontinuity() {
    let mut rng = Rng::new(32);
    let n = 40;
    let (shape, shape2) = ([n], [2 * n]);
    let x = rng.vec(n, -1.0, 1.0);
    let both = rng.vec(2 * n, -1.0, 1.0);
    let s = DdimStepParams {
        prediction: Prediction::Epsilon,
        alpha_bar_t: 0.5,
        alpha_bar_prev: 0.6,
        eta: 0.0,
        clip: None,
        use_clipped_model_output: false,
    };
    let step = |m| {
        host::ddim_step(&x, &shape, m, &s, host::Noise::None, Extras::default())
            .unwrap()
            .x_prev
    };
    let guided = |scale, form| host::ModelOutput::Guided {
        out: &both,
        shape: &shape2,
        guidance: Guidance { scale, form },
        order: CfgOrder::CondFirst,
    };
    let cond = host::ModelOutput::Plain(&both[..n], &shape);
    let uncond = host::ModelOutput::Plain(&both[n..], &shape);
    assert_eq!(step(guided(0.0, GuidanceForm::SnippetLerp)), step(cond));
    assert_eq!(step(guided(0.0, GuidanceForm::Diffusers)), step(uncond));
    assert_eq!(step(guided(1.0, GuidanceForm::Diffusers)), step(cond));
}

/// `extras_are_optional_and_do_not_change_the_step` on the CPU.
#[test]
fn cpu_extras_are_optional_and_do_not_change_the_step() {
    let mut rng = Rng::new(33);
    let n = 300;
    let shape = [3, n / 3];
    let x = rng.vec(n, -1.0, 1.0);
    let m = rng.vec(n, -1.0, 1.0);
    let model = host::ModelOutput::Plain(&m, &shape);
    let s = DdpmStepParams::diffusers(
        Prediction::V,
        0.3,
        Some(0.35),
        DdpmVariance::FixedSmall,
        Some(1.0),
    );
    let key = Philox::new(5, 9, Substream::StepNoise);
    let noise = host::Noise::Philox(key);
    let a = host::ddpm_step(&x, &shape, model, &s, noise, Extras::default()).unwrap();
    assert!(a.x0.is_none() && a.eps.is_none());
    let x0_only = Extras {
        x0: true,
        eps: false,
    };
    let b = host::ddpm_step(&x, &shape, model, &s, noise, x0_only).unwrap();
    assert!(b.x0.is_some() && b.eps.is_none());
    assert_eq!(a.x_prev, b.x_prev);
    let last =
        DdpmStepParams::diffusers(Prediction::V, 0.9999, None, DdpmVariance::FixedLarge, None);
    assert_eq!(last.sigma, 0.0);
    host::ddpm_step(
        &x,
        &shape,
        model,
        &last,
        host::Noise::None,
        Extras::default(),
    )
    .unwrap();
}

/// The typed errors of `bad_arguments_are_typed_errors`, from the CPU steps.
#[test]
fn cpu_bad_arguments_are_typed_errors() {
    let z = [0.0f32; 6];
    let sh: &[usize] = &[2, 3];
    let plain = host::ModelOutput::Plain(&z, sh);
    let s = DdpmStepParams::diffusers(
        Prediction::Epsilon,
        0.5,
        Some(0.6),
        DdpmVariance::FixedSmall,
        None,
    );
    let none = Extras::default();
    let key = host::Noise::Philox(Philox::new(0, 0, Substream::StepNoise));
    let e = host::ddpm_step(&z, sh, plain, &s, host::Noise::None, none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "σ > 0 without noise: {e}");
    let bad = host::ModelOutput::Plain(&z, &[3, 2]);
    let e = host::ddpm_step(&z, sh, bad, &s, key, none).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let bad_noise = host::Noise::Injected(&z, &[3, 2]);
    let e = host::ddpm_step(&z, sh, plain, &s, bad_noise, none).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let guided = host::ModelOutput::Guided {
        out: &z,
        shape: sh,
        guidance: Guidance {
            scale: 2.0,
            form: GuidanceForm::Diffusers,
        },
        order: CfgOrder::CondFirst,
    };
    let e = host::ddpm_step(&z, sh, guided, &s, key, none).unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }),
        "unstacked guided output: {e}"
    );
    let mut c = s;
    c.clip = Some(0.0);
    let e = host::ddpm_step(&z, sh, plain, &c, key, none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let mut c = s;
    c.sqrt_alpha_bar_t = 0.0;
    let e = host::ddpm_step(&z, sh, plain, &c, key, none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "ε prediction at ᾱ = 0: {e}");
    let d = DdimStepParams {
        prediction: Prediction::Epsilon,
        alpha_bar_t: 1.0,
        alpha_bar_prev: 1.0,
        eta: 0.0,
        clip: None,
        use_clipped_model_output: false,
    };
    let e = host::ddim_step(&z, sh, plain, &d, host::Noise::None, none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let d = DdimStepParams {
        alpha_bar_t: 0.5,
        alpha_bar_prev: 0.6,
        eta: -1.0,
        ..d
    };
    let e = host::ddim_step(&z, sh, plain, &d, host::Noise::None, none).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let scalar = [0.0f32];
    let e = host::ddim_step(
        &scalar,
        &[],
        host::ModelOutput::Plain(&scalar, &[]),
        &DdimStepParams { eta: 0.0, ..d },
        host::Noise::None,
        none,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    // Host data that does not fill its shape.
    let e = host::ddpm_step(&z[..5], sh, plain, &s, key, none).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}

/// The CPU steps against the GPU kernel on a random case — guided (unconditional half first), v
/// prediction with a clip, Philox noise, every extra — within `assert_rel`, the GPU-vs-reference
/// tolerance; and a DDIM ε step with a re-derived ε̂ and injected noise.
#[test]
fn cpu_step_equals_the_gpu() {
    let mut rng = Rng::new(34);
    let shape = [4usize, 3, 11, 13];
    let n: usize = shape.iter().product();
    let shape2 = [8usize, 3, 11, 13];
    let x = rng.vec(n, -2.0, 2.0);
    let out = rng.vec(2 * n, -2.0, 2.0);
    let z = rng.vec(n, -3.0, 3.0);
    let (tx, tout, tz) = (
        upload(&device(), &shape, &x),
        upload(&device(), &shape2, &out),
        upload(&device(), &shape, &z),
    );
    let guidance = Guidance {
        scale: 1.0 + rng.uniform(0.0, 6.0),
        form: GuidanceForm::Diffusers,
    };
    let order = CfgOrder::UncondFirst;
    let ab = linear_alpha_bars();
    let t = 100 + rng.below(800);
    let all = Extras {
        x0: true,
        eps: true,
    };
    let key = Philox::new(rng.next_u64(), t as u32, Substream::StepNoise);
    let ddpm = DdpmStepParams::diffusers(
        Prediction::V,
        ab[t] as f64,
        Some(ab[t - 1] as f64),
        DdpmVariance::FixedSmall,
        Some(1.0),
    );
    let ddim = DdimStepParams {
        prediction: Prediction::Epsilon,
        alpha_bar_t: ab[t],
        alpha_bar_prev: ab[t - 20],
        eta: 0.8,
        clip: Some(1.0),
        use_clipped_model_output: true,
    };
    let gpu_model = ModelOutput::Guided {
        out: &tout,
        guidance,
        order,
    };
    let cpu_model = host::ModelOutput::Guided {
        out: &out,
        shape: &shape2,
        guidance,
        order,
    };
    let cases = [
        (
            "DDPM v clip, Philox",
            up::ddpm_step(&tx, gpu_model, &ddpm, Noise::Philox(key), all).unwrap(),
            host::ddpm_step(&x, &shape, cpu_model, &ddpm, host::Noise::Philox(key), all).unwrap(),
        ),
        (
            "DDIM ε clip use_clipped, injected",
            up::ddim_step(&tx, gpu_model, &ddim, Noise::Injected(&tz), all).unwrap(),
            host::ddim_step(
                &x,
                &shape,
                cpu_model,
                &ddim,
                host::Noise::Injected(&z, &shape),
                all,
            )
            .unwrap(),
        ),
    ];
    for (what, gpu_out, cpu_out) in cases {
        let what = format!("cpu vs gpu {what} t={t} {guidance:?}");
        assert_rel(
            &format!("{what} x_prev"),
            &cpu_out.x_prev,
            &gpu_out.x_prev.to_f32().unwrap(),
        );
        assert_rel(
            &format!("{what} x0"),
            &cpu_out.x0.unwrap(),
            &gpu_out.x0.unwrap().to_f32().unwrap(),
        );
        assert_rel(
            &format!("{what} eps"),
            &cpu_out.eps.unwrap(),
            &gpu_out.eps.unwrap().to_f32().unwrap(),
        );
    }
}
