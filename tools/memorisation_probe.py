"""How many epochs does the words denoiser need to memorise a word list? A probe for words-absorb's 60 % aim.

    python tools/memorisation_probe.py --words 2000 --max-epochs 400 --every 20    # 27 min on one core
    python tools/memorisation_probe.py --words 500 --max-epochs 2000 --every 100   # 30 min

Real dictionary words make up 60 % of samples only if the model puts most of its mass on the ~57,600
training words (a model that generalises writes pronounceable non-words: words-absorb, 3.7 %). This trains
the shipped words-absorb architecture (the same D3PM from bionemo-moco, moco's loss, AdamW at a constant
--lr after warm-up) on a random --words of the training words only, and every --every epochs prints one JSON line:
the ELBO in bits/token of (up to 500 of) those words and of as many held-out words, and of --samples draws (τ = 1) the share
that are words of the subset ("memorised") and of the whole dictionary. It stops when the memorised share
reaches --target. How the epochs needed grow with the list size says how far the full list is on one CPU.
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
from seq_transformer import SeqTransformer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", type=int, default=2000)
    ap.add_argument("--max-epochs", type=int, default=400)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--loss", default="moco", choices=["moco", "elbo"], help="as train_discrete.py --loss")
    ap.add_argument("--copy-weight", type=float, default=1.0)
    ap.add_argument("--pos-init", type=float, default=0.0, help="as train_discrete.py --pos-init")
    ap.add_argument("--no-time", action="store_true", help="as train_discrete.py --no-time")
    ap.add_argument("--eval-n", type=int, default=500, help="words of each set whose ELBO is reported")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--target", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    spec = td.SPECS["words-absorb"]
    xtr, xhe, train, held = td.load_data("words-absorb")
    # A random subset: the training list is sorted, and its first words all begin with "a".
    pick = np.sort(np.random.default_rng(a.seed).permutation(len(train))[: a.words])
    sub = torch.from_numpy(xtr[pick])
    subset = [train[i] for i in pick]
    torch.manual_seed(a.seed)
    model = SeqTransformer(spec["K"], spec["L"], a.dim, a.depth, a.heads)
    td.init_embeddings(model, a.pos_init)
    if a.no_time:
        td.drop_time(model)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    proc = td.make_d3pm(spec)
    rng = np.random.default_rng(a.seed)
    steps_per_epoch = a.words / a.batch
    n_eval = min(a.words, a.eval_n)
    step, t0 = 0, time.time()
    print(json.dumps(dict(words=a.words, loss=a.loss, pos_init=a.pos_init, no_time=a.no_time, parameters=sum(p.numel() for p in model.parameters()),
                          steps_per_epoch=round(steps_per_epoch, 2))), flush=True)
    for epoch in range(a.every, a.max_epochs + 1, a.every):
        model.train()
        losses = []
        while step < epoch * steps_per_epoch:
            for g in opt.param_groups:
                g["lr"] = a.lr * min(1.0, (step + 1) / 200)
            x0 = sub[torch.from_numpy(rng.integers(0, a.words, a.batch))]
            loss = (td.d3pm_elbo_loss(model, proc, x0, spec["K"] - 1, a.copy_weight) if a.loss == "elbo"
                    else td.d3pm_loss(model, proc, x0))
            td.optimise(model, opt, loss)
            losses.append(loss.item())
            step += 1
        model.eval()
        train_rng = torch.get_rng_state()  # the evaluation's fixed seed must not replay training's draws
        torch.manual_seed(1234)
        row = dict(epoch=epoch, step=step, loss=round(float(np.mean(losses)), 4), seconds=round(time.time() - t0))
        for name, x in [("subset", sub[:n_eval]), ("heldout", torch.from_numpy(xhe[:n_eval]))]:
            bits = td.d3pm_elbo_terms(model, proc, x).sum(0) / (spec["L"] * math.log(2))
            row[f"elbo_{name}"] = round(float(bits.mean()), 4)
        s = td.d3pm_sample(model, proc, a.samples, spec["L"]).numpy()
        f = td.word_figures(s, subset, held)  # its "in_training" is against the list given: the subset
        row.update(memorised=f["in_training"], dictionary=td.word_figures(s, train, held)["dictionary_word"],
                   unique=f["unique"], examples=f["examples"][:6])
        print(json.dumps(row), flush=True)
        torch.set_rng_state(train_rng)
        if f["in_training"] >= a.target:
            break


if __name__ == "__main__":
    main()
