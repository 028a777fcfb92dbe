use crate::common::{assert_close, on_each_backend, Rng};
use diffscope::ops::transition::{self as tr, Coef, Coefs, Prior, StepCoefs, X0};
use diffscope::{Device, Error, Tensor};

// ---- plain-Rust references (f64, explicit K×K matrices, the formulas as the references write them) ----

fn qmat(alpha: f64, pi: &[f64]) -> Vec<f64> {
    let k = pi.len();
    let mut m = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            m[i * k + j] = if i == j { alpha } else { 0.0 } + (1.0 - alpha) * pi[j];
        }
    }
    m
}

fn matmul(a: &[f64], b: &[f64], k: usize) -> Vec<f64> {
    let mut c = vec![0.0; k * k];
    for i in 0..k {
        for l in 0..k {
            for j in 0..k {
                c[i * k + j] += a[i * k + l] * b[l * k + j];
            }
        }
    }
    c
}

fn softmax(l: &[f64]) -> Vec<f64> {
    let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = l.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn log_softmax(l: &[f64]) -> Vec<f64> {
    softmax(l).iter().map(|p| p.ln()).collect()
}

/// moco `_q_posterior_logits` for one row.
fn moco_ref(x0_logits: &[f64], xt: usize, qt: &[f64], qbp: &[f64], last: bool) -> Vec<f64> {
    if last {
        return x0_logits.to_vec();
    }
    let k = x0_logits.len();
    let p = softmax(x0_logits);
    (0..k)
        .map(|i| {
            let a = qt[i * k + xt];
            let b: f64 = (0..k).map(|c| p[c] * qbp[c * k + i]).sum();
            (a + 1e-6).ln() + (b + 1e-6).ln()
        })
        .collect()
}

/// DiGress `compute_batched_over0_posterior_distribution` + normalisation, for one row.
fn digress_ref(p0: &[f64], xt: usize, qt: &[f64], qsb: &[f64], qtb: &[f64]) -> Vec<f64> {
    let k = p0.len();
    let mut unnorm = vec![0.0; k];
    for (x0, &px0) in p0.iter().enumerate() {
        let mut den = qtb[x0 * k + xt];
        if den == 0.0 {
            den = 1e-6;
        }
        for (x, u) in unnorm.iter_mut().enumerate() {
            *u += px0 * qt[x * k + xt] * qsb[x0 * k + x] / den;
        }
    }
    let mut s: f64 = unnorm.iter().sum();
    if s == 0.0 {
        unnorm.iter_mut().for_each(|u| *u = 1e-5);
        s = 1e-5 * k as f64;
    }
    unnorm.iter().map(|u| u / s).collect()
}

/// Hoogeboom `q_posterior(log_x0, log_onehot(x_t), t)` with π in place of 1/K; `t0` selects a = log x0.
fn hoog_ref(log_x0: &[f64], xt: usize, a_t: f64, ab_prev: f64, t0: bool, pi: &[f64]) -> Vec<f64> {
    let k = log_x0.len();
    let u: Vec<f64> = (0..k)
        .map(|i| {
            let a = if t0 {
                log_x0[i]
            } else {
                (ab_prev * log_x0[i].exp() + (1.0 - ab_prev) * pi[i]).ln()
            };
            let x = if i == xt { 1.0 } else { 1e-30 };
            a + (a_t * x + (1.0 - a_t) * pi[xt]).ln()
        })
        .collect();
    let m = u.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + u.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    u.iter().map(|v| v - lse).collect()
}

// ---- helpers ----

#[derive(Clone, Copy, Debug)]
enum P {
    Uniform,
    Absorbing(usize),
    Marginal,
}

fn pi_of(p: P, k: usize, marginal: &[f32]) -> Vec<f64> {
    match p {
        P::Uniform => vec![1.0 / k as f64; k],
        P::Absorbing(m) => (0..k).map(|j| if j == m { 1.0 } else { 0.0 }).collect(),
        P::Marginal => marginal.iter().map(|&v| v as f64).collect(),
    }
}

fn random_marginal(rng: &mut Rng, k: usize) -> Vec<f32> {
    let mut m = rng.vec(k, 0.05, 1.0);
    if k > 2 {
        m[1] = 0.0; // DiGress marginals can have empty classes
    }
    let s: f32 = m.iter().sum();
    m.iter().map(|v| v / s).collect()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn upload(d: &Device, shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(d, shape, v).unwrap()
}

fn ids(d: &Device, shape: &[usize], v: &[u32], k: usize) -> Tensor {
    Tensor::from_indices(d, shape, v, k as u32, "test ids").unwrap()
}

// ---- ANCHOR_MATH §7 goldens ----

const GOLD_LOGITS: [f32; 4] = [2.0, 0.5, -1.0, 0.0];
const GOLD_ALPHA: [f64; 5] = [0.9, 0.8, 0.7, 0.6, 0.5];

fn gold_alpha_bar(t: usize) -> f64 {
    GOLD_ALPHA[..=t].iter().product()
}

/// Per-batch step coefficients for t = 4, 2, 0 (batch element b ↔ t), moco/DiGress conventions.
fn gold_coefs(d: &Device, hoogeboom_t0: bool) -> Tensor {
    let mut rows = Vec::new();
    for t in [4usize, 2, 0] {
        let c = StepCoefs {
            alpha_t: GOLD_ALPHA[t] as f32,
            alpha_bar_prev: if t == 0 {
                1.0
            } else {
                gold_alpha_bar(t - 1) as f32
            },
            alpha_bar_t: gold_alpha_bar(t) as f32,
            last: t == 0 && !hoogeboom_t0,
        };
        rows.extend(c.row());
    }
    upload(d, &[3, 4], &rows)
}

fn softmax32(l: &[f32]) -> Vec<f32> {
    f32s(&softmax(&f64s(l)))
}

#[test]
fn golden_discrete_posteriors() {
    on_each_backend(|d| golden_discrete_posteriors_on(&d));
}

fn golden_discrete_posteriors_on(d: &Device) {
    let logits: Vec<f32> = GOLD_LOGITS.repeat(3);
    let x0 = upload(d, &[3, 1, 4], &logits);
    let xt = ids(d, &[3, 1], &[1, 1, 1], 4);

    let moco = tr::d3pm_posterior_logits(
        X0::Logits(&x0),
        &xt,
        Coefs::PerBatch(&gold_coefs(d, false)),
        Prior::Uniform,
    )
    .unwrap()
    .to_f32()
    .unwrap();
    assert_close(
        "moco raw logits t=4",
        &moco[..4],
        &[-3.023262, -1.973663, -3.766336, -3.671709],
        0.0,
        1e-5,
    );
    let want_moco: [[f32; 4]; 3] = [
        [0.205973, 0.588362, 0.097971, 0.107694],
        [0.213855, 0.699816, 0.035119, 0.051211],
        [0.710100, 0.158445, 0.035354, 0.096102],
    ];
    for (b, want) in want_moco.iter().enumerate() {
        let got = softmax32(&moco[4 * b..4 * b + 4]);
        assert_close(&format!("moco probs batch {b}"), &got, want, 0.0, 1e-5);
    }
    // At t == last the logits come back unchanged.
    assert_eq!(&moco[8..], &GOLD_LOGITS);

    let dig = tr::digress_posterior_probs(
        X0::Logits(&x0),
        &xt,
        Coefs::PerBatch(&gold_coefs(d, false)),
        Prior::Uniform,
    )
    .unwrap()
    .to_f32()
    .unwrap();
    assert_close(
        "DiGress t=4",
        &dig[..4],
        &[0.222453, 0.562209, 0.102258, 0.113080],
        0.0,
        1e-5,
    );
    assert_close(
        "DiGress t=2",
        &dig[4..8],
        &[0.346192, 0.522651, 0.052351, 0.078806],
        0.0,
        1e-5,
    );

    let hoog = tr::multinomial_posterior_log(
        X0::Logits(&x0),
        &xt,
        Coefs::PerBatch(&gold_coefs(d, true)),
        Prior::Uniform,
    )
    .unwrap()
    .to_f32()
    .unwrap();
    let want_hoog: [[f32; 4]; 3] = [
        [0.205972, 0.588363, 0.097970, 0.107694],
        [0.213854, 0.699818, 0.035118, 0.051210],
        [0.105922, 0.874470, 0.005274, 0.014335],
    ];
    for (b, want) in want_hoog.iter().enumerate() {
        let got: Vec<f32> = hoog[4 * b..4 * b + 4].iter().map(|v| v.exp()).collect();
        assert_close(&format!("Hoogeboom batch {b}"), &got, want, 0.0, 1e-5);
    }
}

#[test]
fn golden_closed_form_matches_sequential_product() {
    on_each_backend(|d| golden_closed_form_matches_sequential_product_on(&d));
}

fn golden_closed_form_matches_sequential_product_on(d: &Device) {
    // §7.2: Q̄_t = Q_0 Q_1 … Q_t equals ᾱ_t I + (1 − ᾱ_t) 1πᵀ, for any π.
    let mut rng = Rng::new(21);
    let k = 4;
    let marginal = random_marginal(&mut rng, k);
    let tm = upload(d, &[k], &marginal);
    for (p, prior) in [
        (P::Uniform, Prior::Uniform),
        (P::Absorbing(2), Prior::Absorbing(2)),
        (P::Marginal, Prior::Marginal(&tm)),
    ] {
        let pi = pi_of(p, k, &marginal);
        let bars: Vec<f32> = (0..5).map(|t| gold_alpha_bar(t) as f32).collect();
        let steps: Vec<f32> = GOLD_ALPHA.iter().map(|&a| a as f32).collect();
        let qbar = tr::matrices(&upload(d, &[5], &bars), prior, k)
            .unwrap()
            .to_f32()
            .unwrap();
        let qt = tr::matrices(&upload(d, &[5], &steps), prior, k)
            .unwrap()
            .to_f32()
            .unwrap();
        let mut prod = qmat(GOLD_ALPHA[0], &pi);
        for t in 0..5 {
            if t > 0 {
                prod = matmul(&prod, &qmat(GOLD_ALPHA[t], &pi), k);
            }
            let kk = k * k;
            assert_close(
                &format!("{p:?} Q̄_{t}"),
                &qbar[t * kk..(t + 1) * kk],
                &f32s(&prod),
                0.0,
                1e-6,
            );
            assert_close(
                &format!("{p:?} Q_{t}"),
                &qt[t * kk..(t + 1) * kk],
                &f32s(&qmat(GOLD_ALPHA[t], &pi)),
                0.0,
                1e-7,
            );
        }
    }
    // The uniform Q_t rows of §1.4: α on the diagonal plus (1 − α)/K everywhere.
    let q = tr::matrices(&upload(d, &[1], &[0.5]), Prior::Uniform, 4)
        .unwrap()
        .to_f32()
        .unwrap();
    assert_close(
        "uniform Q",
        &q[..4],
        &[0.625, 0.125, 0.125, 0.125],
        0.0,
        1e-7,
    );
}

// ---- CPU-reference comparisons on random K, priors, batches and positions ----

struct Case {
    k: usize,
    b: usize,
    n: usize,
    prior: P,
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (k, b, n) in [(1, 2, 3), (2, 3, 7), (5, 2, 13), (27, 3, 5), (29, 2, 9)] {
        v.push(Case {
            k,
            b,
            n,
            prior: P::Uniform,
        });
        v.push(Case {
            k,
            b,
            n,
            prior: P::Absorbing(k - 1),
        });
        v.push(Case {
            k,
            b,
            n,
            prior: P::Marginal,
        });
    }
    v.push(Case {
        k: 5,
        b: 1,
        n: 300,
        prior: P::Absorbing(0),
    });
    v
}

fn random_coefs(rng: &mut Rng, b: usize) -> Vec<StepCoefs> {
    (0..b)
        .map(|i| {
            let a = rng.uniform(0.05, 0.999);
            let ab_prev = if i == 1 { 1.0 } else { rng.uniform(0.01, 1.0) };
            StepCoefs {
                alpha_t: a,
                alpha_bar_prev: ab_prev,
                alpha_bar_t: ab_prev * a,
                last: i == 2,
            }
        })
        .collect()
}

#[test]
fn posteriors_match_cpu_reference() {
    on_each_backend(|d| posteriors_match_cpu_reference_on(&d));
}

fn posteriors_match_cpu_reference_on(d: &Device) {
    let mut rng = Rng::new(22);
    for (ci, case) in cases().into_iter().enumerate() {
        let Case { k, b, n, prior: p } = case;
        let marginal = random_marginal(&mut rng, k);
        let tm = upload(d, &[k], &marginal);
        let prior = match p {
            P::Uniform => Prior::Uniform,
            P::Absorbing(m) => Prior::Absorbing(m),
            P::Marginal => Prior::Marginal(&tm),
        };
        let pi = pi_of(p, k, &marginal);
        let rows = b * n;
        // Wide logits: softmax must be computed stably.
        let scale = if ci % 2 == 0 { 3.0 } else { 40.0 };
        let logits = rng.vec(rows * k, -scale, scale);
        let xt: Vec<u32> = (0..rows)
            .map(|r| {
                // Absorbing chains mostly sit in the mask class.
                if matches!(p, P::Absorbing(_)) && r % 3 != 0 {
                    pi.iter().position(|&v| v == 1.0).unwrap() as u32
                } else {
                    rng.below(k) as u32
                }
            })
            .collect();
        let x0_ids: Vec<u32> = (0..rows).map(|_| rng.below(k) as u32).collect();
        let cs = random_coefs(&mut rng, b);
        let crow: Vec<f32> = cs.iter().flat_map(|c| c.row()).collect();
        let tl = upload(d, &[b, n, k], &logits);
        let txt = ids(d, &[b, n], &xt, k);
        let tid = ids(d, &[b, n], &x0_ids, k);
        let tc = upload(d, &[b, 4], &crow);
        let what = format!("K={k} B={b} N={n} {p:?}");

        for use_ids in [false, true] {
            let x0 = if use_ids {
                X0::Ids { ids: &tid, k }
            } else {
                X0::Logits(&tl)
            };
            let moco = tr::d3pm_posterior_logits(x0, &txt, Coefs::PerBatch(&tc), prior)
                .unwrap()
                .to_f32()
                .unwrap();
            let dig = tr::digress_posterior_probs(x0, &txt, Coefs::PerBatch(&tc), prior)
                .unwrap()
                .to_f32()
                .unwrap();
            let mn = tr::multinomial_posterior_log(x0, &txt, Coefs::PerBatch(&tc), prior)
                .unwrap()
                .to_f32()
                .unwrap();
            let (mut w_moco, mut w_dig, mut w_mn) = (vec![], vec![], vec![]);
            for r in 0..rows {
                let c = cs[r / n];
                let (a, abp, abt) = (
                    c.alpha_t as f64,
                    c.alpha_bar_prev as f64,
                    c.alpha_bar_t as f64,
                );
                let (qt, qbp, qtb) = (qmat(a, &pi), qmat(abp, &pi), qmat(abt, &pi));
                let row = f64s(&logits[r * k..(r + 1) * k]);
                let onehot = |eps: f64, floor: f64| -> Vec<f64> {
                    (0..k)
                        .map(|c| {
                            let v = if c as u32 == x0_ids[r] { 1.0 } else { 0.0 };
                            (v + eps).max(floor).ln()
                        })
                        .collect()
                };
                let xt_r = xt[r] as usize;
                let ml = if use_ids {
                    onehot(1e-6, 0.0)
                } else {
                    row.clone()
                };
                w_moco.extend(moco_ref(&ml, xt_r, &qt, &qbp, c.last));
                let p0 = if use_ids {
                    (0..k)
                        .map(|c| if c as u32 == x0_ids[r] { 1.0 } else { 0.0 })
                        .collect()
                } else {
                    softmax(&row)
                };
                w_dig.extend(digress_ref(&p0, xt_r, &qt, &qbp, &qtb));
                let lx0 = if use_ids {
                    onehot(0.0, 1e-30)
                } else {
                    log_softmax(&row)
                };
                // Batch element 1 has ᾱ_{t−1} = 1: Hoogeboom's t = 0 branch.
                w_mn.extend(hoog_ref(&lx0, xt_r, a, abp, abp == 1.0, &pi));
            }
            let w = format!("{what} ids={use_ids}");
            assert_close(&format!("moco {w}"), &moco, &f32s(&w_moco), 2e-5, 2e-5);
            assert_close(&format!("DiGress {w}"), &dig, &f32s(&w_dig), 1e-4, 1e-6);
            assert_close(&format!("multinomial {w}"), &mn, &f32s(&w_mn), 1e-5, 1e-4);
            for r in 0..rows {
                let s: f32 = dig[r * k..(r + 1) * k].iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "DiGress row {r} sums to {s}");
            }
        }

        // Shared coefficients give the same as a per-batch tensor of identical rows.
        let shared = tr::d3pm_posterior_logits(X0::Logits(&tl), &txt, Coefs::Shared(cs[0]), prior)
            .unwrap()
            .to_f32()
            .unwrap();
        let same = upload(d, &[b, 4], &cs[0].row().repeat(b));
        let per = tr::d3pm_posterior_logits(X0::Logits(&tl), &txt, Coefs::PerBatch(&same), prior)
            .unwrap()
            .to_f32()
            .unwrap();
        assert_eq!(shared, per, "{what}");

        // Explicit matrices: per-batch Q_t / Q̄_{t−1} built by the matrices kernel, and shared ones.
        let at: Vec<f32> = cs.iter().map(|c| c.alpha_t).collect();
        let abp: Vec<f32> = cs.iter().map(|c| c.alpha_bar_prev).collect();
        let mq = tr::matrices(&upload(d, &[b], &at), prior, k).unwrap();
        let mqb = tr::matrices(&upload(d, &[b], &abp), prior, k).unwrap();
        let via_mats = tr::d3pm_posterior_logits_matrices(
            X0::Logits(&tl),
            &txt,
            &mq,
            &mqb,
            Coefs::PerBatch(&tc),
        )
        .unwrap()
        .to_f32()
        .unwrap();
        let closed = tr::d3pm_posterior_logits(X0::Logits(&tl), &txt, Coefs::PerBatch(&tc), prior)
            .unwrap()
            .to_f32()
            .unwrap();
        assert_close(
            &format!("matrices vs closed {what}"),
            &via_mats,
            &closed,
            2e-5,
            2e-5,
        );
    }
}

#[test]
fn custom_matrices_posterior_matches_cpu() {
    on_each_backend(|d| custom_matrices_posterior_matches_cpu_on(&d));
}

fn custom_matrices_posterior_matches_cpu_on(d: &Device) {
    let mut rng = Rng::new(23);
    for (k, b, n) in [(3, 2, 5), (7, 3, 4), (29, 1, 6)] {
        // Random row-stochastic matrices: not of the α I + (1 − α) 1πᵀ family.
        let stoch = |rng: &mut Rng| -> Vec<f32> {
            let mut m = rng.vec(k * k, 0.0, 1.0);
            for r in m.chunks_mut(k) {
                let s: f32 = r.iter().sum();
                r.iter_mut().for_each(|v| *v /= s);
            }
            m
        };
        let qt: Vec<f32> = (0..b).flat_map(|_| stoch(&mut rng)).collect();
        let qbp_shared = stoch(&mut rng);
        let rows = b * n;
        let logits = rng.vec(rows * k, -3.0, 3.0);
        let xt: Vec<u32> = (0..rows).map(|_| rng.below(k) as u32).collect();
        let c = StepCoefs {
            alpha_t: 0.0,
            alpha_bar_prev: 0.0,
            alpha_bar_t: 0.0,
            last: false,
        };
        let got = tr::d3pm_posterior_logits_matrices(
            X0::Logits(&upload(d, &[b, n, k], &logits)),
            &ids(d, &[b, n], &xt, k),
            &upload(d, &[b, k, k], &qt),
            &upload(d, &[k, k], &qbp_shared),
            Coefs::Shared(c),
        )
        .unwrap()
        .to_f32()
        .unwrap();
        let mut want = Vec::new();
        for r in 0..rows {
            let bq = r / n;
            want.extend(moco_ref(
                &f64s(&logits[r * k..(r + 1) * k]),
                xt[r] as usize,
                &f64s(&qt[bq * k * k..(bq + 1) * k * k]),
                &f64s(&qbp_shared),
                false,
            ));
        }
        assert_close(&format!("custom K={k}"), &got, &f32s(&want), 2e-5, 2e-5);
    }
}

#[test]
fn forward_and_matmul_match_cpu() {
    on_each_backend(|d| forward_and_matmul_match_cpu_on(&d));
}

fn forward_and_matmul_match_cpu_on(d: &Device) {
    let mut rng = Rng::new(24);
    for (k, b, n) in [(1, 2, 3), (2, 3, 5), (5, 2, 7), (27, 2, 3), (29, 3, 11)] {
        let marginal = random_marginal(&mut rng, k);
        let tm = upload(d, &[k], &marginal);
        for (p, prior) in [
            (P::Uniform, Prior::Uniform),
            (P::Absorbing(k / 2), Prior::Absorbing(k / 2)),
            (P::Marginal, Prior::Marginal(&tm)),
        ] {
            let pi = pi_of(p, k, &marginal);
            let rows = b * n;
            let x0: Vec<u32> = (0..rows).map(|_| rng.below(k) as u32).collect();
            let abars = rng.vec(b, 0.0, 1.0);
            let tab = upload(d, &[b], &abars);
            let got =
                tr::forward_ids(&ids(d, &[b, n], &x0, k), Coef::PerBatch(&tab), prior, k).unwrap();
            assert_eq!(got.shape(), &[b, n, k]);
            let mut want = Vec::new();
            for r in 0..rows {
                let q = qmat(abars[r / n] as f64, &pi);
                let x = x0[r] as usize;
                want.extend(&q[x * k..(x + 1) * k]);
            }
            let what = format!("K={k} {p:?}");
            assert_close(
                &format!("forward_ids {what}"),
                &got.to_f32().unwrap(),
                &f32s(&want),
                1e-6,
                1e-7,
            );

            // Probability rows, one all-zero (DiGress' diagonal edges), against x @ Q̄.
            let mut probs = rng.vec(rows * k, 0.0, 1.0);
            for r in probs.chunks_mut(k) {
                let s: f32 = r.iter().sum();
                r.iter_mut().for_each(|v| *v /= s);
            }
            probs[..k].iter_mut().for_each(|v| *v = 0.0);
            let tp = upload(d, &[b, n, k], &probs);
            let mut want = Vec::new();
            for r in 0..rows {
                let q = qmat(abars[r / n] as f64, &pi);
                for j in 0..k {
                    want.push(
                        (0..k)
                            .map(|i| probs[r * k + i] as f64 * q[i * k + j])
                            .sum::<f64>(),
                    );
                }
            }
            let got = tr::forward_probs(&tp, Coef::PerBatch(&tab), prior)
                .unwrap()
                .to_f32()
                .unwrap();
            assert_close(
                &format!("forward_probs {what}"),
                &got,
                &f32s(&want),
                1e-5,
                1e-6,
            );
            let shared = tr::forward_probs(&tp, Coef::Shared(abars[0]), prior)
                .unwrap()
                .to_f32()
                .unwrap();
            assert_close(
                &format!("forward_probs shared {what}"),
                &shared[..n * k],
                &got[..n * k],
                0.0,
                0.0,
            );

            // The general path with the materialised Q̄ gives the same; transposed, the likelihood.
            let mats = tr::matrices(&tab, prior, k).unwrap();
            let via = tr::probs_matmul(&tp, &mats, false)
                .unwrap()
                .to_f32()
                .unwrap();
            assert_close(
                &format!("probs_matmul {what}"),
                &via,
                &f32s(&want),
                1e-5,
                1e-6,
            );
            let mt = tr::probs_matmul(&tp, &mats, true)
                .unwrap()
                .to_f32()
                .unwrap();
            let mut want_t = Vec::new();
            for r in 0..rows {
                let q = qmat(abars[r / n] as f64, &pi);
                for j in 0..k {
                    want_t.push(
                        (0..k)
                            .map(|i| probs[r * k + i] as f64 * q[j * k + i])
                            .sum::<f64>(),
                    );
                }
            }
            assert_close(
                &format!("probs_matmul ᵀ {what}"),
                &mt,
                &f32s(&want_t),
                1e-5,
                1e-6,
            );
        }
        // A shared [K, K] matrix.
        let m = rng.vec(k * k, 0.0, 1.0);
        let x = rng.vec(b * n * k, 0.0, 1.0);
        let got = tr::probs_matmul(&upload(d, &[b, n, k], &x), &upload(d, &[k, k], &m), false)
            .unwrap()
            .to_f32()
            .unwrap();
        let want: Vec<f32> = (0..b * n * k)
            .map(|e| {
                let (r, j) = (e / k, e % k);
                (0..k).map(|i| x[r * k + i] * m[i * k + j]).sum()
            })
            .collect();
        assert_close(&format!("shared matmul K={k}"), &got, &want, 1e-5, 1e-6);
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    on_each_backend(|d| bad_arguments_are_typed_errors_on(&d));
}

fn bad_arguments_are_typed_errors_on(d: &Device) {
    let x0 = upload(d, &[2, 3, 4], &[0.0; 24]);
    let xt = ids(d, &[2, 3], &[0; 6], 4);
    let c = Coefs::Shared(StepCoefs {
        alpha_t: 0.5,
        alpha_bar_prev: 0.5,
        alpha_bar_t: 0.25,
        last: false,
    });
    let bad_xt = ids(d, &[2, 4], &[0; 8], 4);
    let e = tr::d3pm_posterior_logits(X0::Logits(&x0), &bad_xt, c, Prior::Uniform).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let f_xt = upload(d, &[2, 3], &[0.0; 6]);
    let e = tr::digress_posterior_probs(X0::Logits(&x0), &f_xt, c, Prior::Uniform).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    let e = tr::d3pm_posterior_logits(X0::Logits(&x0), &xt, c, Prior::Absorbing(4)).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let m5 = upload(d, &[5], &[0.2; 5]);
    let e = tr::d3pm_posterior_logits(X0::Logits(&x0), &xt, c, Prior::Marginal(&m5)).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let c3 = upload(d, &[3, 4], &[0.5; 12]);
    let e =
        tr::multinomial_posterior_log(X0::Logits(&x0), &xt, Coefs::PerBatch(&c3), Prior::Uniform)
            .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = tr::matrices(&upload(d, &[2], &[0.5; 2]), Prior::Uniform, 0).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = tr::probs_matmul(&x0, &upload(d, &[3, 4, 4], &[0.0; 48]), false).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let u = Tensor::from_u32(d, &[2, 3], &[0; 6]).unwrap();
    let e = tr::forward_ids(
        &u,
        Coef::PerBatch(&upload(d, &[3], &[0.5; 3])),
        Prior::Uniform,
        4,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = tr::forward_probs(&u, Coef::Shared(0.5), Prior::Uniform).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
}
