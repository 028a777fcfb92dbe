// Embedding lookups: table rows gathered by index, and diffusers' sinusoidal timestep embedding.
// One invocation per output element, index folded over x and y (Gpu::grid_1d).

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

struct GatherParams {
    // Output elements: ids · d.
    n: u32,
    d: u32,
    // Table rows: an id at or past this reads zeros.
    rows: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> gp: GatherParams;
// Raw 32-bit words: the gather moves bits, so f32 and u32 tables share one kernel.
@group(0) @binding(1) var<storage, read> gtable: array<u32>;
@group(0) @binding(2) var<storage, read> gids: array<u32>;
@group(0) @binding(3) var<storage, read_write> gout: array<u32>;

@compute @workgroup_size(256)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= gp.n) { return; }
    let r = i / gp.d;
    let c = i - r * gp.d;
    let id = gids[r];
    var v = 0u;
    if (id < gp.rows) { v = gtable[id * gp.d + c]; }
    gout[i] = v;
}

struct TimeParams {
    // Output elements: batch · dim.
    n: u32,
    dim: u32,
    half: u32,
    flip: u32,
    // 1 when the timesteps are u32 (converted like torch's `.float()`), 0 when f32.
    integer_t: u32,
    // −ln(max_period), rounded to f32 as torch does when it scales a float32 arange.
    neg_log_period: f32,
    // half − downscale_freq_shift
    denom: f32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> tp: TimeParams;
@group(0) @binding(1) var<storage, read> tt: array<u32>;
@group(0) @binding(2) var<storage, read_write> tout: array<f32>;

// 2π split so that k · TWO_PI_HI is exact for |k| < 2^16: Cody–Waite reduction to [−π, π], where
// WGSL's sin and cos are accurate (outside it their error is unspecified and large on some GPUs).
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

fn reduce_angle(x: f32) -> f32 {
    let k = round(x * INV_TWO_PI);
    return (x - k * TWO_PI_HI) - k * TWO_PI_LO;
}

// exp to about 1 ulp from correctly rounded +, −, × only. The builtin exp may be several ulp off (it
// is exp2 of a rounded product on most GPUs), and at t ≈ 1000 every ulp of a frequency moves the
// angle by ~6e-5: this keeps the embedding as close to torch's float32 result as the format allows.
const LOG2E: f32 = 1.4426950408889634;
const LN2_HI: f32 = 0.693145751953125;
const LN2_LO: f32 = 1.4286068202862268e-06;

fn exp_precise(x: f32) -> f32 {
    let n = round(x * LOG2E);
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor to r^7 on |r| ≤ ln2/2: truncation below 1e-8 relative.
    var q = 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    q = q * r + 1.0;
    return ldexp(q * r + 1.0, i32(n));
}

// diffusers `get_timestep_embedding`: row b is [sin(t_b·f_j·scale)]_j ++ [cos(…)]_j (halves swapped
// when flip_sin_to_cos), f_j = exp(−ln(max_period)·j / (half − shift)), zero-padded when dim is odd.
@compute @workgroup_size(256)
fn timestep_embedding(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= tp.n) { return; }
    let b = i / tp.dim;
    let c = i - b * tp.dim;
    if (c >= 2u * tp.half) {
        tout[i] = 0.0;
        return;
    }
    let j = c % tp.half;
    let first = c < tp.half;
    // torch's order of float32 operations: exponent, exp, times t, times scale.
    let freq = exp_precise(tp.neg_log_period * f32(j) / tp.denom);
    var t = bitcast<f32>(tt[b]);
    if (tp.integer_t != 0u) { t = f32(tt[b]); }
    let arg = reduce_angle(tp.scale * (t * freq));
    let use_sin = first != (tp.flip != 0u);
    tout[i] = select(cos(arg), sin(arg), use_sin);
}

struct FourierParams {
    // Output elements: batch · 2 · size.
    n: u32,
    // Frequencies (the weight's length); each row is 2 · size wide.
    size: u32,
    flip: u32,
    // 1: the embedding takes ln t (diffusers' default `log=True`: t is a noise level σ).
    log_t: u32,
}

@group(0) @binding(0) var<uniform> fp: FourierParams;
@group(0) @binding(1) var<storage, read> ft: array<f32>;
@group(0) @binding(2) var<storage, read> fw: array<f32>;
@group(0) @binding(3) var<storage, read_write> fout: array<f32>;

const PI_F32: f32 = 3.14159265358979323846;
const SQRT2: f32 = 1.4142135623730951;

// ln x to about 1 ulp for normal x > 0 from +, −, ×, ÷ only (the builtin log was 2 ulp off on
// lavapipe, and the Fourier angle multiplies its error by 2π·|w| ≈ 250): x = m·2^e with m in
// [√½, √2), ln m = 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.172, odd series to s^11.
fn ln_precise(x: f32) -> f32 {
    let fe = frexp(x);
    var m = fe.fract * 2.0;
    var e = f32(fe.exp - 1);
    if (m > SQRT2) {
        m = m * 0.5;
        e = e + 1.0;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    var q = 2.0 / 11.0;
    q = q * s2 + 2.0 / 9.0;
    q = q * s2 + 2.0 / 7.0;
    q = q * s2 + 2.0 / 5.0;
    q = q * s2 + 2.0 / 3.0;
    let lnm = 2.0 * s + s * s2 * q;
    return e * LN2_HI + (e * LN2_LO + lnm);
}

// diffusers' GaussianFourierProjection: row b is [sin(2π·w_j·ln t_b)]_j ++ [cos(…)]_j (halves
// swapped when flip), computed in torch's float32 order ((ln t · w) · 2) · π.
@compute @workgroup_size(256)
fn fourier_embedding(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= fp.n) { return; }
    let row = 2u * fp.size;
    let b = i / row;
    let c = i - b * row;
    let j = c % fp.size;
    let first = c < fp.size;
    var t = ft[b];
    if (fp.log_t != 0u) { t = ln_precise(t); }
    let arg = reduce_angle(((t * fw[j]) * 2.0) * PI_F32);
    let use_sin = first != (fp.flip != 0u);
    fout[i] = select(cos(arg), sin(arg), use_sin);
}

struct NearestParams {
    // Query rows, their width, table rows.
    m: u32,
    d: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> np: NearestParams;
@group(0) @binding(1) var<storage, read> nz: array<f32>;
@group(0) @binding(2) var<storage, read> ntable: array<f32>;
@group(0) @binding(3) var<storage, read_write> nids: array<u32>;

// Vector quantisation: the index of the table row nearest each query row (squared Euclidean
// distance; the first of equal ones, as torch's argmin).
@compute @workgroup_size(256)
fn nearest_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= np.m) { return; }
    var best = 0u;
    var best_d = 3.4e38;
    for (var r = 0u; r < np.k; r++) {
        var dist = 0.0;
        for (var c = 0u; c < np.d; c++) {
            let diff = nz[i * np.d + c] - ntable[r * np.d + c];
            dist += diff * diff;
        }
        if (dist < best_d) {
            best_d = dist;
            best = r;
        }
    }
    nids[i] = best;
}
