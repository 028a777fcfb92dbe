// The Langevin corrector of diffusers' ScoreSdeVeScheduler.step_correct, on a run's
// variance-preserving state x = α·x_VE (α = 1/√(1+σ²)) with the model's output read as ε̂ = −σ·score:
//   step = 2·(snr · mean_b ‖z_b‖ / mean_b ‖score_b‖)²,   x' = x + α·step·score + α·√(2·step)·z.
// Three passes: per-row sums of squares, the two coefficients (one workgroup), the update.

struct Params {
    // Elements of x.
    n: u32,
    // Rows (the batch) and elements per row.
    rows: u32,
    len: u32,
    _pad: u32,
    alpha: f32,
    sigma: f32,
    snr: f32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> eps: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
// [2·rows] sums of squares (ε̂, z) per row, then [2] coefficients (on ε̂, on z).
@group(0) @binding(4) var<storage, read_write> sums: array<f32>;
@group(0) @binding(5) var<storage, read_write> coefs: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

fn reduce_pair(lid: u32) {
    for (var s = 128u; s > 0u; s = s / 2u) {
        workgroupBarrier();
        if (lid < s) {
            red_a[lid] += red_a[lid + s];
            red_b[lid] += red_b[lid + s];
        }
    }
    workgroupBarrier();
}

// One workgroup per row (folded over x and y).
@compute @workgroup_size(256)
fn langevin_sumsq(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    // The whole workgroup leaves together, so the barriers stay uniform.
    if (row >= p.rows) { return; }
    var a = 0.0;
    var b = 0.0;
    let base = row * p.len;
    for (var i = lid; i < p.len; i += 256u) {
        let e = eps[base + i];
        let w = z[base + i];
        a += e * e;
        b += w * w;
    }
    red_a[lid] = a;
    red_b[lid] = b;
    reduce_pair(lid);
    if (lid == 0u) {
        sums[2u * row] = red_a[0];
        sums[2u * row + 1u] = red_b[0];
    }
}

// One workgroup: the batch means of the norms, and the update's two coefficients.
@compute @workgroup_size(256)
fn langevin_coefs(@builtin(local_invocation_index) lid: u32) {
    var a = 0.0;
    var b = 0.0;
    for (var r = lid; r < p.rows; r += 256u) {
        a += sqrt(sums[2u * r]);
        b += sqrt(sums[2u * r + 1u]);
    }
    red_a[lid] = a;
    red_b[lid] = b;
    reduce_pair(lid);
    if (lid == 0u) {
        let rows = f32(p.rows);
        // ‖score‖ = ‖ε̂‖/σ.
        let grad_norm = red_a[0] / rows / p.sigma;
        let noise_norm = red_b[0] / rows;
        let r = p.snr * noise_norm / grad_norm;
        let step = r * r * 2.0;
        // score = −ε̂/σ.
        coefs[0] = -p.alpha * step / p.sigma;
        coefs[1] = p.alpha * sqrt(step * 2.0);
    }
}

@compute @workgroup_size(256)
fn langevin_step(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    out[i] = x[i] + coefs[0] * eps[i] + coefs[1] * z[i];
}
