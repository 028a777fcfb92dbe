"""The autoregressive baseline for the words models: a causal character transformer of words-absorb's size.

    python tools/ar_baseline.py --steps 8000 --minutes 12                  # the whole training split
    python tools/ar_baseline.py --words 500 --steps 1000                   # 500 random training words only
    python tools/ar_baseline.py --vocab frequent --steps 8000              # the words models' --vocab option

What a words model's "share of dictionary words" should be set beside: the same network as
tools/seq_transformer.py (token + learned position embeddings, pre-LN blocks, d 128, depth 3, 4 heads,
FF ×4, final LayerNorm, a Linear to the classes), but causal attention and no time embedding, trained
with next-character cross-entropy on the words diffusion models' training split (tools/words_data.py),
AdamW, warm-up + cosine lr over --steps, gradient clip 1, batch 128 — the optimiser of train_discrete.py.

Tokens: 0 = end of word (the words models' pad), 1..26 = a..z, 27 = start. A word is start + letters + end,
right-padded to 13 inputs; the loss covers the letters and the one end token. Sampling draws characters at
--temperature (1: the model's own distribution) until the end token or 12 letters.

Prints one JSON object: the held-out negative log-likelihood in bits per word and per 12 positions
(comparable with the diffusion models' ELBO in bits/token, which spreads a word over 12 positions), and
of --samples draws the share that are words of the dictionary (train ∪ held-out), of the training list,
new from held-out, and the unique share, with the command that made it. --ckpt keeps and resumes the
training (every 500 steps and at the end).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import words_data  # noqa: E402

START, END = 27, 0
L = words_data.SEQ_LEN


class CausalBlock(nn.Module):
    """seq_transformer.Block with a causal attention mask."""

    def __init__(self, dim, heads, ff_mult):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, ff_mult * dim)
        self.ff2 = nn.Linear(ff_mult * dim, dim)

    def forward(self, h):
        b, n, d = h.shape
        x = self.ln1(h)
        split = lambda y: y.view(b, n, self.heads, d // self.heads).transpose(1, 2)
        a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), is_causal=True)
        h = h + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return h + self.ff2(F.gelu(self.ff1(self.ln2(h))))


class CharLM(nn.Module):
    def __init__(self, vocab=28, seq_len=L + 1, dim=128, depth=3, heads=4, ff_mult=4):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, dim)
        self.pos_emb = nn.Parameter(torch.randn(seq_len, dim) * 0.02)
        self.blocks = nn.ModuleList([CausalBlock(dim, heads, ff_mult) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 27)  # end + 26 letters; start is never a target

    def forward(self, x):
        h = self.tok_emb(x) + self.pos_emb[: x.shape[1]]
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln_f(h))


def batch_io(x0):
    """Word ids [B, 12] (pad 0 after the letters) → inputs [B, 13], targets [B, 13] and the loss mask:
    targets are the letters then one end token; later positions do not count."""
    b = x0.shape[0]
    inp = torch.cat([torch.full((b, 1), START, dtype=torch.long), x0], 1)
    tgt = torch.cat([x0, torch.zeros(b, 1, dtype=torch.long)], 1)
    n = (x0 != 0).sum(1)
    mask = torch.arange(L + 1)[None, :] <= n[:, None]
    return inp, tgt, mask


def nll_bits(model, x0):
    """Per-word negative log-likelihood in bits [B]."""
    inp, tgt, mask = batch_io(x0)
    ce = F.cross_entropy(model(inp).transpose(1, 2), tgt, reduction="none")
    return (ce * mask).sum(1) / math.log(2)


@torch.no_grad()
def sample(model, n, temperature=1.0):
    x = torch.full((n, 1), START, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    for _ in range(L):
        logits = model(x)[:, -1] / temperature
        c = torch.multinomial(torch.softmax(logits, -1), 1)[:, 0]
        c = torch.where(done, torch.zeros_like(c), c)
        done |= c == END
        x = torch.cat([x, c[:, None]], 1)
    return [words_data.decode(r[1:].tolist()) for r in x]


def figures(words, trained_on):
    """Shares of the samples that are words of the whole dictionary (train ∪ held-out of the full list),
    of the list the model was trained on, and dictionary words outside it; the unique share."""
    full = set(words_data.load_words())
    trs = set(trained_on)
    n = len(words)
    return dict(n=n, dictionary_word=sum(w in full for w in words) / n,
                in_training=sum(w in trs for w in words) / n,
                new_dictionary_word=sum(w in full and w not in trs for w in words) / n,
                unique=len(set(words)) / n, examples=words[:20])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--words", type=int, default=0, help="train on this many random training words only (0: all)")
    ap.add_argument("--vocab", default="full", choices=list(words_data.VOCABS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    train, held = words_data.split(words_data.load_vocab(a.vocab))
    if a.words:
        pick = np.sort(np.random.default_rng(a.seed).permutation(len(train))[: a.words])
        train = [train[i] for i in pick]
    xtr = torch.from_numpy(words_data.encode(train))
    xhe = torch.from_numpy(words_data.encode(held))
    torch.manual_seed(a.seed)
    model = CharLM(dim=a.dim, depth=a.depth, heads=a.heads)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    rng = np.random.default_rng(a.seed)
    step, losses, seconds = 0, [], 0.0
    if a.ckpt and os.path.exists(a.ckpt):
        ck = torch.load(a.ckpt, weights_only=False)
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"])
        step, losses, seconds = ck["step"], ck["losses"], ck["seconds"]
        rng.bit_generator.state = ck["rng"]; torch.set_rng_state(ck["torch_rng"])
        print(f"resumed at step {step}", flush=True)
    t0 = time.time()

    def save():
        if a.ckpt:
            d = dict(model=model.state_dict(), opt=opt.state_dict(), step=step, losses=losses,
                     seconds=seconds + time.time() - t0, rng=rng.bit_generator.state, torch_rng=torch.get_rng_state())
            torch.save(d, a.ckpt + ".tmp"); os.replace(a.ckpt + ".tmp", a.ckpt)

    while step < a.steps and time.time() - t0 < a.minutes * 60:
        lr = a.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / a.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        x0 = xtr[torch.from_numpy(rng.integers(0, len(xtr), a.batch))]
        loss = nll_bits(model, x0).mean() / L
        opt.zero_grad(); loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item()); step += 1
        if step % 500 == 0:
            print(f"step {step} loss {np.mean(losses[-500:]):.4f} bits/position lr {lr:.2e} ({time.time() - t0:.0f}s)", flush=True)
            save()
    save()
    model.eval()
    torch.manual_seed(1234)
    with torch.no_grad():
        he = torch.cat([nll_bits(model, xhe[i:i + 1000]) for i in range(0, min(len(xhe), 3000), 1000)])
        tr = nll_bits(model, xtr[: min(len(xtr), 3000)])
    words = sample(model, a.samples, a.temperature)
    cmd = " ".join(["python tools/ar_baseline.py"] + sys.argv[1:])
    out = dict(command=cmd, steps=step, training_seconds=round(seconds + time.time() - t0),
               parameters=sum(p.numel() for p in model.parameters()), vocab=a.vocab,
               train_words=len(train), final_loss_bits_per_position=float(np.mean(losses[-500:])),
               heldout_nll_bits_per_word=float(he.mean()), heldout_nll_bits_per_token=float(he.mean() / L),
               train_nll_bits_per_token=float(tr.mean() / L), temperature=a.temperature,
               samples=figures(words, train))
    print(json.dumps(out, indent=1), flush=True)


if __name__ == "__main__":
    main()
