//! The WGSL of one kernel configuration: the constants prepended to `shaders/matmul.wgsl` and the
//! register-blocked entry points (`matmul_reg`, `matmul_smem`) written out as straight-line code
//! (see the shader's header for why not loops).

use super::{Act, MatmulKernel};
use crate::gpu::wgsl::wgsl_consts;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How the operands of one call are laid out; part of every pipeline's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Layout {
    pub(super) trans_a: bool,
    pub(super) trans_b: bool,
    /// A's contiguous dimension (K, or M when transposed) is a multiple of 4.
    pub(super) vec_a: bool,
    /// B's contiguous dimension (N, or K when transposed) is a multiple of 4.
    pub(super) vec_b: bool,
    /// N is a multiple of 4.
    pub(super) vec_n: bool,
    /// K is not a multiple of 4, so `matmul_reg` needs its one-step-at-a-time tail loop. Leaving the
    /// loop out when it cannot run saves compile time (lavapipe's is seconds for the large blocks).
    pub(super) k_tail: bool,
    /// K ≥ 4, so the main loop of `matmul_reg` runs at all (tiny input layers have K = 2 or 3).
    pub(super) k_main: bool,
}

pub(super) type Source = (&'static str, u32, u32, Arc<str>);

/// [`kernel_source`], generated once per kernel and layout: the large blocks are tens of kilobytes of
/// WGSL, too much to format on every call of an op that runs many times per denoising step.
pub(super) fn kernel_source_cached(kernel: MatmulKernel, l: Layout) -> Source {
    static CACHE: Mutex<Option<HashMap<(MatmulKernel, Layout), Source>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .get_or_insert_with(HashMap::new)
        .entry((kernel, l))
        .or_insert_with(|| {
            let (entry, bm, bn, src) = kernel_source(kernel, l);
            (entry, bm, bn, src.into())
        })
        .clone()
}

/// Entry point, rows and columns per workgroup, and the WGSL prepended to the source.
fn kernel_source(kernel: MatmulKernel, l: Layout) -> (&'static str, u32, u32, String) {
    match kernel {
        // The baseline reads element by element whatever the alignment: one pipeline per transpose.
        MatmulKernel::Baseline => {
            let l = Layout {
                vec_a: false,
                vec_b: false,
                vec_n: false,
                ..l
            };
            ("matmul_baseline", 16, 16, consts(4, 4, 16, 16, 0, l))
        }
        MatmulKernel::Tiled {
            tm,
            tn,
            wg_x,
            wg_y,
            bk,
        } if bk > 0 => {
            // Staging reads element by element, so only N's alignment (the epilogue) matters.
            let l = Layout {
                vec_a: false,
                vec_b: false,
                ..l
            };
            let src = consts(tm, tn, wg_x, wg_y, bk, l) + &gen_smem(tm, tn);
            ("matmul_smem", wg_y * tm, wg_x * tn, src)
        }
        MatmulKernel::Tiled {
            tm, tn, wg_x, wg_y, ..
        } => {
            let src = consts(tm, tn, wg_x, wg_y, 0, l) + &gen_reg(tm, tn, l);
            ("matmul_reg", wg_y * tm, wg_x * tn, src)
        }
    }
}

/// The constants of a configuration: the activation codes, the block shape and the layout.
fn consts(tm: u32, tn: u32, wg_x: u32, wg_y: u32, bk: u32, l: Layout) -> String {
    let acts = wgsl_consts![
        ACT_NONE = Act::None as u32,
        ACT_SILU = Act::Silu as u32,
        ACT_GELU = Act::Gelu as u32,
        ACT_RELU = Act::Relu as u32,
    ];
    acts + &format!(
        "const TM: u32 = {tm}u;\nconst TN: u32 = {tn}u;\nconst WGX: u32 = {wg_x}u;\n\
         const WGY: u32 = {wg_y}u;\nconst BK: u32 = {bk}u;\nconst TRANS_A: bool = {};\n\
         const TRANS_B: bool = {};\nconst VEC_A: bool = {};\nconst VEC_B: bool = {};\n\
         const VEC_N: bool = {};\n",
        l.trans_a, l.trans_b, l.vec_a, l.vec_b, l.vec_n
    )
}

const COMP: [&str; 4] = ["x", "y", "z", "w"];

/// Accumulator `c{i}_{j}` holds outputs (row0 + i, col0 + 4j .. +4).
fn declare_accumulators(w: &mut String, tm: usize, tn4: usize) {
    for i in 0..tm {
        for j in 0..tn4 {
            w.push_str(&format!("    var c{i}_{j} = vec4<f32>(0.0);\n"));
        }
    }
}

/// The epilogue, with one inlined copy of `finish4` rather than TM·TN/4: each output row in turn is
/// finished four columns at a time, rotating the row's accumulators (and then the rows) into the
/// first position. Every store is a sizeable piece of code on lavapipe, so this cuts compile time
/// several-fold for a few register moves per output.
fn store_accumulators(w: &mut String, tm: usize, tn4: usize) {
    let mut emit = |l: String| {
        w.push_str(&l);
        w.push('\n');
    };
    emit("    for (var r = 0u; r < TM; r++) {".into());
    for j in 0..tn4 {
        emit(format!("        var v{j} = c0_{j};"));
    }
    emit("        for (var j = 0u; j < TN4; j++) {".into());
    emit("            finish4(z, offs.z, row0 + r, col0 + 4u * j, p.alpha * v0);".into());
    for j in 1..tn4 {
        emit(format!("            v{} = v{j};", j - 1));
    }
    emit("        }".into());
    for i in 1..tm {
        for j in 0..tn4 {
            emit(format!("        c{}_{j} = c{i}_{j};", i - 1));
        }
    }
    emit("    }".into());
}

/// `matmul_reg`: no shared memory; each invocation reads its TM rows of A and TN columns of B straight
/// from storage, four steps of K at a time (one vec4 per row or column when aligned), and does
/// 4·TM·TN FMAs per 4·(TM + TN) elements loaded. On lavapipe every storage or workgroup load is a
/// per-lane loop and a barrier is a coroutine switch, so the larger the block the faster, and shared
/// memory only adds loads. Straight-line code: see the shader's header for why not loops.
fn gen_reg(tm: u32, tn: u32, l: Layout) -> String {
    let (tm, tn4) = (tm as usize, tn as usize / 4);
    let tn = 4 * tn4;
    let mut w = String::new();
    macro_rules! emit {
        ($($t:tt)*) => {{
            w.push_str(&format!($($t)*));
            w.push('\n');
        }};
    }
    emit!("@compute @workgroup_size(WGX, WGY, 1)");
    emit!(
        "fn matmul_reg(@builtin(workgroup_id) wg: vec3<u32>, \
         @builtin(local_invocation_id) lid: vec3<u32>) {{"
    );
    emit!("    let z = p.b0 + wg.z;");
    emit!("    let row0 = p.m0 + (wg.y * WGY + lid.y) * TM;");
    emit!("    let col0 = p.n0 + (wg.x * WGX + lid.x) * TN;");
    emit!("    if (row0 >= p.m || col0 >= p.n) {{\n        return;\n    }}");
    emit!("    let offs = batch_offsets(z);");
    emit!("    let mm = p.m;\n    let nn = p.n;\n    let kk = p.k;");
    // Where each row of A and column of B starts, clamped (see the shader's header). Quads of 4
    // aligned elements are clamped as a whole, to the last quad.
    match (l.trans_a, l.vec_a) {
        (true, true) => {
            for iq in 0..tm / 4 {
                emit!(
                    "    let aq{iq} = offs.x + min(row0 + {}u, mm - 4u);",
                    4 * iq
                );
            }
        }
        (true, false) => {
            for i in 0..tm {
                emit!("    let ao{i} = offs.x + min(row0 + {i}u, mm - 1u);");
            }
        }
        (false, _) => {
            for i in 0..tm {
                emit!("    let ao{i} = offs.x + min(row0 + {i}u, mm - 1u) * kk;");
            }
        }
    }
    match (l.trans_b, l.vec_b) {
        (false, true) => {
            for j in 0..tn4 {
                emit!("    let bq{j} = offs.y + min(col0 + {}u, nn - 4u);", 4 * j);
            }
        }
        (false, false) => {
            for c in 0..tn {
                emit!("    let bo{c} = offs.y + min(col0 + {c}u, nn - 1u);");
            }
        }
        (true, _) => {
            for c in 0..tn {
                emit!("    let bo{c} = offs.y + min(col0 + {c}u, nn - 1u) * kk;");
            }
        }
    }
    declare_accumulators(&mut w, tm, tn4);
    emit!("    let k4 = kk & ~3u;");
    if l.k_main {
        gen_reg_main(&mut w, tm, tn4, l);
    }
    if l.k_tail {
        gen_reg_tail(&mut w, tm, tn4, l);
    }
    store_accumulators(&mut w, tm, tn4);
    emit!("}}");
    w
}

/// The main loop of `matmul_reg`: four steps of K per iteration.
fn gen_reg_main(w: &mut String, tm: usize, tn4: usize, l: Layout) {
    let tn = 4 * tn4;
    macro_rules! emit {
        ($($t:tt)*) => {{
            w.push_str(&format!($($t)*));
            w.push('\n');
        }};
    }
    emit!("    for (var k = 0u; k < k4; k += 4u) {{");
    // a{i} = A[row i, k..k+4]
    match (l.trans_a, l.vec_a) {
        (false, true) => {
            for i in 0..tm {
                emit!("        let a{i} = ma[(ao{i} + k) >> 2u];");
            }
        }
        (false, false) => {
            for i in 0..tm {
                emit!(
                    "        let a{i} = vec4<f32>(lda(ao{i} + k), lda(ao{i} + k + 1u), \
                     lda(ao{i} + k + 2u), lda(ao{i} + k + 3u));"
                );
            }
        }
        (true, vec) => {
            for q in 0..4 {
                emit!("        let km{q} = (k + {q}u) * mm;");
            }
            if vec {
                // Four quads along M, one per step of K, transposed into four rows.
                for iq in 0..tm / 4 {
                    for q in 0..4 {
                        emit!("        let t{iq}_{q} = ma[(aq{iq} + km{q}) >> 2u];");
                    }
                    for (r, c) in COMP.iter().enumerate() {
                        emit!(
                            "        let a{} = vec4<f32>(t{iq}_0.{c}, t{iq}_1.{c}, t{iq}_2.{c}, \
                             t{iq}_3.{c});",
                            4 * iq + r
                        );
                    }
                }
            } else {
                for i in 0..tm {
                    emit!(
                        "        let a{i} = vec4<f32>(lda(ao{i} + km0), lda(ao{i} + km1), \
                         lda(ao{i} + km2), lda(ao{i} + km3));"
                    );
                }
            }
        }
    }
    // b{q}_{j} = B[k + q, col0 + 4j .. +4]
    if l.trans_b {
        for c in 0..tn {
            if l.vec_b {
                emit!("        let u{c} = mb[(bo{c} + k) >> 2u];");
            } else {
                emit!(
                    "        let u{c} = vec4<f32>(ldb(bo{c} + k), ldb(bo{c} + k + 1u), \
                     ldb(bo{c} + k + 2u), ldb(bo{c} + k + 3u));"
                );
            }
        }
        for j in 0..tn4 {
            for (q, c) in COMP.iter().enumerate() {
                emit!(
                    "        let b{q}_{j} = vec4<f32>(u{}.{c}, u{}.{c}, u{}.{c}, u{}.{c});",
                    4 * j,
                    4 * j + 1,
                    4 * j + 2,
                    4 * j + 3
                );
            }
        }
    } else {
        for q in 0..4 {
            emit!("        let kn{q} = (k + {q}u) * nn;");
        }
        for j in 0..tn4 {
            for q in 0..4 {
                if l.vec_b {
                    emit!("        let b{q}_{j} = mb[(bq{j} + kn{q}) >> 2u];");
                } else {
                    emit!(
                        "        let b{q}_{j} = vec4<f32>(ldb(bo{} + kn{q}), ldb(bo{} + kn{q}), \
                         ldb(bo{} + kn{q}), ldb(bo{} + kn{q}));",
                        4 * j,
                        4 * j + 1,
                        4 * j + 2,
                        4 * j + 3
                    );
                }
            }
        }
    }
    for i in 0..tm {
        for j in 0..tn4 {
            emit!("        c{i}_{j} = fma4(c{i}_{j}, a{i}, b0_{j}, b1_{j}, b2_{j}, b3_{j});");
        }
    }
    emit!("    }}");
}

/// The last K % 4 steps of `matmul_reg`, one element at a time.
fn gen_reg_tail(w: &mut String, tm: usize, tn4: usize, l: Layout) {
    macro_rules! emit {
        ($($t:tt)*) => {{
            w.push_str(&format!($($t)*));
            w.push('\n');
        }};
    }
    emit!("    for (var k = k4; k < kk; k++) {{");
    for i in 0..tm {
        let idx = match (l.trans_a, l.vec_a) {
            (false, _) => format!("ao{i} + k"),
            (true, true) => format!("aq{} + {}u + k * mm", i / 4, i % 4),
            (true, false) => format!("ao{i} + k * mm"),
        };
        emit!("        let s{i} = vec4<f32>(lda({idx}));");
    }
    for j in 0..tn4 {
        let (c0, c1, c2, c3) = (4 * j, 4 * j + 1, 4 * j + 2, 4 * j + 3);
        match (l.trans_b, l.vec_b) {
            (false, true) => emit!("        let v{j} = mb[(bq{j} + k * nn) >> 2u];"),
            (false, false) => emit!(
                "        let v{j} = vec4<f32>(ldb(bo{c0} + k * nn), ldb(bo{c1} + k * nn), \
                 ldb(bo{c2} + k * nn), ldb(bo{c3} + k * nn));"
            ),
            (true, _) => emit!(
                "        let v{j} = vec4<f32>(ldb(bo{c0} + k), ldb(bo{c1} + k), ldb(bo{c2} + k), \
                 ldb(bo{c3} + k));"
            ),
        }
    }
    for i in 0..tm {
        for j in 0..tn4 {
            emit!("        c{i}_{j} = fma(s{i}, v{j}, c{i}_{j});");
        }
    }
    emit!("    }}");
}

/// `matmul_smem`: the same register block fed from shared-memory tiles (`stage_tiles` in the
/// shader), for GPUs where workgroup memory is fast and global loads are not.
fn gen_smem(tm: u32, tn: u32) -> String {
    let (tm, tn4) = (tm as usize, tn as usize / 4);
    let mut w = String::new();
    macro_rules! emit {
        ($($t:tt)*) => {{
            w.push_str(&format!($($t)*));
            w.push('\n');
        }};
    }
    emit!("@compute @workgroup_size(WGX, WGY, 1)");
    emit!(
        "fn matmul_smem(@builtin(workgroup_id) wg: vec3<u32>, \
         @builtin(local_invocation_id) lid: vec3<u32>) {{"
    );
    emit!("    let z = p.b0 + wg.z;");
    emit!("    let tile_row = p.m0 + wg.y * BM;");
    emit!("    let tile_col = p.n0 + wg.x * BN;");
    emit!("    let row0 = tile_row + lid.y * TM;");
    emit!("    let col0 = tile_col + lid.x * TN;");
    emit!("    let offs = batch_offsets(z);");
    declare_accumulators(&mut w, tm, tn4);
    // No early return: every invocation must reach the barriers.
    emit!("    for (var k0 = 0u; k0 < p.k; k0 += BKS) {{");
    emit!("        stage_tiles(k0, tile_row, tile_col, lid.y * WGX + lid.x, offs);");
    emit!("        workgroupBarrier();");
    emit!("        for (var q = 0u; q < BKS; q++) {{");
    emit!("            let ab = (q * BM + lid.y * TM) >> 2u;");
    emit!("            let bb = (q * BN + lid.x * TN) >> 2u;");
    for iq in 0..tm / 4 {
        emit!("            let a{iq} = sa_tile[ab + {iq}u];");
    }
    for j in 0..tn4 {
        emit!("            let b{j} = sb_tile[bb + {j}u];");
    }
    for i in 0..tm {
        for j in 0..tn4 {
            emit!(
                "            c{i}_{j} = fma(vec4<f32>(a{}.{}), b{j}, c{i}_{j});",
                i / 4,
                COMP[i % 4]
            );
        }
    }
    emit!("        }}");
    emit!("        workgroupBarrier();");
    emit!("    }}");
    store_accumulators(&mut w, tm, tn4);
    emit!("}}");
    w
}
