// Batched matmul with a fused epilogue: out = act(alpha·(A@B) + bias[N]) + residual[.., M, N].
//
// Prepended by the driver (src/ops/matmul/) as constants, so one source serves every configuration:
//   TM, TN    outputs per invocation along M and N (multiples of 4; accumulators are vec4s along N)
//   WGX, WGY  workgroup size; a workgroup covers BM = WGY·TM rows and BN = WGX·TN columns
//   BK        depth of the shared-memory tiles of `matmul_smem` (0 for the other kernels)
//   TRANS_A   A is stored [K, M] instead of [M, K]
//   TRANS_B   B is stored [N, K] instead of [K, N] (PyTorch's Linear weight)
//   VEC_A     A's contiguous dimension is a multiple of 4, so 4 consecutive elements are one vec4
//   VEC_B     likewise for B
//   VEC_N     N is a multiple of 4: output, bias and residual rows are vec4-aligned
// Transposes and alignment are constants rather than uniforms because a uniform branch is executed
// with masks (both sides) on SIMD-on-CPU drivers such as lavapipe.
//
// The two register-blocked entry points, `matmul_reg` and `matmul_smem`, are also prepended: the
// driver writes their TM×TN block out as straight-line code with one variable per accumulator. A
// `for` over TM and TN with an array of accumulators would be shorter, but naga bounds every loop
// with an extra exit counter, which stops the driver from unrolling it, and the array then lives in
// indexed memory: 2.5× slower on lavapipe. Everything they share lives here.
//
// Every buffer is bound as array<vec4<f32>> so that aligned operands can be read four elements per
// load; unaligned ones are read one element at a time through `a[i >> 2][i & 3]`. Pool buffers are
// multiples of 32 bytes, so the vec4 view always covers the whole tensor. (Wide loads are for GPUs:
// lavapipe pays per element and lane either way, so there only the elements loaded per FMA count.)
//
// Edges: rows and columns past M and N are clamped to the last valid one (or quad) when loading —
// the result is computed but never stored — so the inner loops carry no bounds tests; stores are
// guarded.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    rank: u32,     // number of batch dimensions
    m0: u32,       // first row, column and batch entry of this dispatch (grids larger than 65535
    n0: u32,       // workgroups per dimension are split into several dispatches)
    b0: u32,
    act: u32,
    has_bias: u32,
    has_res: u32,
    alpha: f32,
    _pad: u32,
    bshape: array<vec4<u32>, 2>, // batch dimensions of the output
    sa: array<vec4<u32>, 2>,     // element strides per batch dimension (0 where broadcast)
    sb: array<vec4<u32>, 2>,
    sr: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ma: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> mb: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> mbias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mres: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> mout: array<vec4<f32>>;

// The activation codes ACT_* are declared by the driver too (src/ops/matmul/codegen.rs).

const TN4: u32 = TN / 4u;
const BM: u32 = WGY * TM;
const BN: u32 = WGX * TN;

fn lda(i: u32) -> f32 {
    return ma[i >> 2u][i & 3u];
}

fn ldb(i: u32) -> f32 {
    return mb[i >> 2u][i & 3u];
}

fn dim(arr: array<vec4<u32>, 2>, d: u32) -> u32 {
    return arr[d / 4u][d % 4u];
}

// Element offsets of batch entry `z` in A, B and the residual.
fn batch_offsets(z: u32) -> vec3<u32> {
    var rem = z;
    var o = vec3<u32>(0u, 0u, 0u);
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let s = dim(p.bshape, du);
        let c = rem % s;
        rem = rem / s;
        o = o + c * vec3<u32>(dim(p.sa, du), dim(p.sb, du), dim(p.sr, du));
    }
    return o;
}

// Must stay the same approximation as erf_approx in elementwise.wgsl (|error| < 1.2e-7), so a fused
// GELU equals the unfused one.
fn erf_approx(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
        t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
        t * (-0.82215223 + t * 0.17087277)))))))));
    let e = 1.0 - r;
    return select(-e, e, x >= 0.0);
}

fn sigmoid(x: f32) -> f32 {
    // Two branches keep exp from overflowing for large |x|.
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

fn act1(x: f32) -> f32 {
    switch p.act {
        case ACT_SILU: { return x * sigmoid(x); }
        case ACT_GELU: { return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476)); }
        case ACT_RELU: { return max(x, 0.0); }
        default: { return x; }
    }
}

fn act4(v: vec4<f32>) -> vec4<f32> {
    if (p.act == ACT_NONE) {
        return v;
    }
    return vec4<f32>(act1(v.x), act1(v.y), act1(v.z), act1(v.w));
}

// acc + Σ_q a[q]·b_q: four steps of K for four columns (the generated kernels' inner statement).
fn fma4(acc: vec4<f32>, a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(a.w), b3, fma(vec4<f32>(a.z), b2, fma(vec4<f32>(a.y), b1, fma(vec4<f32>(a.x), b0, acc))));
}

// Epilogue for the four outputs (row, col..col+4) of batch entry `z`; `v_in` is alpha·(A@B). The
// generated kernels inline it once, in a loop over their outputs (see store_accumulators in the
// driver): an inlined copy per accumulator would multiply compile time.
fn finish4(z: u32, r_off: u32, row: u32, col: u32, v_in: vec4<f32>) {
    if (row >= p.m || col >= p.n) {
        return;
    }
    var v = v_in;
    let o = z * p.m * p.n + row * p.n + col;
    let ro = r_off + row * p.n + col;
    if (VEC_N) {
        if (p.has_bias != 0u) {
            v = v + mbias[col >> 2u];
        }
        v = act4(v);
        if (p.has_res != 0u) {
            v = v + mres[ro >> 2u];
        }
        mout[o >> 2u] = v;
    } else {
        for (var c = 0u; c < 4u; c++) {
            if (col + c < p.n) {
                var x = v[c];
                if (p.has_bias != 0u) {
                    let bi = col + c;
                    x = x + mbias[bi >> 2u][bi & 3u];
                }
                x = act1(x);
                if (p.has_res != 0u) {
                    let ri = ro + c;
                    x = x + mres[ri >> 2u][ri & 3u];
                }
                let oi = o + c;
                mout[oi >> 2u][oi & 3u] = x;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Shared-memory staging for `matmul_smem` (real GPUs): the workgroup stages a BK-deep slice of its BM
// rows of A and BN columns of B in workgroup memory, stored k-major so each invocation reads its TM
// rows and TN columns as vec4s. Global loads are scalar and cooperative, the fastest-varying index
// following each operand's contiguous dimension so neighbouring invocations load neighbouring
// addresses; elements past K are stored as zeros so they add nothing.

const NT: u32 = WGX * WGY;
// BK is 0 for the other kernels; the whole module is validated whatever the entry point.
const BKS: u32 = max(BK, 1u);
const SMEM_A: u32 = BKS * BM / 4u;
const SMEM_B: u32 = BKS * BN / 4u;
var<workgroup> sa_tile: array<vec4<f32>, SMEM_A>; // [BK][BM / 4]
var<workgroup> sb_tile: array<vec4<f32>, SMEM_B>; // [BK][BN / 4]

fn stage_tiles(k0: u32, tile_row: u32, tile_col: u32, lidx: u32, offs: vec3<u32>) {
    let mm = p.m;
    let nn = p.n;
    let kk = p.k;
    for (var e = lidx; e < BM * BKS; e += NT) {
        var r: u32;
        var q: u32;
        if (TRANS_A) {
            r = e % BM;
            q = e / BM;
        } else {
            q = e % BKS;
            r = e / BKS;
        }
        let row = min(tile_row + r, mm - 1u);
        let k = k0 + q;
        var v = 0.0;
        if (k < kk) {
            if (TRANS_A) {
                v = lda(offs.x + k * mm + row);
            } else {
                v = lda(offs.x + row * kk + k);
            }
        }
        let si = q * BM + r;
        sa_tile[si >> 2u][si & 3u] = v;
    }
    for (var e = lidx; e < BN * BKS; e += NT) {
        var c: u32;
        var q: u32;
        if (TRANS_B) {
            q = e % BKS;
            c = e / BKS;
        } else {
            c = e % BN;
            q = e / BN;
        }
        let col = min(tile_col + c, nn - 1u);
        let k = k0 + q;
        var v = 0.0;
        if (k < kk) {
            if (TRANS_B) {
                v = ldb(offs.y + col * kk + k);
            } else {
                v = ldb(offs.y + k * nn + col);
            }
        }
        let si = q * BN + c;
        sb_tile[si >> 2u][si & 3u] = v;
    }
}

// ---------------------------------------------------------------------------------------------------
// The textbook kernel, kept as the yardstick for benchmarks: 16×16 shared-memory tiles, one output per
// invocation. Ignores TM, TN, WGX, WGY and BK.

const BT: u32 = 16u;
var<workgroup> ta_tile: array<f32, 256>; // [16 rows][16 k]
var<workgroup> tb_tile: array<f32, 256>; // [16 k][16 cols]

@compute @workgroup_size(16, 16, 1)
fn matmul_baseline(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let z = p.b0 + wg.z;
    let row = p.m0 + wg.y * BT + lid.y;
    let col = p.n0 + wg.x * BT + lid.x;
    let offs = batch_offsets(z);
    let mm = p.m;
    let nn = p.n;
    let kk_all = p.k;
    var acc = 0.0;
    for (var k0 = 0u; k0 < kk_all; k0 += BT) {
        let ka = k0 + lid.x;
        var va = 0.0;
        if (row < mm && ka < kk_all) {
            if (TRANS_A) {
                va = lda(offs.x + ka * mm + row);
            } else {
                va = lda(offs.x + row * kk_all + ka);
            }
        }
        ta_tile[lid.y * BT + lid.x] = va;
        let kb = k0 + lid.y;
        var vb = 0.0;
        if (col < nn && kb < kk_all) {
            if (TRANS_B) {
                vb = ldb(offs.y + col * kk_all + kb);
            } else {
                vb = ldb(offs.y + kb * nn + col);
            }
        }
        tb_tile[lid.y * BT + lid.x] = vb;
        workgroupBarrier();
        for (var q = 0u; q < BT; q++) {
            acc = fma(ta_tile[lid.y * BT + q], tb_tile[q * BT + lid.x], acc);
        }
        workgroupBarrier();
    }
    if (row < mm && col < nn) {
        finish1(z, offs.z, row, col, p.alpha * acc);
    }
}

fn finish1(z: u32, r_off: u32, row: u32, col: u32, v: f32) {
    var x = v;
    if (p.has_bias != 0u) {
        x = x + mbias[col >> 2u][col & 3u];
    }
    x = act1(x);
    if (p.has_res != 0u) {
        let ri = r_off + row * p.n + col;
        x = x + mres[ri >> 2u][ri & 3u];
    }
    let oi = z * p.m * p.n + row * p.n + col;
    mout[oi >> 2u][oi & 3u] = x;
}
