//! Every kernel's parameter block as its driver writes it, beside the WGSL that reads it, so one
//! test (`tests/engine/shader_params.rs`) can hold the two sides together: the shaders are parsed
//! with naga and each binding-0 uniform struct is compared, scalar by scalar, with the Rust struct.
//! A new kernel is one line in [`kernel_params`].

use super::matmul::{MatmulKernel, SOFTWARE_LARGE, WEB_DEFAULT};
use super::{
    attention, conv, elementwise, embedding, graph, langevin, layout, loss, matmul, norm,
    pad_suffix, random, sample, transition, unmask, update,
};
use crate::gpu::wgsl::{ParamsLayout, Scalar};

/// One parameter block: where the WGSL reads it and how the Rust driver lays it out.
#[derive(Clone, Debug)]
pub struct KernelParams {
    /// The files of `shaders/` the kernel's source is made of, in order.
    pub shaders: &'static [&'static str],
    /// The WGSL as a pipeline compiles it (one variant where the driver specialises it).
    pub wgsl: String,
    /// The WGSL struct bound as the uniform at binding 0.
    pub wgsl_struct: &'static str,
    /// The Rust struct the driver writes.
    pub rust_struct: &'static str,
    pub size: usize,
    /// (byte offset, scalar) of every scalar of the Rust struct, by offset.
    pub scalars: Vec<(usize, Scalar)>,
}

fn entry<P: ParamsLayout>(
    shaders: &'static [&'static str],
    defines: &str,
    source: &str,
    wgsl_struct: &'static str,
) -> KernelParams {
    KernelParams {
        shaders,
        wgsl: format!("{defines}\n{source}"),
        wgsl_struct,
        rust_struct: std::any::type_name::<P>(),
        size: std::mem::size_of::<P>(),
        scalars: P::scalars(),
    }
}

/// Every parameter block of every kernel.
pub fn kernel_params() -> Vec<KernelParams> {
    let matmul_variant = |k: MatmulKernel| KernelParams {
        wgsl: matmul::wgsl_of(k),
        ..entry::<matmul::Params>(&["matmul.wgsl"], "", "", "Params")
    };
    vec![
        entry::<attention::Params>(
            &["attention.wgsl"],
            attention::defines(32),
            attention::SRC,
            "Params",
        ),
        entry::<conv::ConvParams>(&["conv.wgsl"], &conv::GEMM_DEFINES, conv::SRC, "ConvParams"),
        entry::<conv::UpParams>(&["conv.wgsl"], &conv::GEMM_DEFINES, conv::SRC, "UpParams"),
        entry::<conv::ConvParams>(
            &["conv_direct.wgsl"],
            &conv::direct_entry(3, 3, 1),
            conv::SRC_DIRECT,
            "ConvParams",
        ),
        entry::<elementwise::Params>(
            &["elementwise.wgsl"],
            &elementwise::DEFINES,
            elementwise::SRC,
            "Params",
        ),
        entry::<embedding::GatherParams>(&["embedding.wgsl"], "", embedding::SRC, "GatherParams"),
        entry::<embedding::TimeParams>(&["embedding.wgsl"], "", embedding::SRC, "TimeParams"),
        entry::<langevin::Params>(&["langevin.wgsl"], "", langevin::SRC, "Params"),
        entry::<embedding::NearestParams>(&["embedding.wgsl"], "", embedding::SRC, "NearestParams"),
        entry::<embedding::FourierParams>(&["embedding.wgsl"], "", embedding::SRC, "FourierParams"),
        entry::<graph::Params>(&["graph.wgsl"], &graph::DEFINES, graph::SRC, "GParams"),
        entry::<layout::ConcatParams>(&["layout.wgsl"], "", layout::SRC, "ConcatParams"),
        entry::<layout::PermuteParams>(&["layout.wgsl"], "", layout::SRC, "PermuteParams"),
        entry::<layout::SliceParams>(&["layout.wgsl"], "", layout::SRC, "SliceParams"),
        entry::<loss::Params>(&["loss.wgsl"], &loss::DEFINES, loss::SRC, "Params"),
        matmul_variant(MatmulKernel::Baseline),
        matmul_variant(WEB_DEFAULT),
        matmul_variant(SOFTWARE_LARGE),
        entry::<norm::Params>(&["norm.wgsl"], &norm::DEFINES, norm::SRC, "Params"),
        entry::<random::Params>(
            &["philox.wgsl", "random.wgsl"],
            &random::DEFINES,
            random::SRC,
            "RandomParams",
        ),
        entry::<pad_suffix::Params>(
            &["philox.wgsl", "pad_suffix.wgsl"],
            "",
            pad_suffix::SRC,
            "PadSuffixParams",
        ),
        entry::<sample::Params>(
            &["philox.wgsl", "sample.wgsl"],
            &sample::DEFINES,
            sample::SRC,
            "SampleParams",
        ),
        entry::<transition::Params>(
            &["transition.wgsl"],
            &transition::DEFINES,
            transition::SRC,
            "TParams",
        ),
        entry::<unmask::Params>(
            &["philox.wgsl", "unmask.wgsl"],
            "",
            unmask::SRC,
            "UnmaskParams",
        ),
        entry::<update::Params>(
            &["philox.wgsl", "update.wgsl"],
            &update::DEFINES,
            update::SRC,
            "UParams",
        ),
    ]
}
