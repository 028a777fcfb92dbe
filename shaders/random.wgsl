// Tensors filled from Philox (philox.wgsl is prepended). Element i of a fill is a pure function of
// (seed, stream, substream, first + i), so any slice of a fill can be regenerated on its own and checked
// against rng.rs on the CPU.

struct RandomParams {
    n: u32,
    kind: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    substream: u32,
    first: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> rp: RandomParams;
@group(0) @binding(1) var<storage, read_write> rout: array<u32>;

// The distribution codes KIND_* are declared once, by the driver (src/ops/random.rs), and
// prepended to this source.

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= rp.n) { return; }
    let w = philox_words(rp.seed_lo, rp.seed_hi, rp.stream, rp.substream, rp.first + i);
    switch rp.kind {
        case KIND_UNIFORM: { rout[i] = bitcast<u32>(philox_to_uniform(w.x)); }
        case KIND_NORMAL: { rout[i] = bitcast<u32>(rng_normal(w)); }
        case KIND_GUMBEL: { rout[i] = bitcast<u32>(rng_gumbel(philox_to_uniform(w.x))); }
        default: {
            rout[4u * i] = w.x;
            rout[4u * i + 1u] = w.y;
            rout[4u * i + 2u] = w.z;
            rout[4u * i + 3u] = w.w;
        }
    }
}
