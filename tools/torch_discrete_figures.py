"""PyTorch's figures for a shipped discrete model's weights, to set beside diffscope's own:

    python tools/torch_discrete_figures.py words-absorb --elbo-n 500 --samples 1000
    python tools/torch_discrete_figures.py promoter-multinomial --elbo-n 200 --samples 1000

Loads assets/<model>/model.safetensors (fp16, as the app and CLI load it) into tools/seq_transformer.py,
then prints one JSON object: the held-out ELBO in bits/token over the first --elbo-n held-out sequences
(the same sequences `diffscope nll --limit N` reads from the held-out file) with its standard error, and
the sample figures of train_discrete.py (word_figures / promoter_figures) for --samples draws. The
reference processes are bionemo-moco's D3PM and tools/multinomial_ref.py, as in training.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promoter_data  # noqa: E402
import train_discrete as td  # noqa: E402
from multinomial_ref import Multinomial  # noqa: E402
from seq_transformer import SeqTransformer  # noqa: E402


def load(name, assets):
    d = os.path.join(assets, name)
    cfg = json.load(open(os.path.join(d, "config.json")))
    cfg.pop("architecture")
    m = SeqTransformer(**cfg)
    m.load_state_dict({k: v.float() for k, v in load_file(os.path.join(d, "model.safetensors")).items()})
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=list(td.SPECS))
    ap.add_argument("--assets", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets"))
    ap.add_argument("--elbo-n", type=int, default=500)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    spec = td.SPECS[a.model]
    model = load(a.model, a.assets)
    _, xhe, train, held = td.load_data(a.model)
    proc = td.make_d3pm(spec) if spec["kind"] == "d3pm" else Multinomial(spec["K"], spec["T"])
    torch.manual_seed(a.seed)
    out = dict(model=a.model)
    with torch.no_grad():
        heldx = torch.from_numpy(xhe[: a.elbo_n])
        per_seq = []
        for i in range(0, len(heldx), a.batch):
            x = heldx[i:i + a.batch]
            terms = td.d3pm_elbo_terms(model, proc, x) if spec["kind"] == "d3pm" else proc.elbo_terms(model, x)
            per_seq.append(terms.sum(0) / (spec["L"] * math.log(2)))
        per_seq = torch.cat(per_seq).double()
        out["heldout_elbo_bits_per_token"] = float(per_seq.mean())
        out["heldout_elbo_stderr"] = float(per_seq.std() / math.sqrt(len(per_seq)))
        out["heldout_elbo_sequences"] = len(per_seq)
        # Words are padded with id 0: bits per character spreads each word's bits over its letters only,
        # as `diffscope nll` does.
        chars = int((heldx != 0).sum()) if a.model.startswith("words") else heldx.numel()
        out["heldout_elbo_bits_per_character"] = float(per_seq.sum() * spec["L"] / chars)
        chunks = []
        gen = torch.Generator().manual_seed(a.seed)
        for i in range(0, a.samples, a.batch):
            n = min(a.batch, a.samples - i)
            if spec["kind"] == "d3pm":
                chunks.append(td.d3pm_sample(model, proc, n, spec["L"]).numpy())
            else:
                chunks.append(proc.sample(model, n, spec["L"], gen).numpy())
        s = np.concatenate(chunks)
    if spec["kind"] == "d3pm":
        out["samples"] = td.word_figures(s, train, held)
    else:
        seqs = [promoter_data.decode(r) for r in s]
        out["samples"] = td.promoter_figures(seqs, held)
        out["samples"]["examples"] = seqs[:5]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
