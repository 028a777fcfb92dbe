//! Kernel families. Each file here drives `shaders/<family>.wgsl` and has a plain-Rust reference in
//! `tests/engine/` that it is tested against. Ops are plain functions over [`Tensor`]s: they check
//! shapes and dtypes, allocate the output from the pool and *record* a dispatch; nothing runs until
//! the batch is submitted (see [`crate::gpu`]).

pub mod attention;
pub mod conv;
pub mod elementwise;
pub mod embedding;
pub mod graph;
pub(crate) mod host;
mod kernel_params;
pub mod langevin;
pub mod layout;
pub mod loss;
pub mod matmul;
pub mod noise;
pub mod norm;
pub mod pad_suffix;
pub mod random;
pub mod sample;
pub mod transition;
pub mod unmask;
pub mod update;

pub(crate) use host::{host_op, host_op_f32, host_op_into, host_ops};
pub use kernel_params::{kernel_params, KernelParams};

use crate::error::{Error, Result};
use crate::gpu::{Gpu, KernelSpec};
use crate::tensor::{same_device, DType, Device, Tensor};

/// Most 1-D kernels run 256 invocations per workgroup: WebGPU's guaranteed maximum.
pub(crate) const WG: u32 = 256;

/// Up to this many dimensions in broadcasting kernels.
pub(crate) const MAX_RANK: usize = 8;

/// numpy broadcasting: right-aligned, each dimension equal or 1.
pub(crate) fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    if rank > MAX_RANK {
        return Err(Error::shape(op, format!("rank {rank} exceeds {MAX_RANK}")));
    }
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(
                op,
                format!("cannot broadcast {a:?} with {b:?} (dimension {i}: {da} vs {db})"),
            ));
        };
    }
    Ok(out)
}

/// Element strides of a contiguous `src` read as if it had shape `out` (0 along broadcast dims),
/// padded to `MAX_RANK`.
pub(crate) fn broadcast_strides(src: &[usize], out: &[usize]) -> [u32; MAX_RANK] {
    let mut strides = [0u32; MAX_RANK];
    let off = out.len() - src.len();
    let mut s = 1usize;
    for i in (0..src.len()).rev() {
        if src[i] != 1 {
            strides[i + off] = s as u32;
        }
        s *= src[i];
    }
    strides
}

pub(crate) fn pad_shape(shape: &[usize]) -> [u32; MAX_RANK] {
    let mut s = [1u32; MAX_RANK];
    for (i, &d) in shape.iter().enumerate() {
        s[i] = d as u32;
    }
    s
}

/// Run one entry point of a family's shader on the device its tensors share. On the GPU: a dispatch
/// of `threads` invocations over `inputs` then `outputs`, in binding order, where a `None` input (a
/// binding the kernel does not read this time, e.g. an implicit prior) binds the first input given.
/// On the CPU: `host`, the entry point's port, over the same bindings as 32-bit words, an empty slice
/// for a `None`. Families whose CPU kernel mirrors the shader over one parameter block use this;
/// those with a library behind them (matmul, conv) dispatch themselves.
pub(crate) fn launch<P: bytemuck::Pod>(
    op: &'static str,
    spec: &KernelSpec<'_>,
    params: &P,
    inputs: &[Option<&Tensor>],
    outputs: &[&Tensor],
    threads: u64,
    host: impl FnOnce(&[&[u32]], &mut [&mut [u32]]) + Send + 'static,
) -> Result<()> {
    let all: Vec<&Tensor> = inputs.iter().flatten().chain(outputs).copied().collect();
    match same_device(op, &all)? {
        Device::Gpu(g) => {
            let Some(fallback) = inputs.iter().flatten().next() else {
                return Err(Error::Internal(format!("{op}: a kernel with no input")));
            };
            let fallback = fallback.buffer()?;
            let mut bufs = Vec::with_capacity(inputs.len() + outputs.len());
            for t in inputs {
                bufs.push(t.map_or(Ok(fallback), Tensor::buffer)?);
            }
            for t in outputs {
                bufs.push(t.buffer()?);
            }
            g.dispatch(spec, params, &bufs, Gpu::grid_1d(threads, WG))
        }
        device @ Device::Cpu(_) => host_op_into(op, device, inputs, outputs, move |i, o| {
            host(i, o);
            Ok(())
        }),
    }
}

/// Host data must hold exactly the values its shape says (for the CPU backend's kernels, which take
/// slices and shapes: an error of the caller's, not a panic on an index).
pub(crate) fn check_host_len<T>(
    op: &'static str,
    what: &str,
    data: &[T],
    shape: &[usize],
) -> Result<()> {
    let want = shape
        .iter()
        .try_fold(1usize, |p, &d| p.checked_mul(d))
        .ok_or_else(|| Error::shape(op, format!("{what} shape {shape:?} overflows")))?;
    if data.len() != want {
        return Err(Error::shape(
            op,
            format!(
                "{what} holds {} values, its shape {shape:?} needs {want}",
                data.len()
            ),
        ));
    }
    Ok(())
}

/// Every kernel indexes with u32: refuse tensors past that.
pub(crate) fn check_u32_len(op: &'static str, t: &Tensor) -> Result<()> {
    if t.len() > u32::MAX as usize {
        return Err(Error::shape(
            op,
            format!("{:?} has more than 2^32 elements", t.shape()),
        ));
    }
    Ok(())
}

/// K classes: at least one, and K² within u32 (posteriors index K×K matrices).
pub(crate) fn check_class_count(op: &'static str, k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::shape(op, "K must be at least 1"));
    }
    if k > (u32::MAX as usize) / k.max(1) {
        return Err(Error::shape(op, format!("K = {k} is too large")));
    }
    Ok(())
}

/// (K, leading shape, rows) of an f32 tensor `[.., K]` of per-class values.
pub(crate) fn class_rows<'t>(
    op: &'static str,
    x: &'t Tensor,
) -> Result<(usize, &'t [usize], usize)> {
    x.expect_dtype(op, DType::F32)?;
    check_u32_len(op, x)?;
    let Some((&k, lead)) = x.shape().split_last() else {
        return Err(Error::shape(op, "needs a class axis"));
    };
    check_class_count(op, k)?;
    Ok((k, lead, lead.iter().product()))
}
