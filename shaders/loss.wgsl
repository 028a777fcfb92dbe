// Per-row losses over the last axis (K classes), for training objectives and ELBOs. Inputs are
// logits, normalised here by logsumexp: KL(softmax(a) ‖ softmax(b)) per row, or with F_NLL the
// cross-entropy −log softmax(b)[id].

struct Params {
    rows: u32,
    k: u32,
    flags: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> la: array<f32>;
@group(0) @binding(2) var<storage, read> lb: array<f32>;
@group(0) @binding(3) var<storage, read> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// A finite stand-in for log 0 (WGSL implementations may assume finite math).
const LOG_ZERO: f32 = -1.0e30;

fn row_lse_b(base: u32) -> f32 {
    var m = LOG_ZERO;
    for (var c = 0u; c < p.k; c = c + 1u) {
        m = max(m, lb[base + c]);
    }
    var z = 0.0;
    for (var c = 0u; c < p.k; c = c + 1u) {
        z = z + exp(lb[base + c] - m);
    }
    return m + log(z);
}

@compute @workgroup_size(256)
fn row_loss(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 256u;
    if (r >= p.rows) { return; }
    let k = p.k;
    let base = r * k;
    let lse_b = row_lse_b(base);
    if ((p.flags & F_NLL) != 0u) {
        out[r] = lse_b - lb[base + min(ids[r], k - 1u)];
        return;
    }
    var m = LOG_ZERO;
    for (var c = 0u; c < k; c = c + 1u) {
        m = max(m, la[base + c]);
    }
    var z = 0.0;
    for (var c = 0u; c < k; c = c + 1u) {
        z = z + exp(la[base + c] - m);
    }
    let lse_a = m + log(z);
    var kl = 0.0;
    for (var c = 0u; c < k; c = c + 1u) {
        let lpa = la[base + c] - lse_a;
        let pa = exp(lpa);
        // 0 · log 0 = 0: classes a rules out contribute nothing, whatever b says.
        if (pa > 0.0) {
            kl = kl + pa * (lpa - (lb[base + c] - lse_b));
        }
    }
    out[r] = kl;
}
