// 2-D convolution (NCHW) computed directly, for software GPUs and small channel counts.
//
// The implicit GEMM in conv.wgsl tiles 64 output channels × 64 pixels through shared memory; on
// lavapipe every barrier is a coroutine switch and a 16-channel layer wastes three quarters of each
// tile. Here each invocation owns TM output channels × TN neighbouring output pixels of one row and
// needs no shared memory: per (input channel, kernel row) it loads one input row segment of ROW values
// and TM·KW weights, then does TM·TN·KW multiply-adds from registers.

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
    k: u32,
    pixels: u32,
    _pad: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> cp: ConvParams;
@group(0) @binding(1) var<storage, read> cx: array<f32>;
@group(0) @binding(2) var<storage, read> cw: array<f32>;
@group(0) @binding(3) var<storage, read> cb: array<f32>;
@group(0) @binding(4) var<storage, read_write> cy: array<f32>;

// Input at column `ix` of the row starting at `base`; zero in the padding.
fn ld(base: u32, ix: i32) -> f32 {
    if (ix < 0 || ix >= i32(cp.w)) { return 0.0; }
    return cx[base + u32(ix)];
}

fn store(nb: u32, co: u32, oy: u32, ox: u32, v: f32) {
    if (co >= cp.cout || ox >= cp.wo) { return; }
    var bias = 0.0;
    if (cp.has_bias != 0u) { bias = cb[co]; }
    cy[((nb * cp.cout + co) * cp.ho + oy) * cp.wo + ox] = v + bias;
}

// The entry point `conv2d_direct` is generated for each (KH, KW, STRIDE, TM, TN) by src/ops/conv.rs
// as straight-line code over scalar accumulators: LLVM keeps scalars in registers, whereas small
// arrays indexed in loops it does not fully unroll end up in memory.
