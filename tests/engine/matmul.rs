//! Matmul against an f64-accumulated CPU reference.
//!
//! Tolerance: every element within `assert_close(rtol = 1e-4, atol = 1e-5·sqrt(K))`. Inputs are uniform
//! in [-1, 1), so a dot product of length K has magnitude ~sqrt(K)/3 and its f32 rounding error grows
//! like sqrt(K)·eps; the absolute term covers outputs that cancel to near zero.

use crate::common::{assert_close, gpu, Rng};
use diffscope::ops::matmul::{
    self as mm, bench_gflops, describe, device_kernel, linear, matmul, matmul_with,
    tile_candidates, Act, Matmul, MatmulKernel,
};
use diffscope::{Error, Tensor};

fn erf(x: f64) -> f64 {
    // Maclaurin series: converges quickly for |x| ≤ 4, and erf is ±1 to f64 precision beyond 6.
    if x.abs() > 6.0 {
        return x.signum();
    }
    if x.abs() > 4.0 {
        // Continued-fraction-free tail: erfc(x) < 2e-8 here, well below the test tolerance.
        return x.signum() * (1.0 - (-x * x).exp() / (x.abs() * std::f64::consts::PI.sqrt()));
    }
    let mut sum = x;
    let mut term = x;
    let mut n = 0.0;
    while term.abs() > 1e-17 * sum.abs().max(1e-300) {
        n += 1.0;
        term *= -x * x / n;
        sum += term / (2.0 * n + 1.0);
    }
    2.0 / std::f64::consts::PI.sqrt() * sum
}

fn cpu_act(act: Act, x: f64) -> f64 {
    match act {
        Act::None => x,
        Act::Silu => x / (1.0 + (-x).exp()),
        Act::Gelu => 0.5 * x * (1.0 + erf(x / 2f64.sqrt())),
        Act::Relu => x.max(0.0),
    }
}

/// Host-side operands and options of one case.
struct Case {
    ash: Vec<usize>,
    bsh: Vec<usize>,
    trans_a: bool,
    trans_b: bool,
    bias: bool,
    act: Act,
    /// Shape of the residual, if any (its batch dimensions may broadcast).
    res: Option<Vec<usize>>,
    alpha: f32,
}

impl Case {
    fn plain(ash: &[usize], bsh: &[usize], trans_a: bool, trans_b: bool) -> Case {
        Case {
            ash: ash.to_vec(),
            bsh: bsh.to_vec(),
            trans_a,
            trans_b,
            bias: false,
            act: Act::None,
            res: None,
            alpha: 1.0,
        }
    }

    fn name(&self) -> String {
        format!(
            "a{:?}{} b{:?}{} bias={} {:?} res={:?} alpha={}",
            self.ash,
            if self.trans_a { "ᵀ" } else { "" },
            self.bsh,
            if self.trans_b { "ᵀ" } else { "" },
            self.bias,
            self.act,
            self.res,
            self.alpha
        )
    }

    /// (M, K, N)
    fn mkn(&self) -> (usize, usize, usize) {
        let (ar, br) = (self.ash.len(), self.bsh.len());
        let (m, k) = if self.trans_a {
            (self.ash[ar - 1], self.ash[ar - 2])
        } else {
            (self.ash[ar - 2], self.ash[ar - 1])
        };
        let n = if self.trans_b {
            self.bsh[br - 2]
        } else {
            self.bsh[br - 1]
        };
        (m, k, n)
    }
}

/// Offset of batch coordinate `coord` (of the broadcast batch shape) in an operand with batch shape
/// `sh`, counted in matrices.
fn batch_index(sh: &[usize], coord: &[usize]) -> usize {
    let off = coord.len() - sh.len();
    sh.iter().enumerate().fold(0, |o, (i, &d)| {
        o * d + if d == 1 { 0 } else { coord[i + off] }
    })
}

fn batch_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let rank = a.len().max(b.len());
    let get = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank).map(|i| get(a, i).max(get(b, i))).collect()
}

struct Data {
    a: Vec<f32>,
    b: Vec<f32>,
    bias: Vec<f32>,
    res: Vec<f32>,
}

fn cpu_reference(c: &Case, d: &Data) -> (Vec<f32>, Vec<usize>) {
    let (m, k, n) = c.mkn();
    let (ab, bb) = (&c.ash[..c.ash.len() - 2], &c.bsh[..c.bsh.len() - 2]);
    let batch = batch_shape(ab, bb);
    let nb: usize = batch.iter().product();
    let mut out = Vec::with_capacity(nb * m * n);
    let mut coord = vec![0; batch.len()];
    for z in 0..nb {
        let mut r = z;
        for i in (0..batch.len()).rev() {
            coord[i] = r % batch[i];
            r /= batch[i];
        }
        let ao = batch_index(ab, &coord) * m * k;
        let bo = batch_index(bb, &coord) * k * n;
        let ro = c
            .res
            .as_ref()
            .map(|rs| batch_index(&rs[..rs.len() - 2], &coord) * m * n);
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for q in 0..k {
                    let av = if c.trans_a {
                        d.a[ao + q * m + i]
                    } else {
                        d.a[ao + i * k + q]
                    };
                    let bv = if c.trans_b {
                        d.b[bo + j * k + q]
                    } else {
                        d.b[bo + q * n + j]
                    };
                    acc += av as f64 * bv as f64;
                }
                let mut v = c.alpha as f64 * acc;
                if c.bias {
                    v += d.bias[j] as f64;
                }
                v = cpu_act(c.act, v);
                if let Some(ro) = ro {
                    v += d.res[ro + i * n + j] as f64;
                }
                out.push(v as f32);
            }
        }
    }
    let mut shape = batch;
    shape.extend_from_slice(&[m, n]);
    (out, shape)
}

/// Run `c` on `kernel` (None: the device's choice) and compare with the CPU.
fn check(kernel: Option<MatmulKernel>, c: &Case, rng: &mut Rng) {
    let g = gpu();
    let (_, k, n) = c.mkn();
    let d = Data {
        a: rng.vec(c.ash.iter().product(), -1.0, 1.0),
        b: rng.vec(c.bsh.iter().product(), -1.0, 1.0),
        bias: rng.vec(n, -1.0, 1.0),
        res: rng.vec(c.res.as_ref().map_or(0, |s| s.iter().product()), -1.0, 1.0),
    };
    let ta = Tensor::from_f32(&g, &c.ash, &d.a).unwrap();
    let tb = Tensor::from_f32(&g, &c.bsh, &d.b).unwrap();
    let tbias = Tensor::from_f32(&g, &[n], &d.bias).unwrap();
    let tres = c
        .res
        .as_ref()
        .map(|s| Tensor::from_f32(&g, s, &d.res).unwrap());
    let opts = Matmul {
        trans_a: c.trans_a,
        trans_b: c.trans_b,
        bias: c.bias.then_some(&tbias),
        act: c.act,
        residual: tres.as_ref(),
        alpha: c.alpha,
    };
    let out = match kernel {
        Some(kern) => matmul_with(kern, &ta, &tb, &opts),
        None => matmul(&ta, &tb, &opts),
    }
    .unwrap_or_else(|e| panic!("{}: {e}", c.name()));
    let (want, shape) = cpu_reference(c, &d);
    assert_eq!(out.shape(), &shape[..], "{}", c.name());
    let what = format!(
        "{} on {}",
        c.name(),
        kernel.map_or("device choice".into(), |k| k.to_string())
    );
    let atol = 1e-5 * (k.max(1) as f32).sqrt();
    assert_close(&what, &out.to_f32().unwrap(), &want, 1e-4, atol);
}

fn all_kernels() -> Vec<MatmulKernel> {
    let mut ks = vec![MatmulKernel::Baseline];
    ks.extend(tile_candidates());
    ks
}

/// Not candidates: small blocks with two quads along each axis and a workgroup that is not square, so
/// the generated code exercises every index pattern of the generator (and `BK` below the tile depth)
/// at a fraction of the compile time of the large candidates.
const REG_TEST: MatmulKernel = MatmulKernel::Tiled {
    tm: 8,
    tn: 8,
    wg_x: 4,
    wg_y: 8,
    bk: 0,
};
const SMEM_TEST: MatmulKernel = MatmulKernel::Tiled {
    tm: 8,
    tn: 8,
    wg_x: 4,
    wg_y: 4,
    bk: 4,
};

/// (M, K, N): degenerate, odd, aligned (vec4 paths) and mixed.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (7, 13, 29),
    (255, 31, 257),
    (64, 64, 64),
    (3, 300, 1),
    (36, 20, 12),
];

fn operand_shapes(
    (m, k, n): (usize, usize, usize),
    trans_a: bool,
    trans_b: bool,
) -> (Vec<usize>, Vec<usize>) {
    let a = if trans_a { vec![k, m] } else { vec![m, k] };
    let b = if trans_b { vec![n, k] } else { vec![k, n] };
    (a, b)
}

/// Every layout (transposes × alignment × K tail) on the baseline and both generated kernels.
#[test]
fn every_layout_odd_shapes() {
    let mut rng = Rng::new(11);
    for kern in [MatmulKernel::Baseline, REG_TEST, SMEM_TEST] {
        for &s in SHAPES {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let (ash, bsh) = operand_shapes(s, ta, tb);
                check(Some(kern), &Case::plain(&ash, &bsh, ta, tb), &mut rng);
            }
        }
    }
}

/// Every tuning candidate, plain and in PyTorch's Linear layout (B transposed), on vec4-aligned
/// operands with partial tiles (N = 13 also takes the scalar epilogue). Fewer layouts than above: the
/// large blocks take seconds each to compile on lavapipe, and their code comes from the same
/// generator; the other tests reuse these layouts on the device's choice for the same reason.
#[test]
fn every_candidate() {
    let mut rng = Rng::new(17);
    for kern in tile_candidates() {
        check(
            Some(kern),
            &Case::plain(&[36, 20], &[20, 12], false, false),
            &mut rng,
        );
        check(
            Some(kern),
            &Case::plain(&[36, 20], &[13, 20], false, true),
            &mut rng,
        );
    }
}

/// Broadcast batches (shared weight, both batched, only b batched, both broadcast, rank 4 against
/// rank 3), each plain and with both operands transposed.
fn batch_cases() -> Vec<Case> {
    let shapes: &[(&[usize], &[usize])] = &[
        (&[3, 5, 7], &[7, 9]),
        (&[3, 8, 12], &[3, 12, 16]),
        (&[5, 7], &[2, 7, 6]),
        (&[2, 1, 5, 7], &[1, 3, 7, 6]),
        (&[2, 3, 4, 8], &[3, 8, 4]),
    ];
    let mut cases = Vec::new();
    for &(ash, bsh) in shapes {
        for (ta, tb) in [(false, false), (true, true)] {
            let mut a = ash.to_vec();
            let mut b = bsh.to_vec();
            if ta {
                let r = a.len();
                a.swap(r - 1, r - 2);
            }
            if tb {
                let r = b.len();
                b.swap(r - 1, r - 2);
            }
            cases.push(Case::plain(&a, &b, ta, tb));
        }
    }
    cases
}

#[test]
fn batch_broadcast() {
    let mut rng = Rng::new(12);
    for kern in [MatmulKernel::Baseline, REG_TEST, SMEM_TEST] {
        for c in batch_cases() {
            check(Some(kern), &c, &mut rng);
        }
    }
}

/// The fused epilogue: every activation with bias, alpha and a residual batched or broadcast over
/// the batch, on unaligned N (scalar epilogue) and aligned N (vec4 epilogue); then each part alone.
fn epilogue_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for act in [Act::None, Act::Silu, Act::Gelu, Act::Relu] {
        for (ash, bsh, res) in [
            (vec![2, 9, 13], vec![13, 11], vec![2, 9, 11]),
            (vec![2, 9, 12], vec![12, 8], vec![9, 8]),
        ] {
            cases.push(Case {
                ash,
                bsh,
                trans_a: false,
                trans_b: false,
                bias: true,
                act,
                res: Some(res),
                alpha: 0.75,
            });
        }
    }
    let mut c = Case::plain(&[5, 8], &[12, 8], false, true);
    c.bias = true;
    cases.push(c);
    let mut c = Case::plain(&[5, 8], &[12, 8], false, true);
    c.res = Some(vec![5, 12]);
    cases.push(c);
    let mut c = Case::plain(&[5, 8], &[12, 8], false, true);
    c.alpha = -2.5;
    cases.push(c);
    cases
}

#[test]
fn fused_epilogue() {
    let mut rng = Rng::new(13);
    for kern in [MatmulKernel::Baseline, REG_TEST, SMEM_TEST] {
        for c in epilogue_cases() {
            check(Some(kern), &c, &mut rng);
        }
    }
}

#[test]
fn device_choice_and_linear() {
    let g = gpu();
    let mut rng = Rng::new(14);
    let k = device_kernel(&g).unwrap();
    assert_eq!(g.tuned(mm::TUNE_KEY).as_deref(), Some(&*k.to_string()));
    assert!(!describe(&k).is_empty());
    check(
        None,
        &Case::plain(&[33, 16], &[16, 40], false, false),
        &mut rng,
    );

    // linear: x [2, 3, in] with weight [out, in] and bias, against the CPU.
    let (inf, outf) = (20, 13);
    let x = rng.vec(2 * 3 * inf, -1.0, 1.0);
    let w = rng.vec(outf * inf, -1.0, 1.0);
    let bias = rng.vec(outf, -1.0, 1.0);
    let tx = Tensor::from_f32(&g, &[2, 3, inf], &x).unwrap();
    let tw = Tensor::from_f32(&g, &[outf, inf], &w).unwrap();
    let tbias = Tensor::from_f32(&g, &[outf], &bias).unwrap();
    let y = linear(&tx, &tw, Some(&tbias), Act::Silu).unwrap();
    assert_eq!(y.shape(), &[2, 3, outf]);
    let want: Vec<f32> = (0..6)
        .flat_map(|r| {
            let (x, w, bias) = (&x, &w, &bias);
            (0..outf).map(move |o| {
                let dot: f64 = (0..inf)
                    .map(|i| x[r * inf + i] as f64 * w[o * inf + i] as f64)
                    .sum();
                cpu_act(Act::Silu, dot + bias[o] as f64) as f32
            })
        })
        .collect();
    assert_close("linear", &y.to_f32().unwrap(), &want, 1e-4, 1e-4);
    // A 1-D input is one row.
    let y1 = linear(
        &Tensor::from_f32(&g, &[inf], &x[..inf]).unwrap(),
        &tw,
        None,
        Act::None,
    )
    .unwrap();
    assert_eq!(y1.shape(), &[outf]);
}

#[test]
fn kernel_names_round_trip() {
    for k in all_kernels() {
        let s = k.to_string();
        assert_eq!(s.parse::<MatmulKernel>().unwrap(), k, "{s}");
        assert!(describe(&k).starts_with(&s));
    }
    for bad in [
        "",
        "reg",
        "reg-4x4",
        "reg-4-wg8x8",
        "smem-4x4-wg8x8",
        "smem-4x4-wg8x8-k0",
        "fast",
    ] {
        assert!(
            matches!(bad.parse::<MatmulKernel>(), Err(Error::Invalid(_))),
            "{bad:?} should not parse"
        );
    }
}

#[test]
fn grids_past_65535_workgroups_are_split() {
    let mut rng = Rng::new(15);
    // One invocation per workgroup and 4×4 outputs each: the smallest tiles, so the grids pass 65535
    // workgroups per dimension with little work.
    let tiny = MatmulKernel::Tiled {
        tm: 4,
        tn: 4,
        wg_x: 1,
        wg_y: 1,
        bk: 0,
    };
    let rows = 65535 * 4 + 5;
    for (ash, bsh) in [
        (vec![70000, 1, 2], vec![2, 3]), // z
        (vec![rows, 1], vec![1, 2]),     // y
        (vec![2, 1], vec![1, rows]),     // x
    ] {
        check(Some(tiny), &Case::plain(&ash, &bsh, false, false), &mut rng);
    }
}

#[test]
fn errors_are_typed() {
    let g = gpu();
    let t =
        |shape: &[usize]| Tensor::from_f32(&g, shape, &vec![0.0; shape.iter().product()]).unwrap();
    let (a, b) = (t(&[4, 5]), t(&[6, 3]));
    let k = REG_TEST;
    let shape_err = |r: diffscope::Result<Tensor>, what: &str| match r {
        Err(Error::Shape { detail, .. }) => assert!(detail.contains(what), "{detail}"),
        other => panic!("expected a shape error containing {what:?}, got {other:?}"),
    };
    shape_err(
        matmul_with(k, &a, &b, &Matmul::default()),
        "inner dimensions",
    );
    shape_err(
        matmul_with(
            k,
            &a,
            &b,
            &Matmul {
                trans_a: true,
                trans_b: true,
                ..Default::default()
            },
        ),
        "inner dimensions",
    );
    shape_err(
        matmul_with(k, &t(&[5]), &b, &Matmul::default()),
        "2 dimensions",
    );
    let b = t(&[5, 3]);
    let bad_bias = t(&[4]);
    shape_err(
        matmul_with(
            k,
            &a,
            &b,
            &Matmul {
                bias: Some(&bad_bias),
                ..Default::default()
            },
        ),
        "bias",
    );
    let bad_res = t(&[3, 4]);
    shape_err(
        matmul_with(
            k,
            &a,
            &b,
            &Matmul {
                residual: Some(&bad_res),
                ..Default::default()
            },
        ),
        "residual",
    );
    // A batched residual cannot widen the output's batch.
    let batched_res = t(&[2, 4, 3]);
    shape_err(
        matmul_with(
            k,
            &a,
            &b,
            &Matmul {
                residual: Some(&batched_res),
                ..Default::default()
            },
        ),
        "residual",
    );
    shape_err(
        matmul_with(k, &t(&[2, 4, 5]), &t(&[3, 5, 3]), &Matmul::default()),
        "broadcast",
    );
    let u = Tensor::from_u32(&g, &[5, 3], &[0; 15]).unwrap();
    assert!(matches!(
        matmul_with(k, &a, &u, &Matmul::default()),
        Err(Error::DType { .. })
    ));
    assert!(matches!(
        linear(&a, &u, None, Act::None),
        Err(Error::DType { .. })
    ));
    shape_err(linear(&a, &t(&[3, 4]), None, Act::None), "weight");
    // Configurations the shader or WebGPU cannot run.
    for bad in [
        MatmulKernel::Tiled {
            tm: 3,
            tn: 4,
            wg_x: 8,
            wg_y: 8,
            bk: 0,
        },
        MatmulKernel::Tiled {
            tm: 4,
            tn: 4,
            wg_x: 32,
            wg_y: 16,
            bk: 0,
        },
        MatmulKernel::Tiled {
            tm: 16,
            tn: 16,
            wg_x: 16,
            wg_y: 16,
            bk: 16,
        },
    ] {
        assert!(
            matches!(
                matmul_with(bad, &a, &b, &Matmul::default()),
                Err(Error::Invalid(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn empty_dimensions() {
    let g = gpu();
    let mut rng = Rng::new(16);
    // K = 0: the product is zero and only the epilogue remains.
    let mut c = Case::plain(&[3, 0], &[0, 8], false, false);
    c.bias = true;
    c.act = Act::Relu;
    check(Some(REG_TEST), &c, &mut rng);
    check(Some(MatmulKernel::Baseline), &c, &mut rng);
    // M = 0: an empty output, no dispatch.
    let a = Tensor::from_f32(&g, &[0, 4], &[]).unwrap();
    let b = Tensor::from_f32(&g, &[4, 5], &[0.0; 20]).unwrap();
    let out = matmul_with(REG_TEST, &a, &b, &Matmul::default()).unwrap();
    assert_eq!(out.shape(), &[0, 5]);
}

/// GFLOP/s of the baseline and the shipped kernels. Not a correctness test: run it in release with
/// `cargo test --release --test engine matmul_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn matmul_speed() {
    let g = gpu();
    let t = std::time::Instant::now();
    let (chosen, timings) = mm::tune(&g).unwrap();
    println!(
        "tuning took {:.2} s on {}: chose {chosen}",
        t.elapsed().as_secs_f64(),
        g.summary().name
    );
    for (k, s) in &timings {
        println!("  {k:<24} {:8.2} ms", s * 1e3);
    }
    let mut kernels = vec![MatmulKernel::Baseline];
    kernels.extend(tile_candidates());
    let sizes = [256, 512, 1024];
    println!(
        "{:<26} {:>8} {:>8} {:>8}",
        "GFLOP/s", "n=256", "n=512", "n=1024"
    );
    let (mut base, mut ship) = ([0.0; 3], [0.0; 3]);
    for k in kernels {
        let shipped = k == chosen;
        let mut row = format!(
            "{:<26}",
            format!("{k}{}", if shipped { " (shipped)" } else { "" })
        );
        for (i, n) in sizes.into_iter().enumerate() {
            // 1024 only where the comparison needs it: the baseline alone takes many seconds.
            if n == 1024 && !(shipped || k == MatmulKernel::Baseline) {
                row += &format!(" {:>8}", "-");
                continue;
            }
            let gf = bench_gflops(&g, n, k, 3).unwrap();
            if shipped {
                ship[i] = gf;
            }
            if k == MatmulKernel::Baseline {
                base[i] = gf;
            }
            row += &format!(" {gf:>8.2}");
        }
        println!("{row}");
    }
    println!(
        "{:<26} {:>7.1}× {:>7.1}× {:>7.1}×",
        "shipped / baseline",
        ship[0] / base[0],
        ship[1] / base[1],
        ship[2] / base[2]
    );
}

/// Software adapters run large problems on 32×32 blocks (`SOFTWARE_LARGE`, `SOFTWARE_MEDIUM`): they
/// compute the same as the CPU, on partial tiles in every direction, and `matmul` picks them only for
/// large problems.
#[test]
fn large_problems_on_software_adapters() {
    let g = gpu();
    let mut rng = Rng::new(23);
    let (large, medium) = (mm::SOFTWARE_LARGE, mm::SOFTWARE_MEDIUM);
    for k in [large, medium] {
        check(
            Some(k),
            &Case::plain(&[36, 20], &[13, 20], false, true),
            &mut rng,
        );
    }
    if !g.is_software() || std::env::var(mm::ENV_FORCE).is_ok_and(|s| !s.trim().is_empty()) {
        return;
    }
    let tuned = device_kernel(&g).unwrap();
    assert_eq!(mm::kernel_for(&g, 1024, 1024, 1024, 1).unwrap(), large);
    assert_eq!(mm::kernel_for(&g, 256, 256, 256, 1).unwrap(), medium);
    // Shallow (a DiGress edge layer, K = 32), narrow, or too few workgroups: the tuned kernel.
    assert_eq!(mm::kernel_for(&g, 4096, 32, 32, 1).unwrap(), tuned);
    assert_eq!(mm::kernel_for(&g, 4096, 32, 256, 1).unwrap(), tuned);
    assert_eq!(mm::kernel_for(&g, 256, 128, 256, 1).unwrap(), tuned);
    assert_eq!(mm::kernel_for(&g, 256, 128, 256, 2).unwrap(), medium);
    // Through `matmul` (the device's choice): 3 × 2 workgroups of 128², partial in M, N and K.
    check(
        None,
        &Case::plain(&[260, 67], &[67, 130], false, false),
        &mut rng,
    );
    check(
        None,
        &Case::plain(&[67, 260], &[130, 67], true, true),
        &mut rng,
    );
    // 3 × 3 workgroups of 256²: the large block, partial tiles again.
    check(
        None,
        &Case::plain(&[520, 70], &[70, 600], false, false),
        &mut rng,
    );
}

/// The CPU backend's matmul (host memory, `cpu::gemm` and the same epilogue) against the
/// same reference, tolerance and cases as the GPU kernels: every layout on odd, aligned and degenerate
/// shapes, broadcast batches, every activation with bias, residual and alpha, a problem larger than
/// the GEMM's blocks, and the same typed errors.
#[test]
fn cpu_matmul_matches_the_reference() {
    use diffscope::ops::matmul::cpu::{self, HostMatmul, HostMatrix};
    // The pool as the backend sizes it, so products past the threading threshold run threaded.
    let _cpu = diffscope::Cpu::new(&Default::default());
    let mut rng = Rng::new(21);
    let run = |c: &Case, rng: &mut Rng| {
        let (_, k, n) = c.mkn();
        let d = Data {
            a: rng.vec(c.ash.iter().product(), -1.0, 1.0),
            b: rng.vec(c.bsh.iter().product(), -1.0, 1.0),
            bias: rng.vec(n, -1.0, 1.0),
            res: rng.vec(c.res.as_ref().map_or(0, |s| s.iter().product()), -1.0, 1.0),
        };
        let opts = HostMatmul {
            trans_a: c.trans_a,
            trans_b: c.trans_b,
            bias: c.bias.then_some(&d.bias[..]),
            act: c.act,
            residual: c.res.as_ref().map(|s| HostMatrix {
                data: &d.res,
                shape: s,
            }),
            alpha: c.alpha,
        };
        let a = HostMatrix {
            data: &d.a,
            shape: &c.ash,
        };
        let b = HostMatrix {
            data: &d.b,
            shape: &c.bsh,
        };
        let (got, shape) = cpu::matmul(a, b, &opts).unwrap_or_else(|e| panic!("{}: {e}", c.name()));
        let (want, want_shape) = cpu_reference(c, &d);
        assert_eq!(shape, want_shape, "{}", c.name());
        let atol = 1e-5 * (k.max(1) as f32).sqrt();
        assert_close(&format!("{} on the CPU", c.name()), &got, &want, 1e-4, atol);
    };
    let mut cases = Vec::new();
    // (301, 203, 97): 5.9M multiply-adds, past the threshold from which a product runs threaded.
    for &s in SHAPES
        .iter()
        .chain(&[(130, 257, 71), (1, 512, 300), (301, 203, 97)])
    {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let (ash, bsh) = operand_shapes(s, ta, tb);
            cases.push(Case::plain(&ash, &bsh, ta, tb));
        }
    }
    cases.extend(batch_cases());
    cases.extend(epilogue_cases());
    // An epilogue (GELU, bias, residual) over more than 2 × 2^17 outputs of one matrix, odd rows:
    // split by rows across threads.
    cases.push(Case {
        ash: vec![2063, 24],
        bsh: vec![24, 131],
        trans_a: false,
        trans_b: false,
        bias: true,
        act: Act::Gelu,
        res: Some(vec![2063, 131]),
        alpha: 1.0,
    });
    cases.push(Case::plain(&[0, 4], &[4, 3], false, false));
    cases.push(Case::plain(&[3, 0], &[0, 2], false, false));
    for c in &cases {
        run(c, &mut rng);
    }
    // Bad shapes are the GPU path's typed errors.
    let z = [0.0f32; 64];
    let m = |shape: &'static [usize]| HostMatrix {
        data: &z[..shape.iter().product::<usize>()],
        shape,
    };
    let e = cpu::matmul(m(&[2, 3]), m(&[4, 2]), &HostMatmul::default()).unwrap_err();
    assert!(
        matches!(&e, Error::Shape { op: "matmul", detail } if detail.contains("inner dimensions")),
        "{e}"
    );
    let bias = [0.0f32; 3];
    let opts = HostMatmul {
        bias: Some(&bias),
        ..Default::default()
    };
    let e = cpu::matmul(m(&[2, 3]), m(&[3, 2]), &opts).unwrap_err();
    assert!(
        matches!(&e, Error::Shape { detail, .. } if detail.contains("bias")),
        "{e}"
    );
    let e = cpu::matmul(
        HostMatrix {
            data: &z[..5],
            shape: &[2, 3],
        },
        m(&[3, 2]),
        &HostMatmul::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Shape { detail, .. } if detail.contains("holds 5 values")),
        "{e}"
    );
}

/// A linear layer with its weight packed once for the CPU GEMM (what `nn::Linear` does on the CPU
/// backend) against the f64 reference: odd sizes, sizes past the kernel's panels and blocks (the
/// threaded path), every activation, with and without a bias; a 1-D input; none on a GPU; typed
/// errors for a mismatched input.
#[test]
fn cpu_linear_with_a_packed_weight_matches_the_reference() {
    use diffscope::ops::matmul::{linear_packed, linear_packed_residual, PackedWeight};
    let c = crate::common::cpu();
    let mut rng = Rng::new(41);
    // (rows, in, out)
    for &(rows, inf, outf) in &[
        (1, 1, 1),
        (7, 20, 13),
        (33, 129, 31),
        (768, 128, 128),
        (300, 257, 530),
    ] {
        for act in [Act::None, Act::Relu, Act::Silu, Act::Gelu] {
            for with_bias in [false, true] {
                let x = rng.vec(rows * inf, -1.0, 1.0);
                let w = rng.vec(outf * inf, -1.0, 1.0);
                let bias = rng.vec(outf, -1.0, 1.0);
                let tx = Tensor::from_f32(&c, &[rows, inf], &x).unwrap();
                let tw = Tensor::from_f32(&c, &[outf, inf], &w).unwrap();
                let tb = Tensor::from_f32(&c, &[outf], &bias).unwrap();
                let packed = PackedWeight::new(&tw).unwrap().expect("packed on the CPU");
                let y = linear_packed(&tx, &tw, &packed, with_bias.then_some(&tb), act).unwrap();
                assert_eq!(y.shape(), &[rows, outf]);
                // The same plus a residual, added after the activation.
                let res = rng.vec(rows * outf, -1.0, 1.0);
                let tr = Tensor::from_f32(&c, &[rows, outf], &res).unwrap();
                let b = with_bias.then_some(&tb);
                let yr = linear_packed_residual(&tx, &tw, &packed, b, act, Some(&tr)).unwrap();
                let want: Vec<f32> = (0..rows * outf)
                    .map(|i| {
                        let (r, o) = (i / outf, i % outf);
                        let dot: f64 = (0..inf)
                            .map(|j| x[r * inf + j] as f64 * w[o * inf + j] as f64)
                            .sum();
                        let b = if with_bias { bias[o] as f64 } else { 0.0 };
                        cpu_act(act, dot + b) as f32
                    })
                    .collect();
                let what = format!("packed linear {rows}×{inf}→{outf} {act:?} bias {with_bias}");
                assert_close(&what, &y.to_f32().unwrap(), &want, 1e-4, 1e-4);
                let want_r: Vec<f32> = want.iter().zip(&res).map(|(w, r)| w + r).collect();
                assert_close(
                    &(what + " + residual"),
                    &yr.to_f32().unwrap(),
                    &want_r,
                    1e-4,
                    1e-4,
                );
            }
        }
    }
    let tw = Tensor::from_f32(&c, &[3, 4], &[0.5; 12]).unwrap();
    let packed = PackedWeight::new(&tw).unwrap().unwrap();
    let x1 = Tensor::from_f32(&c, &[4], &[1.0; 4]).unwrap();
    let y1 = linear_packed(&x1, &tw, &packed, None, Act::None).unwrap();
    assert_eq!(y1.shape(), &[3]);
    assert_eq!(y1.to_f32().unwrap(), vec![2.0; 3]);
    let bad = Tensor::from_f32(&c, &[2, 5], &[0.0; 10]).unwrap();
    assert!(matches!(
        linear_packed(&bad, &tw, &packed, None, Act::None),
        Err(Error::Shape { op: "linear", .. })
    ));
    let wrong = Tensor::from_f32(&c, &[3], &[0.0; 3]).unwrap();
    assert!(matches!(
        linear_packed_residual(
            &x1,
            &tw,
            &packed,
            None,
            Act::None,
            Some(&wrong.reshape(&[1, 3]).unwrap())
        ),
        Err(Error::Shape { op: "linear", .. })
    ));
    let g = gpu();
    let tg = Tensor::from_f32(&g, &[3, 4], &[0.5; 12]).unwrap();
    assert!(PackedWeight::new(&tg).unwrap().is_none());
}
