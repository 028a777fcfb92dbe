//! DiGress's graph-generation metrics (`src/analysis/spectre_utils.py`, ANCHOR_MATH §2.9), on the
//! CPU: degree, clustering, 4-node orbit and spectral MMD² against reference graphs, and V.U.N.
//! (valid, unique, novel). Graphs are simple and undirected with at most 64 nodes (bitset rows).
//!
//! Our own code, checked against networkx and a brute-force Python reference
//! (tools/fixtures_graph_eval.py). Where DiGress calls tools we do not have, we say what we do instead:
//! - 4-node orbits: ORCA's 15 node orbits by enumerating every connected induced 3- and 4-node
//!   subgraph (exact; fine for n ≤ 64).
//! - planarity: Demoucron–Malgrange–Pertuiset on each biconnected component (exact).
//! - isomorphism: Weisfeiler–Lehman colours as a pre-check, then backtracking matching within colour
//!   classes with full adjacency checks (exact).
//! - SBM validity: graph-tool's blockmodel fit is replaced by a documented approximation, see
//!   [`SbmSpec`].

use crate::error::{Error, Result};
use crate::process::graph::Graph;

/// The largest graph the metrics take (one u64 adjacency row per node).
pub const MAX_EVAL_NODES: usize = 64;

/// A simple undirected graph as adjacency bitsets.
#[derive(Clone, Debug)]
pub struct Adj {
    pub n: usize,
    pub rows: Vec<u64>,
}

impl Adj {
    pub fn from_graph(g: &Graph) -> Result<Adj> {
        if g.num_nodes > MAX_EVAL_NODES {
            return Err(Error::Invalid(format!(
                "graph metrics take at most {MAX_EVAL_NODES} nodes, got {}",
                g.num_nodes
            )));
        }
        let mut rows = vec![0u64; g.num_nodes];
        for &(i, j, _) in &g.edges {
            if i >= g.num_nodes || j >= g.num_nodes || i == j {
                return Err(Error::Invalid(format!("bad edge ({i}, {j})")));
            }
            rows[i] |= 1 << j;
            rows[j] |= 1 << i;
        }
        Ok(Adj {
            n: g.num_nodes,
            rows,
        })
    }

    pub fn has(&self, i: usize, j: usize) -> bool {
        self.rows[i] >> j & 1 == 1
    }

    pub fn degree(&self, i: usize) -> usize {
        self.rows[i].count_ones() as usize
    }

    pub fn num_edges(&self) -> usize {
        self.rows
            .iter()
            .map(|r| r.count_ones() as usize)
            .sum::<usize>()
            / 2
    }

    pub fn is_connected(&self) -> bool {
        if self.n == 0 {
            return true;
        }
        let all = if self.n == 64 {
            u64::MAX
        } else {
            (1u64 << self.n) - 1
        };
        self.component(0) == all
    }

    /// The nodes reachable from `s` as a bitset.
    fn component(&self, s: usize) -> u64 {
        let mut seen = 1u64 << s;
        let mut frontier = seen;
        while frontier != 0 {
            let mut next = 0;
            let mut f = frontier;
            while f != 0 {
                let v = f.trailing_zeros() as usize;
                f &= f - 1;
                next |= self.rows[v];
            }
            frontier = next & !seen;
            seen |= next;
        }
        seen
    }
}

// ---------------------------------------------------------------------------------------------
// Descriptors

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
    super::graph_features::jacobi_eigh(&m, n).0
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
                    let max_d = *d.iter().max().unwrap();
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

// ---------------------------------------------------------------------------------------------
// MMD

/// `exp(−TV²/(2σ²))` with TV = ½ Σ|x − y| over zero-padded vectors.
pub fn gaussian_tv(x: &[f64], y: &[f64], sigma: f64) -> f64 {
    let len = x.len().max(y.len());
    let g = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(0.0);
    let tv: f64 = (0..len).map(|i| (g(x, i) - g(y, i)).abs()).sum::<f64>() / 2.0;
    (-tv * tv / (2.0 * sigma * sigma)).exp()
}

/// DiGress's `compute_mmd` (a biased V-statistic): with `is_hist`, each vector is first divided by
/// its sum + 1e−6.
pub fn mmd2(s1: &[Vec<f64>], s2: &[Vec<f64>], sigma: f64, is_hist: bool) -> f64 {
    let norm = |s: &[Vec<f64>]| -> Vec<Vec<f64>> {
        s.iter()
            .map(|v| {
                if is_hist {
                    let t: f64 = v.iter().sum::<f64>() + 1e-6;
                    v.iter().map(|x| x / t).collect()
                } else {
                    v.clone()
                }
            })
            .collect()
    };
    let (a, b) = (norm(s1), norm(s2));
    let disc = |p: &[Vec<f64>], q: &[Vec<f64>]| -> f64 {
        if p.is_empty() || q.is_empty() {
            return 1e6;
        }
        let mut d = 0.0;
        for x in p {
            for y in q {
                d += gaussian_tv(x, y, sigma);
            }
        }
        d / (p.len() * q.len()) as f64
    };
    disc(&a, &a) + disc(&b, &b) - 2.0 * disc(&a, &b)
}

/// The four MMD² values of DiGress's SBM/planar evaluation.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Mmds {
    pub degree: f64,
    pub clustering: f64,
    pub orbit: f64,
    pub spectral: f64,
}

/// MMD² between a reference set (DiGress: the test graphs) and a generated set. Empty generated
/// graphs are left out, as DiGress does for degree, clustering and spectre.
pub fn mmds(reference: &[Adj], generated: &[Adj]) -> Mmds {
    let gen: Vec<&Adj> = generated.iter().filter(|a| a.n > 0).collect();
    let r: Vec<&Adj> = reference.iter().collect();
    let desc = |s: &[&Adj], f: &dyn Fn(&Adj) -> Vec<f64>| -> Vec<Vec<f64>> {
        s.iter().map(|a| f(a)).collect()
    };
    Mmds {
        degree: mmd2(
            &desc(&r, &degree_histogram),
            &desc(&gen, &degree_histogram),
            1.0,
            true,
        ),
        clustering: mmd2(
            &desc(&r, &clustering_histogram),
            &desc(&gen, &clustering_histogram),
            0.1,
            true,
        ),
        orbit: mmd2(
            &desc(&r, &orbit_descriptor),
            &desc(&gen, &orbit_descriptor),
            30.0,
            false,
        ),
        spectral: mmd2(
            &desc(&r, &spectral_pmf),
            &desc(&gen, &spectral_pmf),
            1.0,
            true,
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Isomorphism

/// Weisfeiler–Lehman colours after n rounds (stable by then), as hashes comparable across graphs.
pub fn wl_colours(a: &Adj) -> Vec<u64> {
    let mix = |mut h: u64, v: u64| {
        h ^= v
            .wrapping_add(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(h << 6)
            .wrapping_add(h >> 2);
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    };
    let mut col: Vec<u64> = (0..a.n).map(|i| mix(1, a.degree(i) as u64)).collect();
    for _ in 0..a.n.max(1) {
        let next: Vec<u64> = (0..a.n)
            .map(|i| {
                let mut nb: Vec<u64> = (0..a.n).filter(|&j| a.has(i, j)).map(|j| col[j]).collect();
                nb.sort_unstable();
                nb.into_iter().fold(mix(2, col[i]), mix)
            })
            .collect();
        col = next;
    }
    col
}

/// An isomorphism-invariant key: node and edge counts and the sorted WL colours. Different keys
/// mean non-isomorphic graphs; equal keys need [`is_isomorphic`].
pub fn wl_key(a: &Adj) -> (usize, usize, Vec<u64>) {
    let mut c = wl_colours(a);
    c.sort_unstable();
    (a.n, a.num_edges(), c)
}

/// Exact isomorphism test: backtracking that maps nodes of `a` to nodes of `b` with the same WL
/// colour (a necessary condition), checking adjacency to every node mapped before.
pub fn is_isomorphic(a: &Adj, b: &Adj) -> bool {
    if a.n != b.n || a.num_edges() != b.num_edges() {
        return false;
    }
    let (ca, cb) = (wl_colours(a), wl_colours(b));
    let (mut sa, mut sb) = (ca.clone(), cb.clone());
    sa.sort_unstable();
    sb.sort_unstable();
    if sa != sb {
        return false;
    }
    // Map in BFS order so each new node is usually adjacent to a mapped one (early pruning).
    let mut order = Vec::with_capacity(a.n);
    let mut placed = 0u64;
    for s in 0..a.n {
        if placed >> s & 1 == 1 {
            continue;
        }
        let mut queue = std::collections::VecDeque::from([s]);
        placed |= 1 << s;
        while let Some(v) = queue.pop_front() {
            order.push(v);
            for w in 0..a.n {
                if a.has(v, w) && placed >> w & 1 == 0 {
                    placed |= 1 << w;
                    queue.push_back(w);
                }
            }
        }
    }
    let mut map = vec![usize::MAX; a.n];
    // The backtracking state travels as arguments so the recursion needs no struct of borrows.
    #[allow(clippy::too_many_arguments)]
    fn go(
        k: usize,
        order: &[usize],
        a: &Adj,
        b: &Adj,
        ca: &[u64],
        cb: &[u64],
        map: &mut [usize],
        used: u64,
    ) -> bool {
        if k == order.len() {
            return true;
        }
        let v = order[k];
        for w in 0..b.n {
            if used >> w & 1 == 1 || cb[w] != ca[v] {
                continue;
            }
            let ok = order[..k].iter().all(|&u| a.has(v, u) == b.has(w, map[u]));
            if ok {
                map[v] = w;
                if go(k + 1, order, a, b, ca, cb, map, used | 1 << w) {
                    return true;
                }
            }
        }
        false
    }
    go(0, &order, a, b, &ca, &cb, &mut map, 0)
}

// ---------------------------------------------------------------------------------------------
// Planarity

/// Exact planarity test: a graph is planar iff each biconnected component is, and each component
/// with ≥ 3 nodes is tested by Demoucron–Malgrange–Pertuiset (embed a cycle, then repeatedly embed
/// a path of a fragment into a face that holds all its contact nodes; a fragment with no such face
/// proves non-planarity).
pub fn is_planar(a: &Adj) -> bool {
    if a.n >= 3 && a.num_edges() > 3 * a.n - 6 {
        return false;
    }
    biconnected_components(a)
        .into_iter()
        .all(|edges| block_is_planar(a.n, &edges))
}

/// Edge sets of the biconnected components (Hopcroft–Tarjan with an edge stack).
fn biconnected_components(a: &Adj) -> Vec<Vec<(usize, usize)>> {
    let n = a.n;
    let mut disc = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut time = 0;
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut out = Vec::new();
    for root in 0..n {
        if disc[root] != usize::MAX {
            continue;
        }
        disc[root] = time;
        low[root] = time;
        time += 1;
        // Iterative DFS: (node, parent, next neighbour to try).
        let mut dfs = vec![(root, usize::MAX, 0usize)];
        while let Some(&mut (v, p, ref mut next)) = dfs.last_mut() {
            if *next < n {
                let w = *next;
                *next += 1;
                if !a.has(v, w) || w == p {
                    continue;
                }
                if disc[w] == usize::MAX {
                    stack.push((v, w));
                    disc[w] = time;
                    low[w] = time;
                    time += 1;
                    dfs.push((w, v, 0));
                } else if disc[w] < disc[v] {
                    stack.push((v, w));
                    low[v] = low[v].min(disc[w]);
                }
            } else {
                dfs.pop();
                if p != usize::MAX {
                    low[p] = low[p].min(low[v]);
                    if low[v] >= disc[p] {
                        let mut comp = Vec::new();
                        while let Some(e) = stack.pop() {
                            comp.push(e);
                            if e == (p, v) {
                                break;
                            }
                        }
                        out.push(comp);
                    }
                }
            }
        }
    }
    out
}

fn block_is_planar(n: usize, edges: &[(usize, usize)]) -> bool {
    let mut g = vec![0u64; n];
    for &(u, v) in edges {
        g[u] |= 1 << v;
        g[v] |= 1 << u;
    }
    let verts: u64 = g
        .iter()
        .enumerate()
        .filter(|(_, r)| **r != 0)
        .fold(0, |s, (i, _)| s | 1 << i);
    let nv = verts.count_ones() as usize;
    if nv < 5 {
        return true;
    }
    if edges.len() > 3 * nv - 6 {
        return false;
    }
    // A cycle: DFS from any node until a back edge closes one.
    let cycle = find_cycle(&g, verts.trailing_zeros() as usize);
    let mut h = vec![0u64; n]; // embedded edges
    let mut hv = 0u64; // embedded nodes
    for k in 0..cycle.len() {
        let (u, v) = (cycle[k], cycle[(k + 1) % cycle.len()]);
        h[u] |= 1 << v;
        h[v] |= 1 << u;
        hv |= 1 << u;
    }
    let mut faces = vec![cycle.clone(), cycle];
    loop {
        // Fragments: (contact nodes, path between two contacts).
        let mut frags: Vec<(u64, Vec<usize>)> = Vec::new();
        for u in 0..n {
            if hv >> u & 1 == 0 {
                continue;
            }
            let mut r = g[u] & !h[u] & hv;
            while r != 0 {
                let v = r.trailing_zeros() as usize;
                r &= r - 1;
                if u < v {
                    frags.push((1 << u | 1 << v, vec![u, v]));
                }
            }
        }
        let mut seen = hv;
        for s in 0..n {
            if verts >> s & 1 == 0 || seen >> s & 1 == 1 {
                continue;
            }
            // The component of G − H containing s, and where it attaches to H.
            let mut comp = 1u64 << s;
            let mut frontier = comp;
            while frontier != 0 {
                let mut next = 0;
                let mut f = frontier;
                while f != 0 {
                    let v = f.trailing_zeros() as usize;
                    f &= f - 1;
                    next |= g[v];
                }
                next &= !hv;
                frontier = next & !comp;
                comp |= next;
            }
            seen |= comp;
            let mut contacts = 0u64;
            let mut c = comp;
            while c != 0 {
                let v = c.trailing_zeros() as usize;
                c &= c - 1;
                contacts |= g[v] & hv;
            }
            let path = fragment_path(&g, comp, contacts);
            frags.push((contacts, path));
        }
        if frags.is_empty() {
            return true;
        }
        let face_set: Vec<u64> = faces
            .iter()
            .map(|f| f.iter().fold(0u64, |s, &v| s | 1 << v))
            .collect();
        let mut choice: Option<(usize, usize)> = None;
        for (fi, (contacts, _)) in frags.iter().enumerate() {
            let adm: Vec<usize> = (0..faces.len())
                .filter(|&k| contacts & !face_set[k] == 0)
                .collect();
            match adm.len() {
                0 => return false,
                1 => {
                    choice = Some((fi, adm[0]));
                    break;
                }
                _ => {
                    if choice.is_none() {
                        choice = Some((fi, adm[0]));
                    }
                }
            }
        }
        let (fi, k) = choice.expect("fragments is non-empty");
        let path = &frags[fi].1;
        let face = faces.swap_remove(k);
        let (u, v) = (path[0], *path.last().unwrap());
        let iu = face.iter().position(|&x| x == u).unwrap();
        let iv = face.iter().position(|&x| x == v).unwrap();
        let walk = |from: usize, to: usize| -> Vec<usize> {
            let mut w = vec![face[from]];
            let mut i = from;
            while i != to {
                i = (i + 1) % face.len();
                w.push(face[i]);
            }
            w
        };
        let inner = &path[1..path.len() - 1];
        let mut f1 = walk(iu, iv);
        f1.extend(inner.iter().rev());
        let mut f2 = walk(iv, iu);
        f2.extend(inner.iter());
        faces.push(f1);
        faces.push(f2);
        for w in path.windows(2) {
            h[w[0]] |= 1 << w[1];
            h[w[1]] |= 1 << w[0];
        }
        for &x in path {
            hv |= 1 << x;
        }
    }
}

fn find_cycle(g: &[u64], s: usize) -> Vec<usize> {
    let n = g.len();
    let mut parent = vec![usize::MAX; n];
    let mut depth = vec![usize::MAX; n];
    let mut stack = vec![s];
    depth[s] = 0;
    let mut next = vec![0usize; n];
    while let Some(&v) = stack.last() {
        if next[v] >= n {
            stack.pop();
            continue;
        }
        let w = next[v];
        next[v] += 1;
        if g[v] >> w & 1 == 0 || w == parent[v] {
            continue;
        }
        if depth[w] == usize::MAX {
            parent[w] = v;
            depth[w] = depth[v] + 1;
            stack.push(w);
        } else if depth[w] < depth[v] {
            let mut c = vec![v];
            let mut x = v;
            while x != w {
                x = parent[x];
                c.push(x);
            }
            return c;
        }
    }
    unreachable!("a biconnected block with ≥ 5 nodes has a cycle")
}

/// A path from one contact node through the fragment's component `comp` to another contact node.
fn fragment_path(g: &[u64], comp: u64, contacts: u64) -> Vec<usize> {
    let n = g.len();
    let u = contacts.trailing_zeros() as usize;
    let mut prev = vec![usize::MAX; n];
    let mut queue = std::collections::VecDeque::new();
    let mut r = g[u] & comp;
    while r != 0 {
        let v = r.trailing_zeros() as usize;
        r &= r - 1;
        prev[v] = u;
        queue.push_back(v);
    }
    while let Some(v) = queue.pop_front() {
        let end = g[v] & contacts & !(1u64 << u);
        if end != 0 {
            let t = end.trailing_zeros() as usize;
            let mut p = vec![t, v];
            let mut x = v;
            while prev[x] != u {
                x = prev[x];
                p.push(x);
            }
            p.push(u);
            p.reverse();
            return p;
        }
        let mut r = g[v] & comp;
        while r != 0 {
            let w = r.trailing_zeros() as usize;
            r &= r - 1;
            if prev[w] == usize::MAX && w != u {
                prev[w] = v;
                queue.push_back(w);
            }
        }
    }
    unreachable!("a fragment of a biconnected block has two contact nodes")
}

// ---------------------------------------------------------------------------------------------
// SBM validity

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
    let (_, v) = super::graph_features::jacobi_eigh(&m, n);
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
            .unwrap();
        centres.push(pts[far].clone());
    }
    let mut labels = vec![0; n];
    for _ in 0..50 {
        for i in 0..n {
            labels[i] = (0..b)
                .min_by(|&x, &y| d2(&pts[i], &centres[x]).total_cmp(&d2(&pts[i], &centres[y])))
                .unwrap();
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

// ---------------------------------------------------------------------------------------------
// V.U.N.

/// What "valid" means for a model's graphs.
#[derive(Clone, Copy, Debug)]
pub enum Validity {
    /// Connected and planar (DiGress's `is_planar_graph`).
    Planar,
    Sbm(SbmSpec),
}

impl Validity {
    pub fn for_dataset(name: &str) -> Result<Validity> {
        match name {
            "planar" => Ok(Validity::Planar),
            "sbm" => Ok(Validity::Sbm(SBM_RECIPE)),
            o => Err(Error::Invalid(format!(
                "no validity test for dataset \"{o}\" (planar, sbm)"
            ))),
        }
    }

    pub fn check(&self, a: &Adj) -> bool {
        match self {
            Validity::Planar => a.is_connected() && is_planar(a),
            Validity::Sbm(s) => is_sbm(a, s),
        }
    }
}

#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Vun {
    pub valid: f64,
    pub unique: f64,
    pub unique_novel: f64,
    pub vun: f64,
}

/// A graph's Weisfeiler–Lehman key: (nodes, edges, sorted colour hashes).
type WlKey = (usize, usize, Vec<u64>);

/// DiGress's `eval_fraction_unique_non_isomorphic_valid`, plus the plain valid fraction.
pub fn vun(generated: &[Adj], train: &[Adj], validity: &Validity) -> Vun {
    let total = generated.len().max(1) as f64;
    let train_keys: Vec<_> = train.iter().map(wl_key).collect();
    // (index into `generated`, its WL key)
    let mut uniques: Vec<(usize, WlKey)> = Vec::new();
    let (mut dup, mut iso, mut count, mut valid) = (0, 0, 0, 0);
    for (gi, g) in generated.iter().enumerate() {
        let ok = validity.check(g);
        valid += ok as usize;
        let key = wl_key(g);
        if uniques
            .iter()
            .any(|(u, k)| *k == key && is_isomorphic(g, &generated[*u]))
        {
            dup += 1;
            continue;
        }
        uniques.push((gi, key.clone()));
        if train_keys
            .iter()
            .zip(train)
            .any(|(k, t)| *k == key && is_isomorphic(g, t))
        {
            iso += 1;
            continue;
        }
        count += ok as usize;
    }
    Vun {
        valid: valid as f64 / total,
        unique: (generated.len() - dup) as f64 / total,
        unique_novel: (generated.len() - dup - iso) as f64 / total,
        vun: count as f64 / total,
    }
}

/// The full report `diffscope eval-graphs` prints.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GraphEval {
    pub generated: usize,
    pub reference: usize,
    pub mmd: Mmds,
    /// MMD² of the train graphs against the test graphs (the denominators).
    pub mmd_train_test: Mmds,
    /// MMD²(generated, test) / MMD²(train, test), as in DiGress's paper tables.
    pub ratio: Mmds,
    pub vun: Vun,
    /// The valid fraction of the test graphs themselves (what the validity test makes of real data).
    pub reference_valid: f64,
}

pub fn evaluate(
    generated: &[Graph],
    train: &[Graph],
    test: &[Graph],
    validity: &Validity,
) -> Result<GraphEval> {
    let conv = |s: &[Graph]| s.iter().map(Adj::from_graph).collect::<Result<Vec<_>>>();
    let (g, tr, te) = (conv(generated)?, conv(train)?, conv(test)?);
    let mmd = mmds(&te, &g);
    let base = mmds(&te, &tr);
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    Ok(GraphEval {
        generated: g.len(),
        reference: te.len(),
        ratio: Mmds {
            degree: div(mmd.degree, base.degree),
            clustering: div(mmd.clustering, base.clustering),
            orbit: div(mmd.orbit, base.orbit),
            spectral: div(mmd.spectral, base.spectral),
        },
        mmd,
        mmd_train_test: base,
        vun: vun(&g, &tr, validity),
        reference_valid: te.iter().filter(|a| validity.check(a)).count() as f64
            / te.len().max(1) as f64,
    })
}
