//! Exact planarity (DiGress's validity for planar graphs).

use super::{Adj, GraphEvalError};

/// Exact planarity test: a graph is planar iff each biconnected component is, and each component
/// with ≥ 3 nodes is tested by Demoucron–Malgrange–Pertuiset (embed a cycle, then repeatedly embed
/// a path of a fragment into a face that holds all its contact nodes; a fragment with no such face
/// proves non-planarity). The steps rely on facts about biconnected blocks (a cycle exists, every
/// fragment has two contact nodes, ...); should one ever fail, the test reports
/// [`GraphEvalError::PlanarityInvariant`] instead of guessing an answer.
pub fn is_planar(a: &Adj) -> Result<bool, GraphEvalError> {
    if a.n >= 3 && a.num_edges() > 3 * a.n - 6 {
        return Ok(false);
    }
    for edges in biconnected_components(a) {
        if !block_is_planar(a.n, &edges)? {
            return Ok(false);
        }
    }
    Ok(true)
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

fn block_is_planar(n: usize, edges: &[(usize, usize)]) -> Result<bool, GraphEvalError> {
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
        return Ok(true);
    }
    if edges.len() > 3 * nv - 6 {
        return Ok(false);
    }
    let broken = |detail: &'static str| GraphEvalError::PlanarityInvariant { nodes: nv, detail };
    // A cycle: DFS from any node until a back edge closes one.
    let cycle = find_cycle(&g, verts.trailing_zeros() as usize)
        .ok_or_else(|| broken("a biconnected block with 5 or more nodes has no cycle"))?;
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
            let path = fragment_path(&g, comp, contacts)
                .ok_or_else(|| broken("a fragment has fewer than two contact nodes"))?;
            frags.push((contacts, path));
        }
        if frags.is_empty() {
            return Ok(true);
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
                0 => return Ok(false),
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
        let (fi, k) = choice.ok_or_else(|| broken("no fragment to embed"))?;
        let path = &frags[fi].1;
        let face = faces.swap_remove(k);
        let (&u, &v) = match path.as_slice() {
            [u, .., v] => (u, v),
            _ => return Err(broken("a fragment path has fewer than two nodes")),
        };
        let (Some(iu), Some(iv)) = (
            face.iter().position(|&x| x == u),
            face.iter().position(|&x| x == v),
        ) else {
            return Err(broken("a path's ends are not on the face chosen for it"));
        };
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

/// A cycle through the DFS tree from `s` (closed by the first back edge), or `None` if `g` has none.
fn find_cycle(g: &[u64], s: usize) -> Option<Vec<usize>> {
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
            return Some(c);
        }
    }
    None
}

/// A path from one contact node through the fragment's component `comp` to another contact node,
/// or `None` if the component touches fewer than two.
fn fragment_path(g: &[u64], comp: u64, contacts: u64) -> Option<Vec<usize>> {
    if contacts.count_ones() < 2 {
        return None;
    }
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
            return Some(p);
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
    None
}
