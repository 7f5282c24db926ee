"""Block-coordinate descent for the coupled problem (paper §4.2.3, eqs. 6 and 9).

For network i with the others fixed, eq. 6 reduces to

    f_i(θ_i) + Σ_l C_il ‖θ_i^l − m_il‖² + const,   C_il = Σ_j c_ijl,   m_il = Σ_j c_ijl θ_j^l / C_il

so each block is ordinary training with every layer pulled towards its anchor.
The pull enters as its exact gradient 2 C_il (θ_i^l − m_il) = 2 Σ_j c_ijl (θ_i^l − θ_j^l),
added to the data gradient before the optimizer step (the same as adding the
penalty to the loss, without building it into the autograd graph).

`block="epoch"` (the paper) trains each network one epoch in turn against the
others' current parameters; `block="step"` goes round-robin, one mini-batch
per network, with anchors refreshed before every step.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from jointnet_cli.data.loader import DomainData
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.precision import FULL, Precision
from jointnet_cli.joint.weights import anchor_weights, column_slices, prox_fraction
from jointnet_cli.seeding import derive_seed, generator, seed_noise
from jointnet_cli.tasks import Task


Anchor = tuple[float, list[torch.Tensor]]   # (C_il, m_il as tensors shaped like θ_i^l's parameters)


def anchors(ens: Ensemble, c: torch.Tensor, i: int) -> dict[int, Anchor]:
    """Eq. 9: for every layer l of network i with C_il > 0, the strength C_il and anchor m_il, summed
    network by network (`summed_anchor`)."""
    strengths, mix = anchor_weights(c)
    return {l: (float(strengths[l, i]), summed_anchor(ens, mix[l, i], l))
            for l in range(ens.num_layers) if strengths[l, i] > 0}


def summed_anchor(ens: Ensemble, mix: torch.Tensor, l: int) -> list[torch.Tensor]:
    """m_il = Σ_j mix_j θ_j^l over the networks with mix_j ≠ 0, one multiply and one add per term (each
    rounded), the layer's tensors at once."""
    with torch.no_grad():
        js = [j for j in range(ens.n) if mix[j] != 0]
        m = torch._foreach_mul(ens.params[js[0]][l], float(mix[js[0]]))
        for j in js[1:]:
            torch._foreach_add_(m, torch._foreach_mul(ens.params[j][l], float(mix[j])))
    return list(m)


STACKED_FROM = 8     # networks from which the anchors come from a stacked copy (README "Benchmarks")
SPLIT_FROM = 1 << 14     # coordinates of a tensor from which its anchor is taken as 2 batched slices


def mixed_rows(rows: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Σ_j mix_j rows[j] for an (n, size) matrix: (size,), one matrix–vector product.

    On the CPU a matrix–vector product runs on one core; from `SPLIT_FROM` coordinates on, the columns are
    taken as two equal slices in one batched product, which runs them on separate cores (README "Benchmarks":
    a round's anchors at n = 16). Each coordinate is the same sum over j either way. A GPU keeps the one
    product."""
    n, size = rows.shape
    slices = column_slices(rows, 2) if size >= SPLIT_FROM and rows.device.type == "cpu" else None
    if slices is None:
        return torch.mv(rows.t(), mix)
    return torch.bmm(mix.expand(2, 1, n), slices).view(size)


class Anchors:
    """Eq. 9's anchors for a round with coupling `c` (its strengths and mixing weights taken once), from a
    stacked copy of the parameters when there are many networks.

    With n ≥ `STACKED_FROM` networks, the parameters of every layer that c couples are copied into one
    (n, size) matrix per tensor (`Ensemble.parameter_rows`), and m_il = Σ_j (c_ijl / C_il) θ_j^l is one
    matrix–vector product per tensor (`mixed_rows`): one pass over the n networks' parameters, where the sum network
    by network (`summed_anchor`) makes n − 1 passes with a temporary each. It costs a copy of the coupled layers in
    memory and a copy of a network after it changes (`refresh`). Fewer networks, and a layer of network i that some
    other network does not pull on (c_ijl = 0: the sum skips that network, so one that diverged cannot reach i
    through 0 × inf), keep the sum. README "Benchmarks": a round's anchors at n = 16 in 109–163 ms instead of
    258–335 by the sum. On the development CPU the product adds the terms in order and rounds each as the sum does
    (the same bits); other hardware may differ in the last bit.
    """

    def __init__(self, ens: Ensemble, c: torch.Tensor):
        self.ens = ens
        self.strengths, self.mix = anchor_weights(c)          # C_il (L, n) and c_ijl / C_il (L, n, n), once
        self.pulled_by_all = (self.mix != 0).sum(dim=2) >= ens.n - 1      # (L, n): no c_ijl = 0 for j ≠ i
        coupled = [l for l in range(ens.num_layers) if bool((c[l] > 0).any())]
        self.rows = {l: ens.parameter_rows(l) for l in coupled} if ens.n >= STACKED_FROM else {}
        self.refresh()

    def refresh(self, i: int | None = None) -> None:
        """Copy network i's current parameters (or every network's) into the stacked copy."""
        with torch.no_grad():
            for j in range(self.ens.n) if i is None else (i,):
                for l, rows in self.rows.items():
                    for r, p in zip(rows, self.ens.params[j][l]):
                        r[j].copy_(p.reshape(-1))

    def __call__(self, i: int) -> dict[int, Anchor]:
        """Eq. 9 for network i: {l: (C_il, m_il)} for the layers with C_il > 0."""
        strengths, mix = self.strengths[:, i], self.mix[:, i, :]
        out: dict[int, Anchor] = {}
        with torch.no_grad(), torch.autocast(self.ens.params[i][0][0].device.type, enabled=False):
            for l in range(self.ens.num_layers):
                if strengths[l] <= 0:
                    continue
                if l not in self.rows or not self.pulled_by_all[l, i]:
                    out[l] = (float(strengths[l]), summed_anchor(self.ens, mix[l], l))
                    continue
                row = mix[l].to(device=self.rows[l][0].device, dtype=self.rows[l][0].dtype)
                out[l] = (float(strengths[l]), [mixed_rows(r, row).view_as(p)
                                                for r, p in zip(self.rows[l], self.ens.params[i][l])])
        return out


def add_coupling_grad(params: list[list[torch.Tensor]], anchor: dict[int, Anchor],
                      only: frozenset[int] | None = None) -> None:
    """grad θ_i^l += 2 C_il (θ_i^l − m_il): the gradient of C_il ‖θ_i^l − m_il‖² (layers in `only`, or all).

    Each layer's tensors are updated together (multi-tensor `_foreach` ops: on a GPU, a few kernels per layer
    rather than two per tensor)."""
    with torch.no_grad():
        for l, (strength, ms) in anchor.items():
            if only is not None and l not in only:
                continue
            for p in params[l]:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            torch._foreach_add_([p.grad for p in params[l]], torch._foreach_sub(params[l], ms), alpha=2.0 * strength)


def apply_prox(params: list[list[torch.Tensor]], anchor: dict[int, Anchor], eta: float) -> None:
    """θ_i^l ← θ_i^l − f (θ_i^l − m_il), f = 2ηC_il / (1 + 2ηC_il): the exact proximal step of
    η C_il ‖θ_i^l − m_il‖² (`--apply prox`: the pull is decoupled from the optimizer, as AdamW decouples
    weight decay, so Adam's normalisation does not rescale it). Taken *before* the network's data step,
    so the step starts from the point the others pull it to and is kept whole: with `--block step` a
    strongly coupled group then carries each member's progress on to the next (Gauss–Seidel), as one
    network trained on the group's union would."""
    with torch.no_grad():
        for l, (strength, ms) in anchor.items():
            torch._foreach_lerp_(params[l], ms, float(prox_fraction(strength, eta)))


def _step(ens: Ensemble, i: int, task: Task, dom: DomainData, idx: torch.Tensor, gen: torch.Generator,
          anchor: dict[int, Anchor], noise_seed: int, prox: float | None = None,
          precision: Precision = FULL) -> tuple[torch.Tensor, dict]:
    """One mini-batch of network i; returns (loss × batch size, per-batch statistics).

    Layers that draw from the global generator (dropout) get it seeded by `noise_seed`, a
    function of the round, network and step, so a step is the same whatever ran before it.
    With `prox` (the step size η) the coupling is a proximal step before the optimizer's, not a gradient.
    `precision`: the forward pass under autocast (and fp16's gradient scaler); the coupling stays float32.
    """
    seed_noise(noise_seed, dom.train.images.device)
    net, opts = ens.nets[i], ens.optimizers[i]
    if prox is not None:
        apply_prox(ens.params[i], anchor, prox)
    if not task.one_loss:                # tasks with several players run their own update order
        couple = (lambda only=None: None) if prox is not None else \
            (lambda only=None: add_coupling_grad(ens.params[i], anchor, only))
        with precision.autocast():                                  # (GAN players: bf16-mixed or 32)
            loss, stats = task.step(net, opts, dom.train, idx, gen, couple)
        return loss.detach().float() * idx.numel(), stats
    (opt,) = opts
    opt.zero_grad(set_to_none=True)      # backward writes fresh gradients (accumulating into zeros costs ~8 %)
    with precision.autocast():
        loss = task.loss(net, dom.train, idx, gen)
    precision.backward_and_step(loss, opt, None if prox is not None else
                                (lambda: add_coupling_grad(ens.params[i], anchor)))
    return loss.detach().float() * idx.numel(), {}


class RoundSteps:
    """The steps of one round for the networks `indices`: each network's generator (keyed by the round),
    and what the round adds up per network (loss × batch size, the task's per-batch statistics, batches)."""

    def __init__(self, ens: Ensemble, domains: list[DomainData], task: Task, indices: list[int], *, seed: int,
                 key: tuple, on_step: Callable[[], None] | None = None, prox: float | None = None,
                 precision: Precision = FULL):
        self.ens, self.domains, self.task, self.seed, self.key, self.on_step = ens, domains, task, seed, key, on_step
        self.precision = precision
        self.prox = prox                  # η of the decoupled proximal coupling, or None: coupling as a gradient
        self.gens = {i: generator(seed, *key, ens.names[i]) for i in indices}
        self.totals = {i: torch.zeros((), device=domains[i].train.images.device) for i in indices}
        self.sums: dict[int, dict] = {i: {} for i in indices}
        self.counts = {i: 0 for i in indices}

    def batches(self, i: int, batch_size: int) -> Iterator[torch.Tensor]:
        """Network i's mini-batches of this round, shuffled by its generator."""
        return self.domains[i].train.batches(batch_size, self.gens[i])

    def step(self, i: int, idx: torch.Tensor, anchor: dict[int, Anchor]) -> None:
        """One mini-batch of network i against `anchor`; dropout seeded by the round, network and step."""
        loss, batch_stats = _step(self.ens, i, self.task, self.domains[i], idx, self.gens[i], anchor,
                                  derive_seed(self.seed, *self.key, self.ens.names[i], "noise", self.counts[i]),
                                  self.prox, self.precision)
        self.totals[i] += loss
        for k, v in batch_stats.items():
            self.sums[i][k] = self.sums[i].get(k, 0.0) + v
        self.counts[i] += 1
        if self.on_step:
            self.on_step()

    def mean_loss(self, i: int) -> float:
        """f_i averaged over the round's images."""
        return float(self.totals[i]) / len(self.domains[i].train)

    def mean_stats(self, i: int) -> dict[str, float]:
        """The task's per-batch statistics of network i averaged over the round's batches (empty if none)."""
        return {k: float(v) / self.counts[i] for k, v in self.sums[i].items()}


def train_round(ens: Ensemble, c: torch.Tensor, domains: list[DomainData], task: Task, *,
                batch_size: int, seed: int, key: tuple, block: str = "epoch",
                on_step: Callable[[], None] | None = None, stats: dict | None = None,
                prox: float | None = None, precision: Precision = FULL) -> list[float]:
    """One BCD round: every network trains one epoch of its own data against its anchors.

    `c` is the (L, n, n) coupling tensor; `key` names the round so its random
    draws (batch order, holes, latents) are the same on a rerun. Returns the
    mean data loss f_i of each network over the round; when `stats` is a dict
    it receives the mean of the task's per-batch statistics per dataset. `prox` (η): the coupling as
    a proximal step before each optimizer step (`apply_prox`) instead of a gradient.
    """
    n = ens.n
    steps = RoundSteps(ens, domains, task, list(range(n)), seed=seed, key=key, on_step=on_step, prox=prox,
                       precision=precision)
    anchor_of = Anchors(ens, c)
    if block == "epoch":
        for i in range(n):
            anchor = anchor_of(i)
            for idx in steps.batches(i, batch_size):
                steps.step(i, idx, anchor)
            anchor_of.refresh(i)
    elif block == "step":
        iters = [iter(steps.batches(i, batch_size)) for i in range(n)]
        live = list(range(n))
        while live:
            for i in list(live):
                idx = next(iters[i], None)
                if idx is None:
                    live.remove(i)
                    continue
                steps.step(i, idx, anchor_of(i))
                anchor_of.refresh(i)
    else:
        raise ValueError(f"unknown block {block!r}")
    if stats is not None:
        stats.update({ens.names[i]: s for i in range(n) if (s := steps.mean_stats(i))})
    return [steps.mean_loss(i) for i in range(n)]


def steps_per_round(domains: list[DomainData], batch_size: int) -> int:
    return sum(d.train.num_batches(batch_size) for d in domains)
