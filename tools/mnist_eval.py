"""Judge MNIST samples: a small CNN classifier trained on the training split (held-out accuracy must
reach 98 %), then per-label accuracy of generated digits and a Fréchet distance on the classifier's
penultimate features (like FID, with this classifier instead of Inception) against the held-out digits.

    python tools/mnist_eval.py train --mnist PACKAGE --out /tmp/mnist_classifier.pt
    python tools/mnist_eval.py judge --mnist PACKAGE --classifier /tmp/mnist_classifier.pt \
        samples_label0.safetensors samples_label1.safetensors ...

`judge` reads what `diffscope sample --out X.safetensors` writes: `samples` [N,1,28,28] in [-1, 1] and
`labels` [N]. It prints one JSON object (per-label accuracy, overall accuracy, Fréchet distance).
"""
import argparse
import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import load_file

import mnist_data


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc = nn.Linear(128 * 3 * 3, 128)
        self.out = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.3)

    def features(self, x):  # x in [0, 1], [N, 1, 28, 28]
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.max_pool2d(F.relu(self.c3(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x):
        return self.out(self.drop(self.features(x)))


def train(args):
    torch.manual_seed(0)
    data = mnist_data.load(args.mnist)
    x = torch.from_numpy(data["train"][0]).unsqueeze(1)
    y = torch.from_numpy(data["train"][1])
    xt = torch.from_numpy(data["test"][0]).unsqueeze(1)
    yt = torch.from_numpy(data["test"][1])
    m = Classifier()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        m.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 128):
            idx = perm[i:i + 128]
            xb = x[idx]
            # Small random shifts: generated digits are not always centred like MNIST's.
            dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(m(xb), y[idx])
            opt.zero_grad(); loss.backward(); opt.step()
        m.eval()
        with torch.no_grad():
            acc = (m(xt).argmax(1) == yt).float().mean().item()
        print(f"epoch {epoch + 1}: held-out accuracy {acc:.4f}", flush=True)
    torch.save(m.state_dict(), args.out)
    if acc < 0.98:
        sys.exit(f"held-out accuracy {acc:.4f} is below 0.98")


def frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # sqrt of s1·s2 through the eigen-decomposition of the symmetric s1^½ s2 s1^½.
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r1 @ s2 @ r1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def judge(args):
    data = mnist_data.load(args.mnist)
    m = Classifier()
    m.load_state_dict(torch.load(args.classifier))
    m.eval()
    xs, ys = [], []
    for f in args.samples:
        t = load_file(f)
        xs.append(t["samples"].reshape(-1, 1, 28, 28))
        ys.append(t["labels"].astype(np.int64).reshape(-1))
    x = torch.from_numpy(np.concatenate(xs) * 0.5 + 0.5).clamp(0, 1)  # [-1, 1] -> [0, 1]
    y = np.concatenate(ys)
    held = torch.from_numpy(data["test"][0]).unsqueeze(1)
    with torch.no_grad():
        pred = m(x).argmax(1).numpy()
        fs = m.features(x).numpy().astype(np.float64)
        fh = m.features(held).numpy().astype(np.float64)
    per = {int(l): float((pred[y == l] == l).mean()) for l in np.unique(y)}
    out = dict(n=int(len(y)), per_label_accuracy=per, accuracy=float((pred == y).mean()),
               min_label_accuracy=min(per.values()), frechet_vs_held_out=frechet(fs, fh))
    print(json.dumps(out, indent=2))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train"); t.add_argument("--mnist", required=True); t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=6)
    j = sub.add_parser("judge"); j.add_argument("--mnist", required=True); j.add_argument("--classifier", required=True)
    j.add_argument("samples", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    train(a) if a.cmd == "train" else judge(a)


if __name__ == "__main__":
    main()
