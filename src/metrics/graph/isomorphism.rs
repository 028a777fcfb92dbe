//! Graph isomorphism for uniqueness and novelty: Weisfeiler–Lehman keys to rule pairs out cheaply,
//! then an exact VF2 match.

use super::Adj;
use petgraph::graph::UnGraph;

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

/// Exact isomorphism test: VF2 (petgraph) restricted to mapping nodes of equal WL colour, which
/// every isomorphism does, so the colours only prune.
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
    petgraph::algo::is_isomorphic_matching(
        &coloured_graph(a, &ca),
        &coloured_graph(b, &cb),
        |x, y| x == y,
        |_, _| true,
    )
}

/// `a` as a petgraph graph whose node weights are the given colours.
fn coloured_graph(a: &Adj, colours: &[u64]) -> UnGraph<u64, ()> {
    let mut g = UnGraph::with_capacity(a.n, a.num_edges());
    let nodes: Vec<_> = colours.iter().map(|&c| g.add_node(c)).collect();
    for i in 0..a.n {
        for j in i + 1..a.n {
            if a.has(i, j) {
                g.add_edge(nodes[i], nodes[j], ());
            }
        }
    }
    g
}
