"""The FiLM-MLP denoiser (the conditional-embedding DDPM of ANCHOR_MATH §5, corrected).

Corrections to the snippet: the sinusoidal embedding has exactly dim/2 frequencies (diffusers'
get_timestep_embedding with flip_sin_to_cos=False, downscale_freq_shift=1), each Block applies its
Linear before the FiLM, and a label embedding with a learned null label makes guidance possible.
The Rust model in src/models/film_mlp.rs mirrors this module parameter for parameter.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.embeddings import get_timestep_embedding


class FiLMBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.lin = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.film = nn.Linear(dim, 2 * dim)

    def forward(self, h, temb):
        scale, shift = self.film(F.silu(temb)).chunk(2, dim=-1)
        return h + F.silu((1 + scale) * self.norm(self.lin(h)) + shift)


class FiLMMLP(nn.Module):
    def __init__(self, data_dim=2, dim=128, depth=4, num_labels=6):
        super().__init__()
        self.config = dict(data_dim=data_dim, dim=dim, depth=depth, num_labels=num_labels)
        self.dim = dim
        self.num_labels = num_labels
        self.time_mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        # Index num_labels is the null label used for the unconditional branch of guidance.
        self.label_emb = nn.Embedding(num_labels + 1, dim)
        self.inp = nn.Linear(data_dim, dim)
        self.blocks = nn.ModuleList([FiLMBlock(dim) for _ in range(depth)])
        self.out = nn.Linear(dim, data_dim)

    def forward(self, x, t, y):
        temb = get_timestep_embedding(t.float(), self.dim, flip_sin_to_cos=False, downscale_freq_shift=1)
        temb = self.time_mlp(temb) + self.label_emb(y)
        h = self.inp(x)
        for b in self.blocks:
            h = b(h, temb)
        return self.out(h)
