"""PyTorch (CPU) reference timings for the reverse steps `diffscope bench` measures, so ratios can be
quoted from one machine and one sitting:

    python tools/bench_torch.py [--threads 2] [--model-dir DIR] [--json]

- mnist-unet: UNet2DModel forward + DDPMScheduler.step at batch 1 and 16 (label 0, no guidance),
  from --model-dir, else assets/mnist-unet if it is there, else mnist-unet's architecture with
  random weights (the time does not depend on the values);
- toy2d-mlp: the shipped FiLM-MLP (assets/toy2d-mlp) forward + step at 4,096 points.

Each figure is the mean over back-to-back steps after two warm-up steps, walking down the schedule
from its middle, in torch.no_grad() - the same protocol as `diffscope bench`. Both report wall time
and CPU time (all threads): on a machine shared with other jobs, wall time measures the share the
scheduler gave us, CPU time the work.
"""
import argparse
import json
import os
import sys
import time

import torch
from diffusers import DDPMScheduler, UNet2DModel
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
from film_mlp import FiLMMLP  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    unet, source = mnist_unet(args.model_dir)
    sched = DDPMScheduler(**MNIST_SCHEDULER)
    for batch, steps in [(1, 20), (16, 10)]:
        y = torch.zeros(batch, dtype=torch.long)
        fwd = lambda x, t, y=y: unet(x, t, class_labels=y).sample  # noqa: E731
        ms, cpu = time_steps(fwd, sched, torch.randn(batch, 1, 28, 28), steps)
        results.append(dict(model="mnist-unet", source=source, batch=batch, ms_per_step=ms,
                            cpu_ms_per_step=cpu))
    mlp, sched = toy2d()
    n = 4096
    y = torch.zeros(n, dtype=torch.long)
    fwd = lambda x, t: mlp(x, torch.full((n,), t), y)  # noqa: E731
    ms, cpu = time_steps(fwd, sched, torch.randn(n, 2), 20)
    results.append(dict(model="toy2d-mlp", source="shipped", batch=n, ms_per_step=ms, cpu_ms_per_step=cpu))
    info = dict(torch=torch.__version__, threads=torch.get_num_threads(), results=results)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for r in results:
            print(f"{r['model']} ({r['source']}) batch {r['batch']}: {r['ms_per_step']:.2f} ms per step "
                  f"({r['cpu_ms_per_step']:.2f} ms CPU) "
                  f"(PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
