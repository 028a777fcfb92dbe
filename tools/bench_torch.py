"""PyTorch (CPU) reference timings for the reverse steps `diffscope bench --steps-only` measures, so
ratios can be quoted from one machine and one sitting:

    python tools/bench_torch.py [--threads 2] [--model-dir DIR] [--families gaussian,sequence,graph] [--json]

Families (`--families`, comma-separated, default all), each a group of diffscope bench's JSON:
- gaussian (`model_steps`):
  - mnist-unet: UNet2DModel forward + DDPMScheduler.step at batch 1 and 16 (label 0, no guidance),
    from --model-dir, else assets/mnist-unet if it is there, else mnist-unet's architecture with
    random weights (the time does not depend on the values);
  - toy2d-mlp: the shipped FiLM-MLP (assets/toy2d-mlp) forward + step at 4,096 points.
  Each figure is the mean over back-to-back steps after two warm-up steps, walking down the schedule
  from its middle.
- sequence (`discrete_steps`): words-absorb, words-uniform (bionemo-moco's D3PM, as
  train_discrete.make_d3pm builds it) and promoter-multinomial (tools/multinomial_ref.py) with the
  shipped fp16 weights in tools/seq_transformer.py, at batch 1 and 64. One step is the loop body of
  train_discrete.d3pm_sample (network + `D3PM.step`: posterior logits and Gumbel-max) or of
  `Multinomial.sample` (its uniforms, network, `p_pred`, `log_sample_categorical`), temperature 1,
  from the prior; 3 warm-up steps (t = T−1, T−2, T−3) then 10 timed, as sequence.rs's bench_step.
- graph (`graph_steps`): planar-digress and sbm-digress (tools/digress_ref.py, shipped fp16 weights)
  at batch 1 and 16. One step is the loop body of `DiGress.sample`: `sample_p_zs_given_zt` (structural
  features of z_t, the graph transformer, the posterior and its draw); 3 warm-up steps (t = T … T−2)
  then 8 timed, as graph.rs's bench_step. The node counts are diffscope's own for seed 1
  (`sample_node_counts`: Philox over the config's node-count histogram), so both pad to the same n.

Where the references' step is not diffscope's exactly (same stages, same shapes, other mechanics):
the draws are torch's (moco's rand_like Gumbel, multinomial_ref's torch.rand, DiGress's
torch.multinomial) where diffscope uses Philox in-kernel Gumbel-max, so the trajectories differ;
moco's posterior multiplies K×K transition matrices where diffscope uses the closed form;
multinomial_ref carries log-one-hots [B, K, L] (argmax to ids for the network, one-hot back after
the draw) where diffscope carries ids; digress_ref computes the structural features on the padded
batch in f32 (eigh and matrix powers at n_max) where diffscope computes them per graph at its own
node count in f64, and runs its asserts; the state is in host memory, so there is no counterpart of diffscope's
readback of z_(t−1).

Every step runs in torch.no_grad(). Each row reports wall time and CPU time (all threads): on a
machine shared with other jobs, wall time measures the share the scheduler gave us, CPU time the work.
`--json` prints {torch, threads, families, model_steps, discrete_steps, graph_steps}, rows keyed by
`model` and `batch` with `ms_per_step` as in diffscope bench; a family not run is null.
"""
import argparse
import json
import os
import sys
import time

import torch
from diffusers import DDPMScheduler, UNet2DModel
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import digress_ref as dr  # noqa: E402
import torch_discrete_figures as tdf  # noqa: E402
import train_discrete as td  # noqa: E402
from film_mlp import FiLMMLP  # noqa: E402
from multinomial_ref import Multinomial  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
FAMILIES = ("gaussian", "sequence", "graph")
# diffscope's zoo order (src/pipelines/zoo.rs) and bench batches (sequence.rs, graph.rs).
SEQUENCE_MODELS = ("words-absorb", "words-uniform", "promoter-multinomial")
GRAPH_MODELS = ("planar-digress", "sbm-digress")
SEQUENCE_BATCHES, GRAPH_BATCHES = (1, 64), (1, 16)
MNIST_SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon",
                       clip_sample=True, variance_type="fixed_small")


def mnist_unet(model_dir):
    for d in [model_dir, os.path.join(ROOT, "assets", "mnist-unet")]:
        if d is None:
            continue
        sub = os.path.join(d, "unet")
        d = sub if os.path.exists(os.path.join(sub, "config.json")) else d
        if os.path.exists(os.path.join(d, "config.json")):
            return UNet2DModel.from_pretrained(d).eval(), d
    torch.manual_seed(0)
    m = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=2,
                    block_out_channels=(32, 64, 64),
                    down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                    up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                    norm_num_groups=8, num_class_embeds=11)
    return m.eval(), "architecture only, random weights"


def toy2d():
    d = os.path.join(ROOT, "assets", "toy2d-mlp")
    cfg = json.load(open(os.path.join(d, "config.json")))
    m = FiLMMLP(data_dim=cfg["data_dim"], dim=cfg["dim"], depth=cfg["depth"], num_labels=cfg["num_labels"])
    m.load_state_dict(load_file(os.path.join(d, "model.safetensors")))
    sched = DDPMScheduler.from_config(json.load(open(os.path.join(d, "scheduler_config.json"))))
    return m.eval(), sched


def time_steps(forward, sched, x, steps):
    T = sched.config.num_train_timesteps
    t = T // 2
    with torch.no_grad():
        for _ in range(2):
            x = sched.step(forward(x, t), t, x).prev_sample
            t -= 1
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            x = sched.step(forward(x, t), t, x).prev_sample
            t -= 1
        return (time.perf_counter() - start) / steps * 1e3, (time.process_time() - cpu) / steps * 1e3


def timed(step, total, warm, steps):
    """`step(k)` runs reverse step number k (0 = the first, from the prior): `warm` of them, then
    min(steps, total − warm) timed back to back. Returns (wall ms, CPU ms, steps timed) per step."""
    n = max(1, min(steps, total - warm))
    with torch.no_grad():
        for k in range(warm):
            step(k)
        start, cpu = time.perf_counter(), time.process_time()
        for k in range(warm, warm + n):
            step(k)
        return (time.perf_counter() - start) / n * 1e3, (time.process_time() - cpu) / n * 1e3, n


def sequence_process(d):
    """The reference process for a shipped sequence model folder, from its process.json: moco's D3PM
    as train_discrete.make_d3pm builds it, or multinomial_ref's Multinomial."""
    p = json.load(open(os.path.join(d, "process.json")))
    spec = dict(kind=p["process"], prior=p.get("prior"), K=p["num_classes"], L=p["seq_len"], T=p["nsteps"])
    if spec["kind"] == "d3pm":
        sch = p["schedule"]
        # make_d3pm builds moco's DiscreteCosineNoiseSchedule with its defaults (nu 1, s 0.008), ℓ = 0.
        if (sch.get("kind"), sch.get("nu", 1.0), sch.get("s", 0.008), p.get("last_time_idx", 0)) != \
                ("cosine", 1.0, 0.008, 0) or spec["prior"] not in ("absorbing", "uniform"):
            sys.exit(f"{d}/process.json: train_discrete.make_d3pm builds only a cosine (nu 1, s 0.008) D3PM "
                     f"with last_time_idx 0 and an absorbing or uniform prior")
        return spec, td.make_d3pm(spec)
    if spec["kind"] == "multinomial" and p["schedule"].get("kind") == "hoogeboom_cosine_sqrt":
        return spec, Multinomial(spec["K"], spec["T"])
    sys.exit(f"{d}/process.json: process {spec['kind']!r} with schedule {p['schedule']!r} has no reference here")


def sequence_rows(assets, print_rows):
    rows = []
    for name in SEQUENCE_MODELS:
        model = tdf.load(name, assets)  # fp16 weights → float32, as the app loads them
        spec, proc = sequence_process(os.path.join(assets, name))
        K, L, T = spec["K"], spec["L"], spec["T"]
        for batch in SEQUENCE_BATCHES:
            torch.manual_seed(1)
            gen = torch.Generator().manual_seed(1)
            ts = list(reversed(range(T)))  # diffscope's timesteps(): T−1+ℓ … ℓ with ℓ = 0
            if spec["kind"] == "d3pm":
                state = [proc.sample_prior((batch, L))]

                def step(k, proc=proc, state=state, batch=batch, ts=ts):
                    # train_discrete.d3pm_sample's loop body.
                    tt = torch.full((batch,), ts[k], dtype=torch.long)
                    state[0] = proc.step(model(state[0], tt), tt, state[0], temperature=1.0)
            else:
                state = [proc.log_sample_categorical(torch.zeros(batch, K, L), K,
                                                     torch.rand((batch, K, L), generator=gen))]

                def step(k, proc=proc, state=state, batch=batch, ts=ts, gen=gen):
                    # Multinomial.sample's loop body.
                    t = torch.full((batch,), ts[k], dtype=torch.long)
                    u = torch.rand((batch, K, L), generator=gen)
                    state[0] = proc.log_sample_categorical(proc.p_pred(model, state[0], t), K, u)
            ms, cpu, n = timed(step, len(ts), 3, 10)
            rows.append(dict(model=name, batch=batch, ms_per_step=ms, cpu_ms_per_step=cpu, steps_timed=n,
                             timesteps=[ts[3], ts[3 + n - 1]]))
            print_rows(rows[-1:])
    return rows


def philox4x32_10(ctr, key):
    """src/rng.rs's Philox4x32-10 block function, for diffscope's node counts only."""
    m = 0xFFFFFFFF
    c, k = list(ctr), list(key)
    for r in range(10):
        if r:
            k = [(k[0] + 0x9E3779B9) & m, (k[1] + 0xBB67AE85) & m]
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & m, (p0 >> 32) ^ c[3] ^ k[1], p0 & m]
    return c


def diffscope_node_counts(hist, count, seed):
    """src/process/graph.rs's sample_node_counts: node counts drawn from the histogram with Philox
    (seed, stream 0, substream Init + 0x200), one uniform ((w >> 9) + 0.5)·2⁻²³ per graph."""
    assert philox4x32_10([0, 0, 0, 0], [0, 0]) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    total, out = float(sum(hist)), []
    for i in range(count):
        w = philox4x32_10([i, 0, 0x200, 0], [seed & 0xFFFFFFFF, seed >> 32])[0]
        u = ((w >> 9) + 0.5) / 8388608.0 * total
        acc, pick = 0.0, max(n for n, p in enumerate(hist) if p > 0)
        for n, p in enumerate(hist):
            acc += p
            if u < acc:
                pick = n
                break
        out.append(pick)
    return out


def digress_model(d):
    """A shipped graph model folder (config.json + fp16 model.safetensors) as digress_ref's DiGress."""
    cfg = json.load(open(os.path.join(d, "config.json")))
    want = dict(architecture="digress_graph_transformer", noise_schedule="cosine", transition="marginal",
                extra_features="all")
    bad = {k: cfg.get(k) for k, v in want.items() if cfg.get(k) != v}
    if bad:
        sys.exit(f"{d}/config.json: digress_ref has no port of {bad}")
    net = dr.GraphTransformer(cfg["n_layers"], cfg["input_dims"], cfg["hidden_mlp_dims"], cfg["hidden_dims"],
                              cfg["output_dims"])
    net.load_state_dict({k: v.float() for k, v in load_file(os.path.join(d, "model.safetensors")).items()})
    net.eval()  # dropout off
    model = dr.DiGress(net, cfg["diffusion_steps"], torch.tensor(cfg["x_marginals"]),
                       torch.tensor(cfg["e_marginals"]), cfg["max_n_nodes"])
    return model, cfg


def graph_rows(assets, print_rows):
    rows = []
    for name in GRAPH_MODELS:
        model, cfg = digress_model(os.path.join(assets, name))
        T = model.T
        for batch in GRAPH_BATCHES:
            counts = diffscope_node_counts(cfg["node_count_hist"], batch, 1)
            n_max = max(counts)
            node_mask = torch.arange(n_max).unsqueeze(0).expand(batch, -1) < torch.tensor(counts).unsqueeze(1)
            torch.manual_seed(1)
            state = list(dr.sample_discrete_feature_noise(model.x_limit, model.e_limit, node_mask))

            def step(k, model=model, state=state, batch=batch, node_mask=node_mask, T=T):
                # DiGress.sample's loop body: from z_t, t = T − k, to z_s, s = t − 1.
                s_int = T - 1 - k
                s = s_int * torch.ones((batch, 1)) / T
                t = (s_int + 1) * torch.ones((batch, 1)) / T
                state[0], state[1], _, _ = model.sample_p_zs_given_zt(s, t, state[0], state[1], node_mask)
            ms, cpu, n = timed(step, T, 3, 8)
            rows.append(dict(model=name, batch=batch, ms_per_step=ms, cpu_ms_per_step=cpu, steps_timed=n,
                             timesteps=[T - 3, T - 3 - n + 1], n_max=n_max, node_counts=counts))
            print_rows(rows[-1:])
    return rows


def gaussian_rows(model_dir, print_rows):
    results = []
    unet, source = mnist_unet(model_dir)
    sched = DDPMScheduler(**MNIST_SCHEDULER)
    for batch, steps in [(1, 20), (16, 10)]:
        y = torch.zeros(batch, dtype=torch.long)
        fwd = lambda x, t, y=y: unet(x, t, class_labels=y).sample  # noqa: E731
        ms, cpu = time_steps(fwd, sched, torch.randn(batch, 1, 28, 28), steps)
        results.append(dict(model="mnist-unet", source=source, batch=batch, ms_per_step=ms,
                            cpu_ms_per_step=cpu))
        print_rows(results[-1:])
    mlp, sched = toy2d()
    n = 4096
    y = torch.zeros(n, dtype=torch.long)
    fwd = lambda x, t: mlp(x, torch.full((n,), t), y)  # noqa: E731
    ms, cpu = time_steps(fwd, sched, torch.randn(n, 2), 20)
    results.append(dict(model="toy2d-mlp", source="shipped", batch=n, ms_per_step=ms, cpu_ms_per_step=cpu))
    print_rows(results[-1:])
    return results


def families(values):
    out = []
    for v in values:
        for f in v.split(","):
            f = f.strip()
            if f and f not in FAMILIES:
                raise argparse.ArgumentTypeError(f"unknown family {f!r} (choose from {', '.join(FAMILIES)})")
            if f and f not in out:
                out.append(f)
    return out or list(FAMILIES)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-dir", default=None, help="mnist-unet's folder (gaussian family)")
    ap.add_argument("--assets", default=os.path.join(ROOT, "assets"),
                    help="the shipped models' folders (sequence and graph families)")
    ap.add_argument("--families", nargs="+", default=[], metavar="F",
                    help="gaussian, sequence, graph (comma- or space-separated; default all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        fams = families(args.families)
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    torch.set_num_threads(args.threads)

    def print_rows(rows):
        if args.json:
            return
        for r in rows:
            src = f" ({r['source']})" if "source" in r else ""
            nodes = f", n = {r['n_max']}" if "n_max" in r else ""
            print(f"{r['model']}{src} batch {r['batch']}{nodes}: {r['ms_per_step']:.2f} ms per step "
                  f"({r['cpu_ms_per_step']:.2f} ms CPU) "
                  f"(PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads)", flush=True)

    info = dict(torch=torch.__version__, threads=torch.get_num_threads(), families=fams,
                model_steps=gaussian_rows(args.model_dir, print_rows) if "gaussian" in fams else None,
                discrete_steps=sequence_rows(args.assets, print_rows) if "sequence" in fams else None,
                graph_steps=graph_rows(args.assets, print_rows) if "graph" in fams else None)
    if args.json:
        print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
