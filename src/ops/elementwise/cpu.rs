//! The elementwise ops on host memory, for the CPU backend: the same activations (GELU through the
//! shaders' erf approximation), numpy broadcasting with the same shape checks and typed errors, and
//! FiLM.

use super::{check_film, Binary, Unary};
use multiversion::multiversion;

use crate::cpu::math;
use crate::error::Result;
use crate::ops::check_host_len;
use crate::ops::matmul::{cpu::activate, Act};
use crate::ops::{broadcast_shape, broadcast_strides, MAX_RANK};

/// One activation, as the shaders compute it.
pub fn apply(op: Unary, x: f32) -> f32 {
    match op {
        Unary::Identity => x,
        Unary::Silu => activate(Act::Silu, x),
        Unary::Gelu => activate(Act::Gelu, x),
        Unary::GeluTanh => 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh()),
        Unary::Relu => x.max(0.0),
        Unary::Tanh => x.tanh(),
        Unary::Sigmoid => 1.0 / (1.0 + math::exp(-x)),
        Unary::Exp => math::exp(x),
    }
}

/// `f(alpha·x + beta)`.
pub fn unary_affine(x: &[f32], op: Unary, alpha: f32, beta: f32) -> Vec<f32> {
    // One loop per activation (the match hoisted out), so the affine part vectorises.
    fn run(x: &[f32], alpha: f32, beta: f32, f: impl Fn(f32) -> f32) -> Vec<f32> {
        x.iter().map(|&v| f(alpha * v + beta)).collect()
    }
    match op {
        Unary::Identity => run(x, alpha, beta, |v| v),
        Unary::Relu => run(x, alpha, beta, |v| v.max(0.0)),
        Unary::Silu => run(x, alpha, beta, |v| activate(Act::Silu, v)),
        _ => run(x, alpha, beta, |v| apply(op, v)),
    }
}

/// How one broadcast input is read along a run of output elements.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Read {
    /// Its own contiguous elements, one per output element.
    Slice,
    /// One value for the whole run (broadcast).
    Repeat,
}

/// The output of `shape` as runs of `len` contiguous elements, each input read along a run as a
/// slice or one repeated value: the trailing dimensions over which every input is either contiguous
/// or broadcast, merged (a `[B, C]` row plus a `[C]` bias is one run per row; equal shapes are one
/// run). The outer dimensions are walked like an odometer.
struct Runs {
    len: usize,
    reads: Vec<Read>,
    /// The outer dimensions (those before the runs) and each input's element strides along them.
    outer: Vec<usize>,
    strides: Vec<[u32; MAX_RANK]>,
}

impl Runs {
    fn new(shape: &[usize], inputs: &[&[usize]]) -> Runs {
        let strides: Vec<[u32; MAX_RANK]> =
            inputs.iter().map(|s| broadcast_strides(s, shape)).collect();
        let mut reads: Vec<Option<Read>> = vec![None; inputs.len()];
        let (mut len, mut split) = (1usize, shape.len());
        'merge: while split > 0 {
            let d = split - 1;
            if shape[d] != 1 {
                let mut next = reads.clone();
                for (r, s) in next.iter_mut().zip(&strides) {
                    let want = match s[d] as usize {
                        0 => Read::Repeat,
                        st if st == len => Read::Slice,
                        _ => break 'merge,
                    };
                    if r.is_some_and(|r| r != want) {
                        break 'merge;
                    }
                    *r = Some(want);
                }
                reads = next;
                len *= shape[d];
            }
            split = d;
        }
        Runs {
            len,
            reads: reads
                .into_iter()
                .map(|r| r.unwrap_or(Read::Slice))
                .collect(),
            outer: shape[..split].to_vec(),
            strides,
        }
    }

    /// `f(offsets)` for every run in order, with each input's element offset at its start.
    fn for_each(&self, mut f: impl FnMut(&[usize])) {
        let runs: usize = self.outer.iter().product();
        let mut coord = [0usize; MAX_RANK];
        let mut offs = vec![0usize; self.strides.len()];
        for _ in 0..runs {
            f(&offs);
            for d in (0..self.outer.len()).rev() {
                coord[d] += 1;
                for (o, s) in offs.iter_mut().zip(&self.strides) {
                    *o += s[d] as usize;
                }
                if coord[d] < self.outer[d] {
                    break;
                }
                for (o, s) in offs.iter_mut().zip(&self.strides) {
                    *o -= s[d] as usize * self.outer[d];
                }
                coord[d] = 0;
            }
        }
    }
}

/// `a ∘ b` with numpy broadcasting (`alpha·a + beta·b` for [`Binary::Axpby`]); returns the output
/// and its shape.
pub fn binary(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    op: Binary,
    alpha: f32,
    beta: f32,
) -> Result<(Vec<f32>, Vec<usize>)> {
    check_host_len("binary", "a", a, a_shape)?;
    check_host_len("binary", "b", b, b_shape)?;
    let shape = broadcast_shape("binary", a_shape, b_shape)?;
    let runs = Runs::new(&shape, &[a_shape, b_shape]);
    let out = match op {
        Binary::Add => broadcast2(a, b, &runs, |x, y| x + y),
        Binary::Sub => broadcast2(a, b, &runs, |x, y| x - y),
        Binary::Mul => broadcast2(a, b, &runs, |x, y| x * y),
        Binary::Div => broadcast2(a, b, &runs, |x, y| x / y),
        Binary::Axpby => broadcast2(a, b, &runs, |x, y| alpha * x + beta * y),
        Binary::Max => broadcast2(a, b, &runs, |x, y| x.max(y)),
    };
    Ok((out, shape))
}

/// `f(a, b)` over broadcast runs; each combination of slice and repeated reads is its own loop, so
/// the common ones (equal shapes, a row plus a bias) vectorise.
fn broadcast2(a: &[f32], b: &[f32], runs: &Runs, f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
    let len = runs.len;
    let mut out = Vec::with_capacity(len * runs.outer.iter().product::<usize>());
    if len == 0 {
        return out;
    }
    runs.for_each(|o| {
        let (sa, sb) = (&a[o[0]..], &b[o[1]..]);
        match (runs.reads[0], runs.reads[1]) {
            (Read::Slice, Read::Slice) => {
                out.extend(sa[..len].iter().zip(&sb[..len]).map(|(&x, &y)| f(x, y)))
            }
            (Read::Slice, Read::Repeat) => out.extend(sa[..len].iter().map(|&x| f(x, sb[0]))),
            (Read::Repeat, Read::Slice) => out.extend(sb[..len].iter().map(|&y| f(sa[0], y))),
            (Read::Repeat, Read::Repeat) => out.extend(std::iter::repeat_n(f(sa[0], sb[0]), len)),
        }
    });
    out
}

/// FiLM over a run where h, scale and shift are all per element (a FiLM-MLP's per-sample
/// conditioning: the common case), compiled for the widest vector unit: the activation is matched
/// here, so each loop's closure is defined — and vectorised — inside this function's clone.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn film_slices(out: &mut [f32], h: &[f32], g: &[f32], s: &[f32], act: Unary) {
    let lanes = out.iter_mut().zip(h).zip(g).zip(s);
    match act {
        Unary::Identity => lanes.for_each(|(((o, &x), &g), &s)| *o = (1.0 + g) * x + s),
        Unary::Silu => {
            lanes.for_each(|(((o, &x), &g), &s)| *o = activate(Act::Silu, (1.0 + g) * x + s))
        }
        _ => lanes.for_each(|(((o, &x), &g), &s)| *o = apply(act, (1.0 + g) * x + s)),
    }
}

/// [`film_slices`] over whole tensors of one shape, split across the pool's threads (the GEMMs
/// around a FiLM-MLP's FiLM use every core; this pass alone was ~30 % of a 4,096-point step when
/// it ran on one).
fn film_same_shape(h: &[f32], g: &[f32], s: &[f32], act: Unary) -> Vec<f32> {
    let mut out = vec![0.0; h.len()];
    crate::cpu::parallel::for_each_chunk(&mut out, 1, |first, chunk| {
        let r = first..first + chunk.len();
        film_slices(chunk, &h[r.clone()], &g[r.clone()], &s[r], act);
    });
    out
}

/// FiLM `act((1 + scale)·h + shift)`; `scale` and `shift` broadcast to `h`'s shape.
pub fn film(
    h: &[f32],
    h_shape: &[usize],
    scale: &[f32],
    scale_shape: &[usize],
    shift: &[f32],
    shift_shape: &[usize],
    act: Unary,
) -> Result<Vec<f32>> {
    check_host_len("film", "h", h, h_shape)?;
    check_host_len("film", "scale", scale, scale_shape)?;
    check_host_len("film", "shift", shift, shift_shape)?;
    check_film(h_shape, scale_shape, shift_shape)?;
    if scale_shape == h_shape && shift_shape == h_shape {
        return Ok(film_same_shape(h, scale, shift, act));
    }
    let runs = Runs::new(h_shape, &[h_shape, scale_shape, shift_shape]);
    Ok(match act {
        Unary::Identity => film_runs(h, scale, shift, &runs, (act, |v| v)),
        Unary::Silu => film_runs(h, scale, shift, &runs, (act, |v| activate(Act::Silu, v))),
        _ => film_runs(h, scale, shift, &runs, (act, |v| apply(act, v))),
    })
}

fn film_runs(
    h: &[f32],
    scale: &[f32],
    shift: &[f32],
    runs: &Runs,
    (kind, act): (Unary, impl Fn(f32) -> f32),
) -> Vec<f32> {
    let len = runs.len;
    let mut out = Vec::with_capacity(h.len());
    if len == 0 {
        return out;
    }
    runs.for_each(|o| {
        let hs = &h[o[0]..][..len];
        let at = |x: &[f32], read: Read, i: usize| match read {
            Read::Slice => x[i],
            Read::Repeat => x[0],
        };
        let (sc, sh) = (&scale[o[1]..], &shift[o[2]..]);
        match (runs.reads[1], runs.reads[2]) {
            // A per-sample scale and shift over a row of features, or per feature over samples.
            (Read::Repeat, Read::Repeat) => {
                let (g, s) = (1.0 + sc[0], sh[0]);
                out.extend(hs.iter().map(|&x| act(g * x + s)));
            }
            (Read::Slice, Read::Slice) => {
                let at = out.len();
                out.resize(at + len, 0.0);
                film_slices(&mut out[at..], hs, &sc[..len], &sh[..len], kind)
            }
            (rs, rt) => out.extend(
                hs.iter()
                    .enumerate()
                    .map(|(i, &x)| act((1.0 + at(sc, rs, i)) * x + at(sh, rt, i))),
            ),
        }
    });
    out
}
