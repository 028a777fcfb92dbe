//! Per-graph descriptors that DiGress compares between sets: degree and clustering histograms,
//! 4-node orbit counts and the normalised Laplacian's spectrum.

use super::Adj;

/// `nx.degree_histogram`: counts of nodes per degree 0..=max degree.
pub fn degree_histogram(a: &Adj) -> Vec<f64> {
    let max = (0..a.n).map(|i| a.degree(i)).max().unwrap_or(0);
    let mut h = vec![0.0; max + 1];
    for i in 0..a.n {
        h[a.degree(i)] += 1.0;
    }
    h
}

/// `nx.clustering` per node: 2·triangles / (d(d−1)), 0 below degree 2.
pub fn clustering(a: &Adj) -> Vec<f64> {
    (0..a.n)
        .map(|i| {
            let d = a.degree(i);
            if d < 2 {
                return 0.0;
            }
            let mut t = 0usize;
            let mut r = a.rows[i];
            while r != 0 {
                let j = r.trailing_zeros() as usize;
                r &= r - 1;
                t += (a.rows[j] & a.rows[i]).count_ones() as usize;
            }
            // Each triangle at i is seen from both of its other corners.
            t as f64 / (d * (d - 1)) as f64
        })
        .collect()
}

/// `np.histogram(values, bins, range=(lo, hi))` with numpy's edge rules: edges are
/// `lo + k·(hi−lo)/bins`, a value on an inner edge goes to the upper bin, `hi` itself to the last bin
/// and values outside [lo, hi] are dropped.
pub fn histogram(values: &[f64], bins: usize, lo: f64, hi: f64) -> Vec<f64> {
    let step = (hi - lo) / bins as f64;
    let edge = |k: usize| {
        if k == bins {
            hi
        } else {
            lo + k as f64 * step
        }
    };
    let mut h = vec![0.0; bins];
    for &v in values {
        if !(lo..=hi).contains(&v) {
            continue;
        }
        let mut k = (((v - lo) * (bins as f64 / (hi - lo))) as usize).min(bins - 1);
        if v < edge(k) {
            k -= 1;
        } else if k + 1 < bins && v >= edge(k + 1) {
            k += 1;
        }
        h[k] += 1.0;
    }
    h
}

/// DiGress's clustering descriptor: 100-bin histogram of the clustering coefficients on [0, 1].
pub fn clustering_histogram(a: &Adj) -> Vec<f64> {
    histogram(&clustering(a), 100, 0.0, 1.0)
}

/// Eigenvalues of networkx's normalised Laplacian `D^-½ (D − A) D^-½` (isolated nodes give a zero
/// row), ascending, by cyclic Jacobi rotations (exact enough for n ≤ 64 in f64).
pub fn normalized_laplacian_eigenvalues(a: &Adj) -> Vec<f64> {
    let n = a.n;
    let s: Vec<f64> = (0..n)
        .map(|i| match a.degree(i) {
            0 => 0.0,
            d => 1.0 / (d as f64).sqrt(),
        })
        .collect();
    let mut m = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            let l = if i == j {
                a.degree(i) as f64
            } else if a.has(i, j) {
                -1.0
            } else {
                0.0
            };
            m[i * n + j] = l * s[i] * s[j];
        }
    }
    // Ascending already.
    crate::linalg::jacobi_eigh(&m, n).0
}

/// DiGress's spectral descriptor: 200-bin histogram of the normalised Laplacian's eigenvalues on
/// [−1e−5, 2], as a pmf. Eigenvalues within 1e−9 above 2 (bipartite components, rounding) count in
/// the last bin; numpy may drop such a value, depending on its own rounding.
pub fn spectral_pmf(a: &Adj) -> Vec<f64> {
    let ev: Vec<f64> = normalized_laplacian_eigenvalues(a)
        .into_iter()
        .map(|e| if e > 2.0 && e <= 2.0 + 1e-9 { 2.0 } else { e })
        .collect();
    let mut h = histogram(&ev, 200, -1e-5, 2.0);
    let s: f64 = h.iter().sum();
    if s > 0.0 {
        h.iter_mut().for_each(|v| *v /= s);
    }
    h
}

/// ORCA's 15 node orbits of graphlets with 2–4 nodes (Pržulj's numbering), per node: 0 edge;
/// 1–2 path P3 (end, middle); 3 triangle; 4–5 path P4 (end, inner); 6–7 star (leaf, centre);
/// 8 4-cycle; 9–11 paw (pendant, triangle degree 2, triangle degree 3); 12–13 diamond (degree 2,
/// degree 3); 14 K4. Counts induced subgraphs.
pub fn orbit_counts(a: &Adj) -> Vec<[u64; 15]> {
    let n = a.n;
    let mut c = vec![[0u64; 15]; n];
    for (i, ci) in c.iter_mut().enumerate() {
        ci[0] = a.degree(i) as u64;
    }
    for i in 0..n {
        for j in i + 1..n {
            for k in j + 1..n {
                let v = [i, j, k];
                let d: Vec<usize> = (0..3)
                    .map(|x| (0..3).filter(|&y| y != x && a.has(v[x], v[y])).count())
                    .collect();
                let e: usize = d.iter().sum::<usize>() / 2;
                match e {
                    3 => v.iter().for_each(|&x| c[x][3] += 1),
                    2 => (0..3).for_each(|x| c[v[x]][if d[x] == 2 { 2 } else { 1 }] += 1),
                    _ => {}
                }
            }
        }
    }
    for i in 0..n {
        for j in i + 1..n {
            for k in j + 1..n {
                for l in k + 1..n {
                    let v = [i, j, k, l];
                    let mut d = [0usize; 4];
                    for x in 0..4 {
                        for y in 0..4 {
                            if x != y && a.has(v[x], v[y]) {
                                d[x] += 1;
                            }
                        }
                    }
                    let e = d.iter().sum::<usize>() / 2;
                    if e < 3 {
                        continue;
                    }
                    let sub = Adj {
                        n: 4,
                        rows: (0..4)
                            .map(|x| {
                                (0..4)
                                    .filter(|&y| a.has(v[x], v[y]))
                                    .fold(0u64, |r, y| r | 1 << y)
                            })
                            .collect(),
                    };
                    if !sub.is_connected() {
                        continue;
                    }
                    let max_d = d.iter().copied().fold(0, usize::max);
                    for x in 0..4 {
                        let o = match (e, max_d) {
                            (3, 2) => 4 + (d[x] == 2) as usize,
                            (3, 3) => 6 + (d[x] == 3) as usize,
                            (4, 2) => 8,
                            (4, 3) => match d[x] {
                                1 => 9,
                                2 => 10,
                                _ => 11,
                            },
                            (5, _) => 12 + (d[x] == 3) as usize,
                            _ => 14,
                        };
                        c[v[x]][o] += 1;
                    }
                }
            }
        }
    }
    c
}

/// DiGress's orbit descriptor: the 15 orbit counts summed over nodes, divided by n.
pub fn orbit_descriptor(a: &Adj) -> Vec<f64> {
    let mut s = vec![0.0; 15];
    for row in orbit_counts(a) {
        for (o, v) in row.iter().enumerate() {
            s[o] += *v as f64;
        }
    }
    s.iter_mut().for_each(|v| *v /= a.n.max(1) as f64);
    s
}
