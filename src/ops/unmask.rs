//! Un-masking by confidence for absorbing discrete diffusion — the order MaskGIT and LLaDA decode
//! in, beside D3PM's random one. From x_t (u32 `[B, L]`) and the model's x0 logits (`[B, L, K]`),
//! each masked position gets a token drawn from `softmax(logits/τ)` without the mask class, and the
//! step reveals as many positions as the process would (each masked position flips a coin with the
//! step's reveal chance `reveal[b]`) — but the most confident ones (highest log-probability of their
//! drawn token, plus `choice_noise` × Gumbel noise: MaskGIT's choice temperature, which moves the
//! order from most-confident-first at 0 towards random as it grows) rather than random ones.
//! Unmasked positions never change.
//!
//! Draws: the token's Gumbel noise is element `(row·L + l)·K + k` of the Gumbel key, the coin is
//! element `row·L + l` of the reveal key, the confidence's noise element `row·L + l` of the choice
//! key — Philox, so the CPU backend replays the GPU's draws.

pub mod cpu;

use super::{check_u32_len, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::params_layout;
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::rng::Philox;
use crate::tensor::{same_device, DType, Device, Tensor};

pub(super) const SRC: &str = concat!(
    include_str!("../../shaders/philox.wgsl"),
    include_str!("../../shaders/unmask.wgsl")
);

/// The draws and settings of [`confident`].
#[derive(Clone, Copy, Debug)]
pub struct Unmask {
    /// The absorbing (mask) class.
    pub mask_token: u32,
    /// Divides the logits of the token draw and its confidence (must be > 0).
    pub temperature: f32,
    /// Uniforms are clipped to `[u_min, 1]` before the Gumbel transform (moco: 1e-6).
    pub u_min: f32,
    /// Gumbel noise of the tokens.
    pub gumbel: Philox,
    /// The coins that say how many positions a step reveals (same seed and stream, its own substream).
    pub reveal: Philox,
    /// Scales the Gumbel noise added to each confidence before the most confident are chosen
    /// (≥ 0; 0 is most-confident-first).
    pub choice_noise: f32,
    /// That noise (same seed and stream, its own substream).
    pub choice: Philox,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    rows: u32,
    len: u32,
    k: u32,
    mask_token: u32,
    temperature: f32,
    u_min: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    gumbel_substream: u32,
    reveal_substream: u32,
    choice_substream: u32,
    choice_noise: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
params_layout!(Params {
    rows,
    k,
    len,
    mask_token,
    temperature,
    u_min,
    seed_lo,
    seed_hi,
    stream,
    gumbel_substream,
    reveal_substream,
    choice_substream,
    choice_noise,
    _pad0,
    _pad1,
    _pad2
});

const OP: &str = "unmask_confident";

/// Shapes and options (both backends): `[B, L, K]` logits, `[B, L]` ids, `[B]` reveal chances.
fn check(logits: &[usize], x_t: &[usize], reveal: &[usize], o: &Unmask) -> Result<()> {
    let [b, l, k] = *logits else {
        return Err(Error::shape(
            OP,
            format!("logits {logits:?} must be [B, L, K]"),
        ));
    };
    if x_t != [b, l] || reveal != [b] {
        return Err(Error::shape(
            OP,
            format!(
                "x_t {x_t:?} must be [{b}, {l}] and reveal {reveal:?} [{b}] for logits {logits:?}"
            ),
        ));
    }
    if o.mask_token as usize >= k {
        return Err(Error::shape(
            OP,
            format!("mask token {} is not a class of K = {k}", o.mask_token),
        ));
    }
    let shared = |p: &Philox| p.seed == o.gumbel.seed && p.stream == o.gumbel.stream;
    if !shared(&o.reveal) || !shared(&o.choice) {
        return Err(Error::Invalid(format!(
            "{OP}: the Gumbel, reveal and choice keys must share seed and stream"
        )));
    }
    if !(o.choice_noise >= 0.0 && o.choice_noise.is_finite()) {
        return Err(Error::Invalid(format!(
            "{OP}: choice noise must be finite and ≥ 0, got {}",
            o.choice_noise
        )));
    }
    super::sample::check_gumbel_options(OP, o.temperature, o.u_min)
}

/// x_{t−1} (u32 `[B, L]`) from f32 `logits [B, L, K]`, u32 `x_t [B, L]` and f32 `reveal [B]` (a
/// masked position's chance of being revealed by this step; 1 reveals every one).
pub fn confident(logits: &Tensor, x_t: &Tensor, reveal: &Tensor, o: &Unmask) -> Result<Tensor> {
    logits.expect_dtype(OP, DType::F32)?;
    x_t.expect_dtype(OP, DType::U32)?;
    reveal.expect_dtype(OP, DType::F32)?;
    check_u32_len(OP, logits)?;
    check(logits.shape(), x_t.shape(), reveal.shape(), o)?;
    same_device(OP, &[logits, x_t, reveal])?;
    let (b, l, k) = (logits.dim(0), logits.dim(1), logits.dim(2));
    if let Device::Cpu(_) = logits.device() {
        let (shape, o) = (logits.shape().to_vec(), *o);
        return super::host_op(
            OP,
            logits.device(),
            &[b, l],
            DType::U32,
            &[logits, x_t, reveal],
            move |i| {
                let (logits, reveal) = (bytemuck::cast_slice(i[0]), bytemuck::cast_slice(i[2]));
                cpu::confident(logits, &shape, i[1], reveal, &o)
            },
        );
    }
    let gpu = logits.gpu()?;
    let out = Tensor::empty(gpu, &[b, l], DType::U32)?;
    if b * l == 0 {
        return Ok(out);
    }
    let conf = Tensor::empty(gpu, &[b, l], DType::F32)?;
    let [seed_lo, seed_hi] = o.gumbel.key();
    let p = Params {
        rows: b as u32,
        len: l as u32,
        k: k as u32,
        mask_token: o.mask_token,
        temperature: o.temperature,
        u_min: o.u_min,
        seed_lo,
        seed_hi,
        stream: o.gumbel.stream,
        gumbel_substream: o.gumbel.substream,
        reveal_substream: o.reveal.substream,
        choice_substream: o.choice.substream,
        choice_noise: o.choice_noise,
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    let spec = KernelSpec {
        family: "unmask",
        source: SRC,
        entry: "unmask_confident",
        defines: "",
        bindings: &[
            Access::Read,
            Access::Read,
            Access::Read,
            Access::ReadWrite,
            Access::ReadWrite,
        ],
    };
    gpu.dispatch(
        &spec,
        &p,
        &[
            logits.buffer()?,
            x_t.buffer()?,
            reveal.buffer()?,
            conf.buffer()?,
            out.buffer()?,
        ],
        Gpu::grid_1d(b as u64, WG),
    )?;
    Ok(out)
}
