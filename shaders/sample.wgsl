// Categorical sampling by Gumbel-max (philox.wgsl is prepended): x = argmax_k(logits_k/τ + g_k·m) with
// g = −log(−log(max(u, u_min))), as bionemo-moco's D3PM `_sample_categorical`. Ties go to the lowest
// index (torch.argmax). A class whose probability is ≤ 0 (probability inputs) is skipped outright, so it
// can never be drawn, whatever the noise; NaN scores never win.

struct SampleParams {
    rows: u32,
    k: u32,
    flags: u32,
    // Rows per mask element: the mask covers a prefix of the leading dimensions.
    mask_div: u32,
    temperature: f32,
    u_min: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    substream: u32,
    // Rows per keep element (F_KEEP).
    keep_div: u32,
    _pad1: u32,
}

// The flag bits F_* are declared once, by the driver (src/ops/sample.rs), and
// prepended to this source.

@group(0) @binding(0) var<uniform> sp: SampleParams;

// Score of class k in row r: the tempered logit plus its masked Gumbel noise; `valid` is false for
// classes that must never be drawn.
struct Score {
    s: f32,
    valid: bool,
}

fn noise_u(e: u32, injected: f32) -> f32 {
    if ((sp.flags & F_INJECTED) != 0u) {
        return injected;
    }
    return philox_to_uniform(philox_words(sp.seed_lo, sp.seed_hi, sp.stream, sp.substream, e).x);
}

fn score(x_in: f32, e: u32, m: f32, injected: f32) -> Score {
    var x = x_in;
    if ((sp.flags & F_PROBS) != 0u) {
        if (!(x > 0.0)) {
            return Score(0.0, false);
        }
        x = log(x);
    }
    var s = x / sp.temperature;
    // Skipping the noise where m = 0 also keeps an injected u = 1 (g = +inf) from turning 0·inf into NaN.
    if (m != 0.0) {
        let u = max(noise_u(e, injected), sp.u_min);
        s = s + m * (-log(rng_neg_log(u)));
    }
    return Score(s, true);
}

fn row_mask(r: u32) -> f32 {
    if ((sp.flags & F_NO_NOISE) != 0u) {
        return 0.0;
    }
    if ((sp.flags & F_MASK) != 0u) {
        return tmask[r / sp.mask_div];
    }
    return 1.0;
}

@group(0) @binding(1) var<storage, read> tlogits: array<f32>;
@group(0) @binding(2) var<storage, read> tuni: array<f32>;
@group(0) @binding(3) var<storage, read> tmask: array<f32>;
@group(0) @binding(4) var<storage, read> tkeep: array<f32>;
@group(0) @binding(5) var<storage, read_write> tout: array<u32>;

// The class written for row r: `arg`, or 0 where the keep mask is 0.
fn kept(r: u32, arg: u32) -> u32 {
    if ((sp.flags & F_KEEP) != 0u && tkeep[r / sp.keep_div] == 0.0) {
        return 0u;
    }
    return arg;
}

fn injected_at(e: u32) -> f32 {
    if ((sp.flags & F_INJECTED) != 0u) {
        return tuni[e];
    }
    return 0.0;
}

// One invocation per row: the right shape for the many short rows of discrete diffusion (K ≲ 1000).
@compute @workgroup_size(256)
fn gumbel_max(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 256u;
    if (r >= sp.rows) { return; }
    let m = row_mask(r);
    var best = 0.0;
    var arg = 0u;
    var found = false;
    for (var k = 0u; k < sp.k; k = k + 1u) {
        let e = r * sp.k + k;
        let sc = score(tlogits[e], e, m, injected_at(e));
        // `sc.s == sc.s` drops NaN scores; an all-invalid row yields class 0.
        if (sc.valid && sc.s == sc.s && (!found || sc.s > best)) {
            best = sc.s;
            arg = k;
            found = true;
        }
    }
    tout[r] = kept(r, arg);
}

const WIDE: u32 = 256u;
var<workgroup> w_best: array<f32, WIDE>;
var<workgroup> w_arg: array<u32, WIDE>;
var<workgroup> w_found: array<u32, WIDE>;

// One workgroup per row for wide rows (large vocabularies): strided partial argmax, then a tree
// reduction that keeps the lower index on ties.
@compute @workgroup_size(256)
fn gumbel_max_wide(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.x + wid.y * nwg.x;
    // Uniform control flow for the barriers: every invocation of a workgroup shares r.
    let live = r < sp.rows;
    var best = 0.0;
    var arg = 0u;
    var found = 0u;
    if (live) {
        let m = row_mask(r);
        for (var k = lid; k < sp.k; k = k + WIDE) {
            let e = r * sp.k + k;
            let sc = score(tlogits[e], e, m, injected_at(e));
            if (sc.valid && sc.s == sc.s && (found == 0u || sc.s > best)) {
                best = sc.s;
                arg = k;
                found = 1u;
            }
        }
    }
    w_best[lid] = best;
    w_arg[lid] = arg;
    w_found[lid] = found;
    workgroupBarrier();
    for (var stride = WIDE / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            let o = lid + stride;
            if (w_found[o] != 0u) {
                let take = w_found[lid] == 0u || w_best[o] > w_best[lid]
                    || (w_best[o] == w_best[lid] && w_arg[o] < w_arg[lid]);
                if (take) {
                    w_best[lid] = w_best[o];
                    w_arg[lid] = w_arg[o];
                    w_found[lid] = 1u;
                }
            }
        }
        workgroupBarrier();
    }
    if (live && lid == 0u) {
        tout[r] = kept(r, w_arg[0]);
    }
}

@group(0) @binding(1) var<storage, read> gn_u: array<f32>;
@group(0) @binding(2) var<storage, read_write> gn_out: array<f32>;

// The sampler's noise on its own: g = −log(−log(max(u, u_min))) per element (sp.rows = element count).
@compute @workgroup_size(256)
fn gumbel_noise(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= sp.rows) { return; }
    gn_out[i] = -log(rng_neg_log(max(gn_u[i], sp.u_min)));
}
