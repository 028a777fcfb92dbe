// Multi-head scaled dot-product attention, flash style: no Lq × Lk score matrix is ever stored.
//
// A workgroup owns BQ query rows of one (batch, head); each invocation owns one query row and keeps
// its running maximum m, running denominator l and un-normalised output acc[D] in registers. Keys and
// values stream through shared memory BK rows at a time; per key block the invocation computes its BK
// scores, rescales (l, acc) once by exp(m_old − m_new), and accumulates exp(s − m_new)·v (the online
// softmax of Milakov & Gimelshein, as in FlashAttention).
//
// q, k, v and the output keep the [B, L, H·D] layout of the projections that produce them, so no
// head-split permute is needed: head h of token t starts at (b·L + t)·H·D + h·D.
//
// Prepended by the driver: `const DMAX: u32` — the head dimension rounded up to 32, 64 or 128, which
// sizes the register arrays and the shared key/value tiles (2 · BK · DMAX · 4 B ≤ 16 KiB).

struct Params {
    batch: u32,
    lq: u32,
    lk: u32,
    heads: u32,
    d: u32,
    // H · D: the row stride of q, k, v and the output.
    hd: u32,
    has_mask: u32,
    scale: f32,
}

// BQ (query rows per workgroup, one invocation each) comes from the driver, which dispatches with it.
const BK: u32 = 16u;
// A finite stand-in for −∞: exp(MASKED − anything finite) is 0 without relying on the driver's
// handling of infinities, which WGSL leaves implementation-defined.
const MASKED: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> aq: array<f32>;
@group(0) @binding(2) var<storage, read> ak: array<f32>;
@group(0) @binding(3) var<storage, read> av: array<f32>;
@group(0) @binding(4) var<storage, read> amask: array<f32>;
@group(0) @binding(5) var<storage, read_write> aout: array<f32>;

// With DMAX = 128 these two fill WebGPU's guaranteed 16 KiB exactly, so the mask is not staged here:
// every invocation reads the same mask entry, which the cache serves.
var<workgroup> k_tile: array<f32, BK * DMAX>;
var<workgroup> v_tile: array<f32, BK * DMAX>;

// A mask entry that is −∞, NaN, or below −1e30 excludes its key. The test is on the bits because an
// infinity may not survive a float comparison under the driver's fast-math.
fn mask_value(v: f32) -> f32 {
    let bits = bitcast<u32>(v);
    if ((bits & 0x7f800000u) == 0x7f800000u) { return MASKED; }
    if (v < -1.0e30) { return MASKED; }
    return v;
}

@compute @workgroup_size(BQ)
fn attention(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let bh = wid.y;
    let b = bh / p.heads;
    let h = bh % p.heads;
    let qi = wid.x * BQ + lid;
    let in_range = qi < p.lq;

    var q: array<f32, DMAX>;
    var acc: array<f32, DMAX>;
    if (in_range) {
        let qbase = (b * p.lq + qi) * p.hd + h * p.d;
        // Scaling q once is cheaper than scaling every score.
        for (var d = 0u; d < p.d; d = d + 1u) {
            q[d] = aq[qbase + d] * p.scale;
            acc[d] = 0.0;
        }
    }
    var m = MASKED;
    var l = 0.0;

    for (var k0 = 0u; k0 < p.lk; k0 = k0 + BK) {
        let tile = BK * p.d;
        for (var e = lid; e < tile; e = e + BQ) {
            let j = e / p.d;
            let d = e - j * p.d;
            let key = k0 + j;
            var kv = 0.0;
            var vv = 0.0;
            if (key < p.lk) {
                let idx = (b * p.lk + key) * p.hd + h * p.d + d;
                kv = ak[idx];
                vv = av[idx];
            }
            k_tile[e] = kv;
            v_tile[e] = vv;
        }
        workgroupBarrier();

        if (in_range) {
            var s: array<f32, BK>;
            var m_new = m;
            for (var j = 0u; j < BK; j = j + 1u) {
                let key = k0 + j;
                // Additive mask of this key; MASKED for excluded keys and keys past the end.
                var mv = MASKED;
                if (key < p.lk) {
                    mv = 0.0;
                    if (p.has_mask != 0u) { mv = mask_value(amask[b * p.lk + key]); }
                }
                var sj = MASKED;
                if (mv > MASKED) {
                    var dot = 0.0;
                    let kb = j * p.d;
                    for (var d = 0u; d < p.d; d = d + 1u) {
                        dot = dot + q[d] * k_tile[kb + d];
                    }
                    sj = dot + mv;
                    m_new = max(m_new, sj);
                }
                s[j] = sj;
            }
            // m_new > MASKED once any key has been admitted; until then nothing is accumulated.
            if (m_new > MASKED) {
                let corr = exp(m - m_new);
                l = l * corr;
                for (var d = 0u; d < p.d; d = d + 1u) { acc[d] = acc[d] * corr; }
                for (var j = 0u; j < BK; j = j + 1u) {
                    if (s[j] > MASKED) {
                        let pj = exp(s[j] - m_new);
                        l = l + pj;
                        let vb = j * p.d;
                        for (var d = 0u; d < p.d; d = d + 1u) {
                            acc[d] = acc[d] + pj * v_tile[vb + d];
                        }
                    }
                }
                m = m_new;
            }
        }
        workgroupBarrier();
    }

    if (in_range) {
        // A row whose keys are all masked has l = 0: it gets zeros rather than PyTorch's NaN.
        var inv = 0.0;
        if (l > 0.0) { inv = 1.0 / l; }
        let obase = (b * p.lq + qi) * p.hd + h * p.d;
        for (var d = 0u; d < p.d; d = d + 1u) {
            aout[obase + d] = acc[d] * inv;
        }
    }
}
