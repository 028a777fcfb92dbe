// Graph kernels for DiGress: dense batches of B graphs padded to n nodes, node i of graph b valid when
// i < counts[b]. Class ids use NONE (0xFFFFFFFF) for DiGress's all-zero one-hot rows (padding, and the
// diagonal of a prior draw).
//
// Binding plan: 0 = parameters; each entry point lists its own storage bindings below.

struct GParams {
    b: u32,
    n: u32,
    c: u32,
    flags: u32,
    k: u32,
    f: u32,
    heads: u32,
    rows: u32,
    scale: f32,
    _p0: f32,
    _p1: f32,
    _p2: f32,
}

@group(0) @binding(0) var<uniform> gp: GParams;

const NONE: u32 = 0xFFFFFFFFu;
// The flag bits F_* are declared once, by the driver (src/ops/graph.rs), and
// prepended to this source.

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// ---------------------------------------------------------------------------------------------------
// finalize: DiGress's sample_discrete_features after the draws. Only the strict upper triangle of the
// edge draws is kept and mirrored; the diagonal is class 0 (or NONE for a prior draw, whose one-hot
// diagonal is all zero); padded nodes and pairs are NONE. One invocation per (b, i, j).

@group(0) @binding(1) var<storage, read> fx_draw: array<u32>;
@group(0) @binding(2) var<storage, read> fe_draw: array<u32>;
@group(0) @binding(3) var<storage, read> fcounts: array<u32>;
@group(0) @binding(4) var<storage, read_write> fx_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> fe_out: array<u32>;

@compute @workgroup_size(256)
fn finalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let n = gp.n;
    if (e >= gp.b * n * n) { return; }
    let b = e / (n * n);
    let i = (e / n) % n;
    let j = e % n;
    let cnt = fcounts[b];
    let valid = i < cnt && j < cnt;
    var v = NONE;
    if (valid) {
        if (i < j) {
            v = fe_draw[e];
        } else if (i > j) {
            v = fe_draw[(b * n + j) * n + i];
        } else {
            v = select(0u, NONE, (gp.flags & F_DIAG_NONE) != 0u);
        }
    }
    fe_out[e] = v;
    if (j == 0u) {
        fx_out[b * n + i] = select(NONE, fx_draw[b * n + i], i < cnt);
    }
}

// ---------------------------------------------------------------------------------------------------
// onehot: rows of class ids → f32 [rows, k + f]: the one-hot (all zero for NONE) then f extra columns.

@group(0) @binding(1) var<storage, read> oids: array<u32>;
@group(0) @binding(2) var<storage, read> oextra: array<f32>;
@group(0) @binding(3) var<storage, read_write> oout: array<f32>;

@compute @workgroup_size(256)
fn onehot(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let w = gp.k + gp.f;
    if (e >= gp.rows * w) { return; }
    let r = e / w;
    let c = e % w;
    if (c < gp.k) {
        oout[e] = select(0.0, 1.0, oids[r] == c);
    } else {
        oout[e] = oextra[r * gp.f + (c - gp.k)];
    }
}

// ---------------------------------------------------------------------------------------------------
// NodeEdgeBlock attention. qkv = [q | k | v] (B, n, 3·dx) before masking; e12 = [e_mul | e_add]
// (B, n, n, 2·dx) before masking; ymod = [y_e_add | y_e_mul | y_x_add | y_x_mul] (B, 4·dx).
// For every (b, i, feature c) with head h = c / df:
//   Y_ij   = (Q_i K_j / √df)(E1_ij + 1) + E2_ij              (masked Q, K, E1, E2)
//   newE   = ye_add + (ye_mul + 1) Y_ij                      (written for every j; masked later)
//   attn   = softmax over valid j of Y_ij (per feature)
//   newX   = yx_add + (yx_mul + 1) Σ_j attn_ij V_j
// One invocation per (b, i, c); the softmax is online over j.

@group(0) @binding(1) var<storage, read> aqkv: array<f32>;
@group(0) @binding(2) var<storage, read> ae12: array<f32>;
@group(0) @binding(3) var<storage, read> aymod: array<f32>;
@group(0) @binding(4) var<storage, read> acounts: array<u32>;
@group(0) @binding(5) var<storage, read_write> ae_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> ax_out: array<f32>;

@compute @workgroup_size(256)
fn node_edge_attn(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let n = gp.n;
    let dx = gp.c;
    if (e >= gp.b * n * dx) { return; }
    let b = e / (n * dx);
    let i = (e / dx) % n;
    let c = e % dx;
    let cnt = acounts[b];
    let mi = select(0.0, 1.0, i < cnt);
    let q = aqkv[(b * n + i) * 3u * dx + c] * mi;
    let ye_add = aymod[b * 4u * dx + c];
    let ye_mul = aymod[b * 4u * dx + dx + c];
    let yx_add = aymod[b * 4u * dx + 2u * dx + c];
    let yx_mul = aymod[b * 4u * dx + 3u * dx + c];
    var m = -3.0e38;
    var z = 0.0;
    var acc = 0.0;
    for (var j = 0u; j < n; j = j + 1u) {
        let mj = select(0.0, 1.0, j < cnt);
        let kj = aqkv[(b * n + j) * 3u * dx + dx + c] * mj;
        let pair = ((b * n + i) * n + j);
        let me = mi * mj;
        let e1 = ae12[pair * 2u * dx + c] * me;
        let e2 = ae12[pair * 2u * dx + dx + c] * me;
        let y = (q * kj) / gp.scale * (e1 + 1.0) + e2;
        ae_out[pair * dx + c] = ye_add + (ye_mul + 1.0) * y;
        if (j < cnt) {
            let vj = aqkv[(b * n + j) * 3u * dx + 2u * dx + c];
            if (y > m) {
                let r = exp(m - y);
                z = z * r + 1.0;
                acc = acc * r + vj;
                m = y;
            } else {
                let w = exp(y - m);
                z = z + w;
                acc = acc + w * vj;
            }
        }
    }
    let wv = select(0.0, acc / z, z > 0.0);
    ax_out[(b * n + i) * dx + c] = yx_add + (yx_mul + 1.0) * wv;
}

// ---------------------------------------------------------------------------------------------------
// pool: DiGress (fixed_bug) Xtoy / Etoy statistics of x (B, R, C) → (B, 4C) = [mean | min | max | var].
// The mean sums every row, padded ones included, and divides by the valid count (as the reference
// does); min, max and the variance (no square root, divided by the count) use valid rows only. Valid:
// r < count (nodes) or r = i·n + j with i, j < count (edge mode). One invocation per (b, c).

@group(0) @binding(1) var<storage, read> px: array<f32>;
@group(0) @binding(2) var<storage, read> pcounts: array<u32>;
@group(0) @binding(3) var<storage, read_write> pout: array<f32>;

fn pool_valid(r: u32, cnt: u32) -> bool {
    if ((gp.flags & F_EDGE_MODE) != 0u) {
        return (r / gp.n) < cnt && (r % gp.n) < cnt;
    }
    return r < cnt;
}

@compute @workgroup_size(256)
fn pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let cc = gp.c;
    if (e >= gp.b * cc) { return; }
    let b = e / cc;
    let c = e % cc;
    let cnt = pcounts[b];
    let rows = gp.rows;
    var s = 0.0;
    var mn = 3.0e38;
    var mx = -3.0e38;
    var nv = 0.0;
    for (var r = 0u; r < rows; r = r + 1u) {
        let v = px[(b * rows + r) * cc + c];
        s = s + v;
        if (pool_valid(r, cnt)) {
            mn = min(mn, v);
            mx = max(mx, v);
            nv = nv + 1.0;
        }
    }
    let mean = s / nv;
    var var_ = 0.0;
    for (var r = 0u; r < rows; r = r + 1u) {
        if (pool_valid(r, cnt)) {
            let d = px[(b * rows + r) * cc + c] - mean;
            var_ = var_ + d * d;
        }
    }
    let o = b * 4u * cc;
    pout[o + c] = mean;
    pout[o + cc + c] = mn;
    pout[o + 2u * cc + c] = mx;
    pout[o + 3u * cc + c] = var_ / nv;
}

// ---------------------------------------------------------------------------------------------------
// sym_edges: out_ij = m_ij · ½((A_ij + R_ij)·d_ij + (A_ji + R_ji)·d_ji) over (B, n, n, C), with the
// residual R optional and d the off-diagonal mask when F_ZERO_DIAG is set (else 1); m_ij masks padding.

@group(0) @binding(1) var<storage, read> sa: array<f32>;
@group(0) @binding(2) var<storage, read> sr: array<f32>;
@group(0) @binding(3) var<storage, read> scounts: array<u32>;
@group(0) @binding(4) var<storage, read_write> sout: array<f32>;

@compute @workgroup_size(256)
fn sym_edges(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let n = gp.n;
    let cc = gp.c;
    if (e >= gp.b * n * n * cc) { return; }
    let b = e / (n * n * cc);
    let i = (e / (n * cc)) % n;
    let j = (e / cc) % n;
    let c = e % cc;
    let cnt = scounts[b];
    let t = ((b * n + j) * n + i) * cc + c;
    var a = sa[e];
    var at = sa[t];
    if ((gp.flags & F_RESIDUAL) != 0u) {
        a = a + sr[e];
        at = at + sr[t];
    }
    if ((gp.flags & F_ZERO_DIAG) != 0u && i == j) {
        a = 0.0;
        at = 0.0;
    }
    let m = select(0.0, 1.0, i < cnt && j < cnt);
    sout[e] = (a + at) * 0.5 * m;
}
