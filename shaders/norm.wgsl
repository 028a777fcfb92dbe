// Row reductions: softmax / log-softmax over the last dimension, LayerNorm, GroupNorm (+ SiLU).
// One workgroup per row (a GroupNorm "row" is one (sample, group) pair, which is contiguous in NCHW).
// Each invocation strides over the row, then the workgroup combines its partials in shared memory.
// The row index is folded over x and y of the grid (Gpu::grid_1d with one row per workgroup).
// Softmax over short rows instead gives each invocation a whole row (`softmax_short`).
// Statistics use two passes over global memory (mean, then the sum of squared deviations) rather than
// E[x²] − E[x]², which cancels catastrophically for rows with a large mean.

struct Params {
    rows: u32,
    // Row length (softmax, LayerNorm) or group length = channels_per_group · spatial (GroupNorm).
    n: u32,
    flags: u32,
    eps: f32,
    spatial: u32,
    channels_per_group: u32,
    groups: u32,
    _pad: u32,
}

// The flag bits FLAG_* are declared once, by the driver (src/ops/norm.rs), and
// prepended to this source.

// WGN (invocations per workgroup: the rows of a short kernel, the threads of a row) comes from the
// driver (ops::WG), which dispatches with it.
// Below every finite input, so a row of very negative logits still gets a true maximum.
const NEG_BIG: f32 = -3.0e38; // Tint refuses literals past f32::MAX, and -3.4028235e38 parses just past it

@group(0) @binding(0) var<uniform> p: Params;

var<workgroup> red: array<f32, 256>;

fn reduce_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WGN / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    // Keep the next reduction from overwriting red[0] before everyone has read it.
    workgroupBarrier();
    return r;
}

fn reduce_max(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WGN / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read_write> sout: array<f32>;

@compute @workgroup_size(WGN)
fn softmax(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }
    let base = row * p.n;
    var m = NEG_BIG;
    for (var j = lid; j < p.n; j = j + WGN) {
        m = max(m, sx[base + j]);
    }
    m = reduce_max(lid, m);
    var s = 0.0;
    for (var j = lid; j < p.n; j = j + WGN) {
        s = s + exp(sx[base + j] - m);
    }
    s = reduce_sum(lid, s);
    if ((p.flags & FLAG_LOG) != 0u) {
        let lse = m + log(s);
        for (var j = lid; j < p.n; j = j + WGN) {
            sout[base + j] = sx[base + j] - lse;
        }
    } else {
        let inv = 1.0 / s;
        for (var j = lid; j < p.n; j = j + WGN) {
            sout[base + j] = exp(sx[base + j] - m) * inv;
        }
    }
}

// Short rows (a softmax over a handful of classes at every position of a discrete diffusion): one
// invocation per row, so no invocation idles and there are no barriers.
@compute @workgroup_size(WGN)
fn softmax_short(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = gid.x + gid.y * nwg.x * WGN;
    if (row >= p.rows) { return; }
    let base = row * p.n;
    var m = NEG_BIG;
    for (var j = 0u; j < p.n; j = j + 1u) {
        m = max(m, sx[base + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < p.n; j = j + 1u) {
        s = s + exp(sx[base + j] - m);
    }
    if ((p.flags & FLAG_LOG) != 0u) {
        let lse = m + log(s);
        for (var j = 0u; j < p.n; j = j + 1u) {
            sout[base + j] = sx[base + j] - lse;
        }
    } else {
        let inv = 1.0 / s;
        for (var j = 0u; j < p.n; j = j + 1u) {
            sout[base + j] = exp(sx[base + j] - m) * inv;
        }
    }
}

@group(0) @binding(1) var<storage, read> nx: array<f32>;
@group(0) @binding(2) var<storage, read> nw: array<f32>;
@group(0) @binding(3) var<storage, read> nb: array<f32>;
@group(0) @binding(4) var<storage, read_write> nout: array<f32>;

// Mean and 1/sqrt(var + eps) of nx[base .. base + p.n] (biased variance, as PyTorch normalises).
fn row_stats(lid: u32, base: u32) -> vec2<f32> {
    var s = 0.0;
    for (var j = lid; j < p.n; j = j + WGN) {
        s = s + nx[base + j];
    }
    let mean = reduce_sum(lid, s) / f32(p.n);
    var q = 0.0;
    for (var j = lid; j < p.n; j = j + WGN) {
        let d = nx[base + j] - mean;
        q = q + d * d;
    }
    let variance = reduce_sum(lid, q) / f32(p.n);
    return vec2<f32>(mean, 1.0 / sqrt(variance + p.eps));
}

// Affine index `c` is the position along the last dimension.
@compute @workgroup_size(WGN)
fn layer_norm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }
    let base = row * p.n;
    let st = row_stats(lid, base);
    for (var j = lid; j < p.n; j = j + WGN) {
        var y = (nx[base + j] - st.x) * st.y;
        if ((p.flags & FLAG_WEIGHT) != 0u) { y = y * nw[j]; }
        if ((p.flags & FLAG_BIAS) != 0u) { y = y + nb[j]; }
        nout[base + j] = y;
    }
}

// Row = n · groups + g; the affine parameters are per channel g · channels_per_group + j / spatial.
@compute @workgroup_size(WGN)
fn group_norm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }
    let base = row * p.n;
    let st = row_stats(lid, base);
    let c0 = (row % p.groups) * p.channels_per_group;
    for (var j = lid; j < p.n; j = j + WGN) {
        let c = c0 + j / p.spatial;
        var y = (nx[base + j] - st.x) * st.y;
        if ((p.flags & FLAG_WEIGHT) != 0u) { y = y * nw[c]; }
        if ((p.flags & FLAG_BIAS) != 0u) { y = y + nb[c]; }
        if ((p.flags & FLAG_SILU) != 0u) { y = y * sigmoid(y); }
        nout[base + j] = y;
    }
}

// LayerNorm over many short rows (an MLP or transformer hidden state): one invocation per row with no
// barriers. A 256-wide workgroup per 128-element row leaves most lanes idle and, on software
// rasterisers, pays a coroutine switch per barrier.
@compute @workgroup_size(WGN)
fn layer_norm_short(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = gid.x + gid.y * nwg.x * WGN;
    if (row >= p.rows) { return; }
    let base = row * p.n;
    var s = 0.0;
    for (var j = 0u; j < p.n; j = j + 1u) {
        s = s + nx[base + j];
    }
    let mean = s / f32(p.n);
    var q = 0.0;
    for (var j = 0u; j < p.n; j = j + 1u) {
        let d = nx[base + j] - mean;
        q = q + d * d;
    }
    let inv = 1.0 / sqrt(q / f32(p.n) + p.eps);
    for (var j = 0u; j < p.n; j = j + 1u) {
        var y = (nx[base + j] - mean) * inv;
        if ((p.flags & FLAG_WEIGHT) != 0u) { y = y * nw[j]; }
        if ((p.flags & FLAG_BIAS) != 0u) { y = y + nb[j]; }
        nout[base + j] = y;
    }
}
