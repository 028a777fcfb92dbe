//! A blocked 2-D transpose for host kernels that change layout on the way into or out of the GEMM
//! (a convolution's images to channels last, its products back to channel planes). Element by
//! element, one side is read or written with a large stride and every access misses the cache
//! lines the last one used; in tiles both sides stay in a few lines.

use std::mem::MaybeUninit;

/// Tile side: a tile is 8 rows of 8 f32 (one AVX register each way).
#[cfg(target_arch = "x86_64")]
const TILE: usize = 8;

/// `dst[j·dst_stride + i] = src[i·src_stride + j]` for `i < rows`, `j < cols`.
pub fn transpose(
    src: &[f32],
    src_stride: usize,
    (rows, cols): (usize, usize),
    dst: &mut [MaybeUninit<f32>],
    dst_stride: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        src.len() >= (rows - 1) * src_stride + cols,
        "transpose: source too short"
    );
    assert!(
        dst.len() >= (cols - 1) * dst_stride + rows,
        "transpose: destination too short"
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        let (rf, cf) = (rows - rows % TILE, cols - cols % TILE);
        for i0 in (0..rf).step_by(TILE) {
            for j0 in (0..cf).step_by(TILE) {
                // SAFETY: AVX is present; the asserts above put every row i0..i0 + 8 of columns
                // j0..j0 + 8 inside `src` and every row j0..j0 + 8 of columns i0..i0 + 8 inside `dst`.
                unsafe {
                    let s = src.as_ptr().add(i0 * src_stride + j0);
                    let d = dst.as_mut_ptr().add(j0 * dst_stride + i0) as *mut f32;
                    avx::tile(s, src_stride, d, dst_stride);
                }
            }
        }
        edges(src, src_stride, (rows, cols), (rf, cf), dst, dst_stride);
        return;
    }
    edges(src, src_stride, (rows, cols), (0, 0), dst, dst_stride);
}

/// Element by element, everything outside the first `rf × cf` (done in tiles).
fn edges(
    src: &[f32],
    src_stride: usize,
    (rows, cols): (usize, usize),
    (rf, cf): (usize, usize),
    dst: &mut [MaybeUninit<f32>],
    dst_stride: usize,
) {
    for i in 0..rows {
        let from = if i < rf { cf } else { 0 };
        for j in from..cols {
            dst[j * dst_stride + i].write(src[i * src_stride + j]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// One 8×8 tile: eight rows loaded, transposed in registers (pairs interleaved, then quads,
    /// then 128-bit halves swapped), eight rows stored.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn tile(s: *const f32, ss: usize, d: *mut f32, ds: usize) {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(s.add(i * ss)));
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (j, v) in out.into_iter().enumerate() {
            _mm256_storeu_ps(d.add(j * ds), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transpose;
    use std::mem::MaybeUninit;

    #[test]
    fn every_element_lands_once_with_strides_and_ragged_tiles() {
        for (rows, cols, ss, ds) in [
            (1, 1, 1, 1),
            (3, 17, 20, 5),
            (33, 16, 16, 40),
            (40, 7, 7, 41),
            (16, 24, 27, 19),
        ] {
            let src: Vec<f32> = (0..rows * ss).map(|i| i as f32).collect();
            let mut dst = vec![MaybeUninit::new(-1.0f32); cols * ds];
            transpose(&src, ss, (rows, cols), &mut dst, ds);
            for j in 0..cols {
                for i in 0..ds {
                    let got = unsafe { dst[j * ds + i].assume_init() };
                    let want = if i < rows { (i * ss + j) as f32 } else { -1.0 };
                    assert_eq!(got, want, "{rows}×{cols} at ({i}, {j})");
                }
            }
        }
    }
}
