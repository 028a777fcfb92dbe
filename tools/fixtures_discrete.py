"""Parity fixtures for discrete diffusion, produced by the real references:

- bionemo-moco 0.0.2.2's D3PM (uniform / absorbing / custom priors, cosine and linear schedules,
  last_time_idx 0 and 1): schedules, Q_t, Q̄_t, forward probabilities, posterior logits at t = T−1, a
  middle t and t = ℓ (one t per batch element), the sampled next state with the Gumbel uniforms injected
  (moco draws them with torch.rand_like, patched here), and the loss with vb_scale 0 and 0.5;
- multinomial diffusion (tools/multinomial_ref.py, Hoogeboom's functions): the schedule, q_pred,
  q_posterior (t = 0 re-weighting included), p_pred from given logits, the sampled state with injected
  uniforms;
- the sequence transformer (tools/seq_transformer.py): one forward pass of a small random model, and the
  ELBO terms of that model on fixed data with the x_t draws injected, for both processes.

    python tools/fixtures_discrete.py   # writes tests/fixtures/discrete/
"""
import json
import os

import torch
from safetensors.torch import save_file

import multinomial_ref as mr
from seq_transformer import SeqTransformer
from train_discrete import d3pm_elbo_terms

OUT = "tests/fixtures/discrete"


def moco(prior, K, T, schedule, last):
    from bionemo.moco.distributions.prior import DiscreteCustomPrior, DiscreteMaskedPrior, DiscreteUniformPrior
    from bionemo.moco.distributions.time import UniformTimeDistribution
    from bionemo.moco.interpolants import D3PM
    from bionemo.moco.schedules.noise.discrete_noise_schedules import (DiscreteCosineNoiseSchedule,
                                                                      DiscreteLinearNoiseSchedule)
    p = {"uniform": lambda: DiscreteUniformPrior(num_classes=K),
         "absorbing": lambda: DiscreteMaskedPrior(num_classes=K, inclusive=True),
         "custom": lambda: DiscreteCustomPrior(torch.tensor([0.1, 0.2, 0.3, 0.4]), num_classes=K)}[prior]()
    s = DiscreteCosineNoiseSchedule(nsteps=T) if schedule == "cosine" else DiscreteLinearNoiseSchedule(nsteps=T)
    return D3PM(UniformTimeDistribution(discrete_time=True, nsteps=T), p, s, device="cpu", last_time_idx=last)


class Injected:
    """Replace torch.rand_like (moco's Gumbel source) by given uniforms for one call."""
    def __init__(self, u):
        self.u = u

    def __enter__(self):
        self.orig = torch.rand_like
        torch.rand_like = lambda x, *a, **k: self.u.clone()

    def __exit__(self, *a):
        torch.rand_like = self.orig


def d3pm_case(name, prior, K, T, schedule, last, B=3, N=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    d = moco(prior, K, T, schedule, last)
    t = torch.tensor([T - 1 + last, T // 2 + last, last])[:B]
    x0 = torch.randint(0, K - (1 if prior == "absorbing" else 0), (B, N), generator=g)
    xt = torch.randint(0, K, (B, N), generator=g)
    logits = torch.randn(B, N, K, generator=g) * 2
    fwd = torch.einsum("bnj,bji->bni", torch.nn.functional.one_hot(x0, K).float(), d._Qt_bar[t - last])
    u = torch.rand(B, N, K, generator=g)
    u[0, 0, 0] = 1e-9  # below moco's 1e-6 clip
    with Injected(u):
        xt_sampled = d.interpolate(x0, t)
    post = d._q_posterior_logits(logits.clone(), t, xt)
    post_ids = d._q_posterior_logits(x0, t, xt, model_out_is_logits=False)
    with Injected(u):
        nxt = d.step(logits.clone(), t, xt)
    with Injected(u):
        nxt_temp = d.step(logits.clone(), t, xt, temperature=0.7)
    loss0 = d.loss(logits.clone(), x0, xt, t, vb_scale=0.0)
    loss_vb = d.loss(logits.clone(), x0, xt, t, vb_scale=0.5)
    tensors = dict(alphas=d.noise_schedule.generate_schedule(), Qt=d._Qt, Qt_bar=d._Qt_bar, Qt_prev_bar=d._Qt_prev_bar,
                   prior=d.prior_distribution.prior_dist.float(), t=t.int(), x0=x0.int(), xt=xt.int(), logits=logits,
                   forward_probs=fwd, uniforms=u, forward_sample=xt_sampled.int(), posterior_logits=post,
                   posterior_logits_ids=post_ids, step=nxt.int(), step_temp07=nxt_temp.int(),
                   loss_vb0=loss0, loss_vb05=loss_vb)
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{OUT}/d3pm_{name}.safetensors")
    return dict(prior=prior, K=K, T=T, schedule=schedule, last_time_idx=last)


def multinomial_case(B=3, L=9, K=4, T=100, seed=1):
    g = torch.Generator().manual_seed(seed)
    m = mr.Multinomial(K, T)
    t = torch.tensor([T - 1, T // 2, 0])
    x0 = torch.randint(0, K, (B, L), generator=g)
    xt = torch.randint(0, K, (B, L), generator=g)
    logits = torch.randn(B, L, K, generator=g) * 2  # model output, [B, L, K]
    lx0, lxt = mr.index_to_log_onehot(x0, K), mr.index_to_log_onehot(xt, K)
    qpred = m.q_pred(lx0, t)
    qpost = m.q_posterior(lx0, lxt, t)
    lp0 = torch.log_softmax(logits.transpose(1, 2), dim=1)
    ppred = m.q_posterior(lp0, lxt, t)
    u = torch.rand(B, K, L, generator=g)
    nxt = mr.log_onehot_to_index(m.log_sample_categorical(ppred, K, u))
    tensors = dict(log_alpha=m.log_alpha, log_cumprod_alpha=m.log_cumprod_alpha, log_1_min_alpha=m.log_1_min_alpha,
                   log_1_min_cumprod_alpha=m.log_1_min_cumprod_alpha, t=t.int(), x0=x0.int(), xt=xt.int(), logits=logits,
                   # class axis last, as diffscope lays them out
                   q_pred=qpred.transpose(1, 2), q_posterior=qpost.transpose(1, 2), p_pred=ppred.transpose(1, 2),
                   uniforms=u.transpose(1, 2), step=nxt.int())
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{OUT}/multinomial.safetensors")


def model_cases():
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(3)
    cfgs = {}
    # A small random sequence transformer, its weights perturbed away from init so every tensor matters.
    for name, K, L, T in [("mt", 4, 16, 100), ("d3", 6, 8, 10)]:
        model = SeqTransformer(K, L, dim=32, depth=2, heads=2)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        model.eval()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{OUT}/model_{name}.safetensors")
        cfgs[name] = dict(architecture="seq_transformer", **model.config)
        B = 4
        x = torch.randint(0, K, (B, L), generator=g)
        tt = torch.tensor([0, 3, T // 2, T - 1])
        with torch.no_grad():
            out = model(x, tt)
        x0 = torch.randint(0, K - 1, (B, L), generator=g)
        if name == "mt":
            m = mr.Multinomial(K, T)
            xts = torch.stack([mr.log_onehot_to_index(m.q_sample(mr.index_to_log_onehot(x0, K),
                                                                  torch.full((B,), t, dtype=torch.long)))
                               for t in range(T)])
            terms = m.elbo_terms(model, x0, xts)
        else:
            d = moco("absorbing", K, T, "cosine", 0)
            xts = torch.stack([d.interpolate(x0, torch.full((B,), t, dtype=torch.long)) for t in range(T)])
            it = iter(xts)
            orig = d.interpolate
            d.interpolate = lambda x, t: next(it)  # replay the recorded draws
            terms = d3pm_elbo_terms(model, d, x0)
            d.interpolate = orig
        save_file(dict(x=x.int(), t=tt.float(), logits=out, x0=x0.int(), xts=xts.int(), elbo_terms=terms),
                  f"{OUT}/model_{name}_io.safetensors")
    json.dump(cfgs, open(f"{OUT}/model_configs.json", "w"), indent=2)


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    cases = {
        "uniform_cosine": d3pm_case("uniform_cosine", "uniform", 5, 10, "cosine", 0),
        "absorbing_cosine": d3pm_case("absorbing_cosine", "absorbing", 5, 10, "cosine", 0),
        "custom_linear_l1": d3pm_case("custom_linear_l1", "custom", 4, 12, "linear", 1),
    }
    json.dump(cases, open(f"{OUT}/d3pm_cases.json", "w"), indent=2)
    multinomial_case()
    model_cases()


if __name__ == "__main__":
    main()
