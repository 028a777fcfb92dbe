//! Padding that stays a suffix: a step's draw for sequences whose padding only ever ends them
//! (words: `cat_________`), so that no sample holds a pad before a letter. A model learns this from
//! its data only approximately (words-absorb: 0–1 % of samples broke it), and two positions revealed
//! by one step are drawn independently, so nothing in the process itself could keep them apart.
//!
//! Given the scores a step drew from (`[B, L, K]` logits), the state it drew from (x_t `[B, L]`) and
//! its draw (`[B, L]`), each row is read left to right:
//! - a position already decided in x_t (it holds a token other than the mask) keeps its token;
//! - a position drawn this step keeps its token unless that breaks the suffix: a letter after a pad
//!   (decided, or drawn left of it this step), or a pad before a letter decided in x_t;
//! - such a position is drawn again from the same scores and the same Gumbel noise, among the
//!   classes that fit (the pad; or the letters) and the mask where `mask_competes` (a posterior that
//!   may leave a position masked). Gumbel-max over a subset with the same noise draws from the
//!   distribution restricted to it, so the result is the step's own distribution conditioned on
//!   the suffix — position by position, left to right.
//!
//! It never fails on a sequence that already breaks the rule (an edited one): a pad seen first
//! wins (what follows is padding), and a position with no class left that fits keeps its draw.
//! Noise: element `(row·L + l)·K + k` of the key, as [`crate::ops::sample::gumbel_max`] and
//! [`crate::ops::unmask`] draw, so an unconstrained draw is replayed exactly; no key: argmax.

pub mod cpu;

use super::{check_u32_len, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::params_layout;
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::rng::Philox;
use crate::tensor::{same_device, DType, Device, Tensor};

pub(super) const SRC: &str = concat!(
    include_str!("../../shaders/philox.wgsl"),
    include_str!("../../shaders/pad_suffix.wgsl")
);

/// What [`redraw`] holds to, and how the step drew.
#[derive(Clone, Copy, Debug)]
pub struct PadSuffix {
    /// The padding class.
    pub pad: u32,
    /// The absorbing class, if the process has one: never a letter, and a position holding it in
    /// x_t is not decided yet.
    pub mask: Option<u32>,
    /// Whether the mask class may be drawn again (a posterior that can keep a position masked).
    pub mask_competes: bool,
    /// Divides the scores (must be > 0), as the step's draw did.
    pub temperature: f32,
    /// Uniforms are clipped to `[u_min, 1]` before the Gumbel transform (moco: 1e-6).
    pub u_min: f32,
    /// The step's Gumbel key; `None` for an argmax step.
    pub noise: Option<Philox>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    rows: u32,
    len: u32,
    k: u32,
    pad: u32,
    mask: u32,
    flags: u32,
    temperature: f32,
    u_min: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    substream: u32,
}
params_layout!(Params {
    rows,
    len,
    k,
    pad,
    mask,
    flags,
    temperature,
    u_min,
    seed_lo,
    seed_hi,
    stream,
    substream
});

/// `Params::flags`: the process has a mask class / it competes in a redraw / the draw had noise.
const F_MASK: u32 = 1;
const F_MASK_COMPETES: u32 = 2;
const F_NOISE: u32 = 4;

const OP: &str = "pad_suffix";

/// Shapes and options (both backends): `[B, L, K]` scores, `[B, L]` x_t and draw.
fn check(scores: &[usize], x_t: &[usize], drawn: &[usize], o: &PadSuffix) -> Result<()> {
    let [b, l, k] = *scores else {
        return Err(Error::shape(
            OP,
            format!("scores {scores:?} must be [B, L, K]"),
        ));
    };
    if x_t != [b, l] || drawn != [b, l] {
        return Err(Error::shape(
            OP,
            format!("x_t {x_t:?} and the draw {drawn:?} must be [{b}, {l}] for scores {scores:?}"),
        ));
    }
    for (what, c) in [("pad", Some(o.pad)), ("mask", o.mask)] {
        if let Some(c) = c.filter(|&c| c as usize >= k) {
            return Err(Error::shape(
                OP,
                format!("{what} class {c} is not a class of K = {k}"),
            ));
        }
    }
    if o.mask == Some(o.pad) {
        return Err(Error::Invalid(format!(
            "{OP}: the pad and the mask are one class ({})",
            o.pad
        )));
    }
    super::sample::check_gumbel_options(OP, o.temperature, o.u_min)
}

/// The draw `drawn` (u32 `[B, L]`) of a step from f32 `scores [B, L, K]` and u32 `x_t [B, L]`, with
/// every pad a suffix of its row (see the module's rule).
pub fn redraw(scores: &Tensor, x_t: &Tensor, drawn: &Tensor, o: &PadSuffix) -> Result<Tensor> {
    scores.expect_dtype(OP, DType::F32)?;
    x_t.expect_dtype(OP, DType::U32)?;
    drawn.expect_dtype(OP, DType::U32)?;
    check_u32_len(OP, scores)?;
    check(scores.shape(), x_t.shape(), drawn.shape(), o)?;
    same_device(OP, &[scores, x_t, drawn])?;
    let (b, l, k) = (scores.dim(0), scores.dim(1), scores.dim(2));
    if let Device::Cpu(_) = scores.device() {
        let (shape, o) = (scores.shape().to_vec(), *o);
        return super::host_op(
            OP,
            scores.device(),
            &[b, l],
            DType::U32,
            &[scores, x_t, drawn],
            move |i| cpu::redraw(bytemuck::cast_slice(i[0]), &shape, i[1], i[2], &o),
        );
    }
    let gpu = scores.gpu()?;
    let out = Tensor::empty(gpu, &[b, l], DType::U32)?;
    if b * l == 0 {
        return Ok(out);
    }
    let key = o.noise.unwrap_or(Philox {
        seed: 0,
        stream: 0,
        substream: 0,
    });
    let [seed_lo, seed_hi] = key.key();
    let flags = o.mask.map_or(0, |_| F_MASK)
        | if o.mask_competes { F_MASK_COMPETES } else { 0 }
        | o.noise.map_or(0, |_| F_NOISE);
    let p = Params {
        rows: b as u32,
        len: l as u32,
        k: k as u32,
        pad: o.pad,
        mask: o.mask.unwrap_or(0),
        flags,
        temperature: o.temperature,
        u_min: o.u_min,
        seed_lo,
        seed_hi,
        stream: key.stream,
        substream: key.substream,
    };
    let spec = KernelSpec {
        family: "pad_suffix",
        source: SRC,
        entry: "pad_suffix",
        defines: "",
        bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
    };
    gpu.dispatch(
        &spec,
        &p,
        &[
            scores.buffer()?,
            x_t.buffer()?,
            drawn.buffer()?,
            out.buffer()?,
        ],
        Gpu::grid_1d(b as u64, WG),
    )?;
    Ok(out)
}
