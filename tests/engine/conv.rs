//! conv2d and nearest 2× upsampling against direct CPU loops. conv2d is a reduction: `assert_close`
//! with rtol 1e-4, atol 1e-5. Upsampling is a copy and must be exact.

use crate::common::{assert_close, on_each_backend, Rng};
use diffscope::ops::conv::{self, ConvKernel, Padding};
use diffscope::Device;
use diffscope::{Error, Tensor};

/// Direct convolution in f64: (x, [n, cin, h, w]), (weight, [cout, kh, kw]).
fn cpu_conv2d(
    x: &[f32],
    [n, cin, h, w]: [usize; 4],
    wt: &[f32],
    [cout, kh, kw]: [usize; 3],
    bias: Option<&[f32]>,
    stride: usize,
    pad: Padding,
) -> (Vec<f32>, [usize; 4]) {
    let ho = (h + pad.top + pad.bottom - kh) / stride + 1;
    let wo = (w + pad.left + pad.right - kw) / stride + 1;
    let mut out = vec![0f32; n * cout * ho * wo];
    for b in 0..n {
        for co in 0..cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut s = bias.map_or(0.0, |bb| bb[co] as f64);
                    for ci in 0..cin {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * stride + ky) as isize - pad.top as isize;
                                let ix = (ox * stride + kx) as isize - pad.left as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let xv = x[((b * cin + ci) * h + iy as usize) * w + ix as usize];
                                let wv = wt[((co * cin + ci) * kh + ky) * kw + kx];
                                s += xv as f64 * wv as f64;
                            }
                        }
                    }
                    out[((b * cout + co) * ho + oy) * wo + ox] = s as f32;
                }
            }
        }
    }
    (out, [n, cout, ho, wo])
}

struct Case {
    x: [usize; 4],
    w: [usize; 3],
    bias: bool,
    stride: usize,
    pad: Padding,
}

/// The conv2d cases both backends run (see the comments on each).
fn conv_cases() -> Vec<Case> {
    vec![
        // A UNet 3×3 "same" convolution.
        Case {
            x: [2, 3, 7, 9],
            w: [5, 3, 3],
            bias: true,
            stride: 1,
            pad: Padding::same(1),
        },
        // 1×1 shortcut convolution, no bias.
        Case {
            x: [1, 13, 5, 5],
            w: [29, 1, 1],
            bias: false,
            stride: 1,
            pad: Padding::same(0),
        },
        // diffusers Downsample2D(padding=0): pad (0, 1, 0, 1), then stride 2, even and odd sizes.
        Case {
            x: [1, 4, 8, 8],
            w: [4, 3, 3],
            bias: true,
            stride: 2,
            pad: Padding::new(0, 1, 0, 1),
        },
        Case {
            x: [2, 3, 7, 13],
            w: [6, 3, 3],
            bias: true,
            stride: 2,
            pad: Padding::new(0, 1, 0, 1),
        },
        // Downsample2D(padding=1): symmetric padding with stride 2.
        Case {
            x: [1, 5, 9, 9],
            w: [7, 3, 3],
            bias: true,
            stride: 2,
            pad: Padding::same(1),
        },
        // More output channels than one tile, K = 153 (not a multiple of the K step), 169 pixels.
        Case {
            x: [1, 17, 13, 13],
            w: [70, 3, 3],
            bias: true,
            stride: 1,
            pad: Padding::same(1),
        },
        // A UNet-sized layer: several channel and pixel tiles.
        Case {
            x: [1, 32, 16, 16],
            w: [64, 3, 3],
            bias: true,
            stride: 1,
            pad: Padding::same(1),
        },
        // A general kernel shape with lopsided padding, and a 1×1 input.
        Case {
            x: [2, 2, 6, 5],
            w: [3, 2, 5],
            bias: false,
            stride: 1,
            pad: Padding::new(1, 0, 2, 3),
        },
        Case {
            x: [2, 3, 10, 11],
            w: [6, 5, 5],
            bias: true,
            stride: 3,
            pad: Padding::same(2),
        },
        Case {
            x: [1, 5, 6, 7],
            w: [5, 1, 1],
            bias: false,
            stride: 1,
            pad: Padding::same(0),
        },
        Case {
            x: [1, 1, 1, 1],
            w: [1, 1, 1],
            bias: true,
            stride: 1,
            pad: Padding::same(0),
        },
    ]
}

#[test]
fn conv2d_matches_cpu() {
    on_each_backend(conv2d_matches_cpu_on);
}

fn conv2d_matches_cpu_on(g: Device) {
    let mut rng = Rng::new(21);
    for c in conv_cases() {
        let [n, cin, h, w] = c.x;
        let [cout, kh, kw] = c.w;
        let xv = rng.vec(n * cin * h * w, -1.0, 1.0);
        let wv = rng.vec(cout * cin * kh * kw, -0.5, 0.5);
        let bv = rng.vec(cout, -1.0, 1.0);
        let tx = Tensor::from_f32(&g, &c.x, &xv).unwrap();
        let tw = Tensor::from_f32(&g, &[cout, cin, kh, kw], &wv).unwrap();
        let tb = Tensor::from_f32(&g, &[cout], &bv).unwrap();
        let bias = c.bias.then_some(&bv[..]);
        let (want, shape) = cpu_conv2d(&xv, c.x, &wv, c.w, bias, c.stride, c.pad);
        // Both kernels, wherever the direct one applies (its row segment must fit).
        let mut kernels = vec![ConvKernel::Gemm];
        if ConvKernel::pick(kw, c.stride) == ConvKernel::Direct {
            kernels.push(ConvKernel::Direct);
        }
        for k in kernels {
            let got =
                conv::conv2d_with(&tx, &tw, c.bias.then_some(&tb), c.stride, c.pad, k).unwrap();
            assert_eq!(got.shape(), &shape);
            assert_close(
                &format!(
                    "conv2d {k:?} x {:?} w {:?} s{} {:?}",
                    c.x, c.w, c.stride, c.pad
                ),
                &got.to_f32().unwrap(),
                &want,
                1e-4,
                1e-5,
            );
        }
    }
}

#[test]
fn upsample_nearest2x_is_exact() {
    on_each_backend(upsample_nearest2x_is_exact_on);
}

fn upsample_nearest2x_is_exact_on(g: Device) {
    let mut rng = Rng::new(22);
    for shape in [[1, 1, 1, 1], [2, 3, 7, 5], [1, 4, 13, 29]] {
        let [n, c, h, w] = shape;
        let x = rng.vec(n * c * h * w, -1.0, 1.0);
        let t = Tensor::from_f32(&g, &shape, &x).unwrap();
        let out = conv::upsample_nearest2x(&t).unwrap();
        assert_eq!(out.shape(), &[n, c, 2 * h, 2 * w]);
        let mut want = Vec::with_capacity(4 * x.len());
        for nc in 0..n * c {
            for oy in 0..2 * h {
                for ox in 0..2 * w {
                    want.push(x[(nc * h + oy / 2) * w + ox / 2]);
                }
            }
        }
        assert_close("upsample", &out.to_f32().unwrap(), &want, 0.0, 0.0);
    }
}

#[test]
fn conv_errors_are_typed() {
    on_each_backend(conv_errors_are_typed_on);
}

fn conv_errors_are_typed_on(g: Device) {
    let x = Tensor::from_f32(&g, &[1, 3, 4, 4], &[0.0; 48]).unwrap();
    let w = Tensor::from_f32(&g, &[2, 4, 3, 3], &[0.0; 72]).unwrap();
    assert!(matches!(
        conv::conv2d(&x, &w, None, 1, Padding::same(1)),
        Err(Error::Shape { .. })
    ));
    let w = Tensor::from_f32(&g, &[2, 3, 3, 3], &[0.0; 54]).unwrap();
    let b = Tensor::from_f32(&g, &[3], &[0.0; 3]).unwrap();
    assert!(matches!(
        conv::conv2d(&x, &w, Some(&b), 1, Padding::same(1)),
        Err(Error::Shape { .. })
    ));
    let w5 = Tensor::from_f32(&g, &[2, 3, 5, 5], &[0.0; 150]).unwrap();
    assert!(matches!(
        conv::conv2d(&x, &w5, None, 1, Padding::same(0)),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        conv::conv2d(&x, &w, None, 0, Padding::same(1)),
        Err(Error::Invalid(_))
    ));
    let flat = Tensor::from_f32(&g, &[3, 16], &[0.0; 48]).unwrap();
    assert!(matches!(
        conv::upsample_nearest2x(&flat),
        Err(Error::Shape { .. })
    ));
    let u = Tensor::from_u32(&g, &[1, 3, 4, 4], &[0; 48]).unwrap();
    assert!(matches!(
        conv::conv2d(&u, &w, None, 1, Padding::same(1)),
        Err(Error::DType { .. })
    ));
}

/// The CPU backend's conv2d (im2col over the CPU matmul) and upsampling against the same reference,
/// tolerance and cases as the GPU kernels, and the same typed errors.
#[test]
fn cpu_conv_matches_the_reference() {
    // The pool as the backend sizes it, so the threaded paths below run threaded.
    let _cpu = diffscope::Cpu::new(&Default::default());
    let mut rng = Rng::new(25);
    let threaded = [
        // A batch past the threshold that splits images across threads (5.5M multiply-adds),
        // 400 pixels per image: not a multiple of the GEMM's tiles.
        Case {
            x: [4, 16, 20, 20],
            w: [24, 3, 3],
            bias: true,
            stride: 1,
            pad: Padding::same(1),
        },
        // One image whose own product runs threaded (6.6M), stride 2 with asymmetric padding.
        Case {
            x: [1, 32, 47, 49],
            w: [40, 3, 3],
            bias: true,
            stride: 2,
            pad: Padding::new(0, 1, 0, 1),
        },
    ];
    let small = [
        // Kernels larger than the image, reaching past it on every side.
        Case {
            x: [2, 3, 2, 3],
            w: [33, 5, 5],
            bias: true,
            stride: 1,
            pad: Padding::same(2),
        },
        Case {
            x: [3, 2, 1, 2],
            w: [64, 3, 3],
            bias: false,
            stride: 2,
            pad: Padding::same(3),
        },
        // Small images, many of them: several share one band (channels last).
        Case {
            x: [11, 8, 5, 7],
            w: [32, 3, 3],
            bias: true,
            stride: 1,
            pad: Padding::same(1),
        },
    ];
    use conv::cpu::{ConvOrder, BAND_ELEMENTS};
    let orders = [
        None,
        Some(ConvOrder::PatchesRight),
        Some(ConvOrder::ChannelsLast {
            band: BAND_ELEMENTS,
        }),
        // Bands of a few rows: images split across bands, bands across images.
        Some(ConvOrder::ChannelsLast { band: 700 }),
    ];
    for c in conv_cases().into_iter().chain(threaded).chain(small) {
        for order in orders {
            let [n, cin, h, w] = c.x;
            let [cout, kh, kw] = c.w;
            let xv = rng.vec(n * cin * h * w, -1.0, 1.0);
            let wv = rng.vec(cout * cin * kh * kw, -0.5, 0.5);
            let bv = rng.vec(cout, -1.0, 1.0);
            let bias = c.bias.then_some(&bv[..]);
            let (want, shape) = cpu_conv2d(&xv, c.x, &wv, c.w, bias, c.stride, c.pad);
            let (got, got_shape) = conv::cpu::conv2d_via(
                (&xv, &c.x),
                (&wv, &[cout, cin, kh, kw]),
                bias,
                c.stride,
                c.pad,
                order,
            )
            .unwrap();
            assert_eq!(got_shape, shape);
            let what = format!(
                "cpu conv2d x{:?} w{:?} stride {} {:?} {order:?}",
                c.x, c.w, c.stride, c.pad
            );
            assert_close(&what, &got, &want, 1e-4, 1e-5);
        }
    }
    let x: Vec<f32> = (0..2 * 3 * 5 * 7).map(|i| i as f32).collect();
    let (up, shape) = conv::cpu::upsample_nearest2x(&x, &[2, 3, 5, 7]).unwrap();
    assert_eq!(shape, vec![2, 3, 10, 14]);
    for (i, &v) in up.iter().enumerate() {
        let (xo, yo, p) = (i % 14, (i / 14) % 10, i / 140);
        assert_eq!(v, x[p * 35 + (yo / 2) * 7 + xo / 2], "element {i}");
    }
    let z = [0.0f32; 64];
    assert!(matches!(
        conv::cpu::conv2d(
            (&z[..16], &[1, 1, 4, 4]),
            (&z[..18], &[1, 2, 3, 3]),
            None,
            1,
            Padding::same(1)
        ),
        Err(Error::Shape { op: "conv2d", .. })
    ));
    assert!(matches!(
        conv::cpu::conv2d(
            (&z[..16], &[1, 1, 4, 4]),
            (&z[..9], &[1, 1, 3, 3]),
            None,
            0,
            Padding::same(1)
        ),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        conv::cpu::upsample_nearest2x(&z[..4], &[2, 2]),
        Err(Error::Shape { .. })
    ));
}

/// diffusers' `upfirdn2d_native` with the (1, 3, 3, 1) kernel, written from its definition in f64:
/// insert `up − 1` zeros after every pixel, pad (p0 before, p1 after), correlate with the
/// normalised 4 × 4 kernel (× up² when upsampling), keep every `down`-th output.
fn cpu_fir(x: &[f32], shape: [usize; 4], up: usize, down: usize) -> (Vec<f32>, [usize; 4]) {
    let [n, c, h, w] = shape;
    let k1 = [1.0f64, 3.0, 3.0, 1.0];
    let gain = (up * up) as f64 / 64.0;
    let (p0, p1) = if up == 2 { (2usize, 1usize) } else { (1, 1) };
    let (hp, wp) = (h * up + p0 + p1, w * up + p0 + p1);
    let side = |p: usize| if p >= 4 { (p - 4) / down + 1 } else { 0 };
    let (ho, wo) = (side(hp), side(wp));
    let mut out = vec![0f32; n * c * ho * wo];
    for plane in 0..n * c {
        let at = |y: usize, xx: usize| -> f64 {
            // Padded, zero-stuffed coordinates back to the input.
            let (y, xx) = (y as isize - p0 as isize, xx as isize - p0 as isize);
            if y < 0 || xx < 0 || y % up as isize != 0 || xx % up as isize != 0 {
                return 0.0;
            }
            let (iy, ix) = ((y / up as isize) as usize, (xx / up as isize) as usize);
            if iy >= h || ix >= w {
                return 0.0;
            }
            x[plane * h * w + iy * w + ix] as f64
        };
        for oy in 0..ho {
            for ox in 0..wo {
                let mut acc = 0.0;
                for a in 0..4 {
                    for b in 0..4 {
                        acc += k1[a] * k1[b] * gain * at(oy * down + a, ox * down + b);
                    }
                }
                out[(plane * ho + oy) * wo + ox] = acc as f32;
            }
        }
    }
    (out, [n, c, ho, wo])
}

/// FIR resampling against the reference on odd, even, one-pixel and non-square images.
#[test]
fn fir_resampling_matches_the_reference() {
    on_each_backend(fir_resampling_matches_the_reference_on);
}

fn fir_resampling_matches_the_reference_on(g: Device) {
    let mut rng = Rng::new(17);
    for shape in [
        [2, 3, 5, 7],
        [1, 1, 1, 1],
        [1, 2, 8, 6],
        [3, 4, 13, 9],
        [1, 3, 32, 32],
    ] {
        let x = rng.vec(shape.iter().product(), -1.0, 1.0);
        let t = Tensor::from_f32(&g, &shape, &x).unwrap();
        for (dir, up, down) in [(conv::Fir::Up, 2, 1), (conv::Fir::Down, 1, 2)] {
            let got = conv::fir_resample(&t, dir).unwrap();
            let (want, want_shape) = cpu_fir(&x, shape, up, down);
            assert_eq!(got.shape(), want_shape, "{dir:?} {shape:?}");
            let what = format!("{dir:?} {shape:?}");
            assert_close(&what, &got.to_f32().unwrap(), &want, 1e-5, 1e-6);
        }
    }
    let bad = Tensor::from_f32(&g, &[2, 3], &[0.0; 6]).unwrap();
    assert!(matches!(
        conv::fir_resample(&bad, conv::Fir::Up),
        Err(Error::Shape { .. })
    ));
}
