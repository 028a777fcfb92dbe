"""Sample mnist-unet with diffusers (UNet2DModel + DDIMScheduler) exactly as
`diffscope sample --model mnist-unet --label L --cfg W --sampler ddim --steps 50` does: guidance
eps_u + w (eps_c - eps_u), eta = 0. For evaluation at sizes a software GPU is too slow for; diffscope's
50-step DDIM trajectory matches diffusers' (tests/engine/gaussian.rs), so the figures carry over.

    python tools/mnist_sample_torch.py --dir assets/mnist-unet --label 3 --cfg 3 --n 64 --out s3.safetensors
"""
import argparse

import torch
from diffusers import DDIMScheduler, UNet2DModel
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="assets/mnist-unet")
    ap.add_argument("--label", type=int, required=True)
    ap.add_argument("--cfg", type=float, default=3.0)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    unet = UNet2DModel.from_pretrained(a.dir).float().eval()
    sched = DDIMScheduler.from_pretrained(a.dir)
    sched.set_timesteps(a.steps)
    null = unet.config.num_class_embeds - 1
    g = torch.Generator().manual_seed(a.seed + 1000 * a.label)
    x = torch.randn(a.n, 1, 28, 28, generator=g)
    cond = torch.full((a.n,), a.label)
    with torch.no_grad():
        for t in sched.timesteps:
            if a.cfg == 1.0:
                eps = unet(x, t, class_labels=cond).sample
            else:
                out = unet(torch.cat([x, x]), t, class_labels=torch.cat([cond, torch.full((a.n,), null)])).sample
                ec, eu = out.chunk(2)
                eps = eu + a.cfg * (ec - eu)
            x = sched.step(eps, t, x, eta=0.0).prev_sample
    save_file({"samples": x.contiguous(), "labels": cond.long()}, a.out)


if __name__ == "__main__":
    main()
