//! Graph kernels for DiGress over dense, padded batches: `B` graphs of at most `n` nodes, with
//! `counts` (u32 `[B]`) saying how many nodes each graph has. Node and edge classes are u32 ids; the
//! id [`NONE`] stands for DiGress's all-zero one-hot row (padding, and the diagonal of a prior draw).

mod cpu;

use super::{check_u32_len, launch};
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, KernelSpec};
use crate::tensor::{DType, Tensor};
use std::sync::LazyLock;

pub(super) const SRC: &str = include_str!("../../../shaders/graph.wgsl");

/// The class id of an all-zero one-hot row.
pub const NONE: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    b: u32,
    n: u32,
    c: u32,
    flags: u32,
    k: u32,
    f: u32,
    heads: u32,
    rows: u32,
    scale: f32,
    _p: [f32; 3],
}
params_layout!(Params {
    b,
    n,
    c,
    flags,
    k,
    f,
    heads,
    rows,
    scale,
    _p
});

const F_DIAG_NONE: u32 = 1;
const F_EDGE_MODE: u32 = 2;
const F_RESIDUAL: u32 = 4;
const F_ZERO_DIAG: u32 = 8;

const R: Access = Access::Read;
const W: Access = Access::ReadWrite;

/// The constants `shaders/graph.wgsl` shares with this driver, prepended to it.
pub(super) static DEFINES: LazyLock<String> =
    LazyLock::new(|| wgsl_consts![F_DIAG_NONE, F_EDGE_MODE, F_RESIDUAL, F_ZERO_DIAG,]);

fn spec(entry: &'static str, bindings: &'static [Access]) -> KernelSpec<'static> {
    KernelSpec {
        family: "graph",
        source: SRC,
        entry,
        defines: &DEFINES,
        bindings,
    }
}

fn check_counts(op: &'static str, counts: &Tensor, b: usize) -> Result<()> {
    counts.expect_dtype(op, DType::U32)?;
    if counts.shape() != [b] {
        return Err(Error::shape(
            op,
            format!("counts {:?} must be [{b}]", counts.shape()),
        ));
    }
    Ok(())
}

fn expect_shape(op: &'static str, what: &str, t: &Tensor, want: &[usize]) -> Result<()> {
    if t.shape() != want {
        return Err(Error::shape(
            op,
            format!("{what} {:?} must be {want:?}", t.shape()),
        ));
    }
    Ok(())
}

/// DiGress's `sample_discrete_features` after the draws: node ids `x` `[B, n]` and edge ids `e`
/// `[B, n, n]` (one independent draw per ordered pair) become a graph whose edges come from the strict
/// upper triangle, mirrored; the diagonal is class 0 (or [`NONE`] when `diag_none`, as in a prior
/// draw); padded nodes and pairs are [`NONE`].
pub fn finalize(
    x: &Tensor,
    e: &Tensor,
    counts: &Tensor,
    diag_none: bool,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "graph::finalize";
    x.expect_dtype(OP, DType::U32)?;
    e.expect_dtype(OP, DType::U32)?;
    if x.dims() != 2 {
        return Err(Error::shape(
            OP,
            format!("x {:?} must be [B, n]", x.shape()),
        ));
    }
    let (b, n) = (x.dim(0), x.dim(1));
    expect_shape(OP, "e", e, &[b, n, n])?;
    check_counts(OP, counts, b)?;
    check_u32_len(OP, e)?;
    let xo = Tensor::empty(x.device(), &[b, n], DType::U32)?;
    let eo = Tensor::empty(x.device(), &[b, n, n], DType::U32)?;
    let p = Params {
        b: b as u32,
        n: n as u32,
        flags: if diag_none { F_DIAG_NONE } else { 0 },
        ..Default::default()
    };
    launch(
        OP,
        &spec("finalize", &[R, R, R, W, W]),
        &p,
        &[Some(x), Some(e), Some(counts)],
        &[&xo, &eo],
        e.len() as u64,
        move |i, o| {
            let [xo, eo] = o else {
                unreachable!("two outputs")
            };
            cpu::finalize(&p, i[0], i[1], i[2], xo, eo)
        },
    )?;
    Ok((xo, eo))
}

/// One-hot rows of `k` classes for u32 ids `[..]` ([`NONE`] gives an all-zero row), followed by the
/// columns of `extra` (f32 `[.., F]`) when given: f32 `[.., k + F]`.
pub fn onehot(ids: &Tensor, k: usize, extra: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "graph::onehot";
    ids.expect_dtype(OP, DType::U32)?;
    if k == 0 {
        return Err(Error::shape(OP, "k must be at least 1"));
    }
    let f = match extra {
        Some(x) => {
            x.expect_dtype(OP, DType::F32)?;
            let Some((&f, lead)) = x.shape().split_last() else {
                return Err(Error::shape(OP, "extra needs a feature axis"));
            };
            if lead != ids.shape() {
                return Err(Error::shape(
                    OP,
                    format!(
                        "extra {:?} must be the ids' shape {:?} plus a feature axis",
                        x.shape(),
                        ids.shape()
                    ),
                ));
            }
            f
        }
        None => 0,
    };
    let mut shape = ids.shape().to_vec();
    shape.push(k + f);
    let out = Tensor::empty(ids.device(), &shape, DType::F32)?;
    check_u32_len(OP, &out)?;
    let p = Params {
        k: k as u32,
        f: f as u32,
        rows: ids.len() as u32,
        ..Default::default()
    };
    launch(
        OP,
        &spec("onehot", &[R, R, W]),
        &p,
        &[Some(ids), extra],
        &[&out],
        out.len() as u64,
        move |i, o| cpu::onehot(&p, i[0], i[1], o[0]),
    )?;
    Ok(out)
}

/// The attention core of DiGress's `NodeEdgeBlock` (see `shaders/graph.wgsl`): `qkv` f32
/// `[B, n, 3·dx]` (q, k, v before masking), `e12` f32 `[B, n, n, 2·dx]` (e_mul, e_add before masking),
/// `ymod` f32 `[B, 4·dx]` (y_e_add, y_e_mul, y_x_add, y_x_mul). Returns the edge features before
/// `e_out` `[B, n, n, dx]` and the node features before `x_out` `[B, n, dx]`.
pub fn node_edge_attention(
    qkv: &Tensor,
    e12: &Tensor,
    ymod: &Tensor,
    counts: &Tensor,
    heads: usize,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "graph::node_edge_attention";
    for t in [qkv, e12, ymod] {
        t.expect_dtype(OP, DType::F32)?;
    }
    if qkv.dims() != 3 || !qkv.dim(2).is_multiple_of(3) {
        return Err(Error::shape(
            OP,
            format!("qkv {:?} must be [B, n, 3·dx]", qkv.shape()),
        ));
    }
    let (b, n, dx) = (qkv.dim(0), qkv.dim(1), qkv.dim(2) / 3);
    if heads == 0 || !dx.is_multiple_of(heads) {
        return Err(Error::shape(
            OP,
            format!("dx = {dx} is not a multiple of {heads} heads"),
        ));
    }
    expect_shape(OP, "e12", e12, &[b, n, n, 2 * dx])?;
    expect_shape(OP, "ymod", ymod, &[b, 4 * dx])?;
    check_counts(OP, counts, b)?;
    check_u32_len(OP, e12)?;
    let eo = Tensor::empty(qkv.device(), &[b, n, n, dx], DType::F32)?;
    let xo = Tensor::empty(qkv.device(), &[b, n, dx], DType::F32)?;
    let df = dx / heads;
    let p = Params {
        b: b as u32,
        n: n as u32,
        c: dx as u32,
        heads: heads as u32,
        scale: (df as f32).sqrt(),
        ..Default::default()
    };
    launch(
        OP,
        &spec("node_edge_attn", &[R, R, R, R, W, W]),
        &p,
        &[Some(qkv), Some(e12), Some(ymod), Some(counts)],
        &[&eo, &xo],
        (b * n * dx) as u64,
        move |i, o| {
            let [eo, xo] = o else {
                unreachable!("two outputs")
            };
            cpu::node_edge_attn(&p, i[0], i[1], i[2], i[3], eo, xo)
        },
    )?;
    Ok((eo, xo))
}

/// DiGress (fixed_bug) `Xtoy` / `Etoy` statistics: `x` f32 `[B, n, C]` (nodes) or `[B, n, n, C]`
/// (edges) → f32 `[B, 4C]` = mean, min, max, variance. The mean sums every row (padded rows too) over
/// the valid count, as the reference does; min, max and variance use valid rows only.
pub fn pool(x: &Tensor, counts: &Tensor) -> Result<Tensor> {
    const OP: &str = "graph::pool";
    x.expect_dtype(OP, DType::F32)?;
    check_u32_len(OP, x)?;
    let (b, n, rows, edge) = match x.shape() {
        [b, n, _] => (*b, *n, *n, false),
        [b, n, m, _] if m == n => (*b, *n, n * n, true),
        s => {
            return Err(Error::shape(
                OP,
                format!("x {s:?} must be [B, n, C] or [B, n, n, C]"),
            ))
        }
    };
    let c = *x.shape().last().expect("rank checked");
    check_counts(OP, counts, b)?;
    let out = Tensor::empty(x.device(), &[b, 4 * c], DType::F32)?;
    let p = Params {
        b: b as u32,
        n: n as u32,
        c: c as u32,
        rows: rows as u32,
        flags: if edge { F_EDGE_MODE } else { 0 },
        ..Default::default()
    };
    launch(
        OP,
        &spec("pool", &[R, R, W]),
        &p,
        &[Some(x), Some(counts)],
        &[&out],
        (b * c) as u64,
        move |i, o| cpu::pool(&p, i[0], i[1], o[0]),
    )?;
    Ok(out)
}

/// `m_ij · ½((A_ij + R_ij)·d_ij + (A_ji + R_ji)·d_ji)` over f32 `[B, n, n, C]`: DiGress's edge
/// symmetrisation, with the optional residual `R` (same shape) and `d` the off-diagonal mask when
/// `zero_diag` (else 1); `m` zeroes padded pairs.
pub fn sym_edges(
    a: &Tensor,
    residual: Option<&Tensor>,
    counts: &Tensor,
    zero_diag: bool,
) -> Result<Tensor> {
    const OP: &str = "graph::sym_edges";
    a.expect_dtype(OP, DType::F32)?;
    check_u32_len(OP, a)?;
    let [b, n, m, c] = *a.shape() else {
        return Err(Error::shape(
            OP,
            format!("a {:?} must be [B, n, n, C]", a.shape()),
        ));
    };
    if m != n {
        return Err(Error::shape(OP, format!("a {:?} is not square", a.shape())));
    }
    if let Some(r) = residual {
        r.expect_dtype(OP, DType::F32)?;
        expect_shape(OP, "residual", r, a.shape())?;
    }
    check_counts(OP, counts, b)?;
    let out = Tensor::empty(a.device(), a.shape(), DType::F32)?;
    let mut flags = if zero_diag { F_ZERO_DIAG } else { 0 };
    if residual.is_some() {
        flags |= F_RESIDUAL;
    }
    let p = Params {
        b: b as u32,
        n: n as u32,
        c: c as u32,
        flags,
        ..Default::default()
    };
    launch(
        OP,
        &spec("sym_edges", &[R, R, R, W]),
        &p,
        &[Some(a), residual, Some(counts)],
        &[&out],
        a.len() as u64,
        move |i, o| cpu::sym_edges(&p, i[0], i[1], i[2], o[0]),
    )?;
    Ok(out)
}
