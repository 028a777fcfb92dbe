//! Discrete-diffusion transitions and posteriors over the last axis (K classes).
//!
//! Every reference family uses matrices of one shape, `Q = α I + (1 − α) 1πᵀ` (row = from-state,
//! column = to-state, so `p_next = p_prev @ Q`): the one-step `Q_t` with the per-step keep factor
//! `α_t`, the cumulative `Q̄_t` with `ᾱ_t`, and a prior `π` that is uniform (D3PM/Hoogeboom/DiGress
//! uniform), absorbing `e_m` (masking) or any marginal (DiGress). The closed forms here never build a
//! K×K matrix; [`matrices`] and [`probs_matmul`] exist for heatmaps and custom (non-closed-form)
//! transitions, and [`d3pm_posterior_logits_matrices`] for posteriors over such matrices.
//!
//! Time indexing is the caller's: these kernels take the coefficients of one reverse step,
//! [`StepCoefs`] (α_t of `Q_t`, ᾱ_{t−1} of `Q̄_{t−1}`, ᾱ_t of `Q̄_t`, and moco's `t == last_time_idx`
//! flag), shared by the batch or one row per batch element (the first axis).
//!
//! Which posterior:
//! - [`d3pm_posterior_logits`]: bionemo-moco / official D3PM. Unnormalised logits
//!   `log(Q_t[i, x_t] + 1e-6) + log(Σ_c softmax(x0)_c Q̄_{t−1}[c, i] + 1e-6)`; at the last step the
//!   x0 logits themselves.
//! - [`digress_posterior_probs`]: DiGress. The exact mixture `Σ_{x0} p̂(x0) q(x_{t−1} | x_t, x0)`,
//!   dividing by `q(x_t | x0)` (0 → 1e-6), normalised; all-zero rows become uniform.
//! - [`multinomial_posterior_log`]: Hoogeboom's multinomial diffusion `q_posterior`, normalised log
//!   probabilities. For t > 0 it equals the moco form (without the 1e-6 terms); at t = 0 pass
//!   `alpha_bar_prev = 1`, which re-weights p̂(x0) by the x_t likelihood (moco returns p̂(x0) there).

mod cpu;

use super::{check_class_count, check_u32_len, class_rows};
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, KernelSpec};
use crate::tensor::{DType, Tensor};
use std::sync::LazyLock;

// The losses over class rows live in `ops::loss`; this path stays for the discrete processes that
// call them through it.
pub use super::loss::{row_kl, row_nll};

pub(super) const SRC: &str = include_str!("../../../shaders/transition.wgsl");

/// The stationary distribution π of `Q = α I + (1 − α) 1πᵀ`.
#[derive(Clone, Copy, Debug)]
pub enum Prior<'a> {
    /// π = 1/K.
    Uniform,
    /// π = e_m: everything is absorbed into class m (the mask token).
    Absorbing(usize),
    /// Any distribution: an f32 tensor `[K]` (rows of DiGress' `1·mᵀ`). It should sum to 1; that is
    /// not checked on the GPU.
    Marginal(&'a Tensor),
}

/// A scalar coefficient, shared by the whole batch or one per batch element.
#[derive(Clone, Copy, Debug)]
pub enum Coef<'a> {
    Shared(f32),
    /// f32 `[B]`, B = the first axis of the input.
    PerBatch(&'a Tensor),
}

/// The coefficients of one reverse step t → t−1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepCoefs {
    /// Keep factor of the one-step `Q_t` (DiGress: `1 − β_t`, unclamped).
    pub alpha_t: f32,
    /// ᾱ of `Q̄_{t−1}`; 1 where `Q̄_{t−1} = I` (moco's `Q̄prev_0`, Hoogeboom at t = 0).
    pub alpha_bar_prev: f32,
    /// ᾱ of `Q̄_t` (used by DiGress' division by `q(x_t | x0)`).
    pub alpha_bar_t: f32,
    /// moco's `t == last_time_idx`: the D3PM posterior returns the x0 logits unchanged.
    pub last: bool,
}

impl StepCoefs {
    /// The row of a per-batch coefficient tensor `[B, 4]`.
    pub fn row(&self) -> [f32; 4] {
        [
            self.alpha_t,
            self.alpha_bar_prev,
            self.alpha_bar_t,
            if self.last { 1.0 } else { 0.0 },
        ]
    }
}

/// Step coefficients shared by the batch, or an f32 tensor `[B, 4]` of [`StepCoefs::row`]s.
///
/// The `Precise` forms also carry `1 − α_t` and `1 − ᾱ_{t−1}` computed by the caller (in f64): near
/// t = 0 they are ~3e-4, and `1 − α` formed in f32 from α loses ~1e-4 of it, which Hoogeboom's float64
/// schedule does not. Rows of `[B, 6]`: [`StepCoefs::row`] then the two complements.
#[derive(Clone, Copy, Debug)]
pub enum Coefs<'a> {
    Shared(StepCoefs),
    PerBatch(&'a Tensor),
    SharedPrecise(StepCoefs, [f32; 2]),
    PerBatchPrecise(&'a Tensor),
}

/// The model's x0 prediction.
#[derive(Clone, Copy, Debug)]
pub enum X0<'a> {
    /// f32 logits `[.., K]` (softmax gives p̂(x0)).
    Logits(&'a Tensor),
    /// u32 class ids `[..]` below `k`: moco reads them as logits `log(onehot + 1e-6)`, Hoogeboom as
    /// `log(max(onehot, 1e-30))`, DiGress as the exact one-hot.
    Ids { ids: &'a Tensor, k: usize },
}

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    rows: u32,
    k: u32,
    rows_per_batch: u32,
    flags: u32,
    prior: u32,
    absorb: u32,
    form: u32,
    coef_stride: u32,
    c: [f32; 4],
    n: u32,
    mat_stride_a: u32,
    mat_stride_b: u32,
    c4: f32,
    c5: f32,
    _pad: [u32; 3],
}
params_layout!(Params {
    rows,
    k,
    rows_per_batch,
    flags,
    prior,
    absorb,
    form,
    coef_stride,
    c,
    n,
    mat_stride_a,
    mat_stride_b,
    c4,
    c5,
    _pad
});

const F_PER_BATCH: u32 = 1;
const F_X0_IDS: u32 = 2;
const F_TRANSPOSE: u32 = 4;
/// Coefficients 4 and 5 hold 1 − α_t and 1 − ᾱ_{t−1}, computed precisely by the caller.
const F_COMPLEMENT: u32 = 16;

/// `Params::prior`: how the kernel reads π.
const PRIOR_UNIFORM: u32 = 0;
const PRIOR_ABSORBING: u32 = 1;
/// π from the bound tensor.
const PRIOR_MARGINAL: u32 = 2;

const FORM_D3PM: u32 = 0;
const FORM_DIGRESS: u32 = 1;
const FORM_MULTINOMIAL: u32 = 2;
/// DiGress with β_t given exactly (coefficient 3): Q_t = β_t u + (1 − β_t) I as DiGress forms it,
/// and ids ≥ K read as DiGress's all-zero x_t rows (whose posterior is uniform).
const FORM_DIGRESS_BETA: u32 = 3;

/// The constants `shaders/transition.wgsl` shares with this driver, prepended to it.
pub(super) static DEFINES: LazyLock<String> = LazyLock::new(|| {
    wgsl_consts![
        F_PER_BATCH,
        F_X0_IDS,
        F_TRANSPOSE,
        F_COMPLEMENT,
        PRIOR_UNIFORM,
        PRIOR_ABSORBING,
        FORM_D3PM,
        FORM_DIGRESS,
        FORM_MULTINOMIAL,
        FORM_DIGRESS_BETA,
    ]
});

const R: Access = Access::Read;
const W: Access = Access::ReadWrite;

/// The entry points of `shaders/transition.wgsl`; `cpu.rs` has the same ones on the host.
#[derive(Clone, Copy, Debug)]
enum Kernel {
    Matrices,
    ForwardIds,
    ForwardProbs,
    ProbsMatmul,
    Posterior,
    PosteriorMatrices,
}

impl Kernel {
    fn spec(self) -> KernelSpec<'static> {
        let (entry, bindings): (&'static str, &'static [Access]) = match self {
            Kernel::Matrices => ("matrices", &[R, R, W]),
            Kernel::ForwardIds => ("forward_ids", &[R, R, R, W]),
            Kernel::ForwardProbs => ("forward_probs", &[R, R, R, W]),
            Kernel::ProbsMatmul => ("probs_matmul", &[R, R, W]),
            Kernel::Posterior => ("posterior", &[R, R, R, R, W]),
            Kernel::PosteriorMatrices => ("posterior_matrices", &[R, R, R, R, R, W]),
        };
        KernelSpec {
            family: "transition",
            source: SRC,
            entry,
            defines: &DEFINES,
            bindings,
        }
    }
}

/// Run `kernel` over `inputs` (binding order, `None` where it reads nothing) into `out`.
fn launch(
    op: &'static str,
    kernel: Kernel,
    p: &Params,
    inputs: &[Option<&Tensor>],
    out: &Tensor,
    threads: u64,
) -> Result<()> {
    super::launch(op, &kernel.spec(), p, inputs, &[out], threads, {
        let p = *p;
        move |ins, outs| cpu::run(kernel, &p, ins, &mut *outs[0])
    })
}

/// Fills the prior fields of `p` and returns the tensor to bind as π (none when π is implicit).
fn prior<'b>(
    op: &'static str,
    pr: &Prior<'b>,
    k: usize,
    p: &mut Params,
) -> Result<Option<&'b Tensor>> {
    match *pr {
        Prior::Uniform => {
            p.prior = PRIOR_UNIFORM;
            Ok(None)
        }
        Prior::Absorbing(m) => {
            if m >= k {
                return Err(Error::Invalid(format!(
                    "{op}: absorbing class {m} is not below K = {k}"
                )));
            }
            p.prior = PRIOR_ABSORBING;
            p.absorb = m as u32;
            Ok(None)
        }
        Prior::Marginal(t) => {
            t.expect_dtype(op, DType::F32)?;
            if t.shape() != [k] {
                return Err(Error::shape(
                    op,
                    format!("marginal prior {:?} must be [{k}]", t.shape()),
                ));
            }
            p.prior = PRIOR_MARGINAL;
            Ok(Some(t))
        }
    }
}

/// Leading batch size of a `[B, ..]` tensor and the rows per batch element, for per-batch reads.
fn batch_rows(op: &'static str, lead: &[usize], rows: usize) -> Result<(usize, usize)> {
    let Some(&b) = lead.first() else {
        return Err(Error::shape(
            op,
            "per-batch coefficients need a batch axis on the input",
        ));
    };
    Ok((b, rows.checked_div(b).unwrap_or(0).max(1)))
}

fn coef<'b>(
    op: &'static str,
    c: &Coef<'b>,
    lead: &[usize],
    rows: usize,
    p: &mut Params,
) -> Result<Option<&'b Tensor>> {
    p.rows_per_batch = rows.max(1) as u32;
    p.coef_stride = 1;
    match *c {
        Coef::Shared(v) => {
            p.c[0] = v;
            Ok(None)
        }
        Coef::PerBatch(t) => {
            t.expect_dtype(op, DType::F32)?;
            let (b, per) = batch_rows(op, lead, rows)?;
            if t.shape() != [b] {
                return Err(Error::shape(
                    op,
                    format!("per-batch coefficient {:?} must be [{b}]", t.shape()),
                ));
            }
            p.flags |= F_PER_BATCH;
            p.rows_per_batch = per as u32;
            Ok(Some(t))
        }
    }
}

fn coefs<'b>(
    op: &'static str,
    c: &Coefs<'b>,
    lead: &[usize],
    rows: usize,
    p: &mut Params,
) -> Result<Option<&'b Tensor>> {
    p.rows_per_batch = rows.max(1) as u32;
    p.coef_stride = 4;
    let (t, width) = match *c {
        Coefs::Shared(s) => {
            p.c = s.row();
            return Ok(None);
        }
        Coefs::SharedPrecise(s, [a, b]) => {
            p.c = s.row();
            (p.c4, p.c5) = (a, b);
            p.flags |= F_COMPLEMENT;
            return Ok(None);
        }
        Coefs::PerBatch(t) => (t, 4),
        Coefs::PerBatchPrecise(t) => {
            p.flags |= F_COMPLEMENT;
            (t, 6)
        }
    };
    t.expect_dtype(op, DType::F32)?;
    let (b, per) = batch_rows(op, lead, rows)?;
    if t.shape() != [b, width] {
        return Err(Error::shape(
            op,
            format!(
                "per-batch step coefficients {:?} must be [{b}, {width}]",
                t.shape()
            ),
        ));
    }
    p.flags |= F_PER_BATCH;
    p.coef_stride = width as u32;
    p.rows_per_batch = per as u32;
    Ok(Some(t))
}

/// `[B, K, K]` matrices `α_b I + (1 − α_b) 1πᵀ` for an f32 tensor of α values `[B]`: `Q_t` for
/// per-step α, `Q̄_t` for cumulative ᾱ.
pub fn matrices(alphas: &Tensor, pr: Prior<'_>, k: usize) -> Result<Tensor> {
    const OP: &str = "transition::matrices";
    check_class_count(OP, k)?;
    alphas.expect_dtype(OP, DType::F32)?;
    if alphas.dims() != 1 {
        return Err(Error::shape(
            OP,
            format!("alphas {:?} must be [B]", alphas.shape()),
        ));
    }
    let b = alphas.len();
    let out = Tensor::empty(alphas.device(), &[b, k, k], DType::F32)?;
    check_u32_len(OP, &out)?;
    let mut p = Params {
        n: out.len() as u32,
        k: k as u32,
        ..Default::default()
    };
    let pi = prior(OP, &pr, k, &mut p)?;
    let threads = out.len() as u64;
    launch(OP, Kernel::Matrices, &p, &[pi, Some(alphas)], &out, threads)?;
    Ok(out)
}

/// `q(x_t | x0) = onehot(x0) @ Q̄_t` for u32 class ids `[..]` (each below `k`): f32 `[.., K]`.
pub fn forward_ids(x0: &Tensor, alpha_bar: Coef<'_>, pr: Prior<'_>, k: usize) -> Result<Tensor> {
    const OP: &str = "transition::forward_ids";
    check_class_count(OP, k)?;
    x0.expect_dtype(OP, DType::U32)?;
    let mut shape = x0.shape().to_vec();
    shape.push(k);
    let out = Tensor::empty(x0.device(), &shape, DType::F32)?;
    check_u32_len(OP, &out)?;
    let rows = x0.len();
    let mut p = Params {
        rows: rows as u32,
        k: k as u32,
        n: out.len() as u32,
        ..Default::default()
    };
    let pi = prior(OP, &pr, k, &mut p)?;
    let cb = coef(OP, &alpha_bar, x0.shape(), rows, &mut p)?;
    let threads = out.len() as u64;
    launch(
        OP,
        Kernel::ForwardIds,
        &p,
        &[pi, cb, Some(x0)],
        &out,
        threads,
    )?;
    Ok(out)
}

/// `x0 @ Q̄_t` for probability (or one-hot) rows `[.., K]`, as `ᾱ x0 + (1 − ᾱ)(Σ x0) π`.
pub fn forward_probs(x0: &Tensor, alpha_bar: Coef<'_>, pr: Prior<'_>) -> Result<Tensor> {
    const OP: &str = "transition::forward_probs";
    let (k, lead, rows) = class_rows(OP, x0)?;
    let out = Tensor::empty(x0.device(), x0.shape(), DType::F32)?;
    let mut p = Params {
        rows: rows as u32,
        k: k as u32,
        ..Default::default()
    };
    let pi = prior(OP, &pr, k, &mut p)?;
    let cb = coef(OP, &alpha_bar, lead, rows, &mut p)?;
    let inputs = [pi, cb, Some(x0)];
    launch(OP, Kernel::ForwardProbs, &p, &inputs, &out, rows as u64)?;
    Ok(out)
}

/// `probs @ M_b` for rows `[B, .., K]` and matrices `[B, K, K]` (or one shared `[K, K]`); with
/// `transpose`, `probs @ M_bᵀ` (e.g. `onehot(x_t) @ Q_tᵀ`, the likelihood column).
pub fn probs_matmul(probs: &Tensor, mats: &Tensor, transpose: bool) -> Result<Tensor> {
    const OP: &str = "transition::probs_matmul";
    let (k, lead, rows) = class_rows(OP, probs)?;
    mats.expect_dtype(OP, DType::F32)?;
    let stride = mat_stride(OP, mats, k, lead)?;
    let out = Tensor::empty(probs.device(), probs.shape(), DType::F32)?;
    let per = rows
        .checked_div(lead.first().copied().unwrap_or(1))
        .unwrap_or(0)
        .max(1);
    let p = Params {
        rows: rows as u32,
        k: k as u32,
        rows_per_batch: per as u32,
        flags: if transpose { F_TRANSPOSE } else { 0 },
        n: out.len() as u32,
        mat_stride_a: stride,
        ..Default::default()
    };
    let inputs = [Some(probs), Some(mats)];
    launch(OP, Kernel::ProbsMatmul, &p, &inputs, &out, out.len() as u64)?;
    Ok(out)
}

/// Element stride between batch matrices: `K²` for `[B, K, K]`, 0 for a shared `[K, K]`.
fn mat_stride(op: &'static str, m: &Tensor, k: usize, lead: &[usize]) -> Result<u32> {
    if m.shape() == [k, k] {
        return Ok(0);
    }
    if lead.is_empty() || m.shape() != [lead[0], k, k] {
        return Err(Error::shape(
            op,
            format!(
                "matrices {:?} must be [{k}, {k}] or [B, {k}, {k}] with B = {:?}",
                m.shape(),
                lead.first()
            ),
        ));
    }
    Ok((k * k) as u32)
}

/// Checks x0 against x_t `[..]` (u32) and returns (K, flags, the x0 tensor to bind).
fn x0_and_xt<'b>(op: &'static str, x0: &X0<'b>, xt: &Tensor) -> Result<(usize, u32, &'b Tensor)> {
    xt.expect_dtype(op, DType::U32)?;
    check_u32_len(op, xt)?;
    match *x0 {
        X0::Logits(l) => {
            let (k, lead, _) = class_rows(op, l)?;
            if lead != xt.shape() {
                return Err(Error::shape(
                    op,
                    format!(
                        "x0 logits {:?} must be x_t's shape {:?} plus a class axis",
                        l.shape(),
                        xt.shape()
                    ),
                ));
            }
            Ok((k, 0, l))
        }
        X0::Ids { ids, k } => {
            check_class_count(op, k)?;
            ids.expect_dtype(op, DType::U32)?;
            if ids.shape() != xt.shape() {
                return Err(Error::shape(
                    op,
                    format!(
                        "x0 ids {:?} must have x_t's shape {:?}",
                        ids.shape(),
                        xt.shape()
                    ),
                ));
            }
            Ok((k, F_X0_IDS, ids))
        }
    }
}

/// The closed-form posterior kernel in `form`. `beta` (DiGress's β form only) takes the slot of
/// the `last` flag in shared coefficients, which that form does not read.
fn posterior(
    op: &'static str,
    form: u32,
    x0: X0<'_>,
    xt: &Tensor,
    c: Coefs<'_>,
    pr: Prior<'_>,
    beta: Option<f32>,
) -> Result<Tensor> {
    let (k, flags, x0b) = x0_and_xt(op, &x0, xt)?;
    let rows = xt.len();
    let mut shape = xt.shape().to_vec();
    shape.push(k);
    let out = Tensor::empty(xt.device(), &shape, DType::F32)?;
    check_u32_len(op, &out)?;
    let mut p = Params {
        rows: rows as u32,
        k: k as u32,
        flags,
        form,
        ..Default::default()
    };
    let pi = prior(op, &pr, k, &mut p)?;
    let cb = coefs(op, &c, xt.shape(), rows, &mut p)?;
    if let Some(beta) = beta {
        p.c[3] = beta;
    }
    let inputs = [pi, cb, Some(x0b), Some(xt)];
    launch(op, Kernel::Posterior, &p, &inputs, &out, rows as u64)?;
    Ok(out)
}

/// moco/D3PM `_q_posterior_logits` in closed form: f32 `[.., K]` unnormalised logits
/// `log(Q_t[i, x_t] + 1e-6) + log(Σ_c softmax(x0)_c Q̄_{t−1}[c, i] + 1e-6)`, or the x0 logits where
/// `last` is set. `x_t` is u32 `[..]` (ids below K; larger ids are read as K − 1).
pub fn d3pm_posterior_logits(
    x0: X0<'_>,
    x_t: &Tensor,
    c: Coefs<'_>,
    pr: Prior<'_>,
) -> Result<Tensor> {
    posterior(
        "transition::d3pm_posterior_logits",
        FORM_D3PM,
        x0,
        x_t,
        c,
        pr,
        None,
    )
}

/// DiGress `compute_batched_over0_posterior_distribution` + normalisation: f32 probabilities `[.., K]`.
/// Uses `alpha_t`, `alpha_bar_prev` (DiGress' ᾱ_s) and `alpha_bar_t`; `last` is ignored.
pub fn digress_posterior_probs(
    x0: X0<'_>,
    x_t: &Tensor,
    c: Coefs<'_>,
    pr: Prior<'_>,
) -> Result<Tensor> {
    posterior(
        "transition::digress_posterior_probs",
        FORM_DIGRESS,
        x0,
        x_t,
        c,
        pr,
        None,
    )
}

/// The coefficients of one DiGress reverse step t → s = t − 1, straight from its schedule tables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DigressCoefs {
    /// `betas[t]` (unclamped; 1 at t = T).
    pub beta_t: f32,
    /// `alphas_bar[s]`.
    pub alpha_bar_s: f32,
    /// `alphas_bar[t]`.
    pub alpha_bar_t: f32,
}

/// DiGress's reverse-step probabilities exactly as `sample_p_zs_given_zt` forms them: as
/// [`digress_posterior_probs`], but `Q_t = β_t·1πᵀ + (1 − β_t)·I` is built from β_t itself (1 − α_t
/// loses digits in f32 when β_t is small), and an x_t id ≥ K stands for DiGress's all-zero one-hot
/// row (padding, the diagonal of a prior draw), whose posterior is uniform.
pub fn digress_step_probs(
    x0: X0<'_>,
    x_t: &Tensor,
    c: DigressCoefs,
    pr: Prior<'_>,
) -> Result<Tensor> {
    let coefs = StepCoefs {
        alpha_t: 1.0 - c.beta_t,
        alpha_bar_prev: c.alpha_bar_s,
        alpha_bar_t: c.alpha_bar_t,
        last: false,
    };
    posterior(
        "transition::digress_step_probs",
        FORM_DIGRESS_BETA,
        x0,
        x_t,
        Coefs::Shared(coefs),
        pr,
        Some(c.beta_t),
    )
}

/// Hoogeboom's multinomial `q_posterior(log_softmax(x0), log x_t, t)`: f32 normalised log
/// probabilities `[.., K]`. Uses `alpha_t` and `alpha_bar_prev` (1 at t = 0); `last` is ignored. With
/// a non-uniform prior the one-step term is `Q_t[i, x_t]` (Hoogeboom's symmetric `Q_t[x_t, i]` is the
/// same thing for uniform π).
pub fn multinomial_posterior_log(
    x0: X0<'_>,
    x_t: &Tensor,
    c: Coefs<'_>,
    pr: Prior<'_>,
) -> Result<Tensor> {
    posterior(
        "transition::multinomial_posterior_log",
        FORM_MULTINOMIAL,
        x0,
        x_t,
        c,
        pr,
        None,
    )
}

/// moco/D3PM posterior logits from explicit matrices (custom transitions): `q_t` is `Q_t` and
/// `q_bar_prev` is `Q̄_{t−1}`, each `[B, K, K]` or a shared `[K, K]`. Of `c` only `last` is used.
pub fn d3pm_posterior_logits_matrices(
    x0: X0<'_>,
    x_t: &Tensor,
    q_t: &Tensor,
    q_bar_prev: &Tensor,
    c: Coefs<'_>,
) -> Result<Tensor> {
    const OP: &str = "transition::d3pm_posterior_logits_matrices";
    let (k, flags, x0b) = x0_and_xt(OP, &x0, x_t)?;
    q_t.expect_dtype(OP, DType::F32)?;
    q_bar_prev.expect_dtype(OP, DType::F32)?;
    let sa = mat_stride(OP, q_t, k, x_t.shape())?;
    let sb = mat_stride(OP, q_bar_prev, k, x_t.shape())?;
    let rows = x_t.len();
    let mut shape = x_t.shape().to_vec();
    shape.push(k);
    let out = Tensor::empty(x_t.device(), &shape, DType::F32)?;
    check_u32_len(OP, &out)?;
    let mut p = Params {
        rows: rows as u32,
        k: k as u32,
        flags,
        form: FORM_D3PM,
        mat_stride_a: sa,
        mat_stride_b: sb,
        ..Default::default()
    };
    let cb = coefs(OP, &c, x_t.shape(), rows, &mut p)?;
    // Coefficients and matrices share the batch axis (the first of x_t).
    p.rows_per_batch = rows
        .checked_div(x_t.shape().first().copied().unwrap_or(1))
        .unwrap_or(0)
        .max(1) as u32;
    let inputs = [Some(q_t), cb, Some(x0b), Some(x_t), Some(q_bar_prev)];
    launch(
        OP,
        Kernel::PosteriorMatrices,
        &p,
        &inputs,
        &out,
        rows as u64,
    )?;
    Ok(out)
}
