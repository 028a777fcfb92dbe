"""Fixtures for src/models/graph_eval.rs, computed by networkx/numpy (DiGress's descriptor recipes from
src/analysis/spectre_utils.py, re-implemented here with numpy) and a brute-force orbit count that
classifies every connected induced 3-/4-node subgraph with nx.is_isomorphic against the graphlets.

Writes tests/fixtures/graph_eval/graphs.json: graphs (n, edges) with their degree histogram,
clustering histogram, spectral pmf, orbit counts, planarity (nx.check_planarity), connectivity;
isomorphism pairs (nx.is_isomorphic); MMD² between two small sets with the four kernels.
"""
import itertools
import json
import os

import networkx as nx
import numpy as np

rng = np.random.default_rng(7)
graphs = []
# Planar (Delaunay-like via random planar constructions), non-planar classics, random graphs.
graphs += [nx.complete_graph(5), nx.complete_bipartite_graph(3, 3), nx.petersen_graph(),
           nx.complete_graph(4), nx.cycle_graph(6), nx.path_graph(5), nx.star_graph(4),
           nx.grid_2d_graph(3, 4), nx.wheel_graph(7), nx.octahedral_graph(), nx.icosahedral_graph(),
           nx.dodecahedral_graph(), nx.heawood_graph(), nx.moebius_kantor_graph()]
# A subdivided K5 and K3,3 with extra planar parts.
k5 = nx.complete_graph(5)
k5 = nx.relabel_nodes(k5, {i: i for i in range(5)})
k5.remove_edge(0, 1); k5.add_edges_from([(0, 5), (5, 1), (5, 6), (6, 7), (7, 5)])
graphs.append(k5)
for n, p in [(8, 0.3), (10, 0.35), (12, 0.3), (12, 0.45), (16, 0.25), (16, 0.3), (20, 0.2), (20, 0.25),
             (24, 0.15), (24, 0.2), (30, 0.12), (9, 0.5), (14, 0.22), (18, 0.18)]:
    graphs.append(nx.gnp_random_graph(n, p, seed=int(rng.integers(1 << 30))))
for _ in range(4):
    from scipy.spatial import Delaunay
    pts = rng.random((14, 2))
    g = nx.Graph(); g.add_nodes_from(range(14))
    for s in Delaunay(pts).simplices:
        for a, b in itertools.combinations(s, 2):
            g.add_edge(int(a), int(b))
    graphs.append(g)
# Maximal planar + one edge (non-planar, tight edge count).
g = graphs[-1].copy()
non = [(u, v) for u, v in itertools.combinations(range(14), 2) if not g.has_edge(u, v)]
g.add_edge(*non[0]); graphs.append(g)
graphs = [nx.convert_node_labels_to_integers(g) for g in graphs]

GRAPHLETS = [  # (graphlet, orbit of each node in it)
    (nx.path_graph(3), {0: 1, 1: 2, 2: 1}),
    (nx.complete_graph(3), {0: 3, 1: 3, 2: 3}),
    (nx.path_graph(4), {0: 4, 1: 5, 2: 5, 3: 4}),
    (nx.star_graph(3), {0: 7, 1: 6, 2: 6, 3: 6}),
    (nx.cycle_graph(4), {0: 8, 1: 8, 2: 8, 3: 8}),
    (nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)]), {3: 9, 0: 10, 1: 10, 2: 11}),
    (nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]), {1: 12, 3: 12, 0: 13, 2: 13}),
    (nx.complete_graph(4), {0: 14, 1: 14, 2: 14, 3: 14}),
]


def orbits_brute(g):
    c = np.zeros((g.number_of_nodes(), 15), dtype=np.int64)
    for v in g.nodes():
        c[v, 0] = g.degree(v)
    for k in (3, 4):
        for s in itertools.combinations(g.nodes(), k):
            h = g.subgraph(s)
            if not nx.is_connected(h):
                continue
            for gl, orb in GRAPHLETS:
                if gl.number_of_nodes() != k:
                    continue
                m = nx.isomorphism.GraphMatcher(h, gl)
                if m.is_isomorphic():
                    for a, b in m.mapping.items():
                        c[a, orb[b]] += 1
                    break
    return c


def spectral(g):
    eigs = np.linalg.eigvalsh(nx.normalized_laplacian_matrix(g).todense())
    # An eigenvalue of exactly 2 (bipartite component) may come out as 2 + 1 ulp and be dropped by
    # np.histogram, depending on LAPACK rounding; we (and graph_eval.rs) count it in the last bin.
    eigs = np.where((eigs > 2) & (eigs <= 2 + 1e-9), 2.0, eigs)
    h, _ = np.histogram(eigs, bins=200, range=(-1e-5, 2), density=False)
    return (h / h.sum()).tolist()


def gaussian_tv(x, y, sigma):
    L = max(len(x), len(y))
    x = np.pad(np.asarray(x, float), (0, L - len(x)))
    y = np.pad(np.asarray(y, float), (0, L - len(y)))
    d = np.abs(x - y).sum() / 2
    return np.exp(-d * d / (2 * sigma * sigma))


def mmd(s1, s2, sigma, is_hist):
    if is_hist:
        s1 = [np.asarray(s) / (np.sum(s) + 1e-6) for s in s1]
        s2 = [np.asarray(s) / (np.sum(s) + 1e-6) for s in s2]
    disc = lambda a, b: np.mean([gaussian_tv(x, y, sigma) for x in a for y in b])
    return float(disc(s1, s1) + disc(s2, s2) - 2 * disc(s1, s2))


recs = []
for g in graphs:
    orb = orbits_brute(g)
    recs.append(dict(
        n=g.number_of_nodes(), edges=[[int(u), int(v)] for u, v in g.edges()],
        degree=nx.degree_histogram(g),
        clustering=np.histogram(list(nx.clustering(g).values()), bins=100, range=(0.0, 1.0))[0].tolist(),
        spectral=spectral(g), orbits=orb.tolist(),
        planar=bool(nx.check_planarity(g)[0]), connected=bool(nx.is_connected(g))))

# Isomorphism: each graph against a relabelled copy (isomorphic) and against a one-edge-moved copy.
iso = []
for i, g in enumerate(graphs[:20]):
    perm = rng.permutation(g.number_of_nodes())
    h = nx.relabel_nodes(g, {a: int(perm[a]) for a in g.nodes()})
    iso.append(dict(a=i, n=h.number_of_nodes(), edges=[[int(u), int(v)] for u, v in h.edges()], iso=True))
    h2 = h.copy()
    e = list(h2.edges())[0]
    h2.remove_edge(*e)
    non = [(u, v) for u, v in itertools.combinations(h2.nodes(), 2) if not h2.has_edge(u, v) and (u, v) != e]
    if not non:
        continue
    h2.add_edge(*non[int(rng.integers(len(non)))])
    iso.append(dict(a=i, n=h2.number_of_nodes(), edges=[[int(u), int(v)] for u, v in h2.edges()],
                    iso=bool(nx.is_isomorphic(g, h2))))
# WL-hard pair: two non-isomorphic 3-regular graphs on 6 nodes (K3,3 vs prism) and C6 vs 2×C3.
hard = [(nx.complete_bipartite_graph(3, 3), nx.circular_ladder_graph(3)),
        (nx.cycle_graph(6), nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3)))]
hard_rec = [dict(a=dict(n=6, edges=[[int(u), int(v)] for u, v in x.edges()]),
                 b=dict(n=6, edges=[[int(u), int(v)] for u, v in nx.convert_node_labels_to_integers(y).edges()]),
                 iso=bool(nx.is_isomorphic(x, y))) for x, y in hard]

A, B = graphs[:12], graphs[12:24]
mm = dict(
    degree=mmd([nx.degree_histogram(g) for g in A], [nx.degree_histogram(g) for g in B], 1.0, True),
    clustering=mmd([recs[i]["clustering"] for i in range(12)], [recs[i]["clustering"] for i in range(12, 24)], 0.1, True),
    orbit=mmd([np.asarray(recs[i]["orbits"]).sum(0) / recs[i]["n"] for i in range(12)],
              [np.asarray(recs[i]["orbits"]).sum(0) / recs[i]["n"] for i in range(12, 24)], 30.0, False),
    spectral=mmd([recs[i]["spectral"] for i in range(12)], [recs[i]["spectral"] for i in range(12, 24)], 1.0, True),
)
# SBM validity has no reference here (graph-tool): recipe SBM graphs vs Erdős–Rényi graphs of the
# same size and density, for a sanity test of the approximation.
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_digress import sbm_graphs  # noqa: E402
sbm = sbm_graphs(20, np.random.default_rng(11))
er = [nx.gnp_random_graph(g.number_of_nodes(), nx.density(g), seed=i) for i, g in enumerate(sbm)]


def sbm_valid_true_blocks(g, p_intra=0.6, p_inter=0.02):
    # DiGress's strict Wald test (is_sbm_graph) on the generating partition instead of a fitted one.
    from scipy.stats import chi2
    part = g.graph["partition"]
    lab = {v: b for b, s in enumerate(part) for v in s}
    sizes = np.array([len(s) for s in part])
    e = np.zeros((len(part), len(part)))
    for u, v in g.edges():
        a, b = lab[u], lab[v]
        if a == b:
            e[a, a] += 2
        else:
            e[a, b] += 1
            e[b, a] += 1
    pi = np.diagonal(e) / (sizes * (sizes - 1) + 1e-6)
    off = e.copy()
    np.fill_diagonal(off, 0)
    pe = off / (np.outer(sizes, sizes) + 1e-6)
    w = (pe - p_inter) ** 2 / (pe * (1 - pe) + 1e-6)
    np.fill_diagonal(w, (pi - p_intra) ** 2 / (pi * (1 - pi) + 1e-6))
    return bool((1 - chi2.cdf(abs(w), 1)).mean() > 0.9)


def sbm_gof_true_blocks(g, p_intra=0.6, p_inter=0.02, alpha=0.05):
    # diffscope's SBM validity (src/metrics/graph/sbm.rs, is_sbm) on the generating partition:
    # Pearson's chi-squared of the block densities, one degree of freedom per unordered block pair.
    from scipy.stats import chi2
    part = g.graph["partition"]
    lab = {v: b for b, s in enumerate(part) for v in s}
    k = len(part)
    e = np.zeros((k, k))
    for u, v in g.edges():
        a, b = sorted((lab[u], lab[v]))
        e[a, b] += 1
    stat, dof = 0.0, 0
    for a in range(k):
        for b in range(a, k):
            t = len(part[a]) * (len(part[a]) - 1) / 2 if a == b else len(part[a]) * len(part[b])
            p = p_intra if a == b else p_inter
            stat += (e[a, b] - t * p) ** 2 / (t * p * (1 - p))
            dof += 1
    return bool(chi2.sf(stat, dof) > alpha)


as_rec = lambda g: dict(n=g.number_of_nodes(), edges=[[int(u), int(v)] for u, v in g.edges()])
out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "graph_eval", "graphs.json")
json.dump(dict(graphs=recs, iso=iso, hard=hard_rec, mmd_sets=[list(range(12)), list(range(12, 24))], mmd=mm, sbm=[as_rec(g) for g in sbm], sbm_true_valid=[sbm_valid_true_blocks(g) for g in sbm], sbm_true_gof=[sbm_gof_true_blocks(g) for g in sbm], er=[as_rec(g) for g in er]),
          open(out, "w"), separators=(",", ":"))
print(len(recs), "graphs;", sum(r["planar"] for r in recs), "planar;", mm)
