"""The `batched` schedule: all n networks take each optimizer step together (DESIGN §1 "Schedules").

The objective is the one `bcd` minimizes (eq. 6),

    Σ_i f_i(θ_i) + Σ_{i<j} Σ_l c_ijl ‖θ_i^l − θ_j^l‖²,

but instead of one network at a time against fixed anchors, every step moves
all networks at once along the gradient of the whole objective at the current
("live") parameters:

    grad θ_i = ∇f_i(θ_i) + 2 Σ_j c_ijl (θ_i^l − θ_j^l)       (per layer l)

with the coupling term taken from the parameters before the step, for every
network alike. 2 Σ_j c_ijl (θ_i^l − θ_j^l) = 2 C_il (θ_i^l − m_il) is bcd's pull
towards the anchor of eq. 9, computed for all i in one matrix product.

Each network draws exactly the mini-batches (and holes, augmentations) `bcd`
draws: its own generator keyed by the round and its dataset (dropout, which
draws from torch's global generator, gets it seeded per step: a rerun draws the
same masks, though not bcd's). At a step every
network that still has a batch this epoch takes its next one; networks whose
batches have the same size run as one `torch.func.vmap` of
`torch.func.functional_call` over their stacked parameters and buffers.
Stacking the buffers gives every network its own BatchNorm running
statistics: they are updated inside the vmapped calls and copied back into the
network's module at the end of the round, so evaluation (eval mode, module by
module) uses them. Each network's parameters are stepped with the state of its
own Adam optimizer, so optimizer state, snapshots and resuming are exactly
those of `bcd`; the n updates run as one (`one_optimizer`), which on a GPU is
one multi-tensor update instead of n.
"""

from __future__ import annotations

from itertools import count
from typing import Callable, Protocol

import torch
from torch.func import functional_call, vmap

from jointnet_cli.data.loader import DomainData, SplitTensors
from jointnet_cli.errors import UserError
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.seeding import derive_seed, generator


class BatchedTask(Protocol):
    """A task whose loss splits into drawing a batch and scoring a network's output (ae, classify)."""

    def inputs(self, split: SplitTensors, idx: torch.Tensor,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...
    def criterion(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


def anchor_terms(c_l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 9 for every network i of layer l at once: (2 C_i, c_ij / C_i), from the (n, n) coupling c_l.

    C_i = Σ_j c_ij is the strength of network i's pull and c_ij / C_i mixes the anchor
    m_i = Σ_j c_ij θ_j / C_i; a row with C_i = 0 mixes nothing.
    """
    strength = c_l.sum(dim=1)                                               # (n,)  C_i
    mix = c_l / strength.clamp_min(torch.finfo(c_l.dtype).tiny)[:, None]    # (n, n) c_ij / C_i
    return 2 * strength, mix


def pull(theta: torch.Tensor, two_strength: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """2 C_i (θ_i − m_i) = 2 Σ_j c_ij (θ_i − θ_j) for every network i at once: the gradient of
    Σ_{i<j} c_ij ‖θ_i − θ_j‖² (eq. 6) on one parameter tensor of the layer, `theta` (n, *shape).

    Computed through the anchors of eq. 9, as `bcd` does, so nearly equal networks lose no digits;
    `two_strength` and `mix` come from `anchor_terms`.
    """
    anchor = (mix @ theta.reshape(theta.shape[0], -1)).view_as(theta)       # (n, *shape)  m_i
    return two_strength.view(-1, *[1] * (theta.dim() - 1)) * (theta - anchor)


def same_size_groups(sizes: dict[int, int]) -> list[list[int]]:
    """Networks (by index, in order) grouped by the size of their current batch: one vmapped call each."""
    groups: dict[int, list[int]] = {}
    for i, size in sizes.items():
        groups.setdefault(size, []).append(i)
    return list(groups.values())


def _forward_backward(ens: Ensemble, task: BatchedTask, rows: torch.Tensor | None, theta: dict[str, torch.Tensor],
                      buffers: dict[str, torch.Tensor],
                      inputs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The data losses f_i of the networks `rows` (None: all n) on their batches, and their gradients, in one vmapped call.

    `theta` holds the stacked parameters and `buffers` the stacked buffers of all n networks; `inputs`
    the (x, target) of each network of the group. Returns the (g,) losses and each parameter's
    (g, *shape) gradient. The group's BatchNorm running statistics are updated in `buffers`.
    """
    params = {k: (v if rows is None else v[rows]).detach().requires_grad_() for k, v in theta.items()}
    own = buffers if rows is None else {k: v[rows] for k, v in buffers.items()}
    x = torch.stack([xi for xi, _ in inputs])                     # (g, B, …)
    target = torch.stack([t for _, t in inputs])                  # (g, B, …)
    net = ens.nets[0]

    def data_loss(p: dict, b: dict, xi: torch.Tensor, ti: torch.Tensor) -> torch.Tensor:
        return task.criterion(functional_call(net, (p, b), (xi,)), ti)

    losses = vmap(data_loss, randomness="different")(params, own, x, target)   # (g,); updates `own` in place
    losses.sum().backward()                                        # each network's loss reaches only its own slice
    if rows is not None:
        with torch.no_grad():
            for k, v in own.items():                               # a subset's statistics were a copy: put them back
                buffers[k][rows] = v
    grads = {k: p.grad if p.grad is not None else torch.zeros_like(p) for k, p in params.items()}
    return losses.detach(), grads


def one_optimizer(opts: list[torch.optim.Optimizer]) -> torch.optim.Optimizer:
    """One optimizer over the parameters of all `opts` that shares each parameter's state with its own.

    The networks' optimizers (one each, alike but for their parameters) keep the state that snapshots
    save; stepping them through this one runs the update of all networks as one multi-tensor
    (foreach) update on a GPU instead of n. A parameter whose grad is None is not stepped.
    """
    first = opts[0]
    settings = {k: v for k, v in first.param_groups[0].items() if k != "params"}
    for opt in opts:
        if type(opt) is not type(first) or len(opt.param_groups) != 1 or \
                {k: v for k, v in opt.param_groups[0].items() if k != "params"} != settings:
            raise ValueError("the batched schedule needs one optimizer per network, all with the same settings")
    merged = type(first)([{"params": [p for opt in opts for p in opt.param_groups[0]["params"]], **settings}])
    for opt in opts:
        for p in opt.param_groups[0]["params"]:
            merged.state[p] = opt.state[p]                         # the same dict: updates land in `opt`
    return merged


def train_round_batched(ens: Ensemble, c: torch.Tensor, domains: list[DomainData], task: BatchedTask, *,
                        batch_size: int, seed: int, key: tuple, block: str = "epoch",
                        on_step: Callable[[], None] | None = None, stats: dict | None = None) -> list[float]:
    """One round of the batched schedule: every network one epoch of its own data, all stepping together.

    Arguments and result are those of `bcd.train_round` (`block` is a bcd setting and is not
    used): `c` is the (L, n, n) coupling, `key` names the round's random draws, and the result is
    the mean data loss f_i of each network over the round. `stats` is left empty: only GAN tasks
    report per-batch statistics, and they train with `bcd`.
    """
    if not (hasattr(task, "inputs") and hasattr(task, "criterion")):
        raise UserError(f"--schedule batched needs one loss per network; {getattr(task, 'name', 'this')} runs use "
                        "--schedule bcd")
    n = ens.n
    named = [dict(net.named_parameters()) for net in ens.nets]
    layer_of = {name: l for l, group in enumerate(ens.layers) for name in group}
    like = named[0][ens.layers[0][0]]
    terms = {l: anchor_terms(c[l].to(device=like.device, dtype=like.dtype))    # layer → (2 C_il, c_ijl / C_il)
             for l in range(len(ens.layers)) if c[l].any()}
    coupled = {name: terms[l] for name, l in layer_of.items() if l in terms}
    gens = [generator(seed, *key, ens.names[i]) for i in range(n)]
    batches = [iter(d.train.batches(batch_size, g)) for d, g in zip(domains, gens)]
    totals = torch.zeros(n, device=like.device, dtype=like.dtype)
    optimizer = one_optimizer([opt for (opt,) in ens.optimizers])
    optimizer.zero_grad(set_to_none=True)                        # only networks with a batch step
    own = [dict(net.named_buffers()) for net in ens.nets]
    buffers = {k: torch.stack([b[k] for b in own]) for k in own[0]}   # (n, *shape): the round's running statistics
    index: dict[tuple[int, ...], torch.Tensor] = {}                   # a group's rows, copied to the device once

    def rows_of(group: list[int]) -> torch.Tensor:
        key = tuple(group)
        if key not in index:                                          # (a copy to a GPU waits for it: not per step)
            index[key] = torch.tensor(group, device=like.device)
        return index[key]

    try:
        live = list(range(n))
        for step in count():
            idx = {i: b for i in live if (b := next(batches[i], None)) is not None}   # each network's next batch
            live = list(idx)
            if not live:
                break
            inputs = {i: task.inputs(domains[i].train, idx[i], gens[i]) for i in live}
            with torch.no_grad():
                theta = {k: torch.stack([p[k] for p in named]) for k in named[0]}  # (n, *shape): the live θ
            for group in same_size_groups({i: idx[i].numel() for i in live}):
                rows = None if len(group) == n else rows_of(group)
                torch.manual_seed(derive_seed(seed, *key, "noise", step, group[0]))   # dropout: the same on a rerun
                losses, g = _forward_backward(ens, task, rows, theta, buffers, [inputs[i] for i in group])
                with torch.no_grad():
                    for k, (two_strength, mix) in coupled.items():                # + the pull of eq. 6 on live θ
                        p = pull(theta[k], two_strength, mix)
                        g[k] += p if rows is None else p[rows]
                    if rows is None:
                        totals += losses * idx[group[0]].numel()
                    else:
                        totals.index_add_(0, rows, losses * idx[group[0]].numel())
                for k, v in g.items():                                            # all steps after all gradients
                    for i, grad in zip(group, v.unbind(0)):
                        named[i][k].grad = grad
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if on_step:
                for _ in live:
                    on_step()
    finally:
        with torch.no_grad():
            for i, b in enumerate(own):                                           # statistics back to each module
                for k, buf in b.items():
                    buf.copy_(buffers[k][i])
    return [t / len(d.train) for t, d in zip(totals.tolist(), domains)]
