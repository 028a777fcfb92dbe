"""A synthetic, biologically shaped set of E. coli σ70-like promoters, 50 nt each (ACGT, ids A=0 C=1 G=2 T=3
as GPro's sorted vocabulary).

Each sequence is background DNA with a −35 box (consensus TTGACA) and a −10 box (consensus TATAAT)
separated by a 15–19 nt spacer (17 most common), then 6–8 nt to the transcription start:

- background: i.i.d. bases with GC content drawn per sequence from N(0.45, 0.04) (σ70 promoter regions
  are AT-rich relative to the ~50.8% GC E. coli genome), A/T and G/C split evenly;
- spacer length: 15, 16, 17, 18, 19 with probabilities 0.05, 0.2, 0.5, 0.2, 0.05;
- the −10 box ends 7 ± 1 nt before the 3' end (the +1 region), so the −35 box starts at about 4–12;
- position-specific mutation: each box position is replaced by a different random base with its own
  probability, low where the consensus is most conserved (the TTG of −35, the T..A..T of −10), so a box
  carries 0.6 mismatches on average.

Everything is drawn from numpy's PCG64 with the given seed; the split is the first 90% train, then
10% held out (GPro splits contiguously too).
"""
import numpy as np

BASES = "ACGT"
L = 50
BOX35, BOX10 = "TTGACA", "TATAAT"
MUT35 = [0.05, 0.06, 0.08, 0.15, 0.12, 0.15]
MUT10 = [0.05, 0.04, 0.15, 0.15, 0.12, 0.05]
SPACERS, SPACER_P = [15, 16, 17, 18, 19], [0.05, 0.2, 0.5, 0.2, 0.05]


def _mutate(box, probs, rng):
    out = []
    for c, p in zip(box, probs):
        if rng.random() < p:
            c = rng.choice([b for b in BASES if b != c])
        out.append(c)
    return "".join(out)


def generate(n, seed=0):
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n):
        gc = float(np.clip(rng.normal(0.45, 0.04), 0.3, 0.6))
        p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        s = list(rng.choice(list(BASES), size=L, p=p))
        sp = int(rng.choice(SPACERS, p=SPACER_P))
        end10 = L - int(rng.integers(6, 9))  # exclusive end of the −10 box
        start10 = end10 - 6
        start35 = start10 - sp - 6
        s[start35:start35 + 6] = _mutate(BOX35, MUT35, rng)
        s[start10:end10] = _mutate(BOX10, MUT10, rng)
        seqs.append("".join(s))
    return seqs


def split(seqs):
    n = int(len(seqs) * 0.9)
    return seqs[:n], seqs[n:]


def encode(seqs):
    return np.array([[BASES.index(c) for c in s] for s in seqs], dtype=np.int64)


def decode(ids):
    return "".join(BASES[int(i)] for i in ids)


def hamming(a, b):
    return sum(x != y for x, y in zip(a, b))


def has_promoter(s, max_mm=1):
    """Both boxes (each within `max_mm` mismatches of consensus) with a 15–19 nt spacer between them."""
    hits35 = [i for i in range(len(s) - 5) if hamming(s[i:i + 6], BOX35) <= max_mm]
    if not hits35:
        return False
    hits10 = set(i for i in range(len(s) - 5) if hamming(s[i:i + 6], BOX10) <= max_mm)
    return any(i + 6 + sp in hits10 for i in hits35 for sp in SPACERS)


def kmer_spectrum(seqs, k=6):
    counts = np.zeros(4 ** k)
    for s in seqs:
        ids = [BASES.index(c) for c in s]
        for i in range(len(ids) - k + 1):
            v = 0
            for c in ids[i:i + k]:
                v = v * 4 + c
            counts[v] += 1
    return counts / counts.sum()


def js_divergence(p, q):
    """Jensen–Shannon divergence in bits (0 = identical, 1 = disjoint)."""
    m = 0.5 * (p + q)
    kl = lambda a, b: np.sum(np.where(a > 0, a * np.log2(np.where(a > 0, a, 1) / np.where(b > 0, b, 1)), 0.0))
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


if __name__ == "__main__":
    seqs = generate(20000)
    tr, he = split(seqs)
    rnd = ["".join(np.random.default_rng(1).choice(list(BASES), size=L)) for _ in range(1)]
    r = np.random.default_rng(1)
    rnd = ["".join(r.choice(list(BASES), size=L)) for _ in range(2000)]
    for name, s in [("train", tr[:2000]), ("heldout", he), ("uniform", rnd)]:
        print(name, np.mean([has_promoter(x, 1) for x in s]), np.mean([has_promoter(x, 2) for x in s]),
              js_divergence(kmer_spectrum(s), kmer_spectrum(he)))
    print(tr[0])
