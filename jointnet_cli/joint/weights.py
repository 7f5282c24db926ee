"""The mathematics of robust joint learning (DESIGN §1; paper §4, eqs. 3–9).

Shapes: n networks, L layers, W windows (window w holds layers w and w+1, so
W = L − 1; a single-layer network has one window holding that layer). All
quantities are float64 tensors: distances between nearly identical networks
must not lose their digits.

A network made of several players (a GAN's generator and discriminator) has
one *chain* of layers per player; windows pair adjacent layers inside a chain
only. `windows` lists each window's layer indices; the default is one chain.
"""

from __future__ import annotations

from typing import Sequence

import torch

Windows = list[tuple[int, ...]]


def chain_windows(chains: list[int]) -> Windows:
    """Windows of consecutive chains of the given lengths: (l, l+1) inside each, (l,) for a one-layer chain."""
    out: Windows = []
    start = 0
    for length in chains:
        if length == 1:
            out.append((start,))
        out += [(start + i, start + i + 1) for i in range(length - 1)]
        start += length
    return out



def layer_sq_distances(stacks: Sequence[torch.Tensor | Sequence[torch.Tensor]]) -> torch.Tensor:
    """‖θ_i^l − θ_j^l‖² for every layer: (L, n, n).

    `stacks[l]` is layer l as one (n, P_l) matrix whose row i is θ_i^l, or as the
    (n, …) stacks of its parameter tensors. Rows are taken relative to the first,
    a_i = θ_i − θ_1 (distances do not change; the subtraction is exact where
    networks are close). The Gram identity ‖a_i − a_j‖² = ‖a_i‖² + ‖a_j‖² − 2 a_i·a_j
    gives every pair from one matrix product per tensor, summed in float64 on the
    tensors' device; clamped at 0, with an exact zero diagonal. Returned on the CPU.
    """
    out = []
    for layer in stacks:
        parts = [layer] if isinstance(layer, torch.Tensor) else list(layer)
        gram = None
        for x in parts:
            a = x.reshape(x.shape[0], -1)
            a = (a - a[:1]).double()                        # float64 products: close pairs far from row 1 keep their digits
            gram = a @ a.T if gram is None else gram + a @ a.T   # (n, n)
        gram = gram.cpu()
        sq = gram.diagonal()
        d2 = (sq[:, None] + sq[None, :] - 2 * gram).clamp_min_(0)
        d2.fill_diagonal_(0)
        out.append(d2)
    return torch.stack(out)


def window_sq_distances(layer_d2: torch.Tensor, windows: Windows | None = None) -> torch.Tensor:
    """d_ijw² = ‖θ_i^w − θ_j^w‖² + ‖θ_i^{w+1} − θ_j^{w+1}‖² (eq. 3): (W, n, n)."""
    if windows is None:
        windows = chain_windows([layer_d2.shape[0]])
    return torch.stack([sum(layer_d2[l] for l in win) for win in windows])


def sigma_from(window_d2: torch.Tensor) -> torch.Tensor:
    """σ_w = mean_i min_{j≠i} d_ijw (paper §4.2.1), from warm-start parameters: (W,).

    With a single network there is no j ≠ i and σ is 0.
    """
    W, n, _ = window_d2.shape
    if n < 2:
        return torch.zeros(W, dtype=torch.float64)
    d = window_d2.double().sqrt()
    off = d + torch.diag(torch.full((n,), float("inf"), dtype=torch.float64))  # exclude j = i
    return off.min(dim=2).values.mean(dim=1)


def irls_weights(window_d2: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """w_ijw = σ_w² / (σ_w² + d_ijw²) (eq. 7): (W, n, n) with w_iiw = 1.

    The limit σ = d = 0 (identical networks) is taken as 1: nothing separates them.
    """
    s2 = sigma.double().pow(2)[:, None, None]
    den = s2 + window_d2.double()
    w = torch.where(den > 0, s2 / den.clamp_min(torch.finfo(torch.float64).tiny), torch.ones_like(den))
    n = w.shape[1]
    w[:, torch.arange(n), torch.arange(n)] = 1.0
    return w


def delta(w_new: torch.Tensor, w_old: torch.Tensor) -> float:
    """δ = max_{i<j, w} |w_ijw^(k) − w_ijw^(k−1)| (paper §4.2.2); 0 when n = 1."""
    n = w_new.shape[1]
    iu = torch.triu_indices(n, n, offset=1)
    diff = (w_new.double() - w_old.double())[:, iu[0], iu[1]].abs()
    return float(diff.max()) if diff.numel() else 0.0


def coupling(weights: torch.Tensor, lam: float, num_layers: int, windows: Windows | None = None) -> torch.Tensor:
    """C[l, i, j] = c_ijl = λ (w_ij,l−1 + w_ij,l) (eq. 6): (L, n, n), symmetric, zero diagonal.

    Layer l sits in windows l−1 and l; a window that does not exist counts 0.
    A single-layer network has one window, holding that layer. In general
    c_ijl = λ Σ_{windows w ∋ l} w_ijw.
    """
    if windows is None:
        windows = chain_windows([num_layers])
    W, n, _ = weights.shape
    assert W == len(windows), f"{W} window weights for {len(windows)} windows"
    c = torch.zeros(num_layers, n, n, dtype=torch.float64)
    for w, win in enumerate(windows):
        for l in win:
            c[l] += weights[w].double()
    c *= lam
    c[:, torch.arange(n), torch.arange(n)] = 0.0
    return c


def geman_mcclure(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """ρ(x, σ) = σ² x² / (σ² + x²) (eq. 3); 0 where σ = x = 0."""
    s2, x2 = sigma.double().pow(2), x.double().pow(2)
    den = s2 + x2
    return torch.where(den > 0, s2 * x2 / den.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(den))


def _upper(t: torch.Tensor) -> torch.Tensor:
    n = t.shape[-1]
    return torch.triu(t, diagonal=1) if n > 1 else torch.zeros_like(t)


def weighted_consistency(layer_d2: torch.Tensor, c: torch.Tensor) -> float:
    """Σ_{i<j} Σ_l c_ijl ‖θ_i^l − θ_j^l‖² — the consistency term of eqs. 5/8 in per-layer form (eq. 6)."""
    return float(_upper(c.double() * layer_d2.double()).sum())


def robust_consistency(window_d2: torch.Tensor, sigma: torch.Tensor, lam: float) -> float:
    """λ Σ_{i<j} Σ_w ρ(d_ijw, σ_w) — the consistency term of the robust objective (eq. 4)."""
    rho = geman_mcclure(window_d2.double().sqrt(), sigma.double()[:, None, None])
    return lam * float(_upper(rho).sum())


def anchor_strengths(c: torch.Tensor, i: int) -> torch.Tensor:
    """C_il = Σ_j c_ijl: (L,), the strength pulling θ_i^l to its anchor (eq. 9)."""
    return c[:, i, :].sum(dim=1)


def anchor_coefficients(c: torch.Tensor, i: int) -> torch.Tensor:
    """c_ijl / C_il: (L, n), the mixing weights of the anchor m_il = Σ_j c_ijl θ_j^l / C_il (eq. 9).

    Rows of layers with C_il = 0 are zero (such layers are not coupled).
    """
    strengths = anchor_strengths(c, i)
    coef = c[:, i, :] / strengths.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
    coef[strengths == 0] = 0
    return coef
