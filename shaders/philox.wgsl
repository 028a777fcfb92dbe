// Philox4x32-10, bit-identical to src/rng.rs. Prepended to every kernel family that draws random numbers.
// WGSL has no 64-bit integers, so the 32x32->64 products are built from 16-bit halves.

fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    let lo = a * b; // wrapping
    return vec2<u32>(hi, lo);
}

fn philox4x32_10(ctr_in: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = ctr_in;
    var k = key_in;
    for (var r = 0u; r < 10u; r = r + 1u) {
        if (r > 0u) {
            k = vec2<u32>(k.x + 0x9E3779B9u, k.y + 0xBB67AE85u);
        }
        let p0 = philox_mulhilo(0xD2511F53u, c.x);
        let p1 = philox_mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// Words for element `index` of (seed, stream, substream); see rng::Philox::words.
fn philox_words(seed_lo: u32, seed_hi: u32, stream: u32, substream: u32, index: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(index, stream, substream, 0u), vec2<u32>(seed_lo, seed_hi));
}

fn philox_to_uniform(x: u32) -> f32 {
    return (f32(x >> 9u) + 0.5) * (1.0 / 8388608.0);
}

// −log(u) for u in (0, 1]. WGSL only promises log to an absolute error of 2^-21 near 1 (lavapipe's
// polynomial log is about that bad), which would wreck −log(u) ≈ 1 − u there: a Gumbel draw could come
// out NaN and a Box–Muller radius off by 1e-3. For u ≥ 0.75 use the atanh series of −log(1 − v), where
// v = 1 − u is exact in f32.
fn rng_neg_log(u: f32) -> f32 {
    let v = 1.0 - u;
    if (v < 0.25) {
        let s = v / (2.0 - v);
        let s2 = s * s;
        return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0
            + s2 * (1.0 / 11.0))))));
    }
    return -log(u);
}

// cos(2πu) for u in (0, 1) with the argument kept inside [−π, π], where WGSL's cos accuracy applies.
fn rng_cos_2pi(u: f32) -> f32 {
    return -cos(6.283185307179586 * (u - 0.5));
}

// Box–Muller on words 0 and 1, as rng::Philox::normal.
fn rng_normal(w: vec4<u32>) -> f32 {
    let u0 = philox_to_uniform(w.x);
    let u1 = philox_to_uniform(w.y);
    return sqrt(2.0 * rng_neg_log(u0)) * rng_cos_2pi(u1);
}

// −log(−log(u)), as rng::Philox::gumbel.
fn rng_gumbel(u: f32) -> f32 {
    return -log(rng_neg_log(u));
}
