"""Quality figures for samples written by `diffscope sample` (the "must show" figures of issue 4).

    python tools/measure_discrete.py words words.txt        # words-absorb / words-uniform samples
    python tools/measure_discrete.py words words.txt --vocab frequent   # a model trained on --vocab frequent
    python tools/measure_discrete.py dna seqs.fasta         # promoter-multinomial samples

Words: share of real dictionary words (the whole list of tools/words_data.py, whatever the model was
trained on), share in the training split of the model's --vocab, share in its held-out split, share of
dictionary words in neither (only with a smaller --vocab), share not in the dictionary, unique share, and
the share with a pad ('_') before a letter (the padding is a suffix in the data). DNA: share with both σ70 boxes (≤1 and ≤2 mismatches) and a
15–19 nt spacer, and the Jensen–Shannon divergence of the 6-mer spectrum against the held-out set, beside
the same figures for as many training sequences and uniform random sequences.
"""
import json
import sys

import numpy as np

import promoter_data
import words_data
from train_discrete import promoter_figures


def words(path, vocab="full"):
    full = set(words_data.load_words())
    train, held = words_data.split(words_data.load_vocab(vocab))
    trs, hes = set(train), set(held)
    ws = [l.rstrip("\n") for l in open(path)]
    n = len(ws)
    ok = [w for w in ws if w and all("a" <= c <= "z" for c in w)]
    out = dict(n=n, well_formed=len(ok) / n, dictionary_word=sum(w in full for w in ok) / n,
               in_training=sum(w in trs for w in ok) / n, new_in_heldout=sum(w in hes for w in ok) / n)
    if vocab != "full":
        out["dictionary_word_outside_vocab"] = sum(w in full and w not in trs and w not in hes for w in ok) / n
    out.update(new_not_in_dictionary=sum(w not in full for w in ok) / n, unique=len(set(ws)) / n,
               pad_before_letter=sum("_" in w.rstrip("_") for w in ws) / n)
    return out


def dna(path):
    seqs, cur = [], None
    for line in open(path):
        line = line.strip()
        if line.startswith(">"):
            if cur is not None:
                seqs.append(cur)
            cur = ""
        elif line:
            cur += line
    if cur is not None:
        seqs.append(cur)
    train, held = promoter_data.split(promoter_data.generate(20000, seed=0))
    r = np.random.default_rng(1)
    rnd = ["".join(r.choice(list("ACGT"), size=50)) for _ in range(len(seqs))]
    return dict(samples=promoter_figures(seqs, held), training_data=promoter_figures(train[:len(seqs)], held),
                uniform_random=promoter_figures(rnd, held))


if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    vocab = sys.argv[sys.argv.index("--vocab") + 1] if "--vocab" in sys.argv else "full"
    print(json.dumps(words(path, vocab) if kind == "words" else dna(path), indent=1))
