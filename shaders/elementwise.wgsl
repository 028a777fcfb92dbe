// Elementwise and broadcasting ops. One invocation per output element; the 1-D index is folded over
// x and y of the grid (see Gpu::grid_1d). Broadcasting reads each operand through its own strides
// (0 along broadcast dimensions), so no operand is ever materialised at the output's shape.

struct Params {
    n: u32,
    op: u32,
    rank: u32,
    _pad0: u32,
    alpha: f32,
    beta: f32,
    _pad1: u32,
    _pad2: u32,
    shape: array<vec4<u32>, 2>,
    sa: array<vec4<u32>, 2>,
    sb: array<vec4<u32>, 2>,
    sc: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

// The operation codes OP_* are declared once, by the driver (src/ops/elementwise.rs), and
// prepended to this source.

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// erf with |error| < 1.2e-7 everywhere (Numerical Recipes' erfc Chebyshev fit), so GELU agrees with
// the exact erf form used by PyTorch and diffusers.
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

fn tanh_stable(x: f32) -> f32 {
    // WGSL's tanh is unspecified for large |x| on some drivers; clamp where it is exactly ±1 in f32.
    let c = clamp(x, -15.0, 15.0);
    return tanh(c);
}

fn apply_unary(op: u32, x: f32) -> f32 {
    switch op {
        case OP_SILU: { return x * sigmoid(x); }
        case OP_GELU: { return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476)); }
        case OP_GELU_TANH: {
            return 0.5 * x * (1.0 + tanh_stable(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        }
        case OP_RELU: { return max(x, 0.0); }
        case OP_TANH: { return tanh_stable(x); }
        case OP_SIGMOID: { return sigmoid(x); }
        case OP_EXP: { return exp(x); }
        default: { return x; }
    }
}


@group(0) @binding(1) var<storage, read> ua: array<f32>;
@group(0) @binding(2) var<storage, read_write> uout: array<f32>;

// out = f(alpha * x + beta)
@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    uout[i] = apply_unary(p.op, p.alpha * ua[i] + p.beta);
}

// Offsets of output element i in up to three broadcast operands.
fn broadcast_offsets(i: u32) -> vec3<u32> {
    var rem = i;
    var o = vec3<u32>(0u, 0u, 0u);
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        // Index the uniform arrays in place: passing them to a helper by value would copy them into
        // private memory, which software rasterisers turn into per-lane stack traffic (10x slower).
        let q = du / 4u;
        let r = du % 4u;
        let s = p.shape[q][r];
        let c = rem % s;
        rem = rem / s;
        o = o + c * vec3<u32>(p.sa[q][r], p.sb[q][r], p.sc[q][r]);
    }
    return o;
}

@group(0) @binding(1) var<storage, read> ba: array<f32>;
@group(0) @binding(2) var<storage, read> bb: array<f32>;
@group(0) @binding(3) var<storage, read_write> bout: array<f32>;

@compute @workgroup_size(256)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let o = broadcast_offsets(i);
    let a = ba[o.x];
    let b = bb[o.y];
    var r: f32;
    switch p.op {
        case OP_ADD: { r = a + b; }
        case OP_SUB: { r = a - b; }
        case OP_MUL: { r = a * b; }
        case OP_DIV: { r = a / b; }
        case OP_AXPBY: { r = p.alpha * a + p.beta * b; }
        case OP_MAX: { r = max(a, b); }
        default: { r = a; }
    }
    bout[i] = r;
}

@group(0) @binding(1) var<storage, read> fh: array<f32>;
@group(0) @binding(2) var<storage, read> fs: array<f32>;
@group(0) @binding(3) var<storage, read> fb: array<f32>;
@group(0) @binding(4) var<storage, read_write> fout: array<f32>;

// FiLM: out = (1 + scale) * h + shift, then the unary op `p.op` (AFFINE = none).
@compute @workgroup_size(256)
fn film(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let o = broadcast_offsets(i);
    fout[i] = apply_unary(p.op, (1.0 + fs[o.y]) * fh[o.x] + fb[o.z]);
}
