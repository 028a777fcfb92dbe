// Data movement: concatenation, permutation and slicing. One invocation per output element, index
// folded over x and y (Gpu::grid_1d). Buffers are read as raw 32-bit words, so one kernel serves f32
// and u32 tensors alike.
//
// A tensor seen around one dimension `dim` is [outer, size, inner] with outer = ∏ dims before and
// inner = ∏ dims after; concat and slice only need that view.

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

struct ConcatParams {
    // Output elements this dispatch writes: outer · Σ sizes · inner.
    n: u32,
    inner: u32,
    // Size of the output along dim, and where this dispatch's first input starts along it.
    out_size: u32,
    offset: u32,
    // Sizes along dim of up to four inputs (unused ones 0), and their sum.
    sizes: vec4<u32>,
    total: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> cp: ConcatParams;
@group(0) @binding(1) var<storage, read> c0: array<u32>;
@group(0) @binding(2) var<storage, read> c1: array<u32>;
@group(0) @binding(3) var<storage, read> c2: array<u32>;
@group(0) @binding(4) var<storage, read> c3: array<u32>;
@group(0) @binding(5) var<storage, read_write> cout: array<u32>;

// Up to four inputs per dispatch: with the output that is five storage bindings, within the six
// every WebGPU device offers. Longer lists take several dispatches, each writing its own slab.
@compute @workgroup_size(256)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= cp.n) { return; }
    let r = i % cp.inner;
    let t = i / cp.inner;
    let o = t / cp.total;
    var c = t - o * cp.total;
    let dst = (o * cp.out_size + cp.offset + c) * cp.inner + r;
    if (c < cp.sizes.x) {
        cout[dst] = c0[(o * cp.sizes.x + c) * cp.inner + r];
        return;
    }
    c = c - cp.sizes.x;
    if (c < cp.sizes.y) {
        cout[dst] = c1[(o * cp.sizes.y + c) * cp.inner + r];
        return;
    }
    c = c - cp.sizes.y;
    if (c < cp.sizes.z) {
        cout[dst] = c2[(o * cp.sizes.z + c) * cp.inner + r];
        return;
    }
    c = c - cp.sizes.z;
    cout[dst] = c3[(o * cp.sizes.w + c) * cp.inner + r];
}

struct PermuteParams {
    n: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    // Output shape, and for each output dimension the input stride it walks.
    shape: array<vec4<u32>, 2>,
    strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> pp: PermuteParams;
@group(0) @binding(1) var<storage, read> px: array<u32>;
@group(0) @binding(2) var<storage, read_write> pout: array<u32>;

fn dim8(arr: array<vec4<u32>, 2>, d: u32) -> u32 {
    return arr[d / 4u][d % 4u];
}

@compute @workgroup_size(256)
fn permute(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pp.n) { return; }
    var rem = i;
    var src = 0u;
    for (var d = i32(pp.rank) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let s = dim8(pp.shape, du);
        src = src + (rem % s) * dim8(pp.strides, du);
        rem = rem / s;
    }
    pout[i] = px[src];
}

struct SliceParams {
    n: u32,
    inner: u32,
    // Length of the slice, size of the input along dim, first index taken.
    len: u32,
    size: u32,
    start: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> sp: SliceParams;
@group(0) @binding(1) var<storage, read> sx: array<u32>;
@group(0) @binding(2) var<storage, read_write> sout: array<u32>;

@compute @workgroup_size(256)
fn slice(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= sp.n) { return; }
    let r = i % sp.inner;
    let t = i / sp.inner;
    let o = t / sp.len;
    let c = t - o * sp.len;
    sout[i] = sx[(o * sp.size + sp.start + c) * sp.inner + r];
}
