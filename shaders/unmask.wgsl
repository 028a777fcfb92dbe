// Un-masking by confidence, the MaskGIT / LLaDA order, for absorbing discrete diffusion (philox.wgsl
// is prepended). One invocation per sequence, because choosing which positions to reveal compares
// the positions of a sequence with each other (sequences are short: L ≲ a few hundred).
//
// For a masked position the token is drawn from the model's prediction without the mask class,
// softmax(logits/τ), by Gumbel-max (element (row·L + l)·K + k of the Gumbel key), and its
// confidence is that token's log-probability. How many positions a step reveals is drawn exactly as
// the process does: each masked position flips a coin with the step's chance `reveal[b]`
// (element row·L + l of the reveal key). What changes is *which* positions: the most confident ones,
// after `choice_noise` × a Gumbel draw (element row·L + l of the choice key) is added to each
// confidence. Positions that are not masked keep their token; the rest stay masked. Ties go to the
// lower position; NaN logits never win.

struct UnmaskParams {
    rows: u32,
    len: u32,
    k: u32,
    mask_token: u32,
    temperature: f32,
    u_min: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    gumbel_substream: u32,
    reveal_substream: u32,
    choice_substream: u32,
    choice_noise: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> up: UnmaskParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> x_t: array<u32>;
@group(0) @binding(3) var<storage, read> reveal: array<f32>;
// Scratch [B, L]: a masked position's (noisy) confidence, CHOSEN once picked, NO_TOKEN if nothing
// can be drawn there.
@group(0) @binding(4) var<storage, read_write> conf: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;

const CHOSEN: f32 = 3.0e38;
const NO_TOKEN: f32 = -3.0e38;

fn uniform_at(substream: u32, e: u32) -> f32 {
    return philox_to_uniform(philox_words(up.seed_lo, up.seed_hi, up.stream, substream, e).x);
}

@compute @workgroup_size(256)
fn unmask_confident(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = gid.x + gid.y * nwg.x * 256u;
    if (b >= up.rows) { return; }
    var count = 0u;
    for (var l = 0u; l < up.len; l = l + 1u) {
        let r = b * up.len + l;
        if (x_t[r] != up.mask_token) {
            out[r] = x_t[r];
            continue;
        }
        // The token (Gumbel-max over the classes but the mask) and the running max for the softmax.
        var best = 0.0;
        var arg = 0u;
        var found = false;
        var m = 0.0;
        for (var c = 0u; c < up.k; c = c + 1u) {
            let z = logits[r * up.k + c] / up.temperature;
            if (c == up.mask_token || z != z) { continue; }
            let u = max(uniform_at(up.gumbel_substream, r * up.k + c), up.u_min);
            let s = z + (-log(rng_neg_log(u)));
            if (!found || s > best) {
                best = s;
                arg = c;
                if (!found) { m = z; }
                found = true;
            }
            m = max(m, z);
        }
        if (found) {
            var sum = 0.0;
            for (var c = 0u; c < up.k; c = c + 1u) {
                let z = logits[r * up.k + c] / up.temperature;
                if (c == up.mask_token || z != z) { continue; }
                sum = sum + exp(z - m);
            }
            out[r] = arg;
            var cf = min(logits[r * up.k + arg] / up.temperature - m - log(sum), 0.0);
            if (up.choice_noise > 0.0) {
                let uc = max(uniform_at(up.choice_substream, r), up.u_min);
                cf = cf + up.choice_noise * (-log(rng_neg_log(uc)));
            }
            conf[r] = cf;
        } else {
            out[r] = up.mask_token;
            conf[r] = NO_TOKEN;
        }
        if (uniform_at(up.reveal_substream, r) < reveal[b]) {
            count = count + 1u;
        }
    }
    // Reveal the `count` most confident masked positions.
    for (var j = 0u; j < count; j = j + 1u) {
        var pick = up.len;
        var bc = 0.0;
        for (var l = 0u; l < up.len; l = l + 1u) {
            let r = b * up.len + l;
            let cf = conf[r];
            if (x_t[r] == up.mask_token && cf < CHOSEN && cf > NO_TOKEN && (pick == up.len || cf > bc)) {
                pick = l;
                bc = cf;
            }
        }
        if (pick == up.len) { break; }
        conf[b * up.len + pick] = CHOSEN;
    }
    for (var l = 0u; l < up.len; l = l + 1u) {
        let r = b * up.len + l;
        if (x_t[r] == up.mask_token && conf[r] != CHOSEN) {
            out[r] = up.mask_token;
        }
    }
}
