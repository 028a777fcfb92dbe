//! Dense linear algebra on the host, for the small matrices of graph code (tens of nodes): the
//! symmetric eigen-decomposition that both DiGress's structural features ([`crate::models`]) and the
//! graph metrics ([`crate::metrics`]) use.
//!
//! One solver for both on purpose: the features feed the network, so which eigenvector of a pair
//! (±v, or a rotation within a repeated eigenvalue) the solver returns shapes the sampled graphs.
//! Cyclic Jacobi is exact to rounding and deterministic across platforms (plain f64 arithmetic in a
//! fixed order, no SIMD- or thread-dependent reductions); a library solver (LAPACK-style QR) would
//! return other signs and rotations than the ones the shipped models' samples were made with.

/// Eigen-decomposition of a symmetric `n × n` matrix by cyclic Jacobi rotations: eigenvalues in
/// ascending order and the eigenvectors as columns (`v[i·n + k]` = entry i of vector k).
pub fn jacobi_eigh(m: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec();
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let scale: f64 = (0..n).map(|i| a[i * n + i] * a[i * n + i]).sum::<f64>() + off;
        if off <= 1e-30 * scale.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[i * n + i].total_cmp(&a[j * n + j]));
    let vals = order.iter().map(|&i| a[i * n + i]).collect();
    let mut vecs = vec![0f64; n * n];
    for (k, &src) in order.iter().enumerate() {
        for i in 0..n {
            vecs[i * n + k] = v[i * n + src];
        }
    }
    (vals, vecs)
}
