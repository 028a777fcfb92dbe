// Fused Gaussian reverse steps (philox.wgsl is prepended). One invocation per element of x_t reads the
// model output (combining classifier-free guidance halves first), derives x̂0 and ε̂ for the prediction
// type, clips x̂0, and writes x_{t−1} — plus x̂0 and ε̂ when asked — in one pass.
//
// DDPM, DDIM and every solver step are x_{t−1} = c_x0·x̂0 + c_eps·ε̂ + c_xt·x_t + σ·z; only the coefficients differ
// (computed on the CPU). The ε-form DDPM mean of labml and the conditional snippet,
// (1/√α_t)(x_t − β_t/√(1−ᾱ_t)·ε̂), keeps its own evaluation order so it rounds as they do.

struct UParams {
    n: u32,
    flags: u32,
    pred: u32,
    _pad0: u32,
    sab: f32,
    s1mab: f32,
    c_x0: f32,
    c_eps: f32,
    c_xt: f32,
    sigma: f32,
    clip: f32,
    w: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    substream: u32,
    // solver_step only: the weights of the stacked history tensors, and how many there are.
    c_h0: f32,
    c_h1: f32,
    c_h2: f32,
    nhist: u32,
}

@group(0) @binding(0) var<uniform> up: UParams;
@group(0) @binding(1) var<storage, read> ux: array<f32>;
@group(0) @binding(2) var<storage, read> umodel: array<f32>;
@group(0) @binding(3) var<storage, read> unoise: array<f32>;
@group(0) @binding(4) var<storage, read_write> uprev: array<f32>;
@group(0) @binding(5) var<storage, read_write> ux0: array<f32>;
@group(0) @binding(6) var<storage, read_write> ueps: array<f32>;

// The flag bits F_* and prediction codes PRED_* are declared once, by the driver (src/ops/update.rs), and
// prepended to this source.

fn gaussian_step(i: u32, hist: f32) {
    let x = ux[i];
    var m: f32;
    if ((up.flags & F_CFG) != 0u) {
        // Stacked halves [2N, ..]: element i of the conditional and of the unconditional half.
        let uncond_first = (up.flags & F_UNCOND_FIRST) != 0u;
        let c = umodel[select(i, i + up.n, uncond_first)];
        let u = umodel[select(i + up.n, i, uncond_first)];
        m = u + up.w * (c - u);
    } else {
        m = umodel[i];
    }
    var x0: f32;
    var eps: f32;
    switch up.pred {
        case PRED_EPSILON: {
            eps = m;
            x0 = (x - up.s1mab * m) / up.sab;
        }
        case PRED_SAMPLE: {
            x0 = m;
            eps = (x - up.sab * m) / up.s1mab;
        }
        default: {
            x0 = up.sab * x - up.s1mab * m;
            eps = up.sab * m + up.s1mab * x;
        }
    }
    if ((up.flags & F_CLIP) != 0u) {
        x0 = clamp(x0, -up.clip, up.clip);
        if ((up.flags & F_EPS_FROM_CLIPPED) != 0u) {
            eps = (x - up.sab * x0) / up.s1mab;
        }
    }
    var xp: f32;
    if ((up.flags & F_EPS_FORM) != 0u) {
        xp = up.c_xt * (x - up.c_eps * eps);
    } else {
        xp = up.c_x0 * x0 + up.c_eps * eps + up.c_xt * x + hist;
    }
    if (up.sigma != 0.0) {
        if ((up.flags & F_NOISE_PHILOX) != 0u) {
            xp = xp + up.sigma * rng_normal(philox_words(up.seed_lo, up.seed_hi, up.stream, up.substream, i));
        } else if ((up.flags & F_NOISE_INJECTED) != 0u) {
            xp = xp + up.sigma * unoise[i];
        }
    }
    uprev[i] = xp;
    if ((up.flags & F_WRITE_X0) != 0u) {
        ux0[i] = x0;
    }
    if ((up.flags & F_WRITE_EPS) != 0u) {
        ueps[i] = eps;
    }
}

// DDPM ancestral step (diffusers DDPMScheduler.step, labml p_sample).
@compute @workgroup_size(256)
fn ddpm_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= up.n) { return; }
    gaussian_step(i, 0.0);
}

// DDIM step with η (diffusers DDIMScheduler.step).
@compute @workgroup_size(256)
fn ddim_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= up.n) { return; }
    gaussian_step(i, 0.0);
}

// One step of a multistep or σ-space solver (DPM-Solver++, Euler, Heun, UniPC, PNDM; the process
// layer turns each into these coefficients): the DDIM form plus Σ_j c_hj·hist_j over earlier model
// outputs or states, so a second-order update is still one pass over memory. Without history the
// driver dispatches ddim_step instead.
@compute @workgroup_size(256)
fn solver_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= up.n) { return; }
    // The history rides in the noise binding, after the injected noise when there is some: a
    // seventh binding made this pass several times slower on lavapipe.
    var off = 0u;
    if ((up.flags & F_NOISE_INJECTED) != 0u) { off = up.n; }
    // Branch-free: a branch around a storage read costs llvmpipe (lavapipe) a masked gather per
    // lane, several times the whole pass. The driver binds at least one history tensor and zeroes
    // the weights past nhist; their reads are clamped into the buffer (finite values × 0).
    let last = arrayLength(&unoise) - 1u;
    let h = up.c_h0 * unoise[off + i]
        + up.c_h1 * unoise[min(off + up.n + i, last)]
        + up.c_h2 * unoise[min(off + 2u * up.n + i, last)];
    gaussian_step(i, h);
}
