"""Why does the words diffusion model trail an autoregressive one of its size? A probe.

    python tools/mask_order_probe.py --steps 4000          # ~15 min on one free core; ~30 when shared

The same network (tools/seq_transformer.py, d 128, depth 3, 4 heads, position embedding drawn at std 1,
no time input), the same data (the 10,000 most frequent dictionary words, drawn ∝ frequency^0.5), the
same optimiser and schedule (AdamW 1e-3, warm-up + cosine, batch 128) and the same masked-token
cross-entropy, trained with one of two kinds of mask:

  suffix  positions i..L−1 masked, i uniform: only the left-to-right conditionals p(x_i | x_<i, masks)
          an autoregressive model learns, decoded left to right, one position per step;
  random  each position masked with a chance r ~ U(0, 1), as absorbing diffusion trains: every order,
          decoded one position per step in random order.

Each prints one JSON line: the share of 500 samples (temperature 1) that are dictionary words, in the
training list, unique. tools/ar_baseline.py is the causal model beside them (87.6 % after 4,000 steps).
If suffix masks alone closed the gap, the cost would be the many orders; if not, it is the training
signal per pass: a causal transformer scores all L next-token conditionals of a word in one pass, while
a masked model scores one mask pattern — of whose masked positions only the first is the conditional
that left-to-right decoding uses.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_discrete as td  # noqa: E402
import words_data  # noqa: E402
from seq_transformer import SeqTransformer  # noqa: E402

K, L, MASK = 28, 12, 27


def run(mode, steps, x, p, train, held, seed=0, samples=500):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    m = SeqTransformer(K, L, 128, 3, 4)
    td.init_embeddings(m, 1.0)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.0)
    t0 = time.time()
    zero = torch.zeros(128, dtype=torch.long)
    for s in range(steps):
        lr = 1e-3 * min(1, (s + 1) / 200) * 0.5 * (1 + math.cos(math.pi * s / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        x0 = x[torch.from_numpy(rng.choice(len(x), 128, p=p))]
        if mode == "random":
            masked = torch.rand(128, L) < torch.rand(128, 1)
        else:
            masked = torch.arange(L)[None] >= torch.randint(0, L, (128, 1))
        xt = torch.where(masked, torch.full_like(x0, MASK), x0)
        ce = torch.nn.functional.cross_entropy(m(xt, zero).transpose(1, 2), x0, reduction="none")
        td.optimise(m, opt, (ce * masked).sum() / masked.sum().clamp(min=1))
    m.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        xs = torch.full((samples, L), MASK)
        rows = torch.arange(samples)
        for k in range(L):
            tok = torch.distributions.Categorical(
                logits=m(xs, torch.zeros(samples, dtype=torch.long))[..., :MASK]).sample()
            if mode == "random":
                pos = torch.rand(samples, L).masked_fill(xs != MASK, -1).argmax(-1)
            else:
                pos = torch.full((samples,), k)
            xs[rows, pos] = tok[rows, pos]
    f = td.word_figures(xs.numpy(), train, held)
    return dict(mode=mode, steps=steps, seconds=round(time.time() - t0),
                **{k: round(v, 3) for k, v in f.items() if k != "examples"}, examples=f["examples"][:8])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--modes", default="suffix,random")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    train, held = words_data.split(words_data.load_vocab("frequent"))
    x = torch.from_numpy(words_data.encode(train)).long()
    p = words_data.frequencies(train) ** 0.5
    p = p / p.sum()
    for mode in a.modes.split(","):
        print(json.dumps(run(mode, a.steps, x, p, train, held)), flush=True)


if __name__ == "__main__":
    main()
