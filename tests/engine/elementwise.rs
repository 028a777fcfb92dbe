use crate::common::{assert_close, on_each_backend, Rng, ODD_SIZES};
use diffscope::ops::elementwise::{self as ew, Binary, Unary};
use diffscope::Device;
use diffscope::Tensor;

fn erf(x: f64) -> f64 {
    // Reference erf in f64 by its Maclaurin series / continued fraction is overkill here; the series
    // converges fast for |x| < 3 and erf is ±1 to f32 precision beyond 4.
    if x.abs() > 4.0 {
        return x.signum();
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

fn cpu_unary(op: Unary, x: f32) -> f32 {
    let x = x as f64;
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    (match op {
        Unary::Identity => x,
        Unary::Silu => x * sig(x),
        Unary::Gelu => 0.5 * x * (1.0 + erf(x / 2f64.sqrt())),
        Unary::GeluTanh => {
            0.5 * x * (1.0 + (0.7978845608028654 * (x + 0.044715 * x * x * x)).tanh())
        }
        Unary::Relu => x.max(0.0),
        Unary::Tanh => x.tanh(),
        Unary::Sigmoid => sig(x),
        Unary::Exp => x.exp(),
    }) as f32
}

#[test]
fn unary_ops_match_cpu() {
    on_each_backend(unary_ops_match_cpu_on);
}

fn unary_ops_match_cpu_on(g: Device) {
    let mut rng = Rng::new(1);
    for op in [
        Unary::Identity,
        Unary::Silu,
        Unary::Gelu,
        Unary::GeluTanh,
        Unary::Relu,
        Unary::Tanh,
        Unary::Sigmoid,
        Unary::Exp,
    ] {
        for &n in ODD_SIZES {
            let x = rng.vec(n, -6.0, 6.0);
            let t = Tensor::from_f32(&g, &[n], &x).unwrap();
            let got = ew::unary_affine(&t, op, 1.5, -0.25)
                .unwrap()
                .to_f32()
                .unwrap();
            let want: Vec<f32> = x.iter().map(|&v| cpu_unary(op, 1.5 * v - 0.25)).collect();
            assert_close(&format!("{op:?} n={n}"), &got, &want, 1e-5, 1e-6);
        }
    }
}

/// numpy-style reference broadcast.
fn cpu_broadcast(
    a: &[f32],
    ash: &[usize],
    b: &[f32],
    bsh: &[usize],
    f: impl Fn(f32, f32) -> f32,
) -> (Vec<f32>, Vec<usize>) {
    let rank = ash.len().max(bsh.len());
    let pad = |s: &[usize]| {
        let mut v = vec![1; rank - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (pa, pb) = (pad(ash), pad(bsh));
    let out: Vec<usize> = (0..rank).map(|i| pa[i].max(pb[i])).collect();
    let n: usize = out.iter().product();
    let idx = |s: &[usize], coord: &[usize]| {
        let mut o = 0;
        for i in 0..rank {
            o = o * s[i] + if s[i] == 1 { 0 } else { coord[i] };
        }
        o
    };
    let mut res = Vec::with_capacity(n);
    let mut coord = vec![0; rank];
    for lin in 0..n {
        let mut r = lin;
        for i in (0..rank).rev() {
            coord[i] = r % out[i];
            r /= out[i];
        }
        res.push(f(a[idx(&pa, &coord)], b[idx(&pb, &coord)]));
    }
    (res, out)
}

/// Shapes broadcast against each other: equal, trailing, middle and leading ones, rank 5 against 4.
const BROADCAST_CASES: &[(&[usize], &[usize])] = &[
    (&[1], &[1]),
    (&[7, 13, 29], &[7, 13, 29]),
    (&[7, 13, 29], &[29]),
    (&[7, 1, 29], &[13, 1]),
    (&[3, 5, 7, 9], &[1, 5, 1, 1]),
    (&[255, 257], &[255, 1]),
    (&[2, 3, 4, 5, 6], &[3, 1, 5, 1]),
];

#[test]
fn binary_broadcast_matches_cpu() {
    on_each_backend(binary_broadcast_matches_cpu_on);
}

fn binary_broadcast_matches_cpu_on(g: Device) {
    let mut rng = Rng::new(2);
    for &(ash, bsh) in BROADCAST_CASES {
        let a = rng.vec(ash.iter().product(), -3.0, 3.0);
        let b = rng.vec(bsh.iter().product(), 0.5, 3.0);
        let ta = Tensor::from_f32(&g, ash, &a).unwrap();
        let tb = Tensor::from_f32(&g, bsh, &b).unwrap();
        for op in [
            Binary::Add,
            Binary::Sub,
            Binary::Mul,
            Binary::Div,
            Binary::Max,
        ] {
            let f = move |x: f32, y: f32| match op {
                Binary::Add => x + y,
                Binary::Sub => x - y,
                Binary::Mul => x * y,
                Binary::Div => x / y,
                Binary::Max => x.max(y),
                Binary::Axpby => unreachable!(),
            };
            let (want, shape) = cpu_broadcast(&a, ash, &b, bsh, f);
            let out = ew::binary(&ta, &tb, op).unwrap();
            assert_eq!(out.shape(), &shape[..]);
            assert_close(
                &format!("{op:?} {ash:?}∘{bsh:?}"),
                &out.to_f32().unwrap(),
                &want,
                1e-5,
                1e-6,
            );
        }
        let (want, _) = cpu_broadcast(&a, ash, &b, bsh, |x, y| 0.3 * x - 1.7 * y);
        let got = ew::axpby(0.3, &ta, -1.7, &tb).unwrap().to_f32().unwrap();
        assert_close("axpby", &got, &want, 1e-5, 1e-6);
    }
}

#[test]
fn film_matches_cpu() {
    on_each_backend(film_matches_cpu_on);
}

fn film_matches_cpu_on(g: Device) {
    let mut rng = Rng::new(3);
    let (n, c, hw) = (3, 5, 7 * 9);
    let h = rng.vec(n * c * hw, -2.0, 2.0);
    let s = rng.vec(n * c, -1.0, 1.0);
    let b = rng.vec(n * c, -1.0, 1.0);
    let th = Tensor::from_f32(&g, &[n, c, 7, 9], &h).unwrap();
    let ts = Tensor::from_f32(&g, &[n, c, 1, 1], &s).unwrap();
    let tb = Tensor::from_f32(&g, &[n, c, 1, 1], &b).unwrap();
    for act in [Unary::Identity, Unary::Silu] {
        let got = ew::film(&th, &ts, &tb, act).unwrap().to_f32().unwrap();
        let want: Vec<f32> = (0..h.len())
            .map(|i| cpu_unary(act, (1.0 + s[i / hw]) * h[i] + b[i / hw]))
            .collect();
        assert_close(&format!("film {act:?}"), &got, &want, 1e-5, 1e-6);
    }
}

/// FiLM with a per-element scale and shift (a FiLM-MLP's), large enough that the CPU backend splits
/// it across threads (2 × its split threshold and an odd tail), and small.
#[test]
fn film_per_element_matches_cpu() {
    on_each_backend(|g| {
        let mut rng = Rng::new(9);
        for (rows, d) in [(2053, 129), (3, 5)] {
            let n = rows * d;
            let (h, s, b) = (
                rng.vec(n, -2.0, 2.0),
                rng.vec(n, -1.0, 1.0),
                rng.vec(n, -1.0, 1.0),
            );
            let t = |v: &[f32]| Tensor::from_f32(&g, &[rows, d], v).unwrap();
            for act in [Unary::Identity, Unary::Silu, Unary::Gelu] {
                let got = ew::film(&t(&h), &t(&s), &t(&b), act)
                    .unwrap()
                    .to_f32()
                    .unwrap();
                let want: Vec<f32> = (0..n)
                    .map(|i| cpu_unary(act, (1.0 + s[i]) * h[i] + b[i]))
                    .collect();
                assert_close(&format!("film {rows}×{d} {act:?}"), &got, &want, 1e-5, 1e-6);
            }
        }
    });
}

#[test]
fn shape_and_dtype_errors_are_typed() {
    on_each_backend(shape_and_dtype_errors_are_typed_on);
}

fn shape_and_dtype_errors_are_typed_on(g: Device) {
    let a = Tensor::from_f32(&g, &[2, 3], &[0.0; 6]).unwrap();
    let b = Tensor::from_f32(&g, &[4], &[0.0; 4]).unwrap();
    let e = ew::add(&a, &b).unwrap_err().to_string();
    assert!(e.contains("cannot broadcast"), "{e}");
    let u = Tensor::from_u32(&g, &[6], &[0; 6]).unwrap();
    let e = ew::silu(&u).unwrap_err().to_string();
    assert!(e.contains("expected f32"), "{e}");
    let e = Tensor::from_f32(&g, &[2, 2], &[0.0; 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds 4 elements"), "{e}");
}

/// The CPU backend's elementwise ops against the same references, tolerances and broadcast cases as
/// the GPU kernels, and the same typed errors.
#[test]
fn cpu_elementwise_matches_the_references() {
    use diffscope::ops::elementwise::cpu;
    let mut rng = Rng::new(24);
    for op in [
        Unary::Identity,
        Unary::Silu,
        Unary::Gelu,
        Unary::GeluTanh,
        Unary::Relu,
        Unary::Tanh,
        Unary::Sigmoid,
        Unary::Exp,
    ] {
        for &n in ODD_SIZES {
            let x = rng.vec(n, -6.0, 6.0);
            let got = cpu::unary_affine(&x, op, 1.5, -0.25);
            let want: Vec<f32> = x.iter().map(|&v| cpu_unary(op, 1.5 * v - 0.25)).collect();
            assert_close(&format!("cpu {op:?} n={n}"), &got, &want, 1e-5, 1e-6);
        }
    }
    for &(ash, bsh) in BROADCAST_CASES {
        let a = rng.vec(ash.iter().product(), -3.0, 3.0);
        let b = rng.vec(bsh.iter().product(), 0.5, 3.0);
        for op in [
            Binary::Add,
            Binary::Sub,
            Binary::Mul,
            Binary::Div,
            Binary::Max,
            Binary::Axpby,
        ] {
            let f = move |x: f32, y: f32| match op {
                Binary::Add => x + y,
                Binary::Sub => x - y,
                Binary::Mul => x * y,
                Binary::Div => x / y,
                Binary::Max => x.max(y),
                Binary::Axpby => 0.3 * x - 1.7 * y,
            };
            let (want, shape) = cpu_broadcast(&a, ash, &b, bsh, f);
            let (got, got_shape) = cpu::binary(&a, ash, &b, bsh, op, 0.3, -1.7).unwrap();
            assert_eq!(got_shape, shape);
            assert_close(
                &format!("cpu {op:?} {ash:?}∘{bsh:?}"),
                &got,
                &want,
                1e-5,
                1e-6,
            );
        }
    }
    let (n, c, hw) = (3, 5, 7 * 9);
    let h = rng.vec(n * c * hw, -2.0, 2.0);
    let s = rng.vec(n * c, -1.0, 1.0);
    let b = rng.vec(n * c, -1.0, 1.0);
    for act in [Unary::Identity, Unary::Silu] {
        let got = cpu::film(&h, &[n, c, 7, 9], &s, &[n, c, 1, 1], &b, &[n, c, 1, 1], act).unwrap();
        let want: Vec<f32> = (0..h.len())
            .map(|i| cpu_unary(act, (1.0 + s[i / hw]) * h[i] + b[i / hw]))
            .collect();
        assert_close(&format!("cpu film {act:?}"), &got, &want, 1e-5, 1e-6);
    }
    let z = [0.0f32; 6];
    assert!(matches!(
        cpu::binary(&z, &[2, 3], &z[..4], &[4], Binary::Add, 1.0, 1.0),
        Err(diffscope::Error::Shape { op: "binary", .. })
    ));
    assert!(matches!(
        cpu::binary(&z[..5], &[2, 3], &z, &[2, 3], Binary::Add, 1.0, 1.0),
        Err(diffscope::Error::Shape { op: "binary", .. })
    ));
    assert!(matches!(
        cpu::film(&z, &[2, 3], &z, &[6, 1], &z, &[2, 3], Unary::Identity),
        Err(diffscope::Error::Shape { op: "film", .. })
    ));
}
