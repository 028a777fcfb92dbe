// Padding that stays a suffix (philox.wgsl is prepended): a step's draw redrawn, left to right,
// where it would put a pad before a letter. One invocation per sequence, because a position's
// choice depends on the ones left of it (sequences are short: L ≲ a few hundred).
//
// A position decided in x_t (a token other than the mask) keeps it. A drawn letter after a pad, or
// a drawn pad before a decided letter, is drawn again by Gumbel-max over the classes that fit (the
// pad; or the letters; and the mask where it competes), with the step's own noise (element
// (row·L + l)·K + k of the key), which draws from the step's distribution restricted to them. A pad
// seen first wins; a position with no class that fits keeps its draw; NaN scores never win; ties
// go to the lower class.

struct PadSuffixParams {
    rows: u32,
    len: u32,
    k: u32,
    pad: u32,
    mask: u32,
    flags: u32,
    temperature: f32,
    u_min: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    substream: u32,
}

const F_MASK: u32 = 1u;
const F_MASK_COMPETES: u32 = 2u;
const F_NOISE: u32 = 4u;

@group(0) @binding(0) var<uniform> pp: PadSuffixParams;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> x_t: array<u32>;
@group(0) @binding(3) var<storage, read> drawn: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

fn is_mask(v: u32) -> bool {
    return (pp.flags & F_MASK) != 0u && v == pp.mask;
}

fn decided(v: u32) -> bool {
    return (pp.flags & F_MASK) != 0u && v != pp.mask;
}

// Whether class c may stand at a position, given a pad left of it and a decided letter right of it.
fn fits(c: u32, pad_seen: bool, letter_after: bool) -> bool {
    if (is_mask(c)) { return (pp.flags & F_MASK_COMPETES) != 0u; }
    if (pad_seen) { return c == pp.pad; }
    return !(letter_after && c == pp.pad);
}

@compute @workgroup_size(256)
fn pad_suffix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = gid.x + gid.y * nwg.x * 256u;
    if (b >= pp.rows) { return; }
    let base = b * pp.len;
    // One past the last position decided with a letter (0: none).
    var letter_end = 0u;
    for (var l = 0u; l < pp.len; l = l + 1u) {
        let v = x_t[base + l];
        if (decided(v) && v != pp.pad) { letter_end = l + 1u; }
    }
    var pad_seen = false;
    for (var l = 0u; l < pp.len; l = l + 1u) {
        let r = base + l;
        if (decided(x_t[r])) {
            out[r] = x_t[r];
            pad_seen = pad_seen || x_t[r] == pp.pad;
            continue;
        }
        let letter_after = letter_end > l + 1u;
        var tok = drawn[r];
        if (!is_mask(tok) && !fits(tok, pad_seen, letter_after)) {
            var best = 0.0;
            var found = false;
            for (var c = 0u; c < pp.k; c = c + 1u) {
                if (!fits(c, pad_seen, letter_after)) { continue; }
                let e = r * pp.k + c;
                var s = scores[e] / pp.temperature;
                if ((pp.flags & F_NOISE) != 0u) {
                    let w = philox_words(pp.seed_lo, pp.seed_hi, pp.stream, pp.substream, e);
                    s = s + (-log(rng_neg_log(max(philox_to_uniform(w.x), pp.u_min))));
                }
                if (s == s && (!found || s > best)) {
                    best = s;
                    tok = c;
                    found = true;
                }
            }
        }
        out[r] = tok;
        pad_seen = pad_seen || tok == pp.pad;
    }
}
