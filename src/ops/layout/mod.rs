//! Data movement between contiguous tensors: `concat` (UNet skip connections), `permute` (head splits,
//! NCHW ↔ NHWC) and `slice`. Each is a copy kernel with index arithmetic, and works for f32 and u32.

pub mod cpu;

use super::{check_u32_len, host_op, pad_shape, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::params_layout;
use crate::gpu::{Access, Gpu, KernelSpec};
use crate::tensor::{same_device, Device, Tensor};

pub(super) const SRC: &str = include_str!("../../../shaders/layout.wgsl");

/// Highest rank `permute` takes.
pub const MAX_PERMUTE_RANK: usize = 6;

/// Inputs one concat dispatch reads (see the shader).
const CONCAT_PER_DISPATCH: usize = 4;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct ConcatParams {
    n: u32,
    inner: u32,
    out_size: u32,
    offset: u32,
    sizes: [u32; 4],
    total: u32,
    _pad: [u32; 3],
}
params_layout!(ConcatParams {
    n,
    inner,
    out_size,
    offset,
    sizes,
    total,
    _pad
});

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct PermuteParams {
    n: u32,
    rank: u32,
    _pad: [u32; 2],
    shape: [u32; 8],
    strides: [u32; 8],
}
params_layout!(PermuteParams {
    n,
    rank,
    _pad,
    shape,
    strides
});

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct SliceParams {
    n: u32,
    inner: u32,
    len: u32,
    size: u32,
    start: u32,
    _pad: [u32; 3],
}
params_layout!(SliceParams {
    n,
    inner,
    len,
    size,
    start,
    _pad
});

fn spec(entry: &'static str, bindings: &'static [Access]) -> KernelSpec<'static> {
    KernelSpec {
        family: "layout",
        source: SRC,
        entry,
        defines: "",
        bindings,
    }
}

/// The shape of `shapes` concatenated along `dim`: they must agree everywhere else.
fn concat_shape(shapes: &[&[usize]], dim: usize) -> Result<Vec<usize>> {
    const OP: &str = "concat";
    let first = *shapes
        .first()
        .ok_or_else(|| Error::Invalid("concat of no tensors".into()))?;
    check_dim(OP, first, dim)?;
    for t in shapes {
        let same_others =
            t.len() == first.len() && (0..t.len()).all(|i| i == dim || t[i] == first[i]);
        if !same_others {
            return Err(Error::shape(
                OP,
                format!("{first:?} and {t:?} differ outside dimension {dim}"),
            ));
        }
    }
    let mut shape = first.to_vec();
    shape[dim] = shapes.iter().map(|t| t[dim]).sum();
    Ok(shape)
}

/// `perm` must reorder every dimension of `shape` exactly once; returns the permuted shape.
fn permuted_shape(shape: &[usize], perm: &[usize]) -> Result<Vec<usize>> {
    const OP: &str = "permute";
    let rank = shape.len();
    if rank > MAX_PERMUTE_RANK {
        return Err(Error::shape(
            OP,
            format!("rank {rank} exceeds {MAX_PERMUTE_RANK}"),
        ));
    }
    let mut seen = [false; MAX_PERMUTE_RANK];
    let valid = perm.len() == rank
        && perm
            .iter()
            .all(|&d| d < rank && !std::mem::replace(&mut seen[d], true));
    if !valid {
        return Err(Error::shape(
            OP,
            format!("{perm:?} is not a permutation of the dimensions of {shape:?}"),
        ));
    }
    Ok(perm.iter().map(|&d| shape[d]).collect())
}

/// `start .. start + len` must lie inside dimension `dim` of `shape`; returns the sliced shape.
fn sliced_shape(shape: &[usize], dim: usize, start: usize, len: usize) -> Result<Vec<usize>> {
    const OP: &str = "slice";
    check_dim(OP, shape, dim)?;
    if start.checked_add(len).is_none_or(|end| end > shape[dim]) {
        return Err(Error::shape(
            OP,
            format!("{start}..{start}+{len} is out of range for dimension {dim} of {shape:?}"),
        ));
    }
    let mut out = shape.to_vec();
    out[dim] = len;
    Ok(out)
}

fn check_dim(op: &'static str, shape: &[usize], dim: usize) -> Result<()> {
    if dim >= shape.len() {
        return Err(Error::shape(
            op,
            format!("dimension {dim} does not exist in {shape:?}"),
        ));
    }
    Ok(())
}

/// Concatenate along `dim`. All tensors share dtype and every dimension but `dim`.
pub fn concat(tensors: &[&Tensor], dim: usize) -> Result<Tensor> {
    const OP: &str = "concat";
    let first = *tensors
        .first()
        .ok_or_else(|| Error::Invalid("concat of no tensors".into()))?;
    let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
    concat_shape(&shapes, dim)?;
    for t in tensors {
        check_u32_len(OP, t)?;
        if t.dtype() != first.dtype() {
            return Err(Error::DType {
                op: OP,
                expected: first.dtype().name(),
                got: t.dtype().name(),
            });
        }
    }
    let out_size: usize = tensors.iter().map(|t| t.dim(dim)).sum();
    let mut shape = first.shape().to_vec();
    shape[dim] = out_size;
    if let Device::Cpu(_) = same_device(OP, tensors)? {
        let shapes: Vec<Vec<usize>> = tensors.iter().map(|t| t.shape().to_vec()).collect();
        return host_op(
            OP,
            first.device(),
            &shape,
            first.dtype(),
            tensors,
            move |i| {
                let parts: Vec<(&[u32], &[usize])> =
                    i.iter().zip(&shapes).map(|(w, s)| (*w, &s[..])).collect();
                cpu::concat(&parts, dim).map(|(v, _)| v)
            },
        );
    }
    let out = Tensor::empty(first.gpu()?, &shape, first.dtype())?;
    check_u32_len(OP, &out)?;
    if out.is_empty() {
        return Ok(out);
    }
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut offset = 0;
    for group in tensors.chunks(CONCAT_PER_DISPATCH) {
        let mut sizes = [0u32; 4];
        for (s, t) in sizes.iter_mut().zip(group) {
            *s = t.dim(dim) as u32;
        }
        let total: usize = group.iter().map(|t| t.dim(dim)).sum();
        let n = outer * total * inner;
        if n > 0 {
            let p = ConcatParams {
                n: n as u32,
                inner: inner as u32,
                out_size: out_size as u32,
                offset: offset as u32,
                sizes,
                total: total as u32,
                _pad: [0; 3],
            };
            // Unused input slots bind the group's first tensor; the kernel never reaches them.
            let input = |i: usize| group.get(i).unwrap_or(&group[0]).buffer();
            first.gpu()?.dispatch(
                &spec(
                    "concat",
                    &[
                        Access::Read,
                        Access::Read,
                        Access::Read,
                        Access::Read,
                        Access::ReadWrite,
                    ],
                ),
                &p,
                &[input(0)?, input(1)?, input(2)?, input(3)?, out.buffer()?],
                Gpu::grid_1d(n as u64, WG),
            )?;
        }
        offset += total;
    }
    Ok(out)
}

/// Reorder dimensions: output dimension `i` is input dimension `perm[i]` (torch's `permute`), rank
/// ≤ [`MAX_PERMUTE_RANK`]. The result is a new contiguous tensor.
pub fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    const OP: &str = "permute";
    check_u32_len(OP, x)?;
    let rank = x.dims();
    let shape = permuted_shape(x.shape(), perm)?;
    if let Device::Cpu(_) = x.device() {
        let (xs, perm) = (x.shape().to_vec(), perm.to_vec());
        return host_op(OP, x.device(), &shape, x.dtype(), &[x], move |i| {
            cpu::permute(i[0], &xs, &perm).map(|(v, _)| v)
        });
    }
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * x.dim(i + 1);
    }
    let mut strides = [0u32; 8];
    for (s, &d) in strides.iter_mut().zip(perm) {
        *s = in_strides[d] as u32;
    }
    let out = Tensor::empty(x.gpu()?, &shape, x.dtype())?;
    if out.is_empty() {
        return Ok(out);
    }
    let p = PermuteParams {
        n: out.len() as u32,
        rank: rank as u32,
        _pad: [0; 2],
        shape: pad_shape(&shape),
        strides,
    };
    x.gpu()?.dispatch(
        &spec("permute", &[Access::Read, Access::ReadWrite]),
        &p,
        &[x.buffer()?, out.buffer()?],
        Gpu::grid_1d(out.len() as u64, WG),
    )?;
    Ok(out)
}

/// Elements `start .. start + len` along `dim` (torch's `narrow`), as a new contiguous tensor.
pub fn slice(x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
    const OP: &str = "slice";
    check_u32_len(OP, x)?;
    let shape = sliced_shape(x.shape(), dim, start, len)?;
    if let Device::Cpu(_) = x.device() {
        let xs = x.shape().to_vec();
        return host_op(OP, x.device(), &shape, x.dtype(), &[x], move |i| {
            cpu::slice(i[0], &xs, dim, start, len).map(|(v, _)| v)
        });
    }
    let out = Tensor::empty(x.gpu()?, &shape, x.dtype())?;
    if out.is_empty() {
        return Ok(out);
    }
    let p = SliceParams {
        n: out.len() as u32,
        inner: shape[dim + 1..].iter().product::<usize>() as u32,
        len: len as u32,
        size: x.dim(dim) as u32,
        start: start as u32,
        _pad: [0; 3],
    };
    x.gpu()?.dispatch(
        &spec("slice", &[Access::Read, Access::ReadWrite]),
        &p,
        &[x.buffer()?, out.buffer()?],
        Gpu::grid_1d(out.len() as u64, WG),
    )?;
    Ok(out)
}
