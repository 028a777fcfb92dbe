//! Validity for stochastic-block-model graphs: a fitted block partition and DiGress's strict Wald
//! test.

use super::Adj;

/// DiGress's SBM validity (`is_sbm_graph`, strict) with our data recipe's parameters. graph-tool's
/// `minimize_blockmodel_dl` + merge-split MCMC is replaced by: for each block count B in
/// 1..=`max_blocks`+1, spectral initialisation (sign pattern / largest entries of the top
/// eigenvectors of the adjacency matrix) refined by greedy single-node moves that maximise the
/// Bernoulli SBM log-likelihood; B is chosen by a description-length-like score
/// −logL + ½·B(B+1)/2·ln(n(n−1)/2) + n·ln B. Then DiGress's test: block count and sizes within the
/// recipe's ranges, Wald statistics for p_intra and p_inter, mean χ²₁ p-value > 0.9.
#[derive(Clone, Copy, Debug)]
pub struct SbmSpec {
    pub min_blocks: usize,
    pub max_blocks: usize,
    pub min_size: usize,
    pub max_size: usize,
    pub p_intra: f64,
    pub p_inter: f64,
}

/// tools/train_digress.py's `sbm_graphs` recipe.
pub const SBM_RECIPE: SbmSpec = SbmSpec {
    min_blocks: 2,
    max_blocks: 3,
    min_size: 6,
    max_size: 10,
    p_intra: 0.6,
    p_inter: 0.02,
};

/// The block of each node under the fitted SBM.
pub fn fit_sbm(a: &Adj, max_blocks: usize) -> Vec<usize> {
    let n = a.n;
    let pairs = (n * n.saturating_sub(1) / 2).max(1) as f64;
    let mut best: Option<(f64, Vec<usize>)> = None;
    let eig = adjacency_eigvecs(a);
    for b in 1..=max_blocks.min(n.max(1)) {
        let mut labels = spectral_init(&eig, n, b);
        refine(a, &mut labels, b);
        let ll = sbm_loglik(a, &labels, b);
        let used = labels.iter().fold(0u64, |s, &l| s | 1 << l).count_ones() as f64;
        let score = -ll + 0.5 * (used * (used + 1.0) / 2.0) * pairs.ln() + n as f64 * used.ln();
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, labels));
        }
    }
    best.map(|(_, l)| l).unwrap_or_default()
}

/// Eigenvectors of A (columns, by descending eigenvalue).
fn adjacency_eigvecs(a: &Adj) -> Vec<Vec<f64>> {
    let n = a.n;
    let m: Vec<f64> = (0..n * n)
        .map(|k| a.has(k / n, k % n) as u8 as f64)
        .collect();
    // Ascending eigenvalues with vectors as columns; the largest first here.
    let (_, v) = crate::linalg::jacobi_eigh(&m, n);
    (0..n)
        .rev()
        .map(|c| (0..n).map(|r| v[r * n + c]).collect())
        .collect()
}

fn spectral_init(eig: &[Vec<f64>], n: usize, b: usize) -> Vec<usize> {
    if b <= 1 || n == 0 {
        return vec![0; n];
    }
    let pt = |i: usize| -> Vec<f64> { (0..b.min(eig.len())).map(|c| eig[c][i]).collect() };
    let pts: Vec<Vec<f64>> = (0..n).map(pt).collect();
    let d2 = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
    let mut centres = vec![pts[0].clone()];
    while centres.len() < b {
        let far = (0..n)
            .max_by(|&i, &j| {
                let di = centres
                    .iter()
                    .map(|c| d2(&pts[i], c))
                    .fold(f64::MAX, f64::min);
                let dj = centres
                    .iter()
                    .map(|c| d2(&pts[j], c))
                    .fold(f64::MAX, f64::min);
                di.total_cmp(&dj)
            })
            // n ≥ 1 here (the early return above), so the range is never empty.
            .unwrap_or(0);
        centres.push(pts[far].clone());
    }
    let mut labels = vec![0; n];
    for _ in 0..50 {
        for i in 0..n {
            labels[i] = (0..b)
                .min_by(|&x, &y| d2(&pts[i], &centres[x]).total_cmp(&d2(&pts[i], &centres[y])))
                .unwrap_or(0);
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
            if !members.is_empty() {
                for (k, v) in centre.iter_mut().enumerate() {
                    *v = members.iter().map(|&i| pts[i][k]).sum::<f64>() / members.len() as f64;
                }
            }
        }
    }
    labels
}

/// Edge counts and possible pairs between blocks.
fn block_counts(a: &Adj, labels: &[usize], b: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut sizes = vec![0.0; b];
    for &l in labels {
        sizes[l] += 1.0;
    }
    let mut m = vec![0.0; b * b];
    for i in 0..a.n {
        for j in i + 1..a.n {
            if a.has(i, j) {
                let (x, y) = (labels[i], labels[j]);
                m[x * b + y] += 1.0;
                if x != y {
                    m[y * b + x] += 1.0;
                }
            }
        }
    }
    let mut pairs = vec![0.0; b * b];
    for x in 0..b {
        for y in 0..b {
            pairs[x * b + y] = if x == y {
                sizes[x] * (sizes[x] - 1.0) / 2.0
            } else {
                sizes[x] * sizes[y]
            };
        }
    }
    (sizes, m, pairs)
}

fn sbm_loglik(a: &Adj, labels: &[usize], b: usize) -> f64 {
    let (_, m, pairs) = block_counts(a, labels, b);
    let mut ll = 0.0;
    for x in 0..b {
        for y in x..b {
            let (e, t) = (m[x * b + y], pairs[x * b + y]);
            if t > 0.0 && e > 0.0 && e < t {
                let p = e / t;
                ll += e * p.ln() + (t - e) * (1.0 - p).ln();
            }
        }
    }
    ll
}

fn refine(a: &Adj, labels: &mut [usize], b: usize) {
    let mut cur = sbm_loglik(a, labels, b);
    for _ in 0..100 {
        let mut improved = false;
        for i in 0..a.n {
            let old = labels[i];
            for c in 0..b {
                if c == old {
                    continue;
                }
                labels[i] = c;
                let ll = sbm_loglik(a, labels, b);
                if ll > cur + 1e-9 {
                    cur = ll;
                    improved = true;
                    break;
                }
                labels[i] = old;
            }
        }
        if !improved {
            break;
        }
    }
}

/// 1 − χ²₁.cdf(w) = erfc(√(w/2)).
fn chi2_1_sf(w: f64) -> f64 {
    erfc((w / 2.0).sqrt())
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e−7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// DiGress's strict SBM test on the fitted blocks (see [`SbmSpec`]).
pub fn is_sbm(a: &Adj, spec: &SbmSpec) -> bool {
    let labels = fit_sbm(a, spec.max_blocks + 1);
    let b = labels.iter().max().map_or(0, |m| m + 1);
    let (sizes, m, pairs) = block_counts(a, &labels, b);
    let blocks: Vec<usize> = (0..b).filter(|&x| sizes[x] > 0.0).collect();
    if blocks.len() < spec.min_blocks || blocks.len() > spec.max_blocks {
        return false;
    }
    if blocks
        .iter()
        .any(|&x| sizes[x] < spec.min_size as f64 || sizes[x] > spec.max_size as f64)
    {
        return false;
    }
    let wald = |e: f64, t: f64, p: f64| {
        let ph = e / (t + 1e-6);
        (ph - p).powi(2) / (ph * (1.0 - ph) + 1e-6)
    };
    let mut ps = Vec::new();
    for &x in &blocks {
        for &y in &blocks {
            let w = if x == y {
                wald(m[x * b + x], pairs[x * b + x], spec.p_intra)
            } else {
                wald(m[x * b + y], pairs[x * b + y], spec.p_inter)
            };
            ps.push(chi2_1_sf(w));
        }
    }
    ps.iter().sum::<f64>() / ps.len() as f64 > 0.9
}
