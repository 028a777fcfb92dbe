//! 2-D convolution (NCHW, PyTorch weight layout), nearest-neighbour 2× upsampling and the FIR
//! resampling of the score-SDE UNets (`fir.rs`): the spatial ops of a diffusers `UNet2DModel`.
//!
//! Padding is given per side so that diffusers' `Downsample2D(padding=0)` — pad (0, 1, 0, 1), then a
//! stride-2 convolution without padding — is one call with [`Padding::new`]`(0, 1, 0, 1)`.

pub mod cpu;
mod fir;

pub use fir::{fir_downsample2x, fir_resample, fir_upsample2x, Fir};

use super::{check_u32_len, WG};
use crate::error::{Error, Result};
use crate::gpu::wgsl::{params_layout, wgsl_consts};
use crate::gpu::{Access, Gpu, KernelSpec, MAX_GROUPS_PER_DIM};
use crate::tensor::{same_device, DType, Device, Tensor};
use std::sync::LazyLock;

pub(super) const SRC: &str = include_str!("../../../shaders/conv.wgsl");
pub(super) const SRC_DIRECT: &str = include_str!("../../../shaders/conv_direct.wgsl");

/// Output pixels per invocation of the direct kernel (a row segment); matches `TN` there.
const DIRECT_TN: usize = 8;
const DIRECT_TM: usize = 4;
const DIRECT_WG: u32 = 64;
/// The direct kernel keeps one input row segment of `(TN − 1)·stride + kw` values in registers.
const DIRECT_MAX_ROW: usize = 24;

/// Which conv2d kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKernel {
    /// Register-blocked direct convolution (no shared memory): the choice on software GPUs, and for
    /// every kernel small enough (see [`ConvKernel::pick`]).
    Direct,
    /// Implicit GEMM through shared-memory tiles (64 channels × 64 pixels): any kernel size.
    Gemm,
}

impl ConvKernel {
    /// Direct whenever its row segment fits (every 1×1 and 3×3 convolution of a UNet): measured on
    /// lavapipe it is many times faster than the tiled GEMM at the channel counts diffscope's models use.
    pub fn pick(kw: usize, stride: usize) -> ConvKernel {
        if (DIRECT_TN - 1) * stride + kw <= DIRECT_MAX_ROW {
            ConvKernel::Direct
        } else {
            ConvKernel::Gemm
        }
    }
}

/// Output tile of one conv2d workgroup (output channels × pixels): the shader's `BM`/`BN`, prepended
/// from here so the dispatch and the kernel cannot disagree.
const TILE_M: usize = 64;
const TILE_N: usize = 64;
pub(super) static GEMM_DEFINES: LazyLock<String> = LazyLock::new(|| {
    let (bm, bn) = (TILE_M as u32, TILE_N as u32);
    wgsl_consts![BM = bm, BN = bn]
});

/// Zero padding per side, in pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Padding {
    pub fn new(top: usize, bottom: usize, left: usize, right: usize) -> Self {
        Padding {
            top,
            bottom,
            left,
            right,
        }
    }
    /// `p` on every side (PyTorch's `padding=p`).
    pub fn same(p: usize) -> Self {
        Self::new(p, p, p, p)
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct ConvParams {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    ho: u32,
    wo: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    has_bias: u32,
    k: u32,
    pixels: u32,
    _pad: u32,
}
params_layout!(ConvParams {
    n,
    cin,
    h,
    w,
    cout,
    ho,
    wo,
    kh,
    kw,
    stride,
    pad_top,
    pad_left,
    has_bias,
    k,
    pixels,
    _pad
});

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct UpParams {
    n: u32,
    h: u32,
    w: u32,
    _pad: u32,
}
params_layout!(UpParams { n, h, w, _pad });

fn spec(entry: &'static str, bindings: &'static [Access]) -> KernelSpec<'static> {
    KernelSpec {
        family: "conv",
        source: SRC,
        entry,
        defines: &GEMM_DEFINES,
        bindings,
    }
}

/// The checked shapes of one conv2d: input `[N, Cin, H, W]`, weight `[Cout, Cin, kh, kw]`, output
/// `[N, Cout, ho, wo]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvLayout {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvLayout {
    pub fn new(
        x: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        stride: usize,
        padding: Padding,
    ) -> Result<ConvLayout> {
        const OP: &str = "conv2d";
        if x.len() != 4 || weight.len() != 4 {
            return Err(Error::shape(
                OP,
                format!(
                "expects x [N, Cin, H, W] and weight [Cout, Cin, kh, kw], got {x:?} and {weight:?}"
            ),
            ));
        }
        let (n, cin, h, w) = (x[0], x[1], x[2], x[3]);
        let (cout, wcin, kh, kw) = (weight[0], weight[1], weight[2], weight[3]);
        if wcin != cin {
            return Err(Error::shape(
                OP,
                format!("weight {weight:?} takes {wcin} input channels, x {x:?} has {cin}"),
            ));
        }
        if cin == 0 {
            // An empty sum (output = bias) is no convolution anyone means to run.
            return Err(Error::shape(OP, "x has no input channels"));
        }
        if let Some(b) = bias {
            if b != [cout] {
                return Err(Error::shape(
                    OP,
                    format!("bias has shape {b:?}, expected [{cout}]"),
                ));
            }
        }
        if stride == 0 {
            return Err(Error::Invalid("conv2d: stride must be at least 1".into()));
        }
        let (hp, wp) = (
            h + padding.top + padding.bottom,
            w + padding.left + padding.right,
        );
        if kh == 0 || kw == 0 || hp < kh || wp < kw {
            return Err(Error::shape(
                OP,
                format!(
                "a {kh}×{kw} kernel does not fit the padded {hp}×{wp} input ({x:?}, {padding:?})"
            ),
            ));
        }
        let (ho, wo) = ((hp - kh) / stride + 1, (wp - kw) / stride + 1);
        Ok(ConvLayout {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            ho,
            wo,
        })
    }
}

/// `conv2d(x [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout]?) → [N, Cout, Ho, Wo]` with
/// `Ho = (H + top + bottom − kh) / stride + 1` (likewise `Wo`), as `torch.nn.functional.conv2d`.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: Padding,
) -> Result<Tensor> {
    let kernel = ConvKernel::pick(weight.shape().last().copied().unwrap_or(1), stride.max(1));
    conv2d_with(x, weight, bias, stride, padding, kernel)
}

/// [`conv2d`] with a chosen kernel (tests compare both).
pub fn conv2d_with(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: Padding,
    kernel: ConvKernel,
) -> Result<Tensor> {
    const OP: &str = "conv2d";
    x.expect_dtype(OP, DType::F32)?;
    weight.expect_dtype(OP, DType::F32)?;
    check_u32_len(OP, x)?;
    check_u32_len(OP, weight)?;
    if let Some(b) = bias {
        b.expect_dtype(OP, DType::F32)?;
    }
    let all: Vec<&Tensor> = [Some(x), Some(weight), bias]
        .into_iter()
        .flatten()
        .collect();
    if let Device::Cpu(_) = same_device(OP, &all)? {
        let l = ConvLayout::new(
            x.shape(),
            weight.shape(),
            bias.map(|b| b.shape()),
            stride,
            padding,
        )?;
        let (xs, ws) = (x.shape().to_vec(), weight.shape().to_vec());
        let has_bias = bias.is_some();
        return super::host_op_f32(OP, x.device(), &[l.n, l.cout, l.ho, l.wo], &all, move |i| {
            let b = has_bias.then(|| i[2]);
            cpu::conv2d((i[0], &xs), (i[1], &ws), b, stride, padding).map(|(v, _)| v)
        });
    }
    let ConvLayout {
        n,
        cin,
        h,
        w,
        cout,
        kh,
        kw,
        ho,
        wo,
    } = ConvLayout::new(
        x.shape(),
        weight.shape(),
        bias.map(|b| b.shape()),
        stride,
        padding,
    )?;
    let out = Tensor::empty(x.gpu()?, &[n, cout, ho, wo], DType::F32)?;
    check_u32_len(OP, &out)?;
    if out.is_empty() {
        return Ok(out);
    }
    let pixels = n * ho * wo;
    let k = cin * kh * kw;
    let p = ConvParams {
        n: n as u32,
        cin: cin as u32,
        h: h as u32,
        w: w as u32,
        cout: cout as u32,
        ho: ho as u32,
        wo: wo as u32,
        kh: kh as u32,
        kw: kw as u32,
        stride: stride as u32,
        pad_top: padding.top as u32,
        pad_left: padding.left as u32,
        has_bias: bias.is_some() as u32,
        k: k as u32,
        pixels: pixels as u32,
        _pad: 0,
    };
    // An absent bias binds the weight in its place; the kernel never reads it.
    let b = bias.unwrap_or(weight);
    let buffers = [x.buffer()?, weight.buffer()?, b.buffer()?, out.buffer()?];
    let bindings = &[Access::Read, Access::Read, Access::Read, Access::ReadWrite];
    if kernel == ConvKernel::Direct {
        let row = (DIRECT_TN - 1) * stride + kw;
        if row > DIRECT_MAX_ROW {
            return Err(Error::Invalid(format!(
                "conv2d: the direct kernel holds at most {DIRECT_MAX_ROW} inputs per row, a {kw}-wide \
                 kernel at stride {stride} needs {row}"
            )));
        }
        let defines = direct_entry(kh, kw, stride);
        let invocations = (cout.div_ceil(DIRECT_TM) * n * ho * wo.div_ceil(DIRECT_TN)) as u64;
        x.gpu()?.dispatch(
            &KernelSpec {
                family: "conv",
                source: SRC_DIRECT,
                entry: "conv2d_direct",
                defines: &defines,
                bindings,
            },
            &p,
            &buffers,
            Gpu::grid_1d(invocations, DIRECT_WG),
        )?;
        return Ok(out);
    }
    let pixel_tiles = pixels.div_ceil(TILE_N) as u32;
    let gx = pixel_tiles.min(MAX_GROUPS_PER_DIM);
    let gz = pixel_tiles.div_ceil(gx);
    let gy = cout.div_ceil(TILE_M) as u32;
    x.gpu()?
        .dispatch(&spec("conv2d", bindings), &p, &buffers, [gx, gy, gz])?;
    Ok(out)
}

/// The generated entry point of the direct kernel (see `shaders/conv_direct.wgsl`): `TM × TN` scalar
/// accumulators, the kernel rows and columns unrolled.
pub(super) fn direct_entry(kh: usize, kw: usize, stride: usize) -> String {
    use std::fmt::Write;
    let (tm, tn) = (DIRECT_TM, DIRECT_TN);
    let row = (tn - 1) * stride + kw;
    let mut s = String::new();
    let _ = write!(
        s,
        "@compute @workgroup_size({DIRECT_WG})\n\
         fn conv2d_direct(@builtin(global_invocation_id) gid: vec3<u32>, \
         @builtin(num_workgroups) nwg: vec3<u32>) {{\n\
         let idx = gid.x + gid.y * nwg.x * WG;\n\
         let xblocks = (cp.wo + {tn}u - 1u) / {tn}u;\n\
         let per_cb = xblocks * cp.ho * cp.n;\n\
         if (idx >= per_cb * ((cp.cout + {tm}u - 1u) / {tm}u)) {{ return; }}\n\
         let cbk = idx / per_cb;\n\
         var r = idx - cbk * per_cb;\n\
         let nb = r / (xblocks * cp.ho);\n\
         r = r - nb * xblocks * cp.ho;\n\
         let oy = r / xblocks;\n\
         let ox0 = (r - oy * xblocks) * {tn}u;\n\
         let co0 = cbk * {tm}u;\n\
         let ix0 = i32(ox0 * {stride}u) - i32(cp.pad_left);\n\
         let wstride = cp.cin * {khw}u;\n",
        khw = kh * kw
    );
    for i in 0..tm {
        // Clamped so the last channel block never reads past the weights (its extras are not stored).
        let _ = writeln!(s, "let wr{i} = min(co0 + {i}u, cp.cout - 1u) * wstride;");
        for j in 0..tn {
            let _ = writeln!(s, "var a{i}_{j} = 0.0;");
        }
    }
    s.push_str("for (var ci = 0u; ci < cp.cin; ci = ci + 1u) {\n");
    for ky in 0..kh {
        let _ = writeln!(
            s,
            "{{ let iy = oy * {stride}u + {ky}u - cp.pad_top;\n\
             if (iy < cp.h) {{\n\
             let base = ((nb * cp.cin + ci) * cp.h + iy) * cp.w;\n\
             let wk = (ci * {kh}u + {ky}u) * {kw}u;"
        );
        for q in 0..row {
            let _ = writeln!(s, "let r{q} = ld(base, ix0 + {q});");
        }
        for kx in 0..kw {
            for i in 0..tm {
                let _ = writeln!(s, "let w{i}_{kx} = cw[wr{i} + wk + {kx}u];");
                for j in 0..tn {
                    let _ = writeln!(s, "a{i}_{j} = a{i}_{j} + w{i}_{kx} * r{};", j * stride + kx);
                }
            }
        }
        s.push_str("} }\n");
    }
    s.push_str("}\n");
    for i in 0..tm {
        for j in 0..tn {
            let _ = writeln!(s, "store(nb, co0 + {i}u, oy, ox0 + {j}u, a{i}_{j});");
        }
    }
    s.push_str("}\n");
    s
}

/// `[N, C, H, W] → [N, C, 2H, 2W]`, each input pixel repeated in a 2 × 2 block (diffusers'
/// `Upsample2D` with `interpolate="nearest"`).
pub fn upsample_nearest2x(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "upsample_nearest2x";
    x.expect_dtype(OP, DType::F32)?;
    if x.dims() != 4 {
        return Err(Error::shape(
            OP,
            format!("expects [N, C, H, W], got {:?}", x.shape()),
        ));
    }
    let (n, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
    if let Device::Cpu(_) = x.device() {
        let shape = x.shape().to_vec();
        return super::host_op_f32(OP, x.device(), &[n, c, 2 * h, 2 * w], &[x], move |i| {
            cpu::upsample_nearest2x(i[0], &shape).map(|(v, _)| v)
        });
    }
    let out = Tensor::empty(x.gpu()?, &[n, c, 2 * h, 2 * w], DType::F32)?;
    check_u32_len(OP, &out)?;
    if out.is_empty() {
        return Ok(out);
    }
    let p = UpParams {
        n: out.len() as u32,
        h: h as u32,
        w: w as u32,
        _pad: 0,
    };
    x.gpu()?.dispatch(
        &spec("upsample_nearest2x", &[Access::Read, Access::ReadWrite]),
        &p,
        &[x.buffer()?, out.buffer()?],
        Gpu::grid_1d(out.len() as u64, WG),
    )?;
    Ok(out)
}
