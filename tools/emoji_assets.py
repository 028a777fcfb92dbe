"""Finish assets/emoji-unet from an export of tools/train_emoji_unet.py: the category names in the UNet's
config (`id2label`, which diffscope shows in the label menu), a few held-out emoji per category for the
forward-process explorer, and the model card (training figures from training.json, quality figures from
tools/emoji_eval.py's JSON).

    cp -r EXPORT assets/emoji-unet && python tools/emoji_assets.py --data DIR --dir assets/emoji-unet \
        [--quality eval.json]
"""
import argparse
import json
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import emoji_data

EXAMPLES_PER_LABEL = 8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the folder holding twemoji/package and noto/package")
    ap.add_argument("--dir", default="assets/emoji-unet")
    ap.add_argument("--quality", default=None, help="JSON from emoji_eval.py judge runs, stored in the card")
    a = ap.parse_args()
    wpath = os.path.join(a.dir, "diffusion_pytorch_model.safetensors")
    sd = load_file(wpath)
    save_file({k: v.half().contiguous() for k, v in sd.items()}, wpath, metadata={"format": "pt"})
    n_params = sum(v.numel() for v in sd.values())

    names = emoji_data.CATEGORIES
    cfg_path = os.path.join(a.dir, "config.json")
    cfg = json.load(open(cfg_path))
    cfg["id2label"] = {str(i): n for i, n in enumerate(names)} | {str(len(names)): "(none: unconditional)"}
    json.dump(cfg, open(cfg_path, "w"), indent=2)

    data = emoji_data.load(a.data)
    x, y, style = data["test"]
    # Alternate the two styles so each category's first examples show both.
    ex = []
    for l in range(len(names)):
        idx = np.flatnonzero(y == l)
        idx = idx[np.argsort(style[idx], kind="stable")]
        half = EXAMPLES_PER_LABEL // 2
        picks = np.concatenate([idx[style[idx] == 0][:half], idx[style[idx] == 1][:half]])
        ex.append(x[picks])
    ex = np.stack(ex) * 2 - 1
    save_file({"images": torch.from_numpy(ex.astype(np.float16)).contiguous()},
              os.path.join(a.dir, "examples.safetensors"))

    training = json.load(open(os.path.join(a.dir, "training.json")))
    sched = json.load(open(os.path.join(a.dir, "scheduler_config.json")))
    card = {
        "name": "emoji-unet",
        "architecture": "diffusers UNet2DModel",
        "parameters": n_params,
        "block_out_channels": cfg["block_out_channels"],
        "layers_per_block": cfg["layers_per_block"],
        "labels": ", ".join(f"{i} {n}" for i, n in enumerate(names))
                  + f"; label {len(names)} is the null label used for classifier-free guidance",
        "data": "32x32 RGB emoji of the npm packages emoji-datasource-twitter 16.0.0 (Twemoji graphics, "
                "CC-BY 4.0, (c) Twitter, Inc and other contributors) and emoji-datasource-google 16.0.0 (Noto "
                "Emoji graphics, Apache License 2.0, (c) Google): base emoji without skin-tone variants, "
                "composited on white, box-downscaled from 64x64, labelled by Unicode emoji category; every "
                "10th emoji of each category is held out in both styles (tools/emoji_data.py): 3,440 training "
                "/ 372 held-out images; pixels scaled to [-1, 1]",
        "weights": "EMA weights stored as fp16 (widened to f32 on load)",
        "training": training,
        "scheduler": {k: sched[k] for k in ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end",
                                             "prediction_type", "variance_type", "clip_sample")},
        "guidance": "eps = eps_uncond + w (eps_cond - eps_uncond); w = 1 is plain conditional",
        "app": {"sampler": "ddim", "steps": 50, "guidance": 3.0, "n": 8},
    }
    if a.quality:
        card["quality"] = json.load(open(a.quality))
    json.dump(card, open(os.path.join(a.dir, "card.json"), "w"), indent=2)
    print(f"{a.dir}: {n_params} parameters, fp16 weights {os.path.getsize(wpath)} bytes")


if __name__ == "__main__":
    main()
