// Discrete-diffusion transitions Q = α I + (1 − α) 1πᵀ and the reverse-step posteriors built from them.
// Rows are over the last axis (K classes). Closed forms never materialise K×K matrices: every Q entry
// is α·[i == j] + (1 − α)·π_j. Coefficients are per batch element (first axis) either from the
// parameter block (shared) or from a [B, stride] tensor.
//
// Binding plan (helpers touch module variables, so an entry point inherits its helpers' bindings):
//   1 = π (or the first matrix), 2 = per-batch coefficients, 3 = x / x0, 4 = x_t ids, then outputs.

struct TParams {
    rows: u32,
    k: u32,
    rows_per_batch: u32,
    flags: u32,
    prior: u32,
    absorb: u32,
    form: u32,
    coef_stride: u32,
    c0: f32,
    c1: f32,
    c2: f32,
    c3: f32,
    n: u32,
    mat_stride_a: u32,
    mat_stride_b: u32,
    c4: f32,
    c5: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> tp: TParams;

// The flag bits F_*, prior codes PRIOR_* and posterior forms FORM_* are declared once, by the
// driver (src/ops/transition.rs), and prepended to this source.

// A finite stand-in for log 0 (WGSL implementations may assume finite math).
const LOG_ZERO: f32 = -1.0e30;
// Hoogeboom's index_to_log_onehot clamps the one-hot at 1e-30.
const LOG_TINY: f32 = -69.07755278982137;

@group(0) @binding(1) var<storage, read> tpi: array<f32>;
@group(0) @binding(2) var<storage, read> tcoef: array<f32>;
@group(0) @binding(3) var<storage, read> tx0: array<u32>;
@group(0) @binding(4) var<storage, read> txt: array<u32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn prior_pi(j: u32) -> f32 {
    switch tp.prior {
        case PRIOR_UNIFORM: { return 1.0 / f32(tp.k); }
        case PRIOR_ABSORBING: { return select(0.0, 1.0, j == tp.absorb); }
        default: { return tpi[j]; }
    }
}

// Coefficient j of batch element b.
fn coef(b: u32, j: u32) -> f32 {
    if ((tp.flags & F_PER_BATCH) != 0u) {
        return tcoef[b * tp.coef_stride + j];
    }
    switch j {
        case 0u: { return tp.c0; }
        case 1u: { return tp.c1; }
        case 2u: { return tp.c2; }
        case 3u: { return tp.c3; }
        case 4u: { return tp.c4; }
        default: { return tp.c5; }
    }
}

// 1 − coefficient j (j = 0: α_t, 1: ᾱ_{t−1}), from the caller's precise value when given.
fn one_minus(b: u32, j: u32) -> f32 {
    if ((tp.flags & F_COMPLEMENT) != 0u) {
        return coef(b, j + 4u);
    }
    return 1.0 - coef(b, j);
}

// ---------------------------------------------------------------------------------------------------
// Materialised matrices: out[b, i, j] = α_b [i == j] + (1 − α_b) π_j, α from the coefficient tensor.

@group(0) @binding(3) var<storage, read_write> mout: array<f32>;

@compute @workgroup_size(256)
fn matrices(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    if (e >= tp.n) { return; }
    let kk = tp.k * tp.k;
    let b = e / kk;
    let i = (e / tp.k) % tp.k;
    let j = e % tp.k;
    let a = tcoef[b];
    mout[e] = select(0.0, a, i == j) + (1.0 - a) * prior_pi(j);
}

// ---------------------------------------------------------------------------------------------------
// Forward marginals q(x_t | x0) = x0 @ Q̄ in closed form.

@group(0) @binding(4) var<storage, read_write> fout: array<f32>;

// From class ids: one output element per invocation.
@compute @workgroup_size(256)
fn forward_ids(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    if (e >= tp.n) { return; }
    let r = e / tp.k;
    let j = e % tp.k;
    let ab = coef(r / tp.rows_per_batch, 0u);
    fout[e] = select(0.0, ab, tx0[r] == j) + (1.0 - ab) * prior_pi(j);
}

@group(0) @binding(3) var<storage, read> fx: array<f32>;

// From probability rows: x @ Q̄ = ᾱ x + (1 − ᾱ)(Σx) π, exact for any row (DiGress's all-zero diagonal
// edge rows stay zero). One row per invocation.
@compute @workgroup_size(256)
fn forward_probs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= tp.rows) { return; }
    let ab = coef(r / tp.rows_per_batch, 0u);
    let base = r * tp.k;
    var s = 0.0;
    for (var c = 0u; c < tp.k; c = c + 1u) {
        s = s + fx[base + c];
    }
    for (var j = 0u; j < tp.k; j = j + 1u) {
        fout[base + j] = ab * fx[base + j] + (1.0 - ab) * s * prior_pi(j);
    }
}

// ---------------------------------------------------------------------------------------------------
// General path: out[r, j] = Σ_i x[r, i] M_b[i, j] (or M_b[j, i] transposed), M per batch or shared.

@group(0) @binding(1) var<storage, read> gx: array<f32>;
@group(0) @binding(2) var<storage, read> gm: array<f32>;
@group(0) @binding(3) var<storage, read_write> gout: array<f32>;

@compute @workgroup_size(256)
fn probs_matmul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    if (e >= tp.n) { return; }
    let r = e / tp.k;
    let j = e % tp.k;
    let mb = (r / tp.rows_per_batch) * tp.mat_stride_a;
    let tr = (tp.flags & F_TRANSPOSE) != 0u;
    var s = 0.0;
    for (var i = 0u; i < tp.k; i = i + 1u) {
        let m = select(gm[mb + i * tp.k + j], gm[mb + j * tp.k + i], tr);
        s = s + gx[r * tp.k + i] * m;
    }
    gout[e] = s;
}

// ---------------------------------------------------------------------------------------------------
// Posteriors. x0 is either logits (f32 bits in tx0) or class ids; what an id means follows each
// reference: moco turns ids into logits log(onehot + 1e-6), Hoogeboom into log(max(onehot, 1e-30)),
// DiGress uses the exact one-hot.

fn x0_logit(r: u32, c: u32) -> f32 {
    if ((tp.flags & F_X0_IDS) != 0u) {
        let hit = tx0[r] == c;
        switch tp.form {
            case FORM_D3PM: { return log(select(1e-6, 1.0 + 1e-6, hit)); }
            case FORM_MULTINOMIAL: { return select(LOG_TINY, 0.0, hit); }
            default: { return select(LOG_ZERO, 0.0, hit); }
        }
    }
    return bitcast<f32>(tx0[r * tp.k + c]);
}

// Softmax statistics of a row of x0 logits: max, Σ exp(l − max), and the same sum without class x_t.
struct RowStats {
    m: f32,
    z: f32,
    z_not: f32,
}

fn row_stats(r: u32, xt: u32) -> RowStats {
    var m = LOG_ZERO;
    for (var c = 0u; c < tp.k; c = c + 1u) {
        m = max(m, x0_logit(r, c));
    }
    var z = 0.0;
    var z_not = 0.0;
    for (var c = 0u; c < tp.k; c = c + 1u) {
        let e = exp(x0_logit(r, c) - m);
        z = z + e;
        if (c != xt) {
            z_not = z_not + e;
        }
    }
    return RowStats(m, z, z_not);
}

// log(ea + b) where ea = exp(la) is given in log space and b ≥ 0 in linear space.
fn log_add_lin(la: f32, b: f32) -> f32 {
    if (!(b > 0.0)) {
        return la;
    }
    let lb = log(b);
    let hi = max(la, lb);
    return hi + log(exp(la - hi) + exp(lb - hi));
}

@group(0) @binding(5) var<storage, read_write> pout: array<f32>;

// One row per invocation; every pass over the row is O(K).
@compute @workgroup_size(256)
fn posterior(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= tp.rows) { return; }
    let b = r / tp.rows_per_batch;
    let a_t = coef(b, 0u);
    let ab_prev = coef(b, 1u);
    let ab_t = coef(b, 2u);
    let last = coef(b, 3u) != 0.0;
    let k = tp.k;
    let base = r * k;
    if (tp.form == FORM_DIGRESS_BETA && txt[r] >= k) {
        for (var i = 0u; i < k; i = i + 1u) {
            pout[base + i] = 1.0 / f32(k);
        }
        return;
    }
    let xt = min(txt[r], k - 1u);
    let pi_xt = prior_pi(xt);
    // Likelihood q(x_t | x_{t−1} = i) = Q_t[i, x_t] = a_t [i == x_t] + (1 − a_t) π_{x_t}; DiGress
    // forms (1 − a_t) as its table's β_t, which 1 − a_t only approximates in f32.
    let lik_other = select(one_minus(b, 0u), coef(b, 3u), tp.form == FORM_DIGRESS_BETA) * pi_xt;
    let om_ab_prev = one_minus(b, 1u);
    let lik_xt = a_t + lik_other;

    if (tp.form == FORM_D3PM) {
        if (last) {
            for (var i = 0u; i < k; i = i + 1u) {
                pout[base + i] = x0_logit(r, i);
            }
            return;
        }
        let st = row_stats(r, xt);
        for (var i = 0u; i < k; i = i + 1u) {
            let p = exp(x0_logit(r, i) - st.m) / st.z;
            let bi = ab_prev * p + om_ab_prev * prior_pi(i);
            let ai = select(lik_other, lik_xt, i == xt);
            pout[base + i] = log(ai + 1e-6) + log(bi + 1e-6);
        }
        return;
    }

    let st = row_stats(r, xt);
    if (tp.form == FORM_DIGRESS || tp.form == FORM_DIGRESS_BETA) {
        // q(x_t | x0) = Q̄_t[x0, x_t], with DiGress's 0 → 1e-6; only two values occur.
        var d_other = (1.0 - ab_t) * pi_xt;
        var d_xt = ab_t + d_other;
        d_other = select(d_other, 1e-6, d_other == 0.0);
        d_xt = select(d_xt, 1e-6, d_xt == 0.0);
        let p_xt = exp(x0_logit(r, xt) - st.m) / st.z;
        let s = p_xt / d_xt + (st.z_not / st.z) / d_other;
        var tot = 0.0;
        for (var i = 0u; i < k; i = i + 1u) {
            let p = exp(x0_logit(r, i) - st.m) / st.z;
            let den = select(d_other, d_xt, i == xt);
            let u = select(lik_other, lik_xt, i == xt)
                * (ab_prev * p / den + om_ab_prev * prior_pi(i) * s);
            pout[base + i] = u;
            tot = tot + u;
        }
        for (var i = 0u; i < k; i = i + 1u) {
            pout[base + i] = select(pout[base + i] / tot, 1.0 / f32(k), tot == 0.0);
        }
        return;
    }

    // Multinomial (Hoogeboom): log q(x_{t−1} | ·) ∝ log(ᾱ' p̂ + (1 − ᾱ')π) + log(Q_t[i, x_t]), normalised
    // by logsumexp. The one-step term keeps Hoogeboom's log-one-hot clamp: a_t·1e-30 off x_t.
    let lse = st.m + log(st.z);
    let log_ab = select(LOG_ZERO, log(ab_prev), ab_prev > 0.0);
    var hi = LOG_ZERO;
    var acc = 0.0;
    for (var i = 0u; i < k; i = i + 1u) {
        let lp = x0_logit(r, i) - lse;
        let la = log_add_lin(log_ab + lp, om_ab_prev * prior_pi(i));
        let lik = select(a_t * 1e-30 + lik_other, lik_xt, i == xt);
        let u = max(la + log(lik), LOG_ZERO);
        pout[base + i] = u;
        // Online logsumexp.
        if (u > hi) {
            acc = acc * exp(hi - u) + 1.0;
            hi = u;
        } else {
            acc = acc + exp(u - hi);
        }
    }
    let norm = hi + log(acc);
    for (var i = 0u; i < k; i = i + 1u) {
        pout[base + i] = pout[base + i] - norm;
    }
}

// ---------------------------------------------------------------------------------------------------
// moco/D3PM posterior logits from explicit matrices (custom priors): A_i = Q_t[b, i, x_t],
// B_i = Σ_c softmax(x0)_c Q̄_{t−1}[b, c, i]. Q_t comes in binding 1, Q̄_{t−1} in binding 5.

@group(0) @binding(1) var<storage, read> qt_mat: array<f32>;
@group(0) @binding(5) var<storage, read> qbp_mat: array<f32>;
@group(0) @binding(6) var<storage, read_write> qout: array<f32>;

@compute @workgroup_size(256)
fn posterior_matrices(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= tp.rows) { return; }
    let b = r / tp.rows_per_batch;
    let k = tp.k;
    let base = r * k;
    if (coef(b, 3u) != 0.0) {
        for (var i = 0u; i < k; i = i + 1u) {
            qout[base + i] = x0_logit(r, i);
        }
        return;
    }
    let xt = min(txt[r], k - 1u);
    let st = row_stats(r, xt);
    let qa = b * tp.mat_stride_a;
    let qb = b * tp.mat_stride_b;
    for (var i = 0u; i < k; i = i + 1u) {
        var bi = 0.0;
        for (var c = 0u; c < k; c = c + 1u) {
            bi = bi + exp(x0_logit(r, c) - st.m) / st.z * qbp_mat[qb + c * k + i];
        }
        let ai = qt_mat[qa + i * k + xt];
        qout[base + i] = log(ai + 1e-6) + log(bi + 1e-6);
    }
}
