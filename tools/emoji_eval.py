"""Judge emoji-unet samples as tools/mnist_eval.py judges digits: a small CNN trained to tell the 9 emoji
categories apart on the training split, then per-category accuracy of generated emoji and a Fréchet
distance on the classifier's penultimate features against the held-out emoji (every 10th emoji of each
category, in both styles: emoji the diffusion model never saw).

    python tools/emoji_eval.py train --data DIR --out /tmp/emoji_classifier.pt
    python tools/emoji_eval.py judge --data DIR --classifier /tmp/emoji_classifier.pt \
        samples_label0.safetensors samples_label1.safetensors ...

Telling a category from an emoji nobody showed the classifier is harder than reading a digit, so its
held-out accuracy (printed, and stored in the judge's JSON) is the ceiling the samples' accuracy is read
against. `judge` reads what `diffscope sample --out X.safetensors` writes: `samples` [N,3,32,32] in
[-1, 1] and `labels` [N]. It also judges the held-out images themselves the same way (a reference row).
"""
import argparse
import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import load_file

import emoji_data
from mnist_eval import frechet


class Classifier(nn.Module):
    def __init__(self, n=len(emoji_data.CATEGORIES)):
        super().__init__()
        self.c1 = nn.Conv2d(3, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc = nn.Linear(128 * 4 * 4, 128)
        self.out = nn.Linear(128, n)
        self.drop = nn.Dropout(0.4)

    def features(self, x):  # x in [0, 1], [N, 3, 32, 32]
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.max_pool2d(F.relu(self.c3(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x):
        return self.out(self.drop(self.features(x)))


def accuracy(m, x, y):
    m.eval()
    with torch.no_grad():
        return float((m(x).argmax(1) == y).float().mean())


def train(args):
    torch.manual_seed(0)
    data = emoji_data.load(args.data)
    x, y = (torch.from_numpy(a) for a in data["train"][:2])
    xt, yt = (torch.from_numpy(a) for a in data["test"][:2])
    m = Classifier()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-3)
    g = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        m.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            xb = x[idx]
            # Shifts and colour jitter: generated emoji are neither centred nor coloured exactly as drawn.
            dx, dy = torch.randint(-3, 4, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            xb = (xb * (1 + 0.1 * torch.randn(len(xb), 3, 1, 1, generator=g))).clamp(0, 1)
            loss = F.cross_entropy(m(xb), y[idx], label_smoothing=0.1)
            opt.zero_grad(); loss.backward(); opt.step()
        print(f"epoch {epoch + 1}: held-out accuracy {accuracy(m, xt, yt):.4f}", flush=True)
    torch.save(m.state_dict(), args.out)


def judge(args):
    data = emoji_data.load(args.data)
    m = Classifier()
    m.load_state_dict(torch.load(args.classifier))
    m.eval()
    xs, ys = [], []
    for f in args.samples:
        t = load_file(f)
        xs.append(t["samples"].reshape(-1, 3, 32, 32))
        ys.append(t["labels"].astype(np.int64).reshape(-1))
    x = torch.from_numpy(np.concatenate(xs) * 0.5 + 0.5).clamp(0, 1)  # [-1, 1] -> [0, 1]
    y = np.concatenate(ys)
    held, held_y = (torch.from_numpy(a) for a in data["test"][:2])
    train_x = torch.from_numpy(data["train"][0])
    with torch.no_grad():
        pred = m(x).argmax(1).numpy()
        fs = m.features(x).numpy().astype(np.float64)
        fh = m.features(held).numpy().astype(np.float64)
        # The floor to read a Fréchet distance against: as many training images as samples.
        pick = torch.from_numpy(np.random.default_rng(0).choice(len(train_x), min(len(x), len(train_x)), replace=False))
        ft = m.features(train_x[pick]).numpy().astype(np.float64)
    names = emoji_data.CATEGORIES
    per = {names[int(l)]: float((pred[y == l] == l).mean()) for l in np.unique(y)}
    out = dict(n=int(len(y)), per_label_accuracy=per, accuracy=float((pred == y).mean()),
               classifier_held_out_accuracy=accuracy(m, held, held_y),
               frechet_vs_held_out=frechet(fs, fh), frechet_train_images_vs_held_out=frechet(ft, fh))
    print(json.dumps(out, indent=2))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train"); t.add_argument("--data", required=True); t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=30)
    j = sub.add_parser("judge"); j.add_argument("--data", required=True); j.add_argument("--classifier", required=True)
    j.add_argument("samples", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    train(a) if a.cmd == "train" else judge(a)


if __name__ == "__main__":
    main()
