"""Parity fixtures for the diffusers UNet2DModel, produced by diffusers 0.42.1.

    python tools/fixtures_unet.py

1. Small random-weight models: tests/fixtures/unet_<name>/{config.json,
   diffusion_pytorch_model.safetensors, io.safetensors} for configurations that exercise the
   mnist-unet layout (class embeddings, flip_sin_to_cos, attention heads of dim 8, downsample padding
   1), the google/ddpm-cifar10-32 layout (sin first, freq_shift 1, one attention head of the block's
   width, downsample padding 0, norm_eps 1e-6), the score-SDE NCSN++ layout (Skip/AttnSkip blocks, FIR
   resampling, Gaussian Fourier time embedding of ln σ, output / σ, norm_num_groups null, mid-block
   scale √2, center_input_sample) and scale_shift time conditioning (with a mid attention that then
   has no GroupNorm, and a time_embedding_dim of its own).

2. The published checkpoints' exact configs (tests/fixtures/hub/<owner>__<name>/config.json, as on
   the hub): those models are 65–115 M parameters, too big to commit, so their weights are not random
   but a hash of (tensor index, element index) that the Rust test recomputes bit for bit (`hashed`
   below; tests/engine/unet_hub.rs). Written: tests/fixtures/hub/<dir>/io.safetensors with the
   tensor names and shapes in load order (`params`), the timesteps `t` and diffusers' output `out`
   for the hashed input `x`, at a resolution the config allows (smaller than the native one).
"""
import json
import os

import numpy as np
import torch
from diffusers import UNet2DModel
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")

CONFIGS = {
    "mnist_like": dict(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                       block_out_channels=(8, 16, 16),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, num_class_embeds=4),
    "cifar_like": dict(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), attention_head_dim=None,
                       down_block_types=("AttnDownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "AttnUpBlock2D"),
                       norm_num_groups=4, norm_eps=1e-6, flip_sin_to_cos=False, freq_shift=1,
                       downsample_padding=0),
    # diffusers' own NCSN++ test layout (tests/models/unets/test_models_unet_2d.py), narrowed to 32
    # channels (the skip attention's GroupNorm has 32 groups) and three levels.
    "ncsnpp_like": dict(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                        block_out_channels=(32, 32, 32), time_embedding_type="fourier",
                        norm_eps=1e-6, mid_block_scale_factor=2 ** 0.5, norm_num_groups=None,
                        center_input_sample=True,
                        down_block_types=("SkipDownBlock2D", "AttnSkipDownBlock2D",
                                          "SkipDownBlock2D"),
                        up_block_types=("SkipUpBlock2D", "AttnSkipUpBlock2D", "SkipUpBlock2D")),
    "scale_shift": dict(sample_size=8, in_channels=2, out_channels=2, layers_per_block=2,
                        block_out_channels=(8, 16), resnet_time_scale_shift="scale_shift",
                        time_embedding_dim=24, attention_head_dim=4, norm_num_groups=4,
                        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                        up_block_types=("AttnUpBlock2D", "UpBlock2D")),
}

# The hub configs, the side of the input they are checked at, and their timesteps: σ for the
# Fourier-embedded score-SDE models, integer t for the DDPM ones.
HUB = {
    "google__ncsnpp-ffhq-1024": (128, [0.7, 380.0]),
    "google__ncsnpp-bedroom-256": (64, [0.05, 90.0]),
    "google__ddpm-cat-256": (32, [3, 871]),
}

HUB_DIR = os.path.join(OUT, "hub")


def mix32(x):
    """A 32-bit integer hash (lowbias32), on uint32 arrays."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def hashed(k, shape):
    """Uniform [-0.5, 0.5) float32 values of tensor k: the Rust test's `hashed` bit for bit."""
    n = int(np.prod(shape)) if len(shape) else 1
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint32)
        x = mix32(i * np.uint32(0x9E3779B9) + np.uint32((k * 0x85EBCA6B + 1) & 0xFFFFFFFF))
    u = (x >> np.uint32(8)).astype(np.float32) / np.float32(16777216.0) - np.float32(0.5)
    return u.reshape(shape)


def hashed_param(k, name, shape):
    """Tensor k of a model: weights ~ U with variance 1/fan_in, norm scales 1 ± 0.1, biases ± 0.1,
    the Fourier frequencies ± 16 (diffusers draws them as 16·N(0, 1))."""
    u = hashed(k, shape)
    if name == "time_proj.weight":
        return u * np.float32(32.0)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return u * np.float32((12.0 / fan_in) ** 0.5)
    if "norm" in name and name.endswith(".weight"):
        return np.float32(1.0) + u * np.float32(0.2)
    return u * np.float32(0.2)


def hub_fixtures():
    for d, (side, ts) in HUB.items():
        with open(os.path.join(HUB_DIR, d, "config.json")) as f:
            cfg = json.load(f)
        m = UNet2DModel.from_config(cfg).eval()
        sd = m.state_dict()
        names = list(sd.keys())
        with torch.no_grad():
            for k, name in enumerate(names):
                sd[name].copy_(torch.from_numpy(hashed_param(k, name, tuple(sd[name].shape))))
        x = torch.from_numpy(hashed(0xFFFFFFFF, (len(ts), cfg["in_channels"], side, side)) * 4)
        fourier = cfg.get("time_embedding_type") == "fourier"
        t = torch.tensor(ts, dtype=torch.float32 if fourier else torch.int64)
        with torch.no_grad():
            out = m(x, t).sample
        params = [[n, list(sd[n].shape)] for n in names]
        save_file({"t": t.float().contiguous(), "out": out.contiguous()},
                  os.path.join(HUB_DIR, d, "io.safetensors"),
                  metadata={"params": json.dumps(params), "side": str(side)})
        print(d, sum(p.numel() for p in m.parameters()), "parameters, output rms",
              float(out.pow(2).mean().sqrt()))


def main():
    for name, cfg in CONFIGS.items():
        torch.manual_seed(0)
        m = UNet2DModel(**cfg).eval()
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        d = os.path.join(OUT, f"unet_{name}")
        m.save_pretrained(d, safe_serialization=True)
        n = 2
        side = cfg["sample_size"]
        x = torch.randn(n, cfg["in_channels"], side, side)
        if cfg.get("time_embedding_type") == "fourier":
            t = torch.tensor([0.3, 50.0])
        else:
            t = torch.tensor([3, 871])
        kw = {}
        io = dict(x=x, t=t)
        if cfg.get("num_class_embeds"):
            y = torch.tensor([1, 3])
            kw["class_labels"] = y
            io["label"] = y
        with torch.no_grad():
            io["out"] = m(x, t, **kw).sample
        save_file({k: v.contiguous() for k, v in io.items()}, f"{d}/io.safetensors")
        print(name, sum(p.numel() for p in m.parameters()))
    hub_fixtures()


if __name__ == "__main__":
    main()
