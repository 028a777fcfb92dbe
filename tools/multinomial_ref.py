"""Multinomial diffusion (Hoogeboom et al. 2021), written from the math of ehoogeboom/multinomial_diffusion
9d907a60 `diffusion_utils/diffusion_multinomial.py` (GPro's copy is byte-identical; the package is not on
PyPI). See ANCHOR_MATH §3.1. Our own code, function for function, with the same numerics:

- log space throughout, class axis = dim 1 ([B, K, L]); log one-hots are log(max(onehot, 1e-30));
- the √α cosine schedule computed in float64 (linspace(0, T+1, T+1) spacing, α clipped to ≥ 1e-3, then
  √), stored as float32 logs; log(1 − e^a + 1e-40);
- q_posterior re-weights the prediction by the x_t likelihood at t = 0;
- Gumbel = −log(−log(u + 1e-30) + 1e-30); the uniforms can be injected (`u=`) for parity fixtures.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


def cosine_alphas(T, s=0.008):
    steps = T + 1
    x = np.linspace(0, steps, steps)
    ac = np.cos(((x / steps) + s) / (1 + s) * np.pi * 0.5) ** 2
    ac = ac / ac[0]
    a = ac[1:] / ac[:-1]
    a = np.clip(a, a_min=0.001, a_max=1.0)
    return np.sqrt(a)


def log_1_min_a(a):
    return torch.log(1 - a.exp() + 1e-40)


def log_add_exp(a, b):
    m = torch.max(a, b)
    return m + torch.log(torch.exp(a - m) + torch.exp(b - m))


def index_to_log_onehot(x, K):
    oh = F.one_hot(x, K).permute(0, -1, *range(1, x.ndim))  # [B, K, ...]
    return torch.log(oh.float().clamp(min=1e-30))


def log_onehot_to_index(lx):
    return lx.argmax(1)


def multinomial_kl(lp1, lp2):
    return (lp1.exp() * (lp1 - lp2)).sum(dim=1)


def sum_except_batch(x):
    return x.reshape(x.shape[0], -1).sum(-1)


class Multinomial:
    def __init__(self, K, T):
        self.K, self.T = K, T
        alphas = torch.tensor(cosine_alphas(T).astype("float64"))
        log_alpha = torch.log(alphas)
        log_cumprod_alpha = torch.cumsum(log_alpha, 0)
        self.log_alpha = log_alpha.float()
        self.log_1_min_alpha = log_1_min_a(log_alpha).float()
        self.log_cumprod_alpha = log_cumprod_alpha.float()
        self.log_1_min_cumprod_alpha = log_1_min_a(log_cumprod_alpha).float()
        self.Lt_history = torch.zeros(T)
        self.Lt_count = torch.zeros(T)

    @staticmethod
    def _at(a, t, like):
        return a[t].view(-1, *([1] * (like.ndim - 1)))

    def q_pred_one_timestep(self, lxt, t):
        return log_add_exp(lxt + self._at(self.log_alpha, t, lxt),
                           self._at(self.log_1_min_alpha, t, lxt) - math.log(self.K))

    def q_pred(self, lx0, t):
        return log_add_exp(lx0 + self._at(self.log_cumprod_alpha, t, lx0),
                           self._at(self.log_1_min_cumprod_alpha, t, lx0) - math.log(self.K))

    def q_posterior(self, lx0, lxt, t):
        tm1 = (t - 1).clamp(min=0)
        ev = self.q_pred(lx0, tm1)
        tb = t.view(-1, *([1] * (lx0.ndim - 1))) * torch.ones_like(lx0)
        ev = torch.where(tb == 0, lx0, ev)
        u = ev + self.q_pred_one_timestep(lxt, t)
        return u - torch.logsumexp(u, dim=1, keepdim=True)

    def predict_start(self, model, lxt, t):
        """model(ids [B, L], t [B]) -> logits [B, L, K]; returns log p̂0 [B, K, L]."""
        out = model(log_onehot_to_index(lxt), t)
        return F.log_softmax(out.transpose(1, 2), dim=1)

    def p_pred(self, model, lxt, t):
        return self.q_posterior(self.predict_start(model, lxt, t), lxt, t)

    @staticmethod
    def log_sample_categorical(logits, K, u=None):
        if u is None:
            u = torch.rand_like(logits)
        g = -torch.log(-torch.log(u + 1e-30) + 1e-30)
        return index_to_log_onehot((g + logits).argmax(dim=1), K)

    def q_sample(self, lx0, t, u=None):
        return self.log_sample_categorical(self.q_pred(lx0, t), self.K, u)

    def compute_Lt(self, model, lx0, lxt, t):
        log_true = self.q_posterior(lx0, lxt, t)
        log_model = self.p_pred(model, lxt, t)
        kl = sum_except_batch(multinomial_kl(log_true, log_model))
        dec = -sum_except_batch((lx0.exp() * log_model).sum(dim=1))
        mask = (t == 0).float()
        return mask * dec + (1 - mask) * kl

    def kl_prior(self, lx0):
        b = lx0.shape[0]
        lq = self.q_pred(lx0, torch.full((b,), self.T - 1, dtype=torch.long))
        lu = -math.log(self.K) * torch.ones_like(lq)
        return sum_except_batch(multinomial_kl(lq, lu))

    def sample_time(self, b, method="importance"):
        if method == "importance" and (self.Lt_count > 10).all():
            s = torch.sqrt(self.Lt_history + 1e-10) + 0.0001
            s[0] = s[1]
            pt_all = s / s.sum()
            t = torch.multinomial(pt_all, num_samples=b, replacement=True)
            return t, pt_all.gather(0, t)
        t = torch.randint(0, self.T, (b,)).long()
        return t, torch.ones_like(t).float() / self.T

    def train_log_prob(self, model, x):
        """vb_stochastic: −(L_t / p(t) + KL prior), with the Lt² history for importance sampling."""
        b = x.shape[0]
        t, pt = self.sample_time(b)
        lx0 = index_to_log_onehot(x, self.K)
        kl = self.compute_Lt(model, lx0, self.q_sample(lx0, t), t)
        new = (0.1 * kl.pow(2) + 0.9 * self.Lt_history.gather(0, t)).detach()
        self.Lt_history.scatter_(0, t, new)
        self.Lt_count.scatter_add_(0, t, torch.ones_like(kl))
        return -(kl / pt + self.kl_prior(lx0))

    @torch.no_grad()
    def elbo_terms(self, model, x, xts=None):
        """Per-sequence ELBO terms [T + 1, B] in nats: L_0 (decoder), L_1..L_{T−1} (KLs), KL prior last.
        x_t for each t is drawn from q(x_t | x0) unless given as ids `xts` [T, B, L]."""
        lx0 = index_to_log_onehot(x, self.K)
        b = x.shape[0]
        out = []
        for t in range(self.T):
            tt = torch.full((b,), t, dtype=torch.long)
            lxt = self.q_sample(lx0, tt) if xts is None else index_to_log_onehot(xts[t], self.K)
            out.append(self.compute_Lt(model, lx0, lxt, tt))
        out.append(self.kl_prior(lx0))
        return torch.stack(out)

    @torch.no_grad()
    def sample(self, model, n, L, gen=None):
        u = torch.rand((n, self.K, L), generator=gen)
        lz = self.log_sample_categorical(torch.zeros(n, self.K, L), self.K, u)
        for i in reversed(range(self.T)):
            t = torch.full((n,), i, dtype=torch.long)
            u = torch.rand((n, self.K, L), generator=gen)
            lz = self.log_sample_categorical(self.p_pred(model, lz, t), self.K, u)
        return log_onehot_to_index(lz)


if __name__ == "__main__":
    m = Multinomial(4, 100)
    a = m.log_alpha.exp()
    print(a[0].item(), a[1].item(), a[99].item(), m.log_cumprod_alpha[99].exp().item())
