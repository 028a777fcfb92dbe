"""Parity fixtures for the diffusers UNet2DModel, produced by diffusers 0.42.1 with random weights.

    python tools/fixtures_unet.py

Writes tests/fixtures/unet_<name>/{config.json, diffusion_pytorch_model.safetensors, io.safetensors}
for small configurations that exercise both the mnist-unet layout (class embeddings, flip_sin_to_cos,
attention heads of dim 8, downsample padding 1) and the google/ddpm-cifar10-32 layout (sin first,
freq_shift 1, one attention head of the block's width, downsample padding 0, norm_eps 1e-6).
"""
import os

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
}


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
        x = torch.randn(n, cfg["in_channels"], 8, 8)
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


if __name__ == "__main__":
    main()
