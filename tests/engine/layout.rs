//! concat, permute and slice against CPU index arithmetic. They copy bits, so results must be exact.

use crate::common::{on_each_backend, Rng};
use diffscope::ops::layout;
use diffscope::Device;
use diffscope::{Error, Tensor};

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Row-major coordinates of every element of `shape`, in order.
fn coords(shape: &[usize]) -> impl Iterator<Item = Vec<usize>> + '_ {
    let n: usize = shape.iter().product();
    (0..n).map(move |mut lin| {
        let mut c = vec![0; shape.len()];
        for i in (0..shape.len()).rev() {
            c[i] = lin % shape[i];
            lin /= shape[i];
        }
        c
    })
}

fn at(data: &[f32], shape: &[usize], c: &[usize]) -> f32 {
    data[c
        .iter()
        .zip(strides(shape))
        .map(|(a, s)| a * s)
        .sum::<usize>()]
}

/// (shape of the first input, dim, sizes along dim): UNet skip concat on channels, first and last
/// dimensions, and six inputs (two dispatches).
const CONCAT_CASES: &[(&[usize], usize, &[usize])] = &[
    (&[2, 3, 7, 5], 1, &[3, 13]),
    (&[7, 29], 0, &[7, 1, 255]),
    (&[3, 13, 2], 2, &[2, 1, 7]),
    (&[1, 5, 3], 1, &[5, 1, 2, 7, 3, 4]),
    (&[257], 0, &[257, 13]),
];

/// (shape, permutation): attention heads, NCHW → NHWC, a transpose, rank 1, rank 6.
const PERMUTE_CASES: &[(&[usize], &[usize])] = &[
    // [B, L, H, D] → [B, H, L, D]
    (&[2, 13, 3, 7], &[0, 2, 1, 3]),
    // NCHW → NHWC
    (&[1, 5, 7, 9], &[0, 2, 3, 1]),
    (&[29, 257], &[1, 0]),
    (&[7], &[0]),
    (&[2, 3, 1, 5, 2, 3], &[5, 3, 0, 4, 2, 1]),
];

/// (shape, dim, start, len): inner, first and last dimensions, the whole of one, an empty slice.
const SLICE_CASES: &[(&[usize], usize, usize, usize)] = &[
    (&[2, 16, 7, 5], 1, 3, 13),
    (&[257, 3], 0, 255, 2),
    (&[7, 29], 1, 0, 29),
    (&[3, 13, 7], 2, 6, 1),
    (&[5, 4], 0, 2, 0),
];

#[test]
fn concat_matches_cpu() {
    on_each_backend(concat_matches_cpu_on);
}

fn concat_matches_cpu_on(g: Device) {
    let mut rng = Rng::new(51);
    for &(base, dim, sizes) in CONCAT_CASES {
        let mut datas = Vec::new();
        let mut shapes = Vec::new();
        for &s in sizes {
            let mut shape = base.to_vec();
            shape[dim] = s;
            datas.push(rng.vec(shape.iter().product(), -1.0, 1.0));
            shapes.push(shape);
        }
        let ts: Vec<Tensor> = datas
            .iter()
            .zip(&shapes)
            .map(|(d, s)| Tensor::from_f32(&g, s, d).unwrap())
            .collect();
        let refs: Vec<&Tensor> = ts.iter().collect();
        let out = layout::concat(&refs, dim).unwrap();
        let mut shape = base.to_vec();
        shape[dim] = sizes.iter().sum();
        assert_eq!(out.shape(), &shape[..]);
        let want: Vec<f32> = coords(&shape)
            .map(|mut c| {
                let mut k = 0;
                while c[dim] >= sizes[k] {
                    c[dim] -= sizes[k];
                    k += 1;
                }
                at(&datas[k], &shapes[k], &c)
            })
            .collect();
        assert_eq!(
            out.to_f32().unwrap(),
            want,
            "concat {base:?} dim {dim} {sizes:?}"
        );
    }
}

#[test]
fn permute_matches_cpu() {
    on_each_backend(permute_matches_cpu_on);
}

fn permute_matches_cpu_on(g: Device) {
    let mut rng = Rng::new(52);
    for &(shape, perm) in PERMUTE_CASES {
        let x = rng.vec(shape.iter().product(), -1.0, 1.0);
        let t = Tensor::from_f32(&g, shape, &x).unwrap();
        let out = layout::permute(&t, perm).unwrap();
        let oshape: Vec<usize> = perm.iter().map(|&d| shape[d]).collect();
        assert_eq!(out.shape(), &oshape[..]);
        let want: Vec<f32> = coords(&oshape)
            .map(|oc| {
                let mut ic = vec![0; shape.len()];
                for (i, &d) in perm.iter().enumerate() {
                    ic[d] = oc[i];
                }
                at(&x, shape, &ic)
            })
            .collect();
        assert_eq!(out.to_f32().unwrap(), want, "permute {shape:?} {perm:?}");
    }
    // u32 data moves unchanged.
    let u = Tensor::from_u32(&g, &[2, 3], &[0, 1, 2, 3, 4, 5]).unwrap();
    let out = layout::permute(&u, &[1, 0]).unwrap();
    assert_eq!(out.to_u32().unwrap(), vec![0, 3, 1, 4, 2, 5]);
}

#[test]
fn slice_matches_cpu() {
    on_each_backend(slice_matches_cpu_on);
}

fn slice_matches_cpu_on(g: Device) {
    let mut rng = Rng::new(53);
    for &(shape, dim, start, len) in SLICE_CASES {
        let x = rng.vec(shape.iter().product(), -1.0, 1.0);
        let t = Tensor::from_f32(&g, shape, &x).unwrap();
        let out = layout::slice(&t, dim, start, len).unwrap();
        let mut oshape = shape.to_vec();
        oshape[dim] = len;
        assert_eq!(out.shape(), &oshape[..]);
        let want: Vec<f32> = coords(&oshape)
            .map(|mut c| {
                c[dim] += start;
                at(&x, shape, &c)
            })
            .collect();
        if len > 0 {
            assert_eq!(
                out.to_f32().unwrap(),
                want,
                "slice {shape:?} dim {dim} {start}+{len}"
            );
        }
    }
}

#[test]
fn layout_errors_are_typed() {
    on_each_backend(layout_errors_are_typed_on);
}

fn layout_errors_are_typed_on(g: Device) {
    let a = Tensor::from_f32(&g, &[2, 3], &[0.0; 6]).unwrap();
    let b = Tensor::from_f32(&g, &[3, 3], &[0.0; 9]).unwrap();
    let u = Tensor::from_u32(&g, &[2, 3], &[0; 6]).unwrap();
    assert!(matches!(
        layout::concat(&[&a, &b], 1),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        layout::concat(&[&a, &b], 2),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        layout::concat(&[&a, &u], 0),
        Err(Error::DType { .. })
    ));
    assert!(matches!(layout::concat(&[], 0), Err(Error::Invalid(_))));
    assert!(matches!(
        layout::permute(&a, &[0, 0]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        layout::permute(&a, &[1]),
        Err(Error::Shape { .. })
    ));
    let r7 = Tensor::from_f32(&g, &[1; 7], &[0.0]).unwrap();
    assert!(matches!(
        layout::permute(&r7, &[0, 1, 2, 3, 4, 5, 6]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        layout::slice(&a, 1, 2, 2),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        layout::slice(&a, 2, 0, 1),
        Err(Error::Shape { .. })
    ));
}

/// The CPU backend's concat, permute and slice against the same cases and expectations as the GPU
/// kernels (exact: they only move data), on f32 and u32, and the same typed errors.
#[test]
fn cpu_layout_matches_the_references() {
    use diffscope::ops::layout::cpu;
    let mut rng = Rng::new(54);
    for &(base, dim, sizes) in CONCAT_CASES {
        let shapes: Vec<Vec<usize>> = sizes
            .iter()
            .map(|&s| {
                let mut shape = base.to_vec();
                shape[dim] = s;
                shape
            })
            .collect();
        let datas: Vec<Vec<f32>> = shapes
            .iter()
            .map(|s| rng.vec(s.iter().product(), -1.0, 1.0))
            .collect();
        let parts: Vec<(&[f32], &[usize])> = datas
            .iter()
            .zip(&shapes)
            .map(|(d, s)| (&d[..], &s[..]))
            .collect();
        let (got, shape) = cpu::concat(&parts, dim).unwrap();
        let want: Vec<f32> = coords(&shape)
            .map(|mut c| {
                let mut k = 0;
                while c[dim] >= sizes[k] {
                    c[dim] -= sizes[k];
                    k += 1;
                }
                at(&datas[k], &shapes[k], &c)
            })
            .collect();
        assert_eq!(got, want, "cpu concat {base:?} dim {dim} {sizes:?}");
    }
    for &(shape, perm) in PERMUTE_CASES {
        let x = rng.vec(shape.iter().product(), -1.0, 1.0);
        let (got, oshape) = cpu::permute(&x, shape, perm).unwrap();
        let want: Vec<f32> = coords(&oshape)
            .map(|oc| {
                let mut ic = vec![0; shape.len()];
                for (i, &d) in perm.iter().enumerate() {
                    ic[d] = oc[i];
                }
                at(&x, shape, &ic)
            })
            .collect();
        assert_eq!(got, want, "cpu permute {shape:?} {perm:?}");
    }
    let (u, _) = cpu::permute(&[0u32, 1, 2, 3, 4, 5], &[2, 3], &[1, 0]).unwrap();
    assert_eq!(u, vec![0, 3, 1, 4, 2, 5]);
    for &(shape, dim, start, len) in SLICE_CASES {
        let x = rng.vec(shape.iter().product(), -1.0, 1.0);
        let (got, oshape) = cpu::slice(&x, shape, dim, start, len).unwrap();
        let want: Vec<f32> = coords(&oshape)
            .map(|mut c| {
                c[dim] += start;
                at(&x, shape, &c)
            })
            .collect();
        assert_eq!(got, want, "cpu slice {shape:?} dim {dim} {start}+{len}");
    }
    let z = [0.0f32; 12];
    assert!(matches!(
        cpu::permute(&z, &[3, 4], &[0, 0]),
        Err(Error::Shape { op: "permute", .. })
    ));
    assert!(matches!(
        cpu::slice(&z, &[3, 4], 1, 3, 2),
        Err(Error::Shape { op: "slice", .. })
    ));
    assert!(matches!(
        cpu::concat(&[(&z[..], &[3, 4][..]), (&z[..6], &[2, 3][..])], 0),
        Err(Error::Shape { op: "concat", .. })
    ));
    assert!(matches!(cpu::concat::<f32>(&[], 0), Err(Error::Invalid(_))));
}
