//! The per-row losses on the CPU: `shaders/loss.wgsl`'s `row_loss` over the same [`Params`].

use super::{Params, F_NLL};

/// A finite stand-in for log 0, as in the shader.
const LOG_ZERO: f32 = -1.0e30;

fn lse(row: &[f32]) -> f32 {
    let m = row.iter().fold(LOG_ZERO, |m, &v| m.max(v));
    m + row.iter().map(|&v| (v - m).exp()).sum::<f32>().ln()
}

/// KL(softmax(a) ‖ softmax(b)) per row, or with `F_NLL` the cross-entropy −log softmax(b)[id].
pub(super) fn row_loss(p: &Params, a: &[u32], b: &[u32], ids: &[u32], out: &mut [u32]) {
    let k = p.k as usize;
    let (a, b): (&[f32], &[f32]) = (bytemuck::cast_slice(a), bytemuck::cast_slice(b));
    let out: &mut [f32] = bytemuck::cast_slice_mut(out);
    for (r, (o, rb)) in out.iter_mut().zip(b.chunks_exact(k)).enumerate() {
        let lse_b = lse(rb);
        if p.flags & F_NLL != 0 {
            *o = lse_b - rb[(ids[r] as usize).min(k - 1)];
            continue;
        }
        let ra = &a[r * k..(r + 1) * k];
        let lse_a = lse(ra);
        let mut kl = 0.0;
        for (&va, &vb) in ra.iter().zip(rb) {
            let lpa = va - lse_a;
            let pa = lpa.exp();
            // 0 · log 0 = 0: classes a rules out contribute nothing, whatever b says.
            if pa > 0.0 {
                kl += pa * (lpa - (vb - lse_b));
            }
        }
        *o = kl;
    }
}
