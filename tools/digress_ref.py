"""Our own PyTorch port of the parts of DiGress (cvignac/DiGress, branch `fixed_bug` 2a7c9b7b) that
diffscope reproduces: the discrete cosine schedule, uniform and marginal transitions, apply_noise, the
exact posterior mixture and sample_p_zs_given_zt, the prior draw, the structural extra features
(cycles, Laplacian spectrum) and the graph transformer. Used only to train the shipped graph models and
to write parity fixtures; the product never runs Python.

Deliberate, documented departures from the original (everything else follows it line by line):
- `multinomial` draws can be replaced by Gumbel-max over *injected* uniforms (`u` tensors with the
  probabilities' shape): `argmax(log p − log(−log max(u, 1e-6)))`, the rule diffscope's sampler uses,
  so fixtures can compare the sampled graphs exactly. Without uniforms, torch.multinomial is used.
- Dense batches are built from edge lists directly (no torch_geometric).
- The `fixed_bug` branch is the one ported: masked Xtoy/Etoy pooling, the corrected 5-cycle count and
  `lowest_t = 1` in training (the planar checkpoint reported in DiGress's README comes from it).
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------------
# Schedule and transitions (src/diffusion/diffusion_utils.py, noise_schedule.py)


def cosine_beta_schedule_discrete(timesteps, s=0.008):
    steps = timesteps + 2
    x = np.linspace(0, steps, steps)
    alphas_cumprod = np.cos(0.5 * np.pi * ((x / steps) + s) / (1 + s)) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    alphas = alphas_cumprod[1:] / alphas_cumprod[:-1]
    betas = 1 - alphas
    return betas.squeeze()


class NoiseScheduleDiscrete(nn.Module):
    def __init__(self, timesteps):
        super().__init__()
        self.timesteps = timesteps
        betas = cosine_beta_schedule_discrete(timesteps)
        self.register_buffer("betas", torch.from_numpy(betas).float())
        self.alphas = 1 - torch.clamp(self.betas, min=0, max=0.9999)
        log_alpha = torch.log(self.alphas)
        log_alpha_bar = torch.cumsum(log_alpha, dim=0)
        self.alphas_bar = torch.exp(log_alpha_bar)

    def forward(self, t_normalized=None, t_int=None):
        if t_int is None:
            t_int = torch.round(t_normalized * self.timesteps)
        return self.betas[t_int.long()]

    def get_alpha_bar(self, t_normalized=None, t_int=None):
        if t_int is None:
            t_int = torch.round(t_normalized * self.timesteps)
        return self.alphas_bar.to(t_int.device)[t_int.long()]


class Transition:
    """MarginalUniformTransition (u = 1·mᵀ) or DiscreteUniformTransition (m uniform); y has 0 classes."""

    def __init__(self, x_marginals, e_marginals):
        self.dx = len(x_marginals)
        self.de = len(e_marginals)
        self.u_x = x_marginals.unsqueeze(0).expand(self.dx, -1).unsqueeze(0)
        self.u_e = e_marginals.unsqueeze(0).expand(self.de, -1).unsqueeze(0)

    def get_Qt(self, beta_t):
        beta_t = beta_t.unsqueeze(1)
        q_x = beta_t * self.u_x + (1 - beta_t) * torch.eye(self.dx).unsqueeze(0)
        q_e = beta_t * self.u_e + (1 - beta_t) * torch.eye(self.de).unsqueeze(0)
        return q_x, q_e

    def get_Qt_bar(self, alpha_bar_t):
        alpha_bar_t = alpha_bar_t.unsqueeze(1)
        q_x = alpha_bar_t * torch.eye(self.dx).unsqueeze(0) + (1 - alpha_bar_t) * self.u_x
        q_e = alpha_bar_t * torch.eye(self.de).unsqueeze(0) + (1 - alpha_bar_t) * self.u_e
        return q_x, q_e


# ---------------------------------------------------------------------------------------------------
# Masking and sampling (src/utils.py, diffusion_utils.py)


def mask_xe(X, E, node_mask, collapse=False):
    x_mask = node_mask.unsqueeze(-1)
    e_mask1 = x_mask.unsqueeze(2)
    e_mask2 = x_mask.unsqueeze(1)
    if collapse:
        X = torch.argmax(X, dim=-1)
        E = torch.argmax(E, dim=-1)
        X[node_mask == 0] = -1
        E[(e_mask1 * e_mask2).squeeze(-1) == 0] = -1
    else:
        X = X * x_mask
        E = E * e_mask1 * e_mask2
        assert torch.allclose(E, torch.transpose(E, 1, 2))
    return X, E


def _draw(prob, u):
    """One class per row of prob (.., K): multinomial, or Gumbel-max over injected uniforms."""
    if u is None:
        flat = prob.reshape(-1, prob.shape[-1])
        return flat.multinomial(1).reshape(prob.shape[:-1])
    g = -torch.log(-torch.log(torch.clamp(u, min=1e-6)))
    logp = torch.where(prob > 0, torch.log(prob), torch.full_like(prob, -float("inf")))
    return torch.argmax(logp + g, dim=-1)


def sample_discrete_features(probX, probE, node_mask, uX=None, uE=None):
    bs, n, _ = probX.shape
    probX = probX.clone()  # the original mutates its inputs in place
    probE = probE.clone()
    probX[~node_mask] = 1 / probX.shape[-1]
    X_t = _draw(probX, uX).reshape(bs, n)
    inverse_edge_mask = ~(node_mask.unsqueeze(1) * node_mask.unsqueeze(2))
    diag_mask = torch.eye(n).unsqueeze(0).expand(bs, -1, -1)
    probE[inverse_edge_mask] = 1 / probE.shape[-1]
    probE[diag_mask.bool()] = 1 / probE.shape[-1]
    E_t = _draw(probE, uE).reshape(bs, n, n)
    E_t = torch.triu(E_t, diagonal=1)
    E_t = E_t + torch.transpose(E_t, 1, 2)
    return X_t, E_t


def sample_discrete_feature_noise(x_limit, e_limit, node_mask, uX=None, uE=None):
    bs, n_max = node_mask.shape
    xl = x_limit[None, None, :].expand(bs, n_max, -1)
    el = e_limit[None, None, None, :].expand(bs, n_max, n_max, -1)
    U_X = _draw(xl, uX).reshape(bs, n_max).long()
    U_E = _draw(el, uE).reshape(bs, n_max, n_max).long()
    U_X = F.one_hot(U_X, num_classes=xl.shape[-1]).float()
    U_E = F.one_hot(U_E, num_classes=el.shape[-1]).float()
    upper = torch.zeros_like(U_E)
    idx = torch.triu_indices(row=U_E.size(1), col=U_E.size(2), offset=1)
    upper[:, idx[0], idx[1], :] = 1
    U_E = U_E * upper
    U_E = U_E + torch.transpose(U_E, 1, 2)
    return mask_xe(U_X, U_E, node_mask)


def compute_batched_over0_posterior_distribution(X_t, Qt, Qsb, Qtb):
    X_t = X_t.flatten(start_dim=1, end_dim=-2).to(torch.float32)
    Qt_T = Qt.transpose(-1, -2)
    left_term = (X_t @ Qt_T).unsqueeze(dim=2)
    right_term = Qsb.unsqueeze(1)
    numerator = left_term * right_term
    prod = (Qtb @ X_t.transpose(-1, -2)).transpose(-1, -2)
    denominator = prod.unsqueeze(-1)
    denominator[denominator == 0] = 1e-6
    return numerator / denominator


def posterior_probs(pred_X, pred_E, X_t, E_t, Qt, Qsb, Qtb):
    """The normalised p(z_s | z_t) of sample_p_zs_given_zt (pred_* are probabilities)."""
    bs, n = X_t.shape[:2]
    pX = compute_batched_over0_posterior_distribution(X_t, Qt[0], Qsb[0], Qtb[0])
    pE = compute_batched_over0_posterior_distribution(E_t, Qt[1], Qsb[1], Qtb[1])
    unX = (pred_X.unsqueeze(-1) * pX).sum(dim=2)
    unX[torch.sum(unX, dim=-1) == 0] = 1e-5
    prob_X = unX / torch.sum(unX, dim=-1, keepdim=True)
    pred_E = pred_E.reshape((bs, -1, pred_E.shape[-1]))
    unE = (pred_E.unsqueeze(-1) * pE).sum(dim=-2)
    unE[torch.sum(unE, dim=-1) == 0] = 1e-5
    prob_E = unE / torch.sum(unE, dim=-1, keepdim=True)
    prob_E = prob_E.reshape(bs, n, n, pred_E.shape[-1])
    assert ((prob_X.sum(dim=-1) - 1).abs() < 1e-4).all()
    assert ((prob_E.sum(dim=-1) - 1).abs() < 1e-4).all()
    return prob_X, prob_E


# ---------------------------------------------------------------------------------------------------
# Extra features (src/diffusion/extra_features.py, fixed_bug)


def _bdiag(X):
    return torch.diagonal(X, dim1=-2, dim2=-1)


def _btrace(X):
    return _bdiag(X).sum(dim=-1)


def k_cycles(A):
    A = A.float()
    d = A.sum(dim=-1)
    k2 = A @ A
    k3 = k2 @ A
    k4 = k3 @ A
    k5 = k4 @ A
    k6 = k5 @ A
    c3 = _bdiag(k3)
    k3x, k3y = (c3 / 2).unsqueeze(-1), (c3.sum(-1) / 6).unsqueeze(-1)
    c4 = _bdiag(k4) - d * (d - 1) - (A @ d.unsqueeze(-1)).sum(dim=-1)
    k4x, k4y = (c4 / 2).unsqueeze(-1), (c4.sum(-1) / 8).unsqueeze(-1)
    tri = _bdiag(k3) / 2
    joint = k2 * A
    prod = 2 * (joint @ d.unsqueeze(-1)).squeeze(-1)
    prod2 = 2 * (A @ tri.unsqueeze(-1)).squeeze(-1)
    c5 = _bdiag(k5) - prod - 4 * d * tri - prod2 + 10 * tri
    k5x, k5y = (c5 / 2).unsqueeze(-1), (c5.sum(-1) / 10).unsqueeze(-1)
    c6 = (_btrace(k6) - 3 * _btrace(k3 ** 2) + 9 * torch.sum(A * k2.pow(2), dim=[-2, -1])
          - 6 * (_bdiag(k2) * _bdiag(k4)).sum(-1) + 6 * _btrace(k4) - 4 * _btrace(k3)
          + 4 * _bdiag(k2).pow(3).sum(-1) + 3 * torch.sum(k3, dim=[-2, -1])
          - 12 * _bdiag(k2).pow(2).sum(-1) + 4 * _btrace(k2))
    k6y = (c6 / 12).unsqueeze(-1)
    return torch.cat([k3x, k4x, k5x], dim=-1), torch.cat([k3y, k4y, k5y, k6y], dim=-1)


def node_cycle_features(E_t, node_mask):
    A = E_t[..., 1:].sum(dim=-1).float()
    xc, yc = k_cycles(A)
    xc = xc * node_mask.unsqueeze(-1)
    xc = xc / 10
    yc = yc / 10
    xc[xc > 1] = 1
    yc[yc > 1] = 1
    return xc, yc


def eigen_features(E_t, mask, k_val=5, k_vec=2):
    A = E_t[..., 1:].sum(dim=-1).float() * mask.unsqueeze(1) * mask.unsqueeze(2)
    deg = A.sum(dim=-1)
    comb = torch.diag_embed(deg) - A
    L = (comb + comb.transpose(1, 2)) / 2
    mask_diag = 2 * L.shape[-1] * torch.eye(A.shape[-1]).unsqueeze(0)
    mask_diag = mask_diag * (~mask.unsqueeze(1)) * (~mask.unsqueeze(2))
    L = L * mask.unsqueeze(1) * mask.unsqueeze(2) + mask_diag
    eigvals, eigvecs = torch.linalg.eigh(L)
    eigvals = eigvals / torch.sum(mask, dim=1, keepdim=True)
    eigvecs = eigvecs * mask.unsqueeze(2) * mask.unsqueeze(1)
    bs, n = eigvals.shape
    ncc = (eigvals < 1e-5).sum(dim=-1)
    assert (ncc > 0).all()
    ev = eigvals
    ext = int(max(ncc)) + k_val - n
    if ext > 0:
        ev = torch.hstack((ev, 2 * torch.ones(bs, ext)))
    idx = torch.arange(k_val).long().unsqueeze(0) + ncc.unsqueeze(1)
    first_k = torch.gather(ev, dim=1, index=idx)
    # nonlcc indicator and the first eigenvectors after the zero ones
    first_ev = torch.round(eigvecs[:, :, 0], decimals=3) * mask
    rnd = torch.randn(bs, n) * (~mask)
    first_ev = first_ev + rnd
    most_common = torch.mode(first_ev, dim=1).values
    nonlcc = (~(first_ev == most_common.unsqueeze(1)) * mask).unsqueeze(-1).float()
    vec = eigvecs
    ext = int(max(ncc)) + k_vec - n
    if ext > 0:
        vec = torch.cat((vec, torch.zeros(bs, n, ext)), dim=2)
    idx = (torch.arange(k_vec).long().unsqueeze(0).unsqueeze(0) + ncc.unsqueeze(1).unsqueeze(2)).expand(-1, n, -1)
    first_vecs = torch.gather(vec, dim=2, index=idx) * mask.unsqueeze(2)
    return ncc.unsqueeze(-1), first_k, nonlcc, first_vecs


def extra_features(E_t, node_mask, t, max_n_nodes):
    """ExtraFeatures('all') + the time column: (extra_X (bs,n,6), extra_y (bs,11+1))."""
    n = node_mask.sum(dim=1).unsqueeze(1) / max_n_nodes
    xc, yc = node_cycle_features(E_t, node_mask)
    ncc, evals, nonlcc, evecs = eigen_features(E_t, node_mask)
    ex = torch.cat((xc, nonlcc, evecs), dim=-1)
    ey = torch.hstack((n, yc, ncc.type_as(yc), evals))
    return ex, torch.cat((ey, t), dim=1)


# ---------------------------------------------------------------------------------------------------
# Graph transformer (src/models/transformer_model.py, layers.py; fixed_bug)


class Xtoy(nn.Module):
    def __init__(self, dx, dy):
        super().__init__()
        self.lin = nn.Linear(4 * dx, dy)

    def forward(self, X, x_mask):
        x_mask = x_mask.expand(-1, -1, X.shape[-1])
        imask = 1 - x_mask.float()
        m = X.sum(dim=1) / torch.sum(x_mask, dim=1)
        mi = (X + 1e5 * imask).min(dim=1)[0]
        ma = (X - 1e5 * imask).max(dim=1)[0]
        std = torch.sum(((X - m[:, None, :]) ** 2) * x_mask, dim=1) / torch.sum(x_mask, dim=1)
        return self.lin(torch.hstack((m, mi, ma, std)))


class Etoy(nn.Module):
    def __init__(self, d, dy):
        super().__init__()
        self.lin = nn.Linear(4 * d, dy)

    def forward(self, E, e_mask1, e_mask2):
        mask = (e_mask1 * e_mask2).expand(-1, -1, -1, E.shape[-1])
        imask = 1 - mask.float()
        divide = torch.sum(mask, dim=(1, 2))
        m = E.sum(dim=(1, 2)) / divide
        mi = (E + 1e5 * imask).min(dim=2)[0].min(dim=1)[0]
        ma = (E - 1e5 * imask).max(dim=2)[0].max(dim=1)[0]
        std = torch.sum(((E - m[:, None, None, :]) ** 2) * mask, dim=(1, 2)) / divide
        return self.lin(torch.hstack((m, mi, ma, std)))


def masked_softmax(x, mask, **kwargs):
    if mask.sum() == 0:
        return x
    x_masked = x.clone()
    x_masked[mask == 0] = -float("inf")
    return torch.softmax(x_masked, **kwargs)


class NodeEdgeBlock(nn.Module):
    def __init__(self, dx, de, dy, n_head):
        super().__init__()
        assert dx % n_head == 0
        self.dx, self.de, self.dy = dx, de, dy
        self.df = dx // n_head
        self.n_head = n_head
        self.q = nn.Linear(dx, dx)
        self.k = nn.Linear(dx, dx)
        self.v = nn.Linear(dx, dx)
        self.e_add = nn.Linear(de, dx)
        self.e_mul = nn.Linear(de, dx)
        self.y_e_mul = nn.Linear(dy, dx)
        self.y_e_add = nn.Linear(dy, dx)
        self.y_x_mul = nn.Linear(dy, dx)
        self.y_x_add = nn.Linear(dy, dx)
        self.y_y = nn.Linear(dy, dy)
        self.x_y = Xtoy(dx, dy)
        self.e_y = Etoy(de, dy)
        self.x_out = nn.Linear(dx, dx)
        self.e_out = nn.Linear(dx, de)
        self.y_out = nn.Sequential(nn.Linear(dy, dy), nn.ReLU(), nn.Linear(dy, dy))

    def forward(self, X, E, y, node_mask):
        bs, n, _ = X.shape
        x_mask = node_mask.unsqueeze(-1)
        e_mask1 = x_mask.unsqueeze(2)
        e_mask2 = x_mask.unsqueeze(1)
        Q = self.q(X) * x_mask
        K = self.k(X) * x_mask
        Q = Q.reshape((bs, n, self.n_head, self.df)).unsqueeze(2)
        K = K.reshape((bs, n, self.n_head, self.df)).unsqueeze(1)
        Y = Q * K
        Y = Y / math.sqrt(Y.size(-1))
        E1 = (self.e_mul(E) * e_mask1 * e_mask2).reshape((bs, n, n, self.n_head, self.df))
        E2 = (self.e_add(E) * e_mask1 * e_mask2).reshape((bs, n, n, self.n_head, self.df))
        Y = Y * (E1 + 1) + E2
        newE = Y.flatten(start_dim=3)
        ye1 = self.y_e_add(y).unsqueeze(1).unsqueeze(1)
        ye2 = self.y_e_mul(y).unsqueeze(1).unsqueeze(1)
        newE = ye1 + (ye2 + 1) * newE
        newE = self.e_out(newE) * e_mask1 * e_mask2
        softmax_mask = e_mask2.expand(-1, n, -1, self.n_head)
        attn = masked_softmax(Y, softmax_mask, dim=2)
        V = (self.v(X) * x_mask).reshape((bs, n, self.n_head, self.df)).unsqueeze(1)
        weighted_V = (attn * V).sum(dim=2).flatten(start_dim=2)
        yx1 = self.y_x_add(y).unsqueeze(1)
        yx2 = self.y_x_mul(y).unsqueeze(1)
        newX = yx1 + (yx2 + 1) * weighted_V
        newX = self.x_out(newX) * x_mask
        new_y = self.y_y(y) + self.x_y(X, x_mask) + self.e_y(E, e_mask1, e_mask2)
        new_y = self.y_out(new_y)
        return newX, newE, new_y


class XEyTransformerLayer(nn.Module):
    def __init__(self, dx, de, dy, n_head, dim_ffX, dim_ffE, dim_ffy, dropout=0.1, eps=1e-5):
        super().__init__()
        self.self_attn = NodeEdgeBlock(dx, de, dy, n_head)
        self.linX1, self.linX2 = nn.Linear(dx, dim_ffX), nn.Linear(dim_ffX, dx)
        self.normX1, self.normX2 = nn.LayerNorm(dx, eps=eps), nn.LayerNorm(dx, eps=eps)
        self.linE1, self.linE2 = nn.Linear(de, dim_ffE), nn.Linear(dim_ffE, de)
        self.normE1, self.normE2 = nn.LayerNorm(de, eps=eps), nn.LayerNorm(de, eps=eps)
        self.lin_y1, self.lin_y2 = nn.Linear(dy, dim_ffy), nn.Linear(dim_ffy, dy)
        self.norm_y1, self.norm_y2 = nn.LayerNorm(dy, eps=eps), nn.LayerNorm(dy, eps=eps)
        self.dropout = nn.Dropout(dropout)  # one module: dropout has no parameters

    def forward(self, X, E, y, node_mask):
        d = self.dropout
        newX, newE, new_y = self.self_attn(X, E, y, node_mask=node_mask)
        X = self.normX1(X + d(newX))
        E = self.normE1(E + d(newE))
        y = self.norm_y1(y + d(new_y))
        X = self.normX2(X + d(self.linX2(d(F.relu(self.linX1(X))))))
        E = self.normE2(E + d(self.linE2(d(F.relu(self.linE1(E))))))
        y = self.norm_y2(y + d(self.lin_y2(d(F.relu(self.lin_y1(y))))))
        return X, E, y


class GraphTransformer(nn.Module):
    def __init__(self, n_layers, input_dims, hidden_mlp_dims, hidden_dims, output_dims, dropout=0.1):
        super().__init__()
        self.out_dim_X, self.out_dim_E, self.out_dim_y = output_dims["X"], output_dims["E"], output_dims["y"]
        hm, hd = hidden_mlp_dims, hidden_dims
        act = nn.ReLU
        self.mlp_in_X = nn.Sequential(nn.Linear(input_dims["X"], hm["X"]), act(), nn.Linear(hm["X"], hd["dx"]), act())
        self.mlp_in_E = nn.Sequential(nn.Linear(input_dims["E"], hm["E"]), act(), nn.Linear(hm["E"], hd["de"]), act())
        self.mlp_in_y = nn.Sequential(nn.Linear(input_dims["y"], hm["y"]), act(), nn.Linear(hm["y"], hd["dy"]), act())
        self.tf_layers = nn.ModuleList([
            XEyTransformerLayer(hd["dx"], hd["de"], hd["dy"], hd["n_head"], hd["dim_ffX"], hd["dim_ffE"],
                                hd["dim_ffy"], dropout=dropout)
            for _ in range(n_layers)])
        self.mlp_out_X = nn.Sequential(nn.Linear(hd["dx"], hm["X"]), act(), nn.Linear(hm["X"], output_dims["X"]))
        self.mlp_out_E = nn.Sequential(nn.Linear(hd["de"], hm["E"]), act(), nn.Linear(hm["E"], output_dims["E"]))
        self.mlp_out_y = nn.Sequential(nn.Linear(hd["dy"], hm["y"]), act(), nn.Linear(hm["y"], output_dims["y"]))

    def forward(self, X, E, y, node_mask):
        bs, n = X.shape[0], X.shape[1]
        diag_mask = ~torch.eye(n).type_as(E).bool()
        diag_mask = diag_mask.unsqueeze(0).unsqueeze(-1).expand(bs, -1, -1, -1)
        X_to_out = X[..., :self.out_dim_X]
        E_to_out = E[..., :self.out_dim_E]
        y_to_out = y[..., :self.out_dim_y]
        new_E = self.mlp_in_E(E)
        new_E = (new_E + new_E.transpose(1, 2)) / 2
        X, E = mask_xe(self.mlp_in_X(X), new_E, node_mask)
        y = self.mlp_in_y(y)
        for layer in self.tf_layers:
            X, E, y = layer(X, E, y, node_mask)
        X = self.mlp_out_X(X)
        E = self.mlp_out_E(E)
        y = self.mlp_out_y(y)
        X = X + X_to_out
        E = (E + E_to_out) * diag_mask
        y = y + y_to_out
        E = 1 / 2 * (E + torch.transpose(E, 1, 2))
        X, E = mask_xe(X, E, node_mask)
        return X, E, y


# ---------------------------------------------------------------------------------------------------
# The discrete diffusion model (src/diffusion_model_discrete.py, fixed_bug)


class DiGress:
    def __init__(self, net, T, x_marginals, e_marginals, max_n_nodes):
        self.net = net
        self.T = T
        self.schedule = NoiseScheduleDiscrete(T)
        self.transition = Transition(x_marginals, e_marginals)
        self.x_limit, self.e_limit = x_marginals, e_marginals
        self.max_n_nodes = max_n_nodes
        self.dx, self.de = len(x_marginals), len(e_marginals)

    def apply_noise(self, X, E, node_mask, t_int=None, uX=None, uE=None):
        if t_int is None:
            t_int = torch.randint(1, self.T + 1, size=(X.size(0), 1)).float()
        s_int = t_int - 1
        t_float, s_float = t_int / self.T, s_int / self.T
        beta_t = self.schedule(t_normalized=t_float)
        alpha_s_bar = self.schedule.get_alpha_bar(t_normalized=s_float)
        alpha_t_bar = self.schedule.get_alpha_bar(t_normalized=t_float)
        QtbX, QtbE = self.transition.get_Qt_bar(alpha_t_bar)
        probX = X @ QtbX
        probE = E @ QtbE.unsqueeze(1)
        Xs, Es = sample_discrete_features(probX, probE, node_mask, uX, uE)
        X_t = F.one_hot(Xs, num_classes=self.dx).float()
        E_t = F.one_hot(Es, num_classes=self.de).float()
        X_t, E_t = mask_xe(X_t, E_t, node_mask)
        return dict(t_int=t_int, t=t_float, beta_t=beta_t, alpha_s_bar=alpha_s_bar, alpha_t_bar=alpha_t_bar,
                    X_t=X_t, E_t=E_t, node_mask=node_mask, probX=probX, probE=probE)

    def forward(self, X_t, E_t, t, node_mask):
        ex, ey = extra_features(E_t, node_mask, t, self.max_n_nodes)
        X = torch.cat((X_t, ex), dim=2).float()
        E = E_t.float()
        return self.net(X, E, ey.float(), node_mask)

    def sample_p_zs_given_zt(self, s, t, X_t, E_t, node_mask, uX=None, uE=None, pred=None):
        beta_t = self.schedule(t_normalized=t)
        alpha_s_bar = self.schedule.get_alpha_bar(t_normalized=s)
        alpha_t_bar = self.schedule.get_alpha_bar(t_normalized=t)
        Qtb = self.transition.get_Qt_bar(alpha_t_bar)
        Qsb = self.transition.get_Qt_bar(alpha_s_bar)
        Qt = self.transition.get_Qt(beta_t)
        if pred is None:
            pred = self.forward(X_t, E_t, t, node_mask)
        pred_X = F.softmax(pred[0], dim=-1)
        pred_E = F.softmax(pred[1], dim=-1)
        prob_X, prob_E = posterior_probs(pred_X, pred_E, X_t, E_t, Qt, Qsb, Qtb)
        Xs, Es = sample_discrete_features(prob_X, prob_E, node_mask, uX, uE)
        X_s = F.one_hot(Xs, num_classes=self.dx).float()
        E_s = F.one_hot(Es, num_classes=self.de).float()
        assert (E_s == torch.transpose(E_s, 1, 2)).all()
        X_s, E_s = mask_xe(X_s, E_s, node_mask)
        return X_s, E_s, prob_X, prob_E

    @torch.no_grad()
    def sample(self, n_nodes):
        bs = len(n_nodes)
        n_max = int(max(n_nodes))
        node_mask = torch.arange(n_max).unsqueeze(0).expand(bs, -1) < torch.as_tensor(n_nodes).unsqueeze(1)
        X, E = sample_discrete_feature_noise(self.x_limit, self.e_limit, node_mask)
        for s_int in reversed(range(0, self.T)):
            s = s_int * torch.ones((bs, 1)) / self.T
            t = (s_int + 1) * torch.ones((bs, 1)) / self.T
            X, E, _, _ = self.sample_p_zs_given_zt(s, t, X, E, node_mask)
        return mask_xe(X, E, node_mask, collapse=True)


def train_loss(pred_X, pred_E, true_X, true_E, lambda_e=5.0):
    """TrainLossDiscrete: CE over rows whose true vector is non-zero; loss = CE_X + λ·CE_E."""
    tX = true_X.reshape(-1, true_X.size(-1))
    tE = true_E.reshape(-1, true_E.size(-1))
    pX = pred_X.reshape(-1, pred_X.size(-1))
    pE = pred_E.reshape(-1, pred_E.size(-1))
    mX = (tX != 0.0).any(dim=-1)
    mE = (tE != 0.0).any(dim=-1)
    lX = F.cross_entropy(pX[mX], torch.argmax(tX[mX], dim=-1), reduction="sum") / max(int(mX.sum()), 1)
    lE = F.cross_entropy(pE[mE], torch.argmax(tE[mE], dim=-1), reduction="sum") / max(int(mE.sum()), 1)
    return lX + lambda_e * lE, lX, lE


def dense_batch(graphs, n_max=None, dx=1, de=2):
    """to_dense + encode_no_edge for graphs given as (n, [(i, j), ...]) with a single node and edge type:
    X one-hot (bs, n, dx), E one-hot (bs, n, n, de) with class 0 = no edge and an all-zero diagonal."""
    bs = len(graphs)
    n_max = n_max or max(g[0] for g in graphs)
    X = torch.zeros(bs, n_max, dx)
    E = torch.zeros(bs, n_max, n_max, de)
    node_mask = torch.zeros(bs, n_max, dtype=torch.bool)
    for b, (n, edges) in enumerate(graphs):
        X[b, :n, 0] = 1
        node_mask[b, :n] = True
        for i, j in edges:
            E[b, i, j, 1] = 1
            E[b, j, i, 1] = 1
    no_edge = E.sum(dim=3) == 0
    E[..., 0][no_edge] = 1
    diag = torch.eye(n_max, dtype=torch.bool).unsqueeze(0).expand(bs, -1, -1)
    E[diag] = 0
    X, E = mask_xe(X, E, node_mask)
    return X, E, node_mask
