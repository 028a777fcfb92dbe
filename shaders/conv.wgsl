// 2-D convolution (NCHW) as an implicit GEMM, and nearest-neighbour 2× upsampling.
//
// The convolution is out[co, pixel] = Σ_k W[co, k] · X̂[k, pixel] with k = (ci, ky, kx) and pixel =
// (n, oy, ox): the weight is already a row-major [Cout, K] matrix and X̂ (im2col) is never built —
// each tile of it is gathered straight from the input with the padding resolved by a bounds test.
// A workgroup computes a BM × BN tile of the output (output channels × pixels) in BK-deep steps
// through shared memory; each of its 256 invocations keeps a TM × TN block of accumulators, so every
// value loaded from shared memory feeds several multiply-adds.

struct ConvParams {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    ho: u32,
    wo: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    has_bias: u32,
    // cin · kh · kw
    k: u32,
    // n · ho · wo
    pixels: u32,
    _pad: u32,
}

// BM, BN (the output tile: channels × pixels) come from the driver, which dispatches with them.
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
// BN / TN invocations across pixels, BM / TM across output channels: 16 × 16 = 256.
const TX: u32 = 16u;

@group(0) @binding(0) var<uniform> cp: ConvParams;
@group(0) @binding(1) var<storage, read> cx: array<f32>;
@group(0) @binding(2) var<storage, read> cw: array<f32>;
@group(0) @binding(3) var<storage, read> cb: array<f32>;
@group(0) @binding(4) var<storage, read_write> cy: array<f32>;

// k-major so the inner loop reads TM consecutive channels and TN pixels strided by TX.
var<workgroup> a_tile: array<f32, 1024>; // BK × BM
var<workgroup> b_tile: array<f32, 1024>; // BK × BN

// Input value at im2col row `k`, column `pixel`; zero in the padding and past the edges.
fn im2col(k: u32, pixel: u32) -> f32 {
    if (k >= cp.k || pixel >= cp.pixels) { return 0.0; }
    let khw = cp.kh * cp.kw;
    let ci = k / khw;
    let kr = k - ci * khw;
    let ky = kr / cp.kw;
    let kx = kr - ky * cp.kw;
    let hw_out = cp.ho * cp.wo;
    let nb = pixel / hw_out;
    let pr = pixel - nb * hw_out;
    let oy = pr / cp.wo;
    let ox = pr - oy * cp.wo;
    // Unsigned arithmetic: a position left of / above the padding wraps to a huge value and fails
    // the `< h` / `< w` test just like one past the far edge.
    let iy = oy * cp.stride + ky - cp.pad_top;
    let ix = ox * cp.stride + kx - cp.pad_left;
    if (iy >= cp.h || ix >= cp.w) { return 0.0; }
    return cx[((nb * cp.cin + ci) * cp.h + iy) * cp.w + ix];
}

@compute @workgroup_size(256)
fn conv2d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Pixel tiles are folded over x and z (there can be more than 65,535), channel tiles run over y.
    let pix0 = (wid.x + wid.z * nwg.x) * BN;
    let co0 = wid.y * BM;
    if (pix0 >= cp.pixels) { return; }
    let tx = lid % TX;
    let ty = lid / TX;

    var acc: array<f32, 16>; // TM × TN
    for (var i = 0u; i < TM * TN; i = i + 1u) { acc[i] = 0.0; }

    for (var k0 = 0u; k0 < cp.k; k0 = k0 + BK) {
        // 1024 elements per tile, 4 per invocation. Consecutive invocations read consecutive k of a
        // weight row, and consecutive pixels of an input row.
        for (var r = 0u; r < 4u; r = r + 1u) {
            let e = lid + r * 256u;
            let m = e / BK;
            let kk = e % BK;
            let co = co0 + m;
            let k = k0 + kk;
            var wv = 0.0;
            if (co < cp.cout && k < cp.k) { wv = cw[co * cp.k + k]; }
            a_tile[kk * BM + m] = wv;
            let kb = e / BN;
            let nn = e % BN;
            b_tile[kb * BN + nn] = im2col(k0 + kb, pix0 + nn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk = kk + 1u) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < TM; i = i + 1u) { a[i] = a_tile[kk * BM + ty * TM + i]; }
            for (var j = 0u; j < TN; j = j + 1u) { b[j] = b_tile[kk * BN + tx + j * TX]; }
            for (var i = 0u; i < TM; i = i + 1u) {
                for (var j = 0u; j < TN; j = j + 1u) {
                    acc[i * TN + j] = acc[i * TN + j] + a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }

    let hw_out = cp.ho * cp.wo;
    for (var i = 0u; i < TM; i = i + 1u) {
        let co = co0 + ty * TM + i;
        if (co >= cp.cout) { continue; }
        var bias = 0.0;
        if (cp.has_bias != 0u) { bias = cb[co]; }
        for (var j = 0u; j < TN; j = j + 1u) {
            let pixel = pix0 + tx + j * TX;
            if (pixel >= cp.pixels) { continue; }
            let nb = pixel / hw_out;
            let pr = pixel - nb * hw_out;
            cy[(nb * cp.cout + co) * hw_out + pr] = acc[i * TN + j] + bias;
        }
    }
}

struct UpParams {
    // Output elements.
    n: u32,
    h: u32,
    w: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> up: UpParams;
@group(0) @binding(1) var<storage, read> ux: array<f32>;
@group(0) @binding(2) var<storage, read_write> uout: array<f32>;

@compute @workgroup_size(256)
fn upsample_nearest2x(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= up.n) { return; }
    let w2 = up.w * 2u;
    let plane = up.h * 2u * w2;
    let nc = i / plane;
    let r = i - nc * plane;
    let oy = r / w2;
    let ox = r - oy * w2;
    uout[i] = ux[(nc * up.h + oy / 2u) * up.w + ox / 2u];
}

// diffusers' FIR resampling with the (1, 3, 3, 1) kernel (`upsample_2d` / `downsample_2d`, zero
// outside the image), separable, so each tap's weight is a product of two per-axis weights — all
// exact binary fractions, as in torch's normalised kernel. `up.h`, `up.w` are the input's sides.

// Up: per axis, output 2m blends input m (3/4) with m − 1 (1/4), output 2m + 1 blends m (3/4) with
// m + 1 (1/4).
@compute @workgroup_size(256)
fn fir_upsample2x(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= up.n) { return; }
    let w2 = up.w * 2u;
    let plane = up.h * 2u * w2;
    let nc = i / plane;
    let r = i - nc * plane;
    let oy = r / w2;
    let ox = r - oy * w2;
    let base = nc * up.h * up.w;
    let dy = select(-1, 1, (oy & 1u) == 1u);
    let dx = select(-1, 1, (ox & 1u) == 1u);
    var acc = 0.0;
    for (var a = 0; a < 2; a++) {
        let y = i32(oy / 2u) + a * dy;
        if (y < 0 || y >= i32(up.h)) { continue; }
        let wy = select(0.75, 0.25, a == 1);
        for (var b = 0; b < 2; b++) {
            let x = i32(ox / 2u) + b * dx;
            if (x < 0 || x >= i32(up.w)) { continue; }
            let wx = select(0.75, 0.25, b == 1);
            acc += (wy * wx) * ux[base + u32(y) * up.w + u32(x)];
        }
    }
    uout[i] = acc;
}

// Down: output m reads inputs 2m − 1 .. 2m + 2 with weights (1, 3, 3, 1) / 8 per axis; the output
// side is ⌊side / 2⌋.
@compute @workgroup_size(256)
fn fir_downsample2x(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= up.n) { return; }
    let ho = up.h / 2u;
    let wo = up.w / 2u;
    let plane = ho * wo;
    let nc = i / plane;
    let r = i - nc * plane;
    let oy = r / wo;
    let ox = r - oy * wo;
    let base = nc * up.h * up.w;
    let taps = vec4<f32>(1.0, 3.0, 3.0, 1.0);
    var acc = 0.0;
    for (var a = 0; a < 4; a++) {
        let y = i32(oy * 2u) + a - 1;
        if (y < 0 || y >= i32(up.h)) { continue; }
        for (var b = 0; b < 4; b++) {
            let x = i32(ox * 2u) + b - 1;
            if (x < 0 || x >= i32(up.w)) { continue; }
            acc += (taps[a] * taps[b] * 0.015625) * ux[base + u32(y) * up.w + u32(x)];
        }
    }
    uout[i] = acc;
}
