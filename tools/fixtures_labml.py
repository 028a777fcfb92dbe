"""Parity fixture for labml's DDPM sampler step, produced by the real labml-nn code
(`labml_nn.diffusion.ddpm.DenoiseDiffusion.p_sample`, labml-nn 0.5.1). Rerun with

    python tools/fixtures_labml.py

labml's step is x_{t-1} = (1/sqrt(a_t)) (x_t - b_t/sqrt(1 - abar_t) eps_theta) + sqrt(b_t) z, with
b = linspace(1e-4, 0.02, T) and noise at EVERY step, t = 0 included. Its two random inputs are
injected so the Rust side sees the same numbers:
- eps_theta: the eps model returns a recorded tensor (the step only needs its values);
- z: labml draws it with `torch.randn(xt.shape, ...)`, which is replaced for the call.
x_t comes from labml's own q_sample of data in [0, 1] (labml trains on ToTensor() images).

Writes tests/fixtures/labml_steps.safetensors.
"""
import os

import torch
from safetensors.torch import save_file
from torch import nn

from labml_nn.diffusion.ddpm import DenoiseDiffusion

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "labml_steps.safetensors")
T = 1000
SHAPE = (3, 1, 4, 5)
TIMESTEPS = [999, 998, 500, 37, 1, 0]


class Recorded(nn.Module):
    """An eps model whose output is whatever the test set for this call."""

    def __init__(self):
        super().__init__()
        self.out = None
        self.calls = 0

    def forward(self, x, t):
        assert self.out is not None and self.out.shape == x.shape
        self.calls += 1
        return self.out


def main():
    torch.set_num_threads(1)
    model = Recorded()
    diffusion = DenoiseDiffusion(eps_model=model, n_steps=T, device=torch.device("cpu"))
    g = torch.Generator().manual_seed(7)
    tensors = {"beta": diffusion.beta, "alpha_bar": diffusion.alpha_bar}
    randn = torch.randn
    for i, t in enumerate(TIMESTEPS):
        tt = torch.full((SHAPE[0],), t, dtype=torch.long)
        x0 = torch.rand(SHAPE, generator=g)
        x_t = diffusion.q_sample(x0, tt, eps=torch.randn(SHAPE, generator=g))
        model.out = torch.randn(SHAPE, generator=g)
        z = torch.randn(SHAPE, generator=g)
        drawn = []

        def injected(*args, **kwargs):
            drawn.append(args)
            return z.clone()

        torch.randn = injected
        try:
            out = diffusion.p_sample(x_t, tt)
        finally:
            torch.randn = randn
        # labml draws its noise exactly once per step, t = 0 included.
        assert len(drawn) == 1 and tuple(drawn[0][0]) == SHAPE, drawn
        p = f"labml.{i}"
        tensors[f"{p}.x"] = x_t
        tensors[f"{p}.eps_theta"] = model.out
        tensors[f"{p}.noise"] = z
        tensors[f"{p}.prev_sample"] = out
        tensors[f"{p}.meta"] = torch.tensor([t], dtype=torch.int32)
    assert model.calls == len(TIMESTEPS)
    save_file({k: v.clone().contiguous() for k, v in tensors.items()}, OUT)
    print(f"{len(TIMESTEPS)} labml steps -> {OUT}")


if __name__ == "__main__":
    main()
