"""Parity fixtures for the Gaussian side, produced by the real reference code (diffusers 0.42.1 and
PyTorch). Small and committed under tests/fixtures/; rerun with

    python tools/fixtures_gaussian.py

- film_mlp/: a randomly initialised FiLMMLP (tools/film_mlp.py), its config, and inputs/outputs.
- ddpm_steps.safetensors / ddim_steps.safetensors: single scheduler steps for every prediction type,
  variance type and clip setting, with the step's noise injected (saved beside the inputs).
"""
import json
import os

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.utils.torch_utils import randn_tensor
from safetensors.torch import save_file

from film_mlp import FiLMMLP

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")


def film_mlp():
    torch.manual_seed(0)
    m = FiLMMLP(data_dim=2, dim=16, depth=2, num_labels=3)
    # Default init leaves FiLM scales tiny; randomise every parameter so each term matters.
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    d = os.path.join(OUT, "film_mlp")
    os.makedirs(d, exist_ok=True)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{d}/model.safetensors")
    cfg = dict(architecture="film_mlp", **m.config, null_label=3)
    json.dump(cfg, open(f"{d}/config.json", "w"), indent=2)
    x = torch.randn(7, 2)
    t = torch.tensor([0, 1, 17, 99, 150, 199, 42])
    y = torch.tensor([0, 1, 2, 3, 0, 3, 1])
    with torch.no_grad():
        out = m(x, t, y)
    save_file(dict(x=x, t=t.float(), label=y.int(), out=out), f"{d}/io.safetensors")


def scheduler_steps():
    shape = (3, 2, 5)
    tensors = {}
    cases = []
    for sched_name in ["linear", "squaredcos_cap_v2"]:
        for pred in ["epsilon", "sample", "v_prediction"]:
            for var in ["fixed_small", "fixed_large"]:
                for clip in [False, True]:
                    cases.append((sched_name, pred, var, clip))
    i = 0
    for sched_name, pred, var, clip in cases:
        s = DDPMScheduler(num_train_timesteps=1000, beta_schedule=sched_name, prediction_type=pred,
                          variance_type=var, clip_sample=clip)
        for t in [999, 500, 1, 0]:
            g = torch.Generator().manual_seed(100 + i)
            x = torch.randn(shape, generator=g)
            mo = torch.randn(shape, generator=g)
            seed = 1000 + i
            noise = randn_tensor(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
            out = s.step(mo, t, x, generator=torch.Generator().manual_seed(seed))
            p = f"ddpm.{i}"
            tensors[f"{p}.x"] = x
            tensors[f"{p}.model_output"] = mo
            tensors[f"{p}.noise"] = noise
            tensors[f"{p}.prev_sample"] = out.prev_sample
            tensors[f"{p}.pred_original_sample"] = out.pred_original_sample
            tensors[f"{p}.meta"] = torch.tensor([t], dtype=torch.int32)
            tensors[f"{p}.config"] = torch.tensor(list(json.dumps(dict(beta_schedule=sched_name, prediction_type=pred, variance_type=var, clip_sample=clip)).encode()), dtype=torch.uint8)
            i += 1
    # DDIM: leading spacing with 50 steps and a trailing 7-step schedule, eta 0 and 0.7.
    j = 0
    for pred in ["epsilon", "sample", "v_prediction"]:
        for clip in [False, True]:
            for eta in [0.0, 0.7]:
                for steps, spacing in [(50, "leading"), (7, "trailing")]:
                    s = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type=pred,
                                      clip_sample=clip, timestep_spacing=spacing)
                    s.set_timesteps(steps)
                    for t in [int(s.timesteps[0]), int(s.timesteps[len(s.timesteps) // 2]), int(s.timesteps[-1])]:
                        g = torch.Generator().manual_seed(500 + j)
                        x = torch.randn(shape, generator=g)
                        mo = torch.randn(shape, generator=g)
                        noise = torch.randn(shape, generator=g)
                        out = s.step(mo, t, x, eta=eta, variance_noise=noise)
                        p = f"ddim.{j}"
                        tensors[f"{p}.x"] = x
                        tensors[f"{p}.model_output"] = mo
                        tensors[f"{p}.noise"] = noise
                        tensors[f"{p}.prev_sample"] = out.prev_sample
                        tensors[f"{p}.pred_original_sample"] = out.pred_original_sample
                        tensors[f"{p}.meta"] = torch.tensor([t, steps], dtype=torch.int32)
                        tensors[f"{p}.config"] = torch.tensor(list(json.dumps(dict(prediction_type=pred, clip_sample=clip, eta=eta, timestep_spacing=spacing)).encode()), dtype=torch.uint8)
                        j += 1
    save_file({k: v.clone().contiguous() for k, v in tensors.items()}, os.path.join(OUT, "scheduler_steps.safetensors"))
    print(f"{i} DDPM and {j} DDIM steps")


if __name__ == "__main__":
    film_mlp()
    scheduler_steps()
