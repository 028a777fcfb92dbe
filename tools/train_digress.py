"""Train a small DiGress (tools/digress_ref.py) on synthetic planar or SBM graphs and export it to
assets/<name>/ (model.safetensors, config.json, dataset.json, card.json).

Datasets follow SPECTRE's recipes (KarolisMart/SPECTRE), scaled down to what trains on 2 CPU cores:
- planar: n uniform points in the unit square, Delaunay triangulation (always planar and connected);
  SPECTRE uses n = 64, we use n = 16.
- sbm: 2–3 communities (SPECTRE: 2–5) of 6–10 nodes (SPECTRE: 20–40), p_intra = 0.6 (SPECTRE: 0.3),
  p_inter = 0.02 (SPECTRE: 0.005), resampled until connected. Smaller blocks need a larger p_intra to
  keep communities connected and recognisable.
200 graphs, split like DiGress's SpectreGraphDataset: torch.randperm(200) with seed 0, test = 40,
train = 128, val = 32.

Checkpoint/resume: --ckpt FILE is written every --ckpt-every steps (model, optimiser, step, RNG
states) and resumed from when it exists. --minutes bounds this run's wall time. --init-from DIR starts a
new checkpoint from an exported model folder instead (DIR/model.safetensors, whose config.json must have
this run's architecture): a fresh optimiser, the step count and seconds of DIR/card.json carried on.
The learning rate is constant, so a run started this way trains like a resumed one.
"""
import argparse
import json
import os
import sys
import time

import networkx as nx
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from scipy.spatial import Delaunay

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import digress_ref as dr  # noqa: E402


def planar_graphs(num, n, rng):
    out = []
    for _ in range(num):
        pts = rng.random((n, 2))
        tri = Delaunay(pts)
        g = nx.Graph()
        g.add_nodes_from(range(n))
        for s in tri.simplices:
            for a in range(3):
                for b in range(a + 1, 3):
                    g.add_edge(int(s[a]), int(s[b]))
        out.append(g)
    return out


def sbm_graphs(num, rng, kmin=2, kmax=3, smin=6, smax=10, p_intra=0.6, p_inter=0.02):
    out = []
    while len(out) < num:
        k = int(rng.integers(kmin, kmax + 1))
        sizes = [int(s) for s in rng.integers(smin, smax + 1, size=k)]
        probs = np.full((k, k), p_inter)
        np.fill_diagonal(probs, p_intra)
        g = nx.stochastic_block_model(sizes, probs.tolist(), seed=int(rng.integers(2**31)))
        if nx.is_connected(g):
            out.append(nx.Graph(g))
    return out


def split(num):
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(num, generator=g).tolist()
    test_len = int(round(num * 0.2))
    train_len = int(round((num - test_len) * 0.8))
    val_len = num - train_len - test_len
    return idx[:train_len], idx[train_len:train_len + val_len], idx[train_len + val_len:]


def as_pairs(g):
    return (g.number_of_nodes(), sorted((min(u, v), max(u, v)) for u, v in g.edges()))


PRESETS = {
    "planar-digress": dict(dataset="planar", n=16),
    "sbm-digress": dict(dataset="sbm"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True, choices=sorted(PRESETS))
    ap.add_argument("--out", required=True,
                    help="folder the run exports to when it stops; never assets/ by default (measure an export, then copy it there)")
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=None,
                    help="learning rate (default 5e-4); given when resuming, the rate from then on")
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--init-from", default=None, help="exported model folder to start from when --ckpt does not exist")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.name]
    out_dir = args.out
    os.makedirs(out_dir, exist_ok=True)

    rng = np.random.default_rng(args.seed)
    graphs = planar_graphs(200, preset["n"], rng) if preset["dataset"] == "planar" else sbm_graphs(200, rng)
    tr, va, te = split(len(graphs))
    train = [as_pairs(graphs[i]) for i in tr]
    val = [as_pairs(graphs[i]) for i in va]
    test = [as_pairs(graphs[i]) for i in te]

    # DistributionNodes: histogram over train + val; max_n_nodes = len(hist) − 1.
    counts = [g[0] for g in train + val]
    hist = np.bincount(counts).astype(float)
    max_n = len(hist) - 1
    # Marginals as in AbstractDataModule.node_types / edge_counts (train loader).
    non_edges = sum(n * (n - 1) - 2 * len(e) for n, e in train)
    edges = sum(2 * len(e) for n, e in train)
    e_marg = torch.tensor([non_edges, edges], dtype=torch.float32)
    e_marg = e_marg / e_marg.sum()
    x_marg = torch.tensor([1.0])

    cfg = dict(
        architecture="digress_graph_transformer",
        n_layers=args.layers,
        input_dims={"X": 7, "E": 2, "y": 12},
        hidden_mlp_dims={"X": 64, "E": 32, "y": 64},
        hidden_dims={"dx": 64, "de": 32, "dy": 32, "n_head": 4, "dim_ffX": 128, "dim_ffE": 64, "dim_ffy": 64},
        output_dims={"X": 1, "E": 2, "y": 0},
        diffusion_steps=args.T,
        noise_schedule="cosine",
        transition="marginal",
        x_marginals=x_marg.tolist(),
        e_marginals=e_marg.tolist(),
        max_n_nodes=max_n,
        node_count_hist=(hist / hist.sum()).tolist(),
        extra_features="all",
        dataset=preset["dataset"],
    )
    torch.manual_seed(args.seed)
    net = dr.GraphTransformer(cfg["n_layers"], cfg["input_dims"], cfg["hidden_mlp_dims"], cfg["hidden_dims"],
                              cfg["output_dims"])
    model = dr.DiGress(net, args.T, x_marg, e_marg, max_n)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr or 5e-4, amsgrad=True, weight_decay=1e-12)
    step, losses, elapsed_before, init_from, lr_changes = 0, [], 0.0, None, []
    if args.ckpt and os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt, weights_only=False)
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["opt"])
        step, losses, elapsed_before = ck["step"], ck["losses"], ck["elapsed"]
        init_from = ck.get("init_from")
        lr_changes = ck.get("lr_changes", [])
        # --lr on a resumed run changes the rate from here on (a fine-tune at a lower rate once the
        # loss is flat); the change is kept in the checkpoint and the card.
        if args.lr is not None and opt.param_groups[0]["lr"] != args.lr:
            print(f"lr {opt.param_groups[0]['lr']} -> {args.lr} from step {step}", flush=True)
            lr_changes.append([step, opt.param_groups[0]["lr"], args.lr])
            for g in opt.param_groups:
                g["lr"] = args.lr
        torch.set_rng_state(ck["torch_rng"])
        rng = np.random.default_rng()
        rng.bit_generator.state = ck["np_rng"]
        print(f"resumed at step {step}" + (" (--init-from ignored: the checkpoint exists)" if args.init_from else ""), flush=True)
    else:
        rng = np.random.default_rng(args.seed + 1)
        if args.init_from:
            with open(os.path.join(args.init_from, "config.json")) as f:
                dcfg = json.load(f)
            keys = ["architecture", "n_layers", "input_dims", "hidden_mlp_dims", "hidden_dims", "output_dims",
                    "diffusion_steps", "noise_schedule", "transition", "extra_features", "dataset"]
            bad = [f"{k}: {dcfg.get(k)!r} there, {cfg[k]!r} here" for k in keys if dcfg.get(k) != cfg[k]]
            if bad:
                sys.exit(f"--init-from {args.init_from}: config.json does not match this run ({'; '.join(bad)})")
            sd = load_file(os.path.join(args.init_from, "model.safetensors"))
            net.load_state_dict({k: v.float() for k, v in sd.items()})
            with open(os.path.join(args.init_from, "card.json")) as f:
                tcard = json.load(f)["training"]
            step, elapsed_before = int(tcard["steps"]), float(tcard.get("wall_seconds_total") or 0.0)
            init_from = dict(dir=os.path.normpath(args.init_from), steps=step, wall_seconds=elapsed_before)
            print(f"initialised from {args.init_from} at step {step} (fresh optimiser)", flush=True)

    def save_ckpt():
        if args.ckpt:
            tmp = args.ckpt + ".tmp"
            torch.save(dict(net=net.state_dict(), opt=opt.state_dict(), step=step, losses=losses,
                            elapsed=elapsed_before + time.time() - t0, torch_rng=torch.get_rng_state(),
                            np_rng=rng.bit_generator.state, init_from=init_from, lr_changes=lr_changes), tmp)
            os.replace(tmp, args.ckpt)

    t0 = time.time()
    net.train()
    while not args.export_only and step < args.max_steps and time.time() - t0 < args.minutes * 60:
        batch = [train[i] for i in rng.integers(0, len(train), size=args.batch)]
        X, E, node_mask = dr.dense_batch(batch)
        noisy = model.apply_noise(X, E, node_mask)
        pX, pE, _ = model.forward(noisy["X_t"], noisy["E_t"], noisy["t"], node_mask)
        loss, lX, lE = dr.train_loss(pX, pE, X, E)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 50 == 0:
            print(f"step {step} loss {np.mean(losses[-50:]):.4f} ({time.time() - t0:.0f}s)", flush=True)
        if step % args.ckpt_every == 0:
            save_ckpt()
    if not args.export_only:
        save_ckpt()

    # fp16 weights: the app embeds every shipped model, so they are kept small. Evaluation (diffscope
    # eval-graphs) runs on the exported weights, so the card's figures belong to the fp16 model.
    sd = {k: v.detach().half().contiguous() for k, v in net.state_dict().items()}
    save_file(sd, os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(out_dir, "dataset.json"), "w") as f:
        json.dump({"train": train, "val": val, "test": test}, f, separators=(",", ":"))
    card_path = os.path.join(out_dir, "card.json")
    card = json.load(open(card_path)) if os.path.exists(card_path) else {}
    card.update({
        "name": args.name,
        "architecture": "digress_graph_transformer (DiGress fixed_bug port, tools/digress_ref.py)",
        "weights": "fp16",
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "training": {
            "command": "nice -n 10 python tools/train_digress.py " + " ".join(sys.argv[1:]),
            "steps": step,
            "batch": args.batch,
            "optimizer": f"AdamW lr {lr_changes[0][1] if lr_changes else opt.param_groups[0]['lr']}"
                         + "".join(f", {new} from step {at}" for at, _, new in lr_changes)
                         + ", amsgrad, weight decay 1e-12 (DiGress: lr 2e-4)",
            "loss": "CE_X + 5 CE_E (TrainLossDiscrete, lambda_train [5, 0])",
            "final_loss_mean_last_200": float(np.mean(losses[-200:])) if losses else None,
            "first_loss_mean_first_50": float(np.mean(losses[:50])) if losses else None,
            "wall_seconds_total": elapsed_before + (time.time() - t0),
            "torch_threads": args.threads,
        },
        "data": (f"{preset['dataset']}: {PRESETS[args.name]}, 200 graphs (train 128 / val 32 / test 40), "
                 "see tools/train_digress.py for the SPECTRE-style recipe and the scaling"),
        "process": {"T": args.T, "schedule": "DiGress cosine (T+1 betas)", "transition": "marginal",
                    "e_marginals": e_marg.tolist()},
    })
    if init_from:
        card["training"]["init_from"] = dict(
            init_from, note="started from the weights exported at that step with a new AdamW state; losses cover the steps after it")
    with open(card_path, "w") as f:
        json.dump(card, f, indent=1)
    print(f"exported {args.name} at step {step}", flush=True)


if __name__ == "__main__":
    main()
