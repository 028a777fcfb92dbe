"""Parity fixtures for DiGress, from our PyTorch port of DiGress's own functions (tools/digress_ref.py,
branch fixed_bug) with every random draw injected as uniforms. Rerun with

    python tools/fixtures_digress.py

Writes tests/fixtures/digress/:
- schedule.safetensors: betas and alphas_bar for T = 500 and T = 20.
- process.safetensors: a padded batch of 3 graphs (5, 7 and 4 nodes; 2 edge classes, 1 node class)
  with marginal transitions: the prior draw z_T, apply_noise at given t, and one sample_p_zs_given_zt
  (posterior probabilities and the sampled z_s) from given network logits; plus a 3-edge-class
  uniform-transition case.
- features.safetensors: ExtraFeatures('all') of a batch of graphs.
- transformer/: a small GraphTransformer with random weights, its config, inputs and outputs.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import digress_ref as dr  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "digress")


def ids(onehot):
    """One-hot rows → class ids, all-zero rows → -1 (diffscope's 'no class' sentinel)."""
    return torch.where(onehot.sum(-1) > 0, onehot.argmax(-1), torch.full(onehot.shape[:-1], -1)).int()


def schedule():
    out = {}
    for T in (500, 20):
        s = dr.NoiseScheduleDiscrete(T)
        out[f"betas_{T}"] = s.betas
        out[f"alphas_bar_{T}"] = s.alphas_bar
    save_file(out, f"{OUT}/schedule.safetensors")


def graphs_batch():
    g = [
        (5, [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 3)]),
        (7, [(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 3), (1, 5)]),
        (4, [(0, 1), (2, 3)]),
    ]
    return dr.dense_batch(g)


def process():
    torch.manual_seed(1)
    out = {}
    X, E, node_mask = graphs_batch()
    bs, n = node_mask.shape
    T = 20
    e_marg = torch.tensor([0.7, 0.3])
    x_marg = torch.tensor([1.0])
    net = None
    m = dr.DiGress(net, T, x_marg, e_marg, max_n_nodes=n)
    out["x0"] = ids(X)
    out["e0"] = ids(E)
    out["counts"] = node_mask.sum(1).int()
    out["e_marginals"] = e_marg
    # Prior.
    uX = torch.rand(bs, n, 1)
    uE = torch.rand(bs, n, n, 2)
    zX, zE = dr.sample_discrete_feature_noise(x_marg, e_marg, node_mask, uX, uE)
    out.update(prior_uX=uX, prior_uE=uE, prior_x=ids(zX), prior_e=ids(zE))
    # apply_noise at per-graph t.
    t_int = torch.tensor([[3.0], [11.0], [20.0]])
    uX = torch.rand(bs, n, 1)
    uE = torch.rand(bs, n, n, 2)
    nd = m.apply_noise(X, E, node_mask, t_int=t_int, uX=uX, uE=uE)
    out.update(noise_t=t_int.flatten().int(), noise_uX=uX, noise_uE=uE, noise_x=ids(nd["X_t"]),
               noise_e=ids(nd["E_t"]), noise_probE=nd["probE"])
    # One reverse step from the noised graphs with given logits.
    X_t, E_t = nd["X_t"], nd["E_t"]
    for name, s_int in (("step", 7), ("last", 0), ("first", T - 1)):
        logX = torch.randn(bs, n, 1)
        logE = torch.randn(bs, n, n, 2) * 2
        logE = (logE + logE.transpose(1, 2)) / 2
        uX = torch.rand(bs, n, 1)
        uE = torch.rand(bs, n, n, 2)
        s = torch.full((bs, 1), s_int / T)
        t = torch.full((bs, 1), (s_int + 1) / T)
        Xs, Es, pX, pE = m.sample_p_zs_given_zt(s, t, X_t, E_t, node_mask, uX, uE, pred=(logX, logE, None))
        out.update({f"{name}_s": torch.tensor([s_int]).int(), f"{name}_logX": logX, f"{name}_logE": logE,
                    f"{name}_uX": uX, f"{name}_uE": uE, f"{name}_probX": pX, f"{name}_probE": pE,
                    f"{name}_x": ids(Xs), f"{name}_e": ids(Es)})
    # The prior's all-zero diagonal (z_T) goes through the zero-row rule.
    logE = torch.randn(bs, n, n, 2)
    s = torch.full((bs, 1), (T - 1) / T)
    t = torch.full((bs, 1), 1.0)
    _, _, pX, pE = m.sample_p_zs_given_zt(s, t, zX, zE, node_mask, torch.rand(bs, n, 1),
                                          torch.rand(bs, n, n, 2), pred=(torch.randn(bs, n, 1), logE, None))
    out.update(prior_step_logE=logE, prior_step_probE=pE)
    # Uniform transition over 3 edge classes.
    m3 = dr.DiGress(None, T, x_marg, torch.ones(3) / 3, max_n_nodes=n)
    E3 = torch.zeros(bs, n, n, 3)
    E3[..., :2] = E
    E3[0, 0, 1] = torch.tensor([0.0, 0.0, 1.0])
    E3[0, 1, 0] = torch.tensor([0.0, 0.0, 1.0])
    uX = torch.rand(bs, n, 1)
    uE = torch.rand(bs, n, n, 3)
    nd = m3.apply_noise(X, E3, node_mask, t_int=torch.tensor([[5.0], [9.0], [2.0]]), uX=uX, uE=uE)
    logE = torch.randn(bs, n, n, 3)
    uX2 = torch.rand(bs, n, 1)
    uE2 = torch.rand(bs, n, n, 3)
    s = torch.full((bs, 1), 4 / T)
    t = torch.full((bs, 1), 5 / T)
    Xs, Es, pX, pE = m3.sample_p_zs_given_zt(s, t, nd["X_t"], nd["E_t"], node_mask, uX2, uE2,
                                             pred=(torch.randn(bs, n, 1), logE, None))
    out.update(u3_e0=ids(E3), u3_uX=uX, u3_uE=uE, u3_noise_e=ids(nd["E_t"]), u3_logE=logE, u3_uX2=uX2,
               u3_uE2=uE2, u3_probE=pE, u3_e=ids(Es))
    save_file({k: v.contiguous() for k, v in out.items()}, f"{OUT}/process.safetensors")


def features():
    torch.manual_seed(2)
    g = [
        (6, [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5), (5, 3), (0, 5)]),  # two triangles, a 6-ring
        (8, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (4, 5), (5, 6)]),  # two components + isolated node
        (7, [(i, j) for i in range(7) for j in range(i + 1, 7) if (i * 3 + j) % 4 != 0]),  # dense
        (5, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]),  # pentagon
    ]
    X, E, node_mask = dr.dense_batch(g)
    # Network input E is the noisy one-hot: class 0 on the diagonal (as after apply_noise).
    Et = E.clone()
    diag = torch.eye(E.shape[1], dtype=torch.bool).unsqueeze(0).expand(E.shape[0], -1, -1)
    Et[diag] = torch.tensor([1.0, 0.0])
    Et, _ = Et, None
    t = torch.tensor([[0.1], [0.5], [0.9], [1.0]])
    ex, ey = dr.extra_features(Et * node_mask[:, :, None, None] * node_mask[:, None, :, None], node_mask, t,
                               max_n_nodes=9)
    save_file(dict(e=ids(E), counts=node_mask.sum(1).int(), t=t.flatten(), extra_x=ex.contiguous(),
                   extra_y=ey.contiguous()), f"{OUT}/features.safetensors")


def transformer():
    torch.manual_seed(3)
    cfg = dict(n_layers=2, input_dims={"X": 7, "E": 2, "y": 12}, hidden_mlp_dims={"X": 12, "E": 8, "y": 10},
               hidden_dims={"dx": 16, "de": 8, "dy": 8, "n_head": 4, "dim_ffX": 20, "dim_ffE": 12, "dim_ffy": 14},
               output_dims={"X": 1, "E": 2, "y": 0})
    net = dr.GraphTransformer(cfg["n_layers"], cfg["input_dims"], cfg["hidden_mlp_dims"], cfg["hidden_dims"],
                              cfg["output_dims"])
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.4)
    net.eval()
    d = f"{OUT}/transformer"
    os.makedirs(d, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, f"{d}/model.safetensors")
    json.dump(cfg, open(f"{d}/config.json", "w"), indent=1)
    X, E, node_mask = graphs_batch()
    bs, n = node_mask.shape
    Et = E.clone()
    diag = torch.eye(n, dtype=torch.bool).unsqueeze(0).expand(bs, -1, -1)
    Et[diag] = torch.tensor([1.0, 0.0])
    Et = Et * node_mask[:, :, None, None] * node_mask[:, None, :, None]
    Et[0] = Et[0] * 0 + E[0]  # graph 0 keeps the all-zero diagonal of a prior draw
    x_in = torch.cat((X, torch.randn(bs, n, 6) * node_mask[..., None]), dim=-1)
    y_in = torch.randn(bs, 12)
    with torch.no_grad():
        ox, oe, oy = net(x_in, Et, y_in, node_mask)
    save_file(dict(x=x_in, e=ids(Et), y=y_in, counts=node_mask.sum(1).int(), out_x=ox, out_e=oe.contiguous()),
              f"{d}/io.safetensors")


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    schedule()
    process()
    features()
    transformer()
    print("written", OUT)
