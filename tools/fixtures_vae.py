"""Parity fixtures for latent diffusion's decoders and pipeline, produced by diffusers 0.42.1.

    python tools/fixtures_vae.py

1. tests/fixtures/vae_<vq|kl>_like/{config.json, diffusion_pytorch_model.safetensors, io.safetensors}:
   small random-weight VQModel and AutoencoderKL; io has `latents` (as a sampler leaves them) and
   `image` = `model.decode(latents / scaling_factor).sample`, as diffusers' pipelines decode.
2. tests/fixtures/hub/CompVis__ldm-celebahq-256/vqvae/io.safetensors: the hub's exact vqvae config
   (55 M parameters: too big to commit) with hashed weights (tools/fixtures_unet.py's `hashed_param`,
   which the Rust test recomputes), decoding hashed latents of 8 × 8; `params` lists the tensors.
3. tests/fixtures/ldm_tiny/{unet, vqvae, scheduler}/ + io.safetensors: a tiny LDM folder (random
   UNet over 3-channel 8 × 8 latents, the VQModel of 1., a DDIMScheduler file) and diffusers'
   LDMPipeline run on it for 4 DDIM steps: `x_T` and the pipeline's images in [0, 1].
"""
import json
import os

import torch
from diffusers import AutoencoderKL, DDIMScheduler, LDMPipeline, UNet2DModel, VQModel
from safetensors.torch import save_file

from fixtures_unet import hashed, hashed_param

HERE = os.path.dirname(__file__)
OUT = os.path.join(HERE, "..", "tests", "fixtures")

SMALL = {
    "vq_like": (VQModel, dict(in_channels=3, out_channels=3, latent_channels=3, block_out_channels=(8, 16),
                               down_block_types=("DownEncoderBlock2D",) * 2,
                               up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1,
                               norm_num_groups=4, num_vq_embeddings=32, sample_size=16)),
    "kl_like": (AutoencoderKL, dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16),
                                    down_block_types=("DownEncoderBlock2D",) * 3,
                                    up_block_types=("UpDecoderBlock2D",) * 3, layers_per_block=2,
                                    norm_num_groups=4, sample_size=16, scaling_factor=0.3)),
}


def perturb(m):
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.1)


def small():
    for name, (cls, cfg) in SMALL.items():
        torch.manual_seed(0)
        m = cls(**cfg).eval()
        perturb(m)
        d = os.path.join(OUT, f"vae_{name}")
        m.save_pretrained(d, safe_serialization=True)
        latents = torch.randn(2, cfg["latent_channels"], 4, 4)
        with torch.no_grad():
            image = m.decode(latents / m.config.scaling_factor).sample
        save_file({"latents": latents, "image": image.contiguous()}, f"{d}/io.safetensors")
        print(name, sum(p.numel() for p in m.parameters()), "parameters")


def hub():
    d = os.path.join(OUT, "hub", "CompVis__ldm-celebahq-256", "vqvae")
    cfg = json.load(open(f"{d}/config.json"))
    m = VQModel.from_config(cfg).eval()
    sd = m.state_dict()
    names = list(sd.keys())
    with torch.no_grad():
        for k, name in enumerate(names):
            sd[name].copy_(torch.from_numpy(hashed_param(k, name, tuple(sd[name].shape))))
        # Codebook vectors spread like latents, so the nearest one is well separated.
        latents = torch.from_numpy(hashed(0xFFFFFFFF, (2, cfg["latent_channels"], 8, 8)) * 2)
        image = m.decode(latents / m.config.scaling_factor).sample
    params = [[n, list(sd[n].shape)] for n in names]
    save_file({"image": image.contiguous()}, f"{d}/io.safetensors",
              metadata={"params": json.dumps(params)})
    print("ldm-celebahq-256 vqvae", sum(p.numel() for p in m.parameters()), "parameters")


def ldm():
    d = os.path.join(OUT, "ldm_tiny")
    torch.manual_seed(1)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(16, 32), norm_num_groups=8, attention_head_dim=8,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D")).eval()
    perturb(unet)
    cls, cfg = SMALL["vq_like"]
    torch.manual_seed(2)
    vq = cls(**dict(cfg, sample_size=32)).eval()
    perturb(vq)
    sched = DDIMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear",
                          clip_sample=False, num_train_timesteps=1000)
    pipe = LDMPipeline(vqvae=vq, unet=unet, scheduler=sched)
    pipe.save_pretrained(d, safe_serialization=True)
    g = torch.Generator().manual_seed(5)
    x_T = torch.randn((2, 3, 8, 8), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        images = pipe(batch_size=2, generator=g, num_inference_steps=4, eta=0.0, output_type="np").images
    save_file({"x_T": x_T, "images": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()},
              f"{d}/io.safetensors")
    print("ldm_tiny: images", images.shape, float(images.min()), float(images.max()))


if __name__ == "__main__":
    small()
    hub()
    ldm()
