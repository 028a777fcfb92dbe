//! The DiGress graph kernels on the CPU: `shaders/graph.wgsl`'s entry points over the same
//! [`Params`] block. The shader's comments explain each one; loops here run over what its
//! invocations index.

use super::{Params, F_DIAG_NONE, F_EDGE_MODE, F_RESIDUAL, F_ZERO_DIAG, NONE};

fn f32s(w: &[u32]) -> &[f32] {
    bytemuck::cast_slice(w)
}

fn f32s_mut(w: &mut [u32]) -> &mut [f32] {
    bytemuck::cast_slice_mut(w)
}

/// Node ids `[B, n]` and edge ids `[B, n, n]` from the draws: the upper triangle mirrored, padding
/// [`NONE`].
pub(super) fn finalize(
    p: &Params,
    x: &[u32],
    e: &[u32],
    counts: &[u32],
    xo: &mut [u32],
    eo: &mut [u32],
) {
    let n = p.n as usize;
    let diag = if p.flags & F_DIAG_NONE != 0 { NONE } else { 0 };
    for b in 0..p.b as usize {
        let cnt = counts[b] as usize;
        for i in 0..n {
            xo[b * n + i] = if i < cnt { x[b * n + i] } else { NONE };
            for j in 0..n {
                let v = if i >= cnt || j >= cnt {
                    NONE
                } else if i < j {
                    e[(b * n + i) * n + j]
                } else if i > j {
                    e[(b * n + j) * n + i]
                } else {
                    diag
                };
                eo[(b * n + i) * n + j] = v;
            }
        }
    }
}

/// One-hot rows of `k` classes ([`NONE`] all zero), then `f` extra columns.
pub(super) fn onehot(p: &Params, ids: &[u32], extra: &[u32], out: &mut [u32]) {
    let (k, f) = (p.k as usize, p.f as usize);
    let extra = f32s(extra);
    for (r, row) in f32s_mut(out).chunks_exact_mut(k + f).enumerate() {
        let (hot, rest) = row.split_at_mut(k);
        for (c, v) in hot.iter_mut().enumerate() {
            *v = if ids[r] as usize == c { 1.0 } else { 0.0 };
        }
        rest.copy_from_slice(&extra[r * f..(r + 1) * f]);
    }
}

/// NodeEdgeBlock attention for every (b, i, feature c), the softmax over valid j online.
pub(super) fn node_edge_attn(
    p: &Params,
    qkv: &[u32],
    e12: &[u32],
    ymod: &[u32],
    counts: &[u32],
    eo: &mut [u32],
    xo: &mut [u32],
) {
    let (qkv, e12, ymod) = (f32s(qkv), f32s(e12), f32s(ymod));
    let (eo, xo) = (f32s_mut(eo), f32s_mut(xo));
    let (n, dx) = (p.n as usize, p.c as usize);
    let mask = |v: bool| if v { 1.0f32 } else { 0.0 };
    for b in 0..p.b as usize {
        let cnt = counts[b] as usize;
        let y = &ymod[b * 4 * dx..(b + 1) * 4 * dx];
        for i in 0..n {
            let mi = mask(i < cnt);
            for c in 0..dx {
                let q = qkv[(b * n + i) * 3 * dx + c] * mi;
                let (ye_add, ye_mul, yx_add, yx_mul) =
                    (y[c], y[dx + c], y[2 * dx + c], y[3 * dx + c]);
                let (mut m, mut z, mut acc) = (-3.0e38f32, 0.0f32, 0.0f32);
                for j in 0..n {
                    let mj = mask(j < cnt);
                    let kj = qkv[(b * n + j) * 3 * dx + dx + c] * mj;
                    let pair = (b * n + i) * n + j;
                    let me = mi * mj;
                    let e1 = e12[pair * 2 * dx + c] * me;
                    let e2 = e12[pair * 2 * dx + dx + c] * me;
                    let yv = (q * kj) / p.scale * (e1 + 1.0) + e2;
                    eo[pair * dx + c] = ye_add + (ye_mul + 1.0) * yv;
                    if j < cnt {
                        let vj = qkv[(b * n + j) * 3 * dx + 2 * dx + c];
                        if yv > m {
                            let r = (m - yv).exp();
                            z = z * r + 1.0;
                            acc = acc * r + vj;
                            m = yv;
                        } else {
                            let w = (yv - m).exp();
                            z += w;
                            acc += w * vj;
                        }
                    }
                }
                let wv = if z > 0.0 { acc / z } else { 0.0 };
                xo[(b * n + i) * dx + c] = yx_add + (yx_mul + 1.0) * wv;
            }
        }
    }
}

/// Xtoy / Etoy: mean (every row over the valid count), min, max, variance (valid rows) per (b, c).
pub(super) fn pool(p: &Params, x: &[u32], counts: &[u32], out: &mut [u32]) {
    let (x, out) = (f32s(x), f32s_mut(out));
    let (n, cc, rows) = (p.n as usize, p.c as usize, p.rows as usize);
    let edge = p.flags & F_EDGE_MODE != 0;
    for b in 0..p.b as usize {
        let cnt = counts[b] as usize;
        let valid = |r: usize| {
            if edge {
                r / n < cnt && r % n < cnt
            } else {
                r < cnt
            }
        };
        let xb = &x[b * rows * cc..(b + 1) * rows * cc];
        let o = &mut out[b * 4 * cc..(b + 1) * 4 * cc];
        for c in 0..cc {
            let (mut s, mut mn, mut mx, mut nv) = (0.0f32, 3.0e38f32, -3.0e38f32, 0.0f32);
            for r in 0..rows {
                let v = xb[r * cc + c];
                s += v;
                if valid(r) {
                    mn = mn.min(v);
                    mx = mx.max(v);
                    nv += 1.0;
                }
            }
            let mean = s / nv;
            let mut var = 0.0f32;
            for r in (0..rows).filter(|&r| valid(r)) {
                let d = xb[r * cc + c] - mean;
                var += d * d;
            }
            o[c] = mean;
            o[cc + c] = mn;
            o[2 * cc + c] = mx;
            o[3 * cc + c] = var / nv;
        }
    }
}

/// `m_ij · ½((A_ij + R_ij)·d_ij + (A_ji + R_ji)·d_ji)`.
pub(super) fn sym_edges(p: &Params, a: &[u32], res: &[u32], counts: &[u32], out: &mut [u32]) {
    let (a, res, out) = (f32s(a), f32s(res), f32s_mut(out));
    let (n, cc) = (p.n as usize, p.c as usize);
    let residual = p.flags & F_RESIDUAL != 0;
    let zero_diag = p.flags & F_ZERO_DIAG != 0;
    for (b, &cnt) in counts.iter().enumerate().take(p.b as usize) {
        let cnt = cnt as usize;
        for i in 0..n {
            for j in 0..n {
                let m = if i < cnt && j < cnt { 1.0 } else { 0.0 };
                for c in 0..cc {
                    let e = ((b * n + i) * n + j) * cc + c;
                    let t = ((b * n + j) * n + i) * cc + c;
                    let (mut v, mut vt) = (a[e], a[t]);
                    if residual {
                        v += res[e];
                        vt += res[t];
                    }
                    if zero_diag && i == j {
                        (v, vt) = (0.0, 0.0);
                    }
                    out[e] = (v + vt) * 0.5 * m;
                }
            }
        }
    }
}
