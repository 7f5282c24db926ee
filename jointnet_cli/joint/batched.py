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

On a CUDA device a step of all n networks is recorded once per batch shape as a
CUDA graph and replayed (`joint/cuda_graphs.py`); a step of only some networks
(their datasets ran out, or their last batch is shorter than the others') runs
eagerly, as every step does on a CPU.
"""

from __future__ import annotations

import contextlib
from itertools import count
from typing import Callable, Protocol

import torch
from torch.func import functional_call, vmap

from jointnet_cli.data.loader import DomainData, SplitTensors
from jointnet_cli.errors import UserError
from jointnet_cli.joint.cuda_graphs import WARMUP_STEPS, StepGraphs
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.precision import FULL, Precision
from jointnet_cli.joint.weights import anchor_weights, prox_matrix
from jointnet_cli.seeding import derive_seed, generator


class BatchedTask(Protocol):
    """A task whose loss splits into drawing a batch and scoring a network's output (ae, classify)."""

    one_loss: bool                 # True for these (`tasks.Task`)

    def inputs(self, split: SplitTensors, idx: torch.Tensor,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...
    def criterion(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


def anchor_terms(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(2 C_i, c_ij / C_i) for every network i at once (eq. 9, `weights.anchor_weights`), from a layer's
    (n, n) coupling c or all layers' (L, n, n): what `pull` takes."""
    strength, mix = anchor_weights(c)
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
                      buffers: dict[str, torch.Tensor], x: torch.Tensor,
                      target: torch.Tensor, precision: Precision = FULL) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The data losses f_i of the networks `rows` (None: all n) on their batches, and their gradients, in one vmapped call.

    `theta` holds the stacked parameters and `buffers` the stacked buffers of all n networks; `x` and
    `target` the (g, B, …) batches of the group's networks. Returns the (g,) losses and each parameter's
    (g, *shape) gradient. The group's BatchNorm running statistics are updated in `buffers`.
    """
    params = {k: (v if rows is None else v[rows]).detach().requires_grad_() for k, v in theta.items()}
    own = buffers if rows is None else {k: v[rows] for k, v in buffers.items()}
    net = ens.nets[0]

    def data_loss(p: dict, b: dict, xi: torch.Tensor, ti: torch.Tensor) -> torch.Tensor:
        return task.criterion(functional_call(net, (p, b), (xi,)), ti)

    with precision.autocast():                                     # bf16-mixed: the forward in bfloat16
        losses = vmap(data_loss, randomness="different")(params, own, x, target).float()   # updates `own`
    losses.sum().backward()                                        # each network's loss reaches only its own slice
    if rows is not None:
        with torch.no_grad():
            for k, v in own.items():                               # a subset's statistics were a copy: put them back
                buffers[k][rows] = v
    grads = {k: p.grad if p.grad is not None else torch.zeros_like(p) for k, p in params.items()}
    return losses.detach(), grads


def one_optimizer(opts: list[torch.optim.Optimizer], **overrides) -> torch.optim.Optimizer:
    """One optimizer over the parameters of all `opts` that shares each parameter's state with its own.

    The networks' optimizers (one each, alike but for their parameters) keep the state that snapshots
    save; stepping them through this one runs the update of all networks as one multi-tensor
    (foreach) update on a GPU instead of n. A parameter whose grad is None is not stepped.
    `overrides` change settings that change the update only by rounding (`capturable=True`, which a
    CUDA graph needs, computes Adam's bias corrections on the device).
    """
    first = opts[0]
    settings = {k: v for k, v in first.param_groups[0].items() if k != "params"}
    for opt in opts:
        if type(opt) is not type(first) or len(opt.param_groups) != 1 or \
                {k: v for k, v in opt.param_groups[0].items() if k != "params"} != settings:
            raise ValueError("the batched schedule needs one optimizer per network, all with the same settings")
    merged = type(first)([{"params": [p for opt in opts for p in opt.param_groups[0]["params"]],
                           **settings, **overrides}])
    for opt in opts:
        for p in opt.param_groups[0]["params"]:
            merged.state[p] = opt.state[p]                         # the same dict: updates land in `opt`
    return merged


class Stacked:
    """One ensemble as the batched steps see it: each network's parameters and buffers by name, the
    buffers stacked (n, *shape) so a vmapped call updates every network's own statistics, and the
    round's anchor terms and loss totals, each at one address for the ensemble's lifetime."""

    def __init__(self, ens: Ensemble) -> None:
        like = ens.params[0][0][0]
        self.ens, self.n = ens, ens.n
        self.named = [dict(net.named_parameters()) for net in ens.nets]
        self.own = [dict(net.named_buffers()) for net in ens.nets]
        self.layer_of = {name: l for l, group in enumerate(ens.layers) for name in group}
        self.buffers = {k: torch.stack([b[k] for b in self.own]) for k in self.own[0]}   # (n, *shape)
        self.two_strength = torch.zeros(len(ens.layers), ens.n, device=like.device, dtype=like.dtype)
        self.mix = torch.zeros(len(ens.layers), ens.n, ens.n, device=like.device, dtype=like.dtype)
        self.totals = torch.zeros(ens.n, device=like.device, dtype=like.dtype)
        self.index: dict[tuple[int, ...], torch.Tensor] = {}     # a group's rows, copied to the device once

    def rows(self, group: list[int]) -> torch.Tensor | None:
        """A group's indices on the device (None: all n networks)."""
        if len(group) == self.n:
            return None
        key = tuple(group)
        if key not in self.index:                                   # (a copy to a GPU waits for it: not per step)
            self.index[key] = torch.tensor(group, device=self.totals.device)
        return self.index[key]


class BatchedRounds:
    """The batched schedule, called once per round with the arguments of `bcd.train_round`.

    Keep one for all the rounds of an ensemble: with `graphs` (default: on a CUDA device) a step
    of all n networks is recorded as a CUDA graph once per batch shape after `warmup_steps` eager
    steps of that shape, and replayed after (`cuda_graphs.StepGraphs`).
    """

    def __init__(self, graphs: bool | None = None, warmup_steps: int = WARMUP_STEPS) -> None:
        self.graphs = graphs                                       # None: on a CUDA device
        self.recorder = StepGraphs(warmup_steps)
        self.stacked: Stacked | None = None                        # the ensemble of the last round
        self.optimizer: torch.optim.Optimizer | None = None        # the round's, over every network's state
        self.coupled: list[bool] = []                              # layers whose pull eager steps add
        self.prox_layers: set[int] = set()                         # layers of `--apply prox`'s step
        self.prox: torch.Tensor | None = None                      # their (L, n, n) proximal matrices
        self.precision: Precision = FULL                           # set per round (bf16-mixed or 32)

    # -- a round's setup ---------------------------------------------------------------------------------------
    def _bind(self, ens: Ensemble, c: torch.Tensor, task: BatchedTask, prox: float | None = None) -> Stacked:
        """Before a round: set up for a new ensemble; copy in the modules' statistics and this round's
        anchor terms (zero with `prox`: the coupling is then the proximal step `_prox`, not a gradient);
        build the round's optimizer over every network's state."""
        if self.stacked is None or self.stacked.ens is not ens:
            self.stacked = Stacked(ens)
            on_gpu = ens.params[0][0][0].device.type == "cuda"
            self.recorder.reset(enabled=(self.graphs is not False) and on_gpu)
        s = self.stacked
        with torch.no_grad():
            for k, stacked in s.buffers.items():                    # the modules' statistics (a resume loads them)
                torch.stack([b[k] for b in s.own], out=stacked)
            two_strength, mix = anchor_terms(c.to(device=s.mix.device, dtype=s.mix.dtype))
            s.two_strength.copy_(two_strength if prox is None else torch.zeros_like(two_strength))
            s.mix.copy_(mix)
            s.totals.zero_()
        coupled = c.flatten(1).any(dim=1).tolist()
        self.coupled = coupled if prox is None else [False] * len(coupled)      # eager steps skip uncoupled layers
        self.prox_layers = {l for l, on in enumerate(coupled) if on} if prox is not None else set()
        self.prox = prox_matrix(c, prox).to(device=s.mix.device, dtype=s.mix.dtype) if self.prox_layers else None
        opts = [opt for (opt,) in ens.optimizers]
        self.optimizer = one_optimizer(opts, **self.recorder.optimizer_overrides(opts[0].defaults))
        self.optimizer.zero_grad(set_to_none=True)                  # only networks with a batch step
        self.recorder.prepare(self.optimizer, task, self.precision.mode)
        return s

    def _unbind(self, s: Stacked) -> None:
        """After a round: the statistics back into each module, the step counts back to the CPU."""
        with torch.no_grad():
            for i, b in enumerate(s.own):
                for k, buf in b.items():
                    buf.copy_(s.buffers[k][i])
        self.recorder.release(self.optimizer)

    # -- one step ----------------------------------------------------------------------------------------------
    def _gradients(self, s: Stacked, task: BatchedTask, group: list[int], x: torch.Tensor, target: torch.Tensor,
                   every_layer: bool = False) -> None:
        """Gradients of the networks `group` (eq. 6: data loss + the pull on live θ); their losses summed
        into `totals`. With `every_layer`, uncoupled layers get their (zero) pull too: a recorded
        step serves every coupling."""
        rows = s.rows(group)
        with torch.no_grad():
            theta = {k: torch.stack([p[k] for p in s.named]) for k in s.named[0]}   # (n, *shape): the live θ
        losses, g = _forward_backward(s.ens, task, rows, theta, s.buffers, x, target, self.precision)
        with torch.no_grad():
            for k, l in s.layer_of.items():                                    # + the pull of eq. 6
                if every_layer or self.coupled[l]:
                    p = pull(theta[k], s.two_strength[l], s.mix[l])
                    g[k] += p if rows is None else p[rows]
            if rows is None:
                s.totals.add_(losses * x.shape[1])
            else:
                s.totals.index_add_(0, rows, losses * x.shape[1])
        for k, v in g.items():                                                 # all steps after all gradients
            for i, grad in zip(group, v.unbind(0)):
                s.named[i][k].grad = grad

    def _prox(self, s: Stacked) -> None:
        """θ^l ← P_l θ^l for every coupled layer, P_l = (I + 2η Lap(c_l))⁻¹ (`weights.prox_matrix`): the exact
        proximal step of the coupling taken by all networks at once after their optimizer step."""
        with torch.no_grad():
            for k, l in s.layer_of.items():
                if l in self.prox_layers:
                    theta = torch.stack([p[k] for p in s.named])                    # (n, *shape)
                    new = (self.prox[l] @ theta.reshape(s.n, -1)).view_as(theta)
                    for i, p in enumerate(s.named):
                        p[k].copy_(new[i])

    # -- one round ---------------------------------------------------------------------------------------------
    def __call__(self, ens: Ensemble, c: torch.Tensor, domains: list[DomainData], task: BatchedTask, *,
                 batch_size: int, seed: int, key: tuple, block: str = "epoch",
                 on_step: Callable[[], None] | None = None, stats: dict | None = None,
                 prox: float | None = None, precision: Precision = FULL) -> list[float]:
        """One round: every network one epoch of its own data, all stepping together.

        Arguments and result are those of `bcd.train_round` (`block` is a bcd setting and is not
        used): `c` is the (L, n, n) coupling, `key` names the round's random draws, and the result is
        the mean data loss f_i of each network over the round. `stats` is left empty: only GAN tasks
        report per-batch statistics, and they train with `bcd`.
        """
        if not task.one_loss:
            raise UserError(f"--schedule batched needs one loss per network; {task.name} runs "
                            "use --schedule bcd")
        if precision.mode == "16-mixed":
            raise UserError("--precision 16-mixed trains with --schedule bcd (batched takes bf16-mixed or 32)")
        self.precision = precision
        n = ens.n
        gens = [generator(seed, *key, ens.names[i]) for i in range(n)]
        batches = [iter(d.train.batches(batch_size, g)) for d, g in zip(domains, gens)]
        s = self._bind(ens, c, task, prox)
        every = list(range(n))

        def full_step_gradients(x: torch.Tensor, target: torch.Tensor, every_layer: bool) -> None:
            self._gradients(s, task, every, x, target, every_layer)

        try:
            live = list(range(n))
            for step in count():
                idx = {i: b for i in live if (b := next(batches[i], None)) is not None}   # each network's next batch
                live = list(idx)
                if not live:
                    break
                inputs = {i: task.inputs(domains[i].train, idx[i], gens[i]) for i in live}
                stepped = False
                for group in same_size_groups({i: idx[i].numel() for i in live}):
                    torch.manual_seed(derive_seed(seed, *key, "noise", step, group[0]))   # dropout: the same on a rerun
                    if self.recorder.enabled and len(group) == n:                  # steps the optimizer too
                        xs, targets = zip(*(inputs[i] for i in group))
                        self.recorder.step(self.optimizer, full_step_gradients, list(xs), list(targets), task,
                                           precision.mode)
                        stepped = True
                    else:
                        self._gradients(s, task, group, *(torch.stack(parts) for parts in zip(*(inputs[i] for i in group))))
                if not stepped:
                    self.optimizer.step()
                if self.prox is not None:
                    self._prox(s)
                self.optimizer.zero_grad(set_to_none=True)
                if on_step:
                    for _ in live:
                        on_step()
        except BaseException:
            with contextlib.suppress(Exception):                      # keep the error that ended the round
                self._unbind(s)
            raise
        self._unbind(s)
        return [t / len(d.train) for t, d in zip(s.totals.tolist(), domains)]


def train_round_batched(ens: Ensemble, c: torch.Tensor, domains: list[DomainData], task: BatchedTask, *,
                        batch_size: int, seed: int, key: tuple, block: str = "epoch",
                        on_step: Callable[[], None] | None = None, stats: dict | None = None,
                        prox: float | None = None, precision: Precision = FULL) -> list[float]:
    """One round of the batched schedule, eagerly and keeping nothing: `BatchedRounds` for one round."""
    return BatchedRounds(graphs=False)(ens, c, domains, task, batch_size=batch_size, seed=seed, key=key,
                                       block=block, on_step=on_step, stats=stats, prox=prox, precision=precision)
