"""The sequence transformer denoiser for discrete diffusion (words, DNA).

Token embedding + learned position embedding + a time embedding (diffusers' sinusoid with
flip_sin_to_cos=False, downscale_freq_shift=1, through Linear-GELU-Linear) added to every position,
then pre-LN blocks `h + Attn(LN h)`, `h + FF(LN h)` (FF = Linear-GELU(erf)-Linear), a final LayerNorm
and a Linear to K logits per position. The Rust model in src/models/seq_transformer.rs mirrors it
parameter for parameter (same names in model.safetensors).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.embeddings import get_timestep_embedding


class Block(nn.Module):
    def __init__(self, dim, heads, ff_mult):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, ff_mult * dim)
        self.ff2 = nn.Linear(ff_mult * dim, dim)

    def forward(self, h):
        b, n, d = h.shape
        x = self.ln1(h)
        split = lambda y: y.view(b, n, self.heads, d // self.heads).transpose(1, 2)
        a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        h = h + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return h + self.ff2(F.gelu(self.ff1(self.ln2(h))))


class SeqTransformer(nn.Module):
    def __init__(self, vocab, seq_len, dim=128, depth=3, heads=4, ff_mult=4, out_classes=None):
        super().__init__()
        out_classes = out_classes or vocab
        self.config = dict(vocab=vocab, seq_len=seq_len, dim=dim, depth=depth, heads=heads,
                           ff_mult=ff_mult, out_classes=out_classes)
        self.dim = dim
        self.tok_emb = nn.Embedding(vocab, dim)
        self.pos_emb = nn.Parameter(torch.randn(seq_len, dim) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, ff_mult) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_classes)

    def forward(self, x, t):
        """x: int ids [B, L]; t: timestep indices [B]. Returns logits [B, L, out_classes]."""
        temb = get_timestep_embedding(t.float(), self.dim, flip_sin_to_cos=False, downscale_freq_shift=1)
        temb = self.time_mlp(temb)
        h = self.tok_emb(x) + self.pos_emb + temb[:, None, :]
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln_f(h))
