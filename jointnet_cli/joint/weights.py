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

import functools
import math
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



def relative_rows(part: torch.Tensor | Sequence[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """The (n, P) float64 matrix of a_i = θ_i − θ_1 for one parameter tensor of every network.

    `part` holds the n networks' tensors: an (n, …) stack or a list of n tensors (stacked in one copy, or
    subtracted network by network when written into `out`).
    The subtraction is in the parameters' own precision, exact where θ_i is close to θ_1 (float32's
    subtraction of numbers within a factor 2 is exact), and written widened to float64 in the same pass,
    on the tensors' device (into `out` if given). A pair close to each other but far from θ_1 keeps float32's
    rounding of each a_i: a relative error of about 6e-8 · ‖θ_i − θ_1‖ / ‖θ_i − θ_j‖ per coordinate.
    (A subtraction in float64 would be exact for every pair, and costs a quarter more here: README
    "Benchmarks".)
    """
    with torch.no_grad():
        if isinstance(part, torch.Tensor):              # a stack: one widening subtraction
            m = part.reshape(len(part), -1)
        elif out is None:                               # a list: stacked in one float32 copy first
            m = torch.stack([x.reshape(-1) for x in part])
        else:                                           # a list into `out`: one subtraction per network
            first = part[0].reshape(-1)
            for i, x in enumerate(part):
                torch.sub(x.reshape(-1), first, out=out[i])
            return out
        if out is None:
            out = torch.empty(m.shape, dtype=torch.float64, device=m.device)
        return torch.sub(m, m[0], out=out)


GRAM_BLOCK = 1 << 16     # columns per block of the CPU Gram product (16 networks' block is 8 MiB of float64),
                         # and the largest tensor merged with the others (`LayerDistances`, any device)
GRAM_SPLIT = 2           # each product as this many batched products of equal column slices
GRAM_BAND = 3            # rows per band of the CPU Gram product's upper block triangle


def column_slices(x: torch.Tensor, k: int) -> torch.Tensor | None:
    """The k equal column slices of an (n, B) matrix as one (k, n, B / k) view (no copy), or None when k does
    not divide B. A batched product over them runs the slices on separate cores, where a product with n ≈ 16
    rows runs on one (README "Benchmarks")."""
    n, width = x.shape
    if k < 2 or width % k:
        return None
    return x.reshape(n, k, width // k).transpose(0, 1)


def slice_product(a: torch.Tensor, b: torch.Tensor, split: int = GRAM_SPLIT) -> torch.Tensor:
    """a b^T of two float64 blocks with the same columns, as the sum of `split` products of their column
    slices taken in one batched call (`torch.bmm`). A product with ≈ 16 rows runs on one core; the batch
    runs its slices on separate cores (`benchmarks/gram_floor.py`). The split is a fixed number, not taken
    from the thread count, so the order of the slices' sum is the same on every machine. A width the split
    does not divide is one product."""
    sa, sb = column_slices(a, split), column_slices(b, split)
    if sa is None or sb is None:
        return a @ b.T
    return torch.bmm(sa, sb.transpose(1, 2)).sum(0)


def block_gram(a: torch.Tensor, split: int = GRAM_SPLIT) -> torch.Tensor:
    """a a^T of one (n, B) float64 block (`slice_product`)."""
    return slice_product(a, a, split)


def upper_bands(n: int, band: int = GRAM_BAND) -> list[tuple[int, int]]:
    """Row bands (lo, hi) of rows 1..n−1 of a relative Gram matrix (row 0, a_1 = 0, has none), `band`
    rows each: band (lo, hi) multiplies rows lo..hi−1 by rows lo..n−1, the upper block triangle, so the
    products hold about half of the n² entries instead of all of them."""
    return [(lo, min(lo + band, n)) for lo in range(1, n, band)]


def mirrored_upper(g: torch.Tensor) -> torch.Tensor:
    """The symmetric matrix (or stack of matrices) whose upper triangle, diagonal included, is g's: exactly
    symmetric."""
    return torch.triu(g) + torch.triu(g, 1).transpose(-2, -1)


def relative_gram(part: torch.Tensor | Sequence[torch.Tensor], block: int = GRAM_BLOCK,
                  split: int = GRAM_SPLIT, band: int = GRAM_BAND, buf: torch.Tensor | None = None) -> torch.Tensor:
    """A A^T for A = `relative_rows(part)`: (n, n) float64, on the tensors' device.

    On the CPU a tensor of more than `block` coordinates is taken a block of columns at a time, so each widened
    block is multiplied while it is still in cache instead of writing and re-reading all of A (`buf`, an
    (n, ≥ block) float64 matrix, may be lent for the blocks, so that the tensors of one weighting step share
    it). Each block's product is taken as bands of `band` rows against the rows from the band's first on
    (`upper_bands`: the upper block triangle, without the zero row of θ_1), each band as `split` column slices
    in one batched product (`slice_product`), and the lower triangle is the upper's mirror.
    `benchmarks/gram_floor.py` times the ways against each other. The blocks, bands and slices change only
    the order of float64 additions (Gram entries change by about 1e-13 relative); a tensor of at most
    `block` coordinates, and any tensor on a GPU, is one product.
    """
    first = part[0]
    if first.device.type != "cpu" or first.numel() <= block:
        a = relative_rows(part)
        return a @ a.T
    n = len(part)
    if buf is None or buf.shape[0] != n or buf.shape[1] < block:
        buf = torch.empty(n, block, dtype=torch.float64)
    with torch.no_grad():
        gram = torch.zeros(n, n, dtype=torch.float64)
        bands = upper_bands(n, band)
        full = FullBlocks(buf[:, :block], bands, split)
        for chunk in zip(*(x.reshape(-1).split(block) for x in part)):     # the n networks' k-th block
            if chunk[0].numel() == block:
                full.add(chunk)
            else:                                                           # the last, shorter block
                a = relative_rows(chunk, out=buf[:, :chunk[0].numel()])
                for lo, hi in bands:
                    gram[lo:hi, lo:] += slice_product(a[lo:hi], a[lo:], split)
        full.sum_into(gram)
        return mirrored_upper(gram)


class FullBlocks:
    """The banded Gram products of full blocks of columns, summed per band and per column slice (each
    band's slices (split, h, n − lo), `torch.baddbmm_`), with every view of the block's matrix taken once:
    per block, one widening subtraction per network and one product per band."""

    def __init__(self, a: torch.Tensor, bands: list[tuple[int, int]], split: int):
        n, width = a.shape
        k = split if split >= 1 and width % split == 0 else 1
        sliced = a.reshape(n, k, width // k).transpose(0, 1)               # (k, n, width / k), a view
        self.rows, self.bands = a.unbind(0), bands
        self.products = [(sliced[:, lo:hi], sliced[:, lo:].transpose(1, 2)) for lo, hi in bands]
        self.sums = [torch.zeros(k, hi - lo, n - lo, dtype=torch.float64) for lo, hi in bands]

    def add(self, chunk: Sequence[torch.Tensor]) -> None:
        """Take the networks' block relative to the first, widened (`relative_rows`; row 0, a_1 = 0, is
        in no band and is not written), into the held matrix and add its banded products."""
        for row, x in zip(self.rows[1:], chunk[1:]):
            torch.sub(x, chunk[0], out=row)
        for (lhs, rhs), acc in zip(self.products, self.sums):
            acc.baddbmm_(lhs, rhs)

    def sum_into(self, gram: torch.Tensor) -> None:
        for (lo, hi), acc in zip(self.bands, self.sums):
            gram[lo:hi, lo:] += acc.sum(0)


def layer_sq_distances(stacks: Sequence[torch.Tensor | Sequence[torch.Tensor | Sequence[torch.Tensor]]]) -> torch.Tensor:
    """‖θ_i^l − θ_j^l‖² for every layer: (L, n, n), computed once (`LayerDistances`, whose scratch is then
    dropped)."""
    return LayerDistances()(stacks)


class LayerDistances:
    """‖θ_i^l − θ_j^l‖² for every layer, (L, n, n), keeping its scratch matrices from one call to the next.

    A call takes `stacks`: `stacks[l]` is layer l as one (n, P_l) matrix whose row i is θ_i^l, or as a list of
    its parameter tensors, each given for the n networks as an (n, …) stack or a list of n tensors
    (`Ensemble.layer_rows()`), all on one device. Rows are taken relative to the first, a_i = θ_i − θ_1
    (`relative_rows`: distances do not change), and the Gram identity ‖a_i − a_j‖² = ‖a_i‖² + ‖a_j‖² − 2 a_i·a_j
    gives every pair from float64 products (its cancellation loses none of the a_i's float32 digits), on the
    tensors' device:

    - the tensors of at most `GRAM_BLOCK` coordinates, of every layer, as one merged matrix: each network's
      row concatenated in one copy, one widening subtraction, and one product per layer over its columns;
    - a larger tensor, on the CPU, a block of columns at a time (`relative_gram`, in one kept block matrix);
      on a GPU, one product.

    Each layer's Gram is made exactly symmetric (`mirrored_upper`); d² is clamped at 0, with an exact zero
    diagonal; returned on the CPU. The merged matrices (12 bytes per small coordinate per network, float32
    and float64: three times what the networks' own small tensors take) and the CPU's (n, `GRAM_BLOCK`)
    float64 block matrix are kept for the next call, since fresh memory costs its page faults on every first
    touch (22 MB at n = 16 for ae9 of width 32; README "Benchmarks" times kept against fresh). A session
    holds one.
    """

    def __init__(self) -> None:
        self.kept: dict[str, torch.Tensor] = {}         # the scratch matrices, by name

    def __call__(self, stacks: Sequence[torch.Tensor | Sequence[torch.Tensor | Sequence[torch.Tensor]]]) -> torch.Tensor:
        """(L, n, n) squared distances of the tensors as they are now."""
        layers = [[layer] if isinstance(layer, torch.Tensor) else list(layer) for layer in stacks]
        first = layers[0][0]
        n, device = len(first), first[0].device
        with torch.no_grad():
            grams = torch.zeros(len(layers), n, n, dtype=torch.float64, device=device)    # A A^T per layer
            self._add_small(layers, grams)
            for l, layer in enumerate(layers):
                for part in layer:
                    if part[0].numel() > GRAM_BLOCK:
                        buf = self._scratch("block", (n, GRAM_BLOCK), torch.float64, device) if device.type == "cpu" \
                            else None
                        grams[l] += relative_gram(part, buf=buf)
            grams = mirrored_upper(grams).cpu()
        sq = grams.diagonal(dim1=1, dim2=2)                                                 # ‖a_i‖², (L, n)
        d2 = (sq[:, :, None] + sq[:, None, :] - 2 * grams).clamp_min_(0)
        d2.diagonal(dim1=1, dim2=2).zero_()
        return d2

    def _scratch(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The kept matrix `name`, allocated again only when its shape, dtype or device changes."""
        kept = self.kept.get(name)
        if kept is None or kept.shape != shape or kept.dtype != dtype or kept.device != device:
            kept = self.kept[name] = torch.empty(shape, dtype=dtype, device=device)
        return kept

    def _add_small(self, layers: list[list[torch.Tensor | Sequence[torch.Tensor]]], grams: torch.Tensor) -> None:
        """Add to each layer's Gram in `grams` (L, n, n) the A A^T of its tensors of at most `GRAM_BLOCK`
        coordinates, from one (n, S) matrix of every layer's: row i is network i's tensors flattened and
        concatenated, layer by layer (one copy per network), taken relative to row 0 in one widening
        subtraction (`relative_rows`)."""
        n, device = grams.shape[1], grams.device
        spans: list[tuple[int, int, int]] = []          # (layer, first column, end column) of the merged matrix
        parts: list[torch.Tensor | Sequence[torch.Tensor]] = []
        width = 0
        for l, layer in enumerate(layers):
            small = [part for part in layer if part[0].numel() <= GRAM_BLOCK]
            if small:
                spans.append((l, width, width + sum(part[0].numel() for part in small)))
                width = spans[-1][2]
                parts += small
        if not parts:
            return
        dtype = functools.reduce(torch.promote_types, (part[0].dtype for part in parts))
        merged = self._scratch("small", (n, width), dtype, device)                          # (n, S)
        for i in range(n):
            torch.cat([part[i].reshape(-1) for part in parts], out=merged[i])
        a = relative_rows(merged, out=self._scratch("small64", (n, width), torch.float64, device))   # (n, S)
        for l, start, end in spans:
            cols = a[:, start:end]
            grams[l] += cols @ cols.T


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


WEIGHT_FUNCTIONS = ("paper", "gm")      # eq. 7 as printed; the exact IRLS (majorize-minimize) weight of ρ
SIGMA_SCHEDULES = ("fixed", "refit", "anneal")
PENALTIES = ("raw", "normalized")


def weighting_step(window_d2: torch.Tensor, *, schedule: str, fixed: torch.Tensor, previous: torch.Tensor | None,
                   kind: str = "paper", rate: float = 1.4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step 1 of an IRLS iteration from the parameters' window distances: (σ^(k), σ_refit, w^(k)).

    σ^(k) by the σ schedule (`next_sigma`, with `previous` = σ^(k−1) or None at k = 1), then w^(k) by
    the weight function (`irls_weights`)."""
    refit = sigma_from(window_d2)
    sigma = next_sigma(schedule, fixed=fixed, refit=refit, previous=previous, window_d2=window_d2, kind=kind,
                       rate=rate)
    return sigma, refit, irls_weights(window_d2, sigma, kind)


def irls_weights(window_d2: torch.Tensor, sigma: torch.Tensor, kind: str = "paper") -> torch.Tensor:
    """IRLS weights (W, n, n) with w_iiw = 1.

    `paper` (eq. 7):  w_ijw = σ_w² / (σ_w² + d_ijw²), the splitting ρ = w·d².
    `gm`:             w_ijw = σ_w⁴ / (σ_w² + d_ijw²)² = ∂ρ/∂(d²), the square of eq. 7. ρ(u) = σ²u/(σ²+u)
                      is concave in u = d², so its tangent at the current u majorizes it: minimizing the
                      problem weighted this way cannot increase eq. 4 (the classic IRLS weight).
    The limit σ = d = 0 (identical networks) is taken as 1: nothing separates them.
    """
    if kind not in WEIGHT_FUNCTIONS:
        raise ValueError(f"unknown weight function {kind!r}")
    s2 = sigma.double().pow(2)[:, None, None]
    den = s2 + window_d2.double()
    w = torch.where(den > 0, s2 / den.clamp_min(torch.finfo(torch.float64).tiny), torch.ones_like(den))
    if kind == "gm":
        w = w * w
    n = w.shape[1]
    w[:, torch.arange(n), torch.arange(n)] = 1.0
    return w


def anneal_start(window_d2: torch.Tensor, kind: str = "paper", at_least: float = 0.99) -> torch.Tensor:
    """σ_w^(1) of the annealed (graduated non-convexity) schedule: the smallest σ_w giving every pair
    a weight ≥ `at_least`, so the first robust problem is the L2 warm start's: (W,).

    With s = at_least^(1/p) (p = 1 for `paper`, 2 for `gm`), w ≥ at_least ⇔ σ² ≥ d² s / (1 − s).
    """
    s = at_least ** (0.5 if kind == "gm" else 1.0)
    n = window_d2.shape[1]
    if n < 2:
        return torch.zeros(window_d2.shape[0], dtype=torch.float64)
    largest = window_d2.double().flatten(1).max(dim=1).values.sqrt()
    return largest * math.sqrt(s / (1 - s))


def next_sigma(schedule: str, *, fixed: torch.Tensor, refit: torch.Tensor, previous: torch.Tensor | None,
               window_d2: torch.Tensor, kind: str = "paper", rate: float = 1.4) -> torch.Tensor:
    """σ_w^(k) for the weighting step of iteration k (DESIGN §1b), all (W,):

    `fixed`:  σ_w from the warm start (the paper), whatever k.
    `refit`:  σ_w^(k) = mean_i min_{j≠i} d_ijw on the parameters before iteration k (`refit`).
    `anneal`: σ^(1) = `anneal_start` (every w ≥ 0.99); σ^(k) = max(σ^(k−1) / rate, refit^(k)).
    """
    if schedule == "fixed":
        return fixed.double()
    if schedule == "refit":
        return refit.double()
    if schedule == "anneal":
        if previous is None:
            return torch.maximum(anneal_start(window_d2, kind), refit.double())
        return torch.maximum(previous.double() / rate, refit.double())
    raise ValueError(f"unknown σ schedule {schedule!r}")


def delta(w_new: torch.Tensor, w_old: torch.Tensor) -> float:
    """δ = max_{i<j, w} |w_ijw^(k) − w_ijw^(k−1)| (paper §4.2.2); 0 when n = 1."""
    n = w_new.shape[1]
    iu = torch.triu_indices(n, n, offset=1)
    diff = (w_new.double() - w_old.double())[:, iu[0], iu[1]].abs()
    return float(diff.max()) if diff.numel() else 0.0


def coupling(weights: torch.Tensor, lam: float, num_layers: int, windows: Windows | None = None,
             sigma: torch.Tensor | None = None) -> torch.Tensor:
    """C[l, i, j] = c_ijl = λ (w_ij,l−1 + w_ij,l) (eq. 6): (L, n, n), symmetric, zero diagonal.

    Layer l sits in windows l−1 and l; a window that does not exist counts 0.
    A single-layer network has one window, holding that layer. In general
    c_ijl = λ Σ_{windows w ∋ l} w_ijw.

    With `sigma` (the `normalized` penalty) each window's weight is divided by σ_w²:
    c_ijl = λ Σ_{w ∋ l} w_ijw / σ_w², the coupling of λ Σ w d²/σ² (λ in data-loss units per pair).
    """
    if windows is None:
        windows = chain_windows([num_layers])
    W, n, _ = weights.shape
    assert W == len(windows), f"{W} window weights for {len(windows)} windows"
    scale = torch.ones(W, dtype=torch.float64) if sigma is None else \
        1.0 / sigma.double().pow(2).clamp_min(torch.finfo(torch.float64).tiny)
    c = torch.zeros(num_layers, n, n, dtype=torch.float64)
    for w, win in enumerate(windows):
        for l in win:
            c[l] += weights[w].double() * scale[w]
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


def robust_consistency(window_d2: torch.Tensor, sigma: torch.Tensor, lam: float, normalized: bool = False) -> float:
    """λ Σ_{i<j} Σ_w ρ(d_ijw, σ_w) — the consistency term of the robust objective (eq. 4);
    `normalized`: λ Σ ρ(d_ijw, σ_w) / σ_w², each term in [0, 1)."""
    s = sigma.double()[:, None, None]
    rho = geman_mcclure(window_d2.double().sqrt(), s)
    if normalized:
        rho = rho / s.pow(2).clamp_min(torch.finfo(torch.float64).tiny)
    return lam * float(_upper(rho).sum())


def prox_matrix(c: torch.Tensor, eta: float) -> torch.Tensor:
    """P = (I + 2η Lap(c))⁻¹ per layer: (L, n, n) from the (L, n, n) coupling.

    The exact proximal step of η Σ_{i<j} c_ij ‖θ_i − θ_j‖² taken by all networks at once:
    argmin_θ Σ_i ‖θ_i − θ̃_i‖² / 2 + η Σ_{i<j} c_ij ‖θ_i − θ_j‖² is θ = P θ̃, with Lap(c) = diag(Σ_j c_ij) − c.
    P is symmetric with rows summing to 1: each network moves to a weighted mean of all, and a strongly
    coupled group moves to its common mean (consensus) instead of being pinned to the others' old values.
    """
    c = c.double()
    lap = torch.diag_embed(c.sum(dim=-1)) - c
    eye = torch.eye(c.shape[-1], dtype=torch.float64).expand_as(c)
    return torch.linalg.inv(eye + 2 * eta * lap)


def prox_fraction(strength: torch.Tensor | float, eta: float) -> torch.Tensor | float:
    """f = 2ηC / (1 + 2ηC): network i alone (others fixed) moves θ_i ← θ_i − f (θ_i − m_i), the exact
    proximal step of η C_i ‖θ_i − m_i‖² (eq. 9's block term)."""
    return 2 * eta * strength / (1 + 2 * eta * strength)


def anchor_weights(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 9 for every network at once, from a layer's (n, n) coupling or all layers' (L, n, n):
    C_i = Σ_j c_ij (…, n), the strength pulling θ_i to its anchor, and c_ij / C_i (…, n, n), the
    mixing weights of the anchor m_i = Σ_j c_ij θ_j / C_i. A row with C_i = 0 mixes nothing (all zero)."""
    strengths = c.sum(dim=-1)
    return strengths, c / strengths.clamp_min(torch.finfo(c.dtype).tiny)[..., None]
