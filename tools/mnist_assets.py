"""Finish assets/mnist-unet after training: weights to fp16 (half the download and the web bundle; the
loader widens them to f32), a few held-out digits per label for the forward-process explorer, and the
model card (training figures from training.json, quality figures from tools/mnist_eval.py's JSON).

    python tools/mnist_assets.py --mnist PACKAGE --dir assets/mnist-unet [--quality eval.json]
"""
import argparse
import json
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import mnist_data

EXAMPLES_PER_LABEL = 8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--dir", default="assets/mnist-unet")
    ap.add_argument("--quality", default=None, help="JSON from mnist_eval.py judge runs, stored in the card")
    a = ap.parse_args()
    wpath = os.path.join(a.dir, "diffusion_pytorch_model.safetensors")
    sd = load_file(wpath)
    save_file({k: v.half().contiguous() for k, v in sd.items()}, wpath, metadata={"format": "pt"})
    n_params = sum(v.numel() for v in sd.values())

    data = mnist_data.load(a.mnist)
    x, y = data["test"]
    ex = np.stack([x[y == l][:EXAMPLES_PER_LABEL] for l in range(10)])[:, :, None] * 2 - 1
    save_file({"images": torch.from_numpy(ex.astype(np.float16)).contiguous()},  # fp16: embedded in the app
              os.path.join(a.dir, "examples.safetensors"))

    training = json.load(open(os.path.join(a.dir, "training.json")))
    training["command"] = ("python tools/train_mnist_unet.py --mnist PACKAGE --ckpt CKPT --out assets/mnist-unet "
                           f"--steps {training['steps']} && python tools/mnist_assets.py --mnist PACKAGE")
    sched = json.load(open(os.path.join(a.dir, "scheduler_config.json")))
    cfg = json.load(open(os.path.join(a.dir, "config.json")))
    card = {
        "name": "mnist-unet",
        "architecture": "diffusers UNet2DModel",
        "parameters": n_params,
        "block_out_channels": cfg["block_out_channels"],
        "layers_per_block": cfg["layers_per_block"],
        "labels": "0-9; label 10 is the null label used for classifier-free guidance",
        "data": "the 10,000 labelled MNIST digits of the npm `mnist` package 1.1.0; the last 100 of each "
                "label are held out (tools/mnist_data.py); pixels scaled to [-1, 1]",
        "weights": "EMA weights stored as fp16 (widened to f32 on load)",
        "training": training,
        "scheduler": {k: sched[k] for k in ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end",
                                             "prediction_type", "variance_type", "clip_sample")},
        "guidance": "eps = eps_uncond + w (eps_cond - eps_uncond); w = 1 is plain conditional",
        "app": {"sampler": "ddim", "steps": 50, "guidance": 3.0, "n": 4},
    }
    if a.quality:
        card["quality"] = json.load(open(a.quality))
    json.dump(card, open(os.path.join(a.dir, "card.json"), "w"), indent=2)
    print(f"{a.dir}: {n_params} parameters, fp16 weights {os.path.getsize(wpath)} bytes")


if __name__ == "__main__":
    main()
