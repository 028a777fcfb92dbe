//! DiGress's structural extra features (`ExtraFeatures('all')`, branch fixed_bug), on the CPU: graphs
//! here have tens of nodes, and an n×n eigen-decomposition per graph per step costs microseconds.
//!
//! Per node: k-cycle counts (3, 4, 5) / 10 clipped at 1, the non-largest-component indicator, and the
//! first two Laplacian eigenvectors after the zero eigenvalues. Per graph: n / max_n, cycle counts (3, 4,
//! 5, 6) / 10 clipped at 1, the number of components, and the first 5 non-zero eigenvalues / n.
//!
//! Eigenvectors are defined up to sign (and up to rotation for repeated eigenvalues); LAPACK (DiGress)
//! and the Jacobi solver (`crate::linalg`) may pick different ones, exactly as two LAPACK builds may.

/// Node features per node (3 cycles + non-LCC + 2 eigenvectors).
pub const X_FEATURES: usize = 6;
/// Graph features before the time column (n + 4 cycles + #components + 5 eigenvalues).
pub const Y_FEATURES: usize = 11;

/// Features of one graph of `count` nodes padded to `n_max`, given its adjacency (0/1, row-major
/// `count × count`, symmetric, zero diagonal). Returns (`[n_max · 6]` node features, `[11]` graph
/// features), padded rows zero.
pub fn graph_features(
    adj: &[u8],
    count: usize,
    n_max: usize,
    max_n_nodes: usize,
) -> (Vec<f32>, Vec<f32>) {
    let c = count;
    let a: Vec<f64> = adj.iter().map(|&v| v as f64).collect();
    let mut xf = vec![0f32; n_max * X_FEATURES];
    let mut yf = vec![0f32; Y_FEATURES];
    yf[0] = (c as f32) / (max_n_nodes as f32);
    // Cycle counts (exact in f64; DiGress computes them in f32 matrix powers).
    let (xc, yc) = cycles(&a, c);
    for i in 0..c {
        for k in 0..3 {
            xf[i * X_FEATURES + k] = clip10(xc[i * 3 + k]);
        }
    }
    for k in 0..4 {
        yf[1 + k] = clip10(yc[k]);
    }
    // Laplacian spectrum of the valid block. DiGress pads L with 2n·I for padded nodes: those
    // eigenvalues (2·n_max / count after the division) sort after every valid one, and their
    // eigenvectors vanish on valid nodes.
    let mut l = vec![0f64; c * c];
    for i in 0..c {
        let mut d = 0.0;
        for j in 0..c {
            d += a[i * c + j];
            l[i * c + j] = -a[i * c + j];
        }
        l[i * c + i] += d;
    }
    let (vals, vecs) = crate::linalg::jacobi_eigh(&l, c);
    let cnt = c as f32;
    let ev = |idx: usize| -> f32 {
        if idx < c {
            vals[idx] as f32 / cnt
        } else if idx < n_max {
            (2 * n_max) as f32 / cnt
        } else {
            2.0
        }
    };
    let ncc = (0..n_max).filter(|&i| ev(i) < 1e-5).count();
    yf[5] = ncc as f32;
    for k in 0..5 {
        yf[6 + k] = ev(ncc + k);
    }
    // Non-LCC indicator: nodes whose first eigenvector entry (rounded to 3 decimals) is not the most
    // common value (ties → the smallest value, as torch.mode).
    if c > 0 {
        let first: Vec<f32> = (0..c)
            .map(|i| ((vecs[i * c] as f32) * 1000.0).round_ties_even() / 1000.0)
            .collect();
        let mut sorted = first.clone();
        sorted.sort_by(|p, q| p.total_cmp(q));
        let (mut best, mut best_n, mut k) = (sorted[0], 0usize, 0usize);
        while k < sorted.len() {
            let mut e = k;
            while e < sorted.len() && sorted[e] == sorted[k] {
                e += 1;
            }
            if e - k > best_n {
                best_n = e - k;
                best = sorted[k];
            }
            k = e;
        }
        for i in 0..c {
            xf[i * X_FEATURES + 3] = if first[i] == best { 0.0 } else { 1.0 };
        }
    }
    for m in 0..2 {
        let idx = ncc + m;
        if idx < c {
            for i in 0..c {
                xf[i * X_FEATURES + 4 + m] = vecs[i * c + idx] as f32;
            }
        }
    }
    (xf, yf)
}

fn clip10(v: f64) -> f32 {
    let v = (v as f32) / 10.0;
    if v > 1.0 {
        1.0
    } else {
        v
    }
}

fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0f64; n * n];
    for i in 0..n {
        for k in 0..n {
            let v = a[i * n + k];
            if v != 0.0 {
                for j in 0..n {
                    c[i * n + j] += v * b[k * n + j];
                }
            }
        }
    }
    c
}

/// DiGress's `KNodeCycles` (fixed_bug k5): per-node (k3, k4, k5) `[n·3]` and per-graph (k3..k6).
pub fn cycles(a: &[f64], n: usize) -> (Vec<f64>, [f64; 4]) {
    let k2 = matmul(a, a, n);
    let k3 = matmul(&k2, a, n);
    let k4 = matmul(&k3, a, n);
    let k5 = matmul(&k4, a, n);
    let k6 = matmul(&k5, a, n);
    let diag = |m: &[f64], i: usize| m[i * n + i];
    let d: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j]).sum()).collect();
    let ad: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| a[i * n + j] * d[j]).sum())
        .collect();
    let tri: Vec<f64> = (0..n).map(|i| diag(&k3, i) / 2.0).collect();
    let a_tri: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| a[i * n + j] * tri[j]).sum())
        .collect();
    let joint_d: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| k2[i * n + j] * a[i * n + j] * d[j]).sum())
        .collect();
    let mut x = vec![0f64; n * 3];
    let (mut s3, mut s4, mut s5) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let c3 = diag(&k3, i);
        let c4 = diag(&k4, i) - d[i] * (d[i] - 1.0) - ad[i];
        let c5 =
            diag(&k5, i) - 2.0 * joint_d[i] - 4.0 * d[i] * tri[i] - 2.0 * a_tri[i] + 10.0 * tri[i];
        x[i * 3] = c3 / 2.0;
        x[i * 3 + 1] = c4 / 2.0;
        x[i * 3 + 2] = c5 / 2.0;
        s3 += c3;
        s4 += c4;
        s5 += c5;
    }
    let tr = |m: &[f64]| (0..n).map(|i| diag(m, i)).sum::<f64>();
    let t1 = tr(&k6);
    let t2: f64 = (0..n * n)
        .filter(|&e| e / n == e % n)
        .map(|e| k3[e] * k3[e])
        .sum();
    let t3: f64 = (0..n * n).map(|e| a[e] * k2[e] * k2[e]).sum();
    let t4: f64 = (0..n).map(|i| diag(&k2, i) * diag(&k4, i)).sum();
    let t5 = tr(&k4);
    let t6 = tr(&k3);
    let t7: f64 = (0..n).map(|i| diag(&k2, i).powi(3)).sum();
    let t8: f64 = k3.iter().sum();
    let t9: f64 = (0..n).map(|i| diag(&k2, i).powi(2)).sum();
    let t10 = tr(&k2);
    let c6 = t1 - 3.0 * t2 + 9.0 * t3 - 6.0 * t4 + 6.0 * t5 - 4.0 * t6 + 4.0 * t7 + 3.0 * t8
        - 12.0 * t9
        + 4.0 * t10;
    (x, [s3 / 6.0, s4 / 8.0, s5 / 10.0, c6 / 12.0])
}
