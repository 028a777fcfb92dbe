//! The layout ops on host memory, for the CPU backend: concat, permute and slice of f32 or u32 data,
//! with the same shape rules and typed errors as the GPU drivers (one check function each).

use super::{concat_shape, permuted_shape, sliced_shape};
use crate::error::Result;
use crate::ops::check_host_len;

/// `parts` (data, shape) joined along `dim`; returns the output and its shape.
pub fn concat<T: Copy>(parts: &[(&[T], &[usize])], dim: usize) -> Result<(Vec<T>, Vec<usize>)> {
    for (d, s) in parts {
        check_host_len("concat", "input", d, s)?;
    }
    let shapes: Vec<&[usize]> = parts.iter().map(|(_, s)| *s).collect();
    let shape = concat_shape(&shapes, dim)?;
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut out = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for (d, s) in parts {
            let block = s[dim] * inner;
            out.extend_from_slice(&d[o * block..(o + 1) * block]);
        }
    }
    Ok((out, shape))
}

/// Output dimension `i` is input dimension `perm[i]` (torch's `permute`), as new contiguous data.
pub fn permute<T: Copy>(x: &[T], shape: &[usize], perm: &[usize]) -> Result<(Vec<T>, Vec<usize>)> {
    check_host_len("permute", "input", x, shape)?;
    let out_shape = permuted_shape(shape, perm)?;
    let rank = shape.len();
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * shape[i + 1];
    }
    let strides: Vec<usize> = perm.iter().map(|&d| in_strides[d]).collect();
    let n: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut coord = vec![0usize; rank];
    let mut src = 0usize;
    for _ in 0..n {
        out.push(x[src]);
        // Odometer over the output's coordinates, moving the source offset with it.
        for d in (0..rank).rev() {
            coord[d] += 1;
            src += strides[d];
            if coord[d] < out_shape[d] {
                break;
            }
            src -= strides[d] * out_shape[d];
            coord[d] = 0;
        }
    }
    Ok((out, out_shape))
}

/// Elements `start .. start + len` along `dim` (torch's `narrow`), as new contiguous data.
pub fn slice<T: Copy>(
    x: &[T],
    shape: &[usize],
    dim: usize,
    start: usize,
    len: usize,
) -> Result<(Vec<T>, Vec<usize>)> {
    check_host_len("slice", "input", x, shape)?;
    let out_shape = sliced_shape(shape, dim, start, len)?;
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for o in 0..outer {
        let base = (o * shape[dim] + start) * inner;
        out.extend_from_slice(&x[base..base + len * inner]);
    }
    Ok((out, out_shape))
}
