//! Tensors filled from Philox on the GPU: uniforms, normals, Gumbel noise and raw words.
//!
//! Element `i` of a fill is the draw at index `first + i` of the [`Philox`] key (seed, stream,
//! substream), the same function as [`Philox::uniform`], [`Philox::normal`], [`Philox::gumbel`] and
//! [`Philox::words`] on the CPU: raw words and uniforms are bit-identical, normals and Gumbel draws
//! agree to transcendental accuracy (GPUs do not round `log`/`cos` correctly).

pub mod cpu;

use super::WG;
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::rng::Philox;
use crate::tensor::{DType, Device, Tensor};
use std::sync::LazyLock;

pub(super) const SRC: &str = concat!(
    include_str!("../../shaders/philox.wgsl"),
    include_str!("../../shaders/random.wgsl")
);

/// What to draw per element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// In (0, 1), word 0 (see [`crate::rng::to_uniform`]).
    Uniform = 0,
    /// Standard normal, Box–Muller on words 0 and 1.
    Normal = 1,
    /// Standard Gumbel `−log(−log u)`, u from word 0.
    Gumbel = 2,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    n: u32,
    kind: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    substream: u32,
    first: u32,
    _pad: u32,
}
params_layout!(Params {
    n,
    kind,
    seed_lo,
    seed_hi,
    stream,
    substream,
    first,
    _pad
});

const KIND_WORDS: u32 = 3;

/// The constants `shaders/random.wgsl` shares with this driver, prepended to it.
pub(super) static DEFINES: LazyLock<String> = LazyLock::new(|| {
    wgsl_consts![
        KIND_UNIFORM = Distribution::Uniform as u32,
        KIND_NORMAL = Distribution::Normal as u32,
        KIND_GUMBEL = Distribution::Gumbel as u32,
        KIND_WORDS,
    ]
});

fn spec() -> KernelSpec<'static> {
    KernelSpec {
        family: "random",
        source: SRC,
        entry: "fill",
        defines: &DEFINES,
        bindings: &[Access::ReadWrite],
    }
}

fn run(
    device: &Device,
    out_shape: &[usize],
    dtype: DType,
    n: usize,
    key: Philox,
    kind: u32,
    first: u32,
) -> Result<Tensor> {
    check_index_range(n, first)?;
    let Device::Gpu(gpu) = device else {
        return Err(Error::Internal(
            "random::run reached with a host device".into(),
        ));
    };
    let out = Tensor::empty(gpu, out_shape, dtype)?;
    let p = Params {
        n: n as u32,
        kind,
        seed_lo: key.key()[0],
        seed_hi: key.key()[1],
        stream: key.stream,
        substream: key.substream,
        first,
        _pad: 0,
    };
    gpu.dispatch(&spec(), &p, &[out.buffer()?], Gpu::grid_1d(n as u64, WG))?;
    Ok(out)
}

/// Indices are u32 on both backends; a fill that wrapped around would silently repeat draws.
fn check_index_range(n: usize, first: u32) -> Result<()> {
    if n as u64 + first as u64 > u32::MAX as u64 + 1 {
        return Err(Error::Invalid(format!(
            "random fill of {n} elements from index {first} runs past Philox's 2^32 indices"
        )));
    }
    Ok(())
}

/// The element count of a words fill of `shape` and its output shape `[shape.., 4]`.
fn words_shape(shape: &[usize]) -> Result<(usize, Vec<usize>)> {
    let n = count(shape)?;
    let mut out_shape = shape.to_vec();
    out_shape.push(4);
    if n > (u32::MAX / 4) as usize {
        return Err(Error::shape(
            "random::words",
            format!("{shape:?} needs more than 2^32 output words"),
        ));
    }
    Ok((n, out_shape))
}

fn count(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::Invalid(format!("shape {shape:?} overflows")))
}

/// An f32 tensor of `shape` whose element `i` is draw `first + i` of `key` from `dist`.
pub fn fill(
    device: &Device,
    shape: &[usize],
    key: Philox,
    dist: Distribution,
    first: u32,
) -> Result<Tensor> {
    let n = count(shape)?;
    if let Device::Cpu(_) = device {
        let s = shape.to_vec();
        return super::host_op_f32("fill", device, shape, &[], move |_| {
            cpu::fill(&s, key, dist, first)
        });
    }
    run(device, shape, DType::F32, n, key, dist as u32, first)
}

/// Uniforms in (0, 1), bit-identical to [`Philox::uniform`].
pub fn uniform(device: &Device, shape: &[usize], key: Philox) -> Result<Tensor> {
    fill(device, shape, key, Distribution::Uniform, 0)
}

/// Standard normals as [`Philox::normal`].
pub fn normal(device: &Device, shape: &[usize], key: Philox) -> Result<Tensor> {
    fill(device, shape, key, Distribution::Normal, 0)
}

/// Standard Gumbel noise as [`Philox::gumbel`].
pub fn gumbel(device: &Device, shape: &[usize], key: Philox) -> Result<Tensor> {
    fill(device, shape, key, Distribution::Gumbel, 0)
}

/// All four raw Philox words per element: a u32 tensor of shape `[shape.., 4]`, bit-identical to
/// [`Philox::words`] at indices `first..`.
pub fn words(device: &Device, shape: &[usize], key: Philox, first: u32) -> Result<Tensor> {
    let (n, out_shape) = words_shape(shape)?;
    if let Device::Cpu(_) = device {
        let s = shape.to_vec();
        return super::host_op("words", device, &out_shape, DType::U32, &[], move |_| {
            cpu::words(&s, key, first)
        });
    }
    run(device, &out_shape, DType::U32, n, key, KIND_WORDS, first)
}
