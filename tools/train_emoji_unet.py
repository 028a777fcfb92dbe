"""Train emoji-unet: a class-conditional diffusers UNet2DModel at 32x32 RGB on Twemoji and Noto emoji
(tools/emoji_data.py), labelled by emoji category (9 labels + a null label for guidance), with
diffusers' DDPMScheduler (linear betas, 1000 steps, epsilon). The result is a real diffusers folder.

    python tools/train_emoji_unet.py --data DATA --ckpt CKPT --minutes 120 --steps 40000 --out OUT

Bounded runs (--minutes) that checkpoint every 200 steps and resume from --ckpt; the learning rate
follows one warm-up + cosine schedule over --steps, whichever run reaches them. Exports the EMA weights
(fp16) with --export-only, or at the end of a run.
"""
import argparse
import copy
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel

import emoji_data

NULL_LABEL = len(emoji_data.CATEGORIES)
# Mirroring a flag or a symbol (letters, digits, arrows) makes a wrong one; the rest may be mirrored.
NO_FLIP = {emoji_data.CATEGORIES.index("Flags"), emoji_data.CATEGORIES.index("Symbols")}


def make_unet(channels=(32, 64, 128), layers=1):
    """About 2.6 M parameters (5 MB of fp16: within the page's 6 MB budget), attention at 8x8."""
    return UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, layers_per_block=layers,
        block_out_channels=tuple(channels),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=8, num_class_embeds=NULL_LABEL + 1,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the folder holding twemoji/package and noto/package")
    ap.add_argument("--steps", type=int, default=40000, help="the length of the learning-rate schedule")
    ap.add_argument("--minutes", type=float, default=60, help="stop this run after so long (checkpointed)")
    ap.add_argument("--channels", default="32,64,128")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--p-uncond", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", default=None, help="export the EMA weights here when the run stops")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--init-from", default=None,
                    help="an exported emoji-unet folder (e.g. assets/emoji-unet) to start from when --ckpt does "
                         "not exist: its weights start both the network and its EMA; the schedule starts afresh")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = emoji_data.load(args.data)
    x_train = torch.from_numpy(data["train"][0]) * 2 - 1  # [-1, 1]
    y_train = torch.from_numpy(data["train"][1])
    flippable = torch.tensor([int(y) not in NO_FLIP for y in y_train])
    torch.manual_seed(args.seed)
    unet = make_unet([int(c) for c in args.channels.split(",")])
    ema = copy.deepcopy(unet).requires_grad_(False)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon",
                          clip_sample=False, variance_type="fixed_small")
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.0)
    step, losses, init_from = 0, [], None
    g = torch.Generator().manual_seed(args.seed)
    if os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt, weights_only=False)
        unet.load_state_dict(ck["unet"]); ema.load_state_dict(ck["ema"]); opt.load_state_dict(ck["opt"])
        step, losses = ck["step"], ck["losses"]; g.set_state(ck["gen"]); torch.set_rng_state(ck["torch_rng"])
        init_from = ck.get("init_from")
        print(f"resumed at step {step}", flush=True)
    elif args.init_from:
        # Checkpoints live outside the repository and can be lost with a machine; the shipped weights
        # cannot. Training goes on from them (fresh optimiser state, a new schedule).
        before = UNet2DModel.from_pretrained(args.init_from).float().state_dict()
        unet.load_state_dict(before); ema.load_state_dict(before)
        with open(os.path.join(args.init_from, "training.json")) as f:
            earlier = json.load(f)
        init_from = dict(folder=args.init_from, steps=earlier.get("total_steps", earlier["steps"]))
        print(f"starting from {args.init_from} ({init_from['steps']} steps before)", flush=True)
    print(f"{sum(p.numel() for p in unet.parameters())} parameters, {len(x_train)} training images", flush=True)

    def save():
        tmp = args.ckpt + ".tmp"
        torch.save(dict(unet=unet.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(), step=step, init_from=init_from,
                        losses=losses, gen=g.get_state(), torch_rng=torch.get_rng_state()), tmp)
        os.replace(tmp, args.ckpt)

    t0 = time.time()
    unet.train()
    while not args.export_only and step < args.steps and time.time() - t0 < args.minutes * 60:
        warm = min(1.0, (step + 1) / 500)
        lr = args.lr * warm * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for pg in opt.param_groups:
            pg["lr"] = lr
        idx = torch.randint(0, len(x_train), (args.batch,), generator=g)
        x0, y = x_train[idx].clone(), y_train[idx].clone()
        flip = (torch.rand(args.batch, generator=g) < 0.5) & flippable[idx]
        x0[flip] = x0[flip].flip(-1)
        y[torch.rand(args.batch, generator=g) < args.p_uncond] = NULL_LABEL
        t = torch.randint(0, 1000, (args.batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        loss = F.mse_loss(unet(sched.add_noise(x0, noise, t), t, class_labels=y).sample, noise)
        opt.zero_grad(); loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(args.ema, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.mul_(d).add_(p, alpha=1 - d)
        losses.append(loss.item()); step += 1
        if step % 200 == 0:
            print(f"step {step} loss {np.mean(losses[-200:]):.4f} lr {lr:.2e} ({time.time() - t0:.0f}s)", flush=True)
            save()
    if not args.export_only:
        save()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        ema.half().save_pretrained(args.out, safe_serialization=True)
        sched.save_pretrained(args.out)
        json.dump(dict(steps=step, total_steps=step + (init_from["steps"] if init_from else 0), init_from=init_from, batch=args.batch, lr=args.lr, ema=args.ema, p_uncond=args.p_uncond,
                       null_label=NULL_LABEL, labels=emoji_data.CATEGORIES,
                       final_loss=float(np.mean(losses[-500:])) if losses else None,
                       command="python tools/train_emoji_unet.py --data DATA --ckpt CKPT " + " ".join(
                           f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                           if k not in ("data", "ckpt", "out", "export_only", "minutes", "init_from"))),
                  open(os.path.join(args.out, "training.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
