//! Categorical sampling over the last axis by Gumbel-max: `x = argmax_k(logits_k/τ + g_k·m)`.
//!
//! This is bionemo-moco's D3PM `_sample_categorical`: `g = −log(−log(u))` with `u` clipped below at
//! `u_min` (moco: 1e-6), the temperature divides the logits and not the noise, and `m` is a per-row
//! noise mask (moco's `t != last_time_idx`): where `m = 0` the draw is the deterministic argmax of
//! `logits/τ`. The uniforms come from Philox — element `e = row·K + k` of a (seed, stream, substream)
//! key, so a draw replays on the CPU — or from an injected tensor, for parity with a reference that
//! drew its own.

pub mod cpu;

pub use super::noise::Noise;
use super::{check_u32_len, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::tensor::{same_device, DType, Device, Tensor};
use std::sync::LazyLock;

pub(super) const SRC: &str = concat!(
    include_str!("../../shaders/philox.wgsl"),
    include_str!("../../shaders/sample.wgsl")
);

/// Rows at least this wide get a workgroup each instead of an invocation each.
pub const WIDE_K: usize = 512;

/// How to draw. [`Categorical::new`] gives moco's defaults: `τ = 1`, `u_min = 1e-6`, no mask.
#[derive(Clone, Copy, Debug)]
pub struct Categorical<'a> {
    pub noise: Noise<'a>,
    /// Divides the logits (must be > 0). For probability inputs this samples ∝ p^(1/τ).
    pub temperature: f32,
    /// Uniforms are clipped to `[u_min, 1]` before `−log(−log u)` (moco clips at 1e-6).
    pub u_min: f32,
    /// Per-row noise weight, f32, usually 0/1. Its shape is a prefix of the rows' shape: `[B]`
    /// applies one value per batch element of `[B, N, K]` logits, `[B, N]` one per row.
    pub mask: Option<&'a Tensor>,
    /// moco's `step(mask=…)`: the drawn class times a per-row keep value (f32, 0/1; 0 writes class 0).
    /// Shaped like `mask`: a prefix of the rows' shape.
    pub keep: Option<&'a Tensor>,
}

impl<'a> Categorical<'a> {
    pub fn new(noise: Noise<'a>) -> Self {
        Categorical {
            noise,
            temperature: 1.0,
            u_min: 1e-6,
            mask: None,
            keep: None,
        }
    }
    pub fn temperature(mut self, t: f32) -> Self {
        self.temperature = t;
        self
    }
    pub fn u_min(mut self, u: f32) -> Self {
        self.u_min = u;
        self
    }
    pub fn mask(mut self, m: &'a Tensor) -> Self {
        self.mask = Some(m);
        self
    }
    pub fn keep(mut self, m: &'a Tensor) -> Self {
        self.keep = Some(m);
        self
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    rows: u32,
    k: u32,
    flags: u32,
    mask_div: u32,
    temperature: f32,
    u_min: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    substream: u32,
    keep_div: u32,
    _pad: u32,
}
params_layout!(Params {
    rows,
    k,
    flags,
    mask_div,
    temperature,
    u_min,
    seed_lo,
    seed_hi,
    stream,
    substream,
    keep_div,
    _pad
});

const F_PROBS: u32 = 1;
const F_MASK: u32 = 2;
const F_INJECTED: u32 = 4;
const F_NO_NOISE: u32 = 8;
/// moco's `step(mask=…)`: the drawn class is multiplied by a per-row keep value (0 zeroes the output).
const F_KEEP: u32 = 16;

/// The constants `shaders/sample.wgsl` shares with this driver, prepended to it.
pub(super) static DEFINES: LazyLock<String> =
    LazyLock::new(|| wgsl_consts![F_PROBS, F_MASK, F_INJECTED, F_NO_NOISE, F_KEEP,]);

const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
];

/// One class index (u32) per row of `logits [.., K]`: the output has the leading shape `[..]`.
pub fn gumbel_max(logits: &Tensor, opts: &Categorical<'_>) -> Result<Tensor> {
    draw("gumbel_max", logits, opts, false)
}

/// As [`gumbel_max`] for probabilities `[.., K]` (need not be normalised): the logits are `log p`,
/// and a class with `p ≤ 0` is never drawn. A row with no positive entry yields class 0.
pub fn sample_probs(probs: &Tensor, opts: &Categorical<'_>) -> Result<Tensor> {
    draw("sample_probs", probs, opts, true)
}

/// The sampler's Gumbel noise for given uniforms: `−log(−log(max(u, u_min)))`, elementwise (for views
/// of the noise, and to check the transform against references).
pub fn gumbel_noise(u: &Tensor, u_min: f32) -> Result<Tensor> {
    const OP: &str = "gumbel_noise";
    u.expect_dtype(OP, DType::F32)?;
    check_u32_len(OP, u)?;
    check_u_min(OP, u_min)?;
    if let Device::Cpu(_) = u.device() {
        return super::host_op_f32(OP, u.device(), u.shape(), &[u], move |i| {
            cpu::gumbel_noise(i[0], u_min)
        });
    }
    let out = Tensor::empty(u.gpu()?, u.shape(), DType::F32)?;
    let p = Params {
        rows: u.len() as u32,
        k: 1,
        flags: 0,
        mask_div: 1,
        temperature: 1.0,
        u_min,
        seed_lo: 0,
        seed_hi: 0,
        stream: 0,
        substream: 0,
        keep_div: 1,
        _pad: 0,
    };
    let spec = KernelSpec {
        family: "sample",
        source: SRC,
        entry: "gumbel_noise",
        defines: &DEFINES,
        bindings: &[Access::Read, Access::ReadWrite],
    };
    u.gpu()?.dispatch(
        &spec,
        &p,
        &[u.buffer()?, out.buffer()?],
        Gpu::grid_1d(u.len() as u64, WG),
    )?;
    Ok(out)
}

/// Deterministic argmax over the last axis (first index on ties).
pub fn argmax(logits: &Tensor) -> Result<Tensor> {
    gumbel_max(logits, &Categorical::new(Noise::None))
}

/// A per-row f32 tensor whose shape is a prefix of the rows' shape `lead`: how many rows share each of
/// its entries.
fn rows_per_entry(op: &'static str, what: &str, m: &Tensor, lead: &[usize]) -> Result<u32> {
    m.expect_dtype(op, DType::F32)?;
    mask_div(op, what, m.shape(), lead)
}

/// [`rows_per_entry`] on shapes (both backends): `m`'s shape must be a prefix of `lead`.
fn mask_div(op: &'static str, what: &str, m: &[usize], lead: &[usize]) -> Result<u32> {
    if m.len() > lead.len() || m != &lead[..m.len()] {
        return Err(Error::shape(
            op,
            format!("{what} {m:?} must be a prefix of the rows' shape {lead:?}"),
        ));
    }
    let rows: usize = lead.iter().product();
    let entries: usize = m.iter().product();
    Ok((rows / entries.max(1)).max(1) as u32)
}

fn check_u_min(op: &'static str, u_min: f32) -> Result<()> {
    if !(0.0..1.0).contains(&u_min) {
        return Err(Error::Invalid(format!(
            "{op}: u_min must lie in [0, 1), got {u_min}"
        )));
    }
    Ok(())
}

/// The shape and option checks of a draw from `[.., K]` (both backends): K and the leading shape.
fn check_draw<'s>(
    op: &'static str,
    shape: &'s [usize],
    temperature: f32,
    u_min: f32,
) -> Result<(usize, &'s [usize])> {
    let Some((&k, lead)) = shape.split_last() else {
        return Err(Error::shape(op, "needs at least one axis (the classes)"));
    };
    if k == 0 {
        return Err(Error::shape(op, format!("{shape:?} has no classes")));
    }
    check_gumbel_options(op, temperature, u_min)?;
    Ok((k, lead))
}

/// The options every Gumbel-max draw shares (this op's, un-masking's, the pad suffix's redraw): a
/// positive finite temperature and `u_min` in `[0, 1)`.
pub(super) fn check_gumbel_options(op: &'static str, temperature: f32, u_min: f32) -> Result<()> {
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(Error::Invalid(format!(
            "{op}: temperature must be positive and finite, got {temperature}"
        )));
    }
    check_u_min(op, u_min)
}

fn draw(op: &'static str, x: &Tensor, opts: &Categorical<'_>, probs: bool) -> Result<Tensor> {
    x.expect_dtype(op, DType::F32)?;
    check_u32_len(op, x)?;
    let (k, lead) = check_draw(op, x.shape(), opts.temperature, opts.u_min)?;
    let rows: usize = lead.iter().product();
    if let Device::Cpu(_) = x.device() {
        return host_draw(op, x, lead, opts, probs);
    }
    let gpu = x.gpu()?;
    let out = Tensor::empty(gpu, lead, DType::U32)?;
    let mut p = Params {
        rows: rows as u32,
        k: k as u32,
        flags: if probs { F_PROBS } else { 0 },
        mask_div: 1,
        temperature: opts.temperature,
        u_min: opts.u_min,
        seed_lo: 0,
        seed_hi: 0,
        stream: 0,
        substream: 0,
        keep_div: 1,
        _pad: 0,
    };
    let mut uni = x;
    match opts.noise {
        Noise::None => {}
        Noise::Philox(key) => {
            [p.seed_lo, p.seed_hi] = key.key();
            p.stream = key.stream;
            p.substream = key.substream;
        }
        Noise::Injected(_) => {
            if let Some(u) = opts.noise.injected(op, x, "the logits")? {
                p.flags |= F_INJECTED;
                uni = u;
            }
        }
    }
    let mut mask = x;
    if matches!(opts.noise, Noise::None) {
        p.flags |= F_NO_NOISE;
    } else if let Some(m) = opts.mask {
        p.flags |= F_MASK;
        p.mask_div = rows_per_entry(op, "mask", m, lead)?;
        mask = m;
    }
    let mut keep = x;
    if let Some(m) = opts.keep {
        p.flags |= F_KEEP;
        p.keep_div = rows_per_entry(op, "keep mask", m, lead)?;
        keep = m;
    }
    if rows == 0 {
        return Ok(out);
    }
    let (entry, groups) = if k >= WIDE_K {
        ("gumbel_max_wide", Gpu::grid_1d(rows as u64, 1))
    } else {
        ("gumbel_max", Gpu::grid_1d(rows as u64, WG))
    };
    let spec = KernelSpec {
        family: "sample",
        source: SRC,
        entry,
        defines: &DEFINES,
        bindings: BINDINGS,
    };
    gpu.dispatch(
        &spec,
        &p,
        &[
            x.buffer()?,
            uni.buffer()?,
            mask.buffer()?,
            keep.buffer()?,
            out.buffer()?,
        ],
        groups,
    )?;
    Ok(out)
}

/// [`draw`] on host tensors, through [`cpu::gumbel_max`] / [`cpu::sample_probs`].
fn host_draw(
    op: &'static str,
    x: &Tensor,
    lead: &[usize],
    opts: &Categorical<'_>,
    probs: bool,
) -> Result<Tensor> {
    let injected = opts.noise.injected(op, x, "the logits")?;
    for m in [opts.mask, opts.keep].into_iter().flatten() {
        m.expect_dtype(op, DType::F32)?;
    }
    let all: Vec<&Tensor> = [Some(x), injected, opts.mask, opts.keep]
        .into_iter()
        .flatten()
        .collect();
    same_device(op, &all)?;
    // Inputs in order: x, then the injected uniforms, the mask and the keep values where given.
    let shapes: Vec<Vec<usize>> = all.iter().map(|t| t.shape().to_vec()).collect();
    let key = match opts.noise {
        Noise::Philox(key) => Some(key),
        _ => None,
    };
    let (has_u, has_mask, has_keep) =
        (injected.is_some(), opts.mask.is_some(), opts.keep.is_some());
    let (temperature, u_min) = (opts.temperature, opts.u_min);
    super::host_op(op, x.device(), lead, DType::U32, &all, move |w| {
        let i: Vec<&[f32]> = w.iter().map(|w| bytemuck::cast_slice(w)).collect();
        let mut at = 1;
        let mut next = |given: bool| {
            given.then(|| {
                at += 1;
                at - 1
            })
        };
        let (u, mask, keep) = (next(has_u), next(has_mask), next(has_keep));
        let noise = match (key, u) {
            (Some(key), _) => super::noise::cpu::Noise::Philox(key),
            (None, Some(u)) => super::noise::cpu::Noise::Injected(i[u], &shapes[u]),
            (None, None) => super::noise::cpu::Noise::None,
        };
        let mut host = cpu::Categorical::new(noise)
            .temperature(temperature)
            .u_min(u_min);
        if let Some(m) = mask {
            host = host.mask(i[m], &shapes[m]);
        }
        if let Some(k) = keep {
            host = host.keep(i[k], &shapes[k]);
        }
        if probs {
            cpu::sample_probs(i[0], &shapes[0], &host)
        } else {
            cpu::gumbel_max(i[0], &shapes[0], &host)
        }
    })
}
