"""Several processes, one run: the datasets split across ranks, parameters exchanged by collectives.

Launched by torchrun (`torchrun --nproc_per_node=K -m jointnet_cli irls …`),
each process (rank) trains the networks of a contiguous block of the datasets
on its own data. Every rank holds a copy of all n networks: between
synchronisation points it trains its own and leaves the others as they were at
the last one; at a synchronisation point every rank contributes its networks'
parameters and buffers (all_gather of one flat tensor per dtype, padded to the
largest block) and all copies agree again. The anchors of eq. 9 are taken at
synchronisation points, so every network trains against the same anchors
whichever rank it is on: a K-process run computes what one process computes
with the same `--sync-every` (a synchronous, Jacobi form of the BCD of
`bcd.py`). Rank 0 alone writes the run directory.

Only tensors and JSON cross between processes (no pickled objects).
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import torch

from jointnet_cli.data.loader import DomainData
from jointnet_cli.errors import RunFailure, UserError, leave_to_rank_0
from jointnet_cli.joint.bcd import Anchor, Anchors, RoundSteps
from jointnet_cli.joint.device import resolve_device
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.precision import FULL, Precision
from jointnet_cli.tasks import Task


def owned(n: int, rank: int, world: int) -> list[int]:
    """The networks rank `rank` trains: a contiguous block; the first n mod world ranks get one more.

    Rank 0 always trains network 0 (so it can name the layout of an optimizer state).
    """
    q, extra = divmod(n, world)
    start = rank * q + min(rank, extra)
    return list(range(start, start + q + (1 if rank < extra else 0)))


@dataclass
class Group:
    """The processes of a run. `Group()` is a single process: every collective is a no-op."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"          # where collectives' tensors live: cpu for gloo, cuda for NCCL

    @property
    def writer(self) -> bool:
        """Only rank 0 writes the run directory and prints results."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def owned(self, n: int) -> list[int]:
        return owned(n, self.rank, self.world)

    # -- collectives (no-ops in one process) ------------------------------------
    def broadcast_json(self, value):
        """Rank 0's JSON-serialisable `value` on every rank."""
        if not self.distributed:
            return value
        data = json.dumps(value).encode() if self.writer else b""
        size = torch.tensor([len(data)], dtype=torch.int64, device=self.device)
        _call("broadcast", torch.distributed.broadcast, size, 0)
        buf = torch.zeros(int(size), dtype=torch.uint8, device=self.device)
        if self.writer and data:
            buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        _call("broadcast", torch.distributed.broadcast, buf, 0)
        return value if self.writer else json.loads(bytes(buf.cpu().tolist()).decode())

    def gather_json(self, value) -> list:
        """Every rank's JSON-serialisable `value`, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        data = json.dumps(value).encode()
        sizes = [torch.zeros(1, dtype=torch.int64, device=self.device) for _ in range(self.world)]
        _call("all_gather", torch.distributed.all_gather, sizes,
              torch.tensor([len(data)], dtype=torch.int64, device=self.device))
        longest = max(int(s) for s in sizes)
        mine = torch.zeros(longest, dtype=torch.uint8)
        mine[:len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        bufs = [torch.zeros(longest, dtype=torch.uint8, device=self.device) for _ in range(self.world)]
        _call("all_gather", torch.distributed.all_gather, bufs, mine.to(self.device))
        return [json.loads(bytes(b[:int(s)].cpu().tolist()).decode()) for b, s in zip(bufs, sizes)]

    def exchange(self, n: int, tensors_of: Callable[[int], list[torch.Tensor]],
                 blocks: list[list[int]] | None = None) -> None:
        """Make every rank's copy of `tensors_of(i)` equal the owner's, for every network i.

        `tensors_of(i)` lists network i's tensors in the same order on every rank;
        they are overwritten in place with the owner's values. `blocks[r]` lists the
        networks rank r owns (default: the networks each rank trains).
        """
        if not self.distributed:
            return
        blocks = blocks or [owned(n, r, self.world) for r in range(self.world)]
        width = max(len(b) for b in blocks)
        listed = [tensors_of(i) for i in range(n)]
        template = listed[0]
        for dtype in sorted({t.dtype for t in template}, key=str):
            picks = [k for k, t in enumerate(template) if t.dtype == dtype]
            size = sum(template[k].numel() for k in picks)
            mine = torch.zeros(width, size, dtype=dtype, device=self.device)
            for row, i in enumerate(blocks[self.rank]):
                mine[row] = torch.cat([listed[i][k].detach().reshape(-1).to(self.device) for k in picks])
            out = [torch.empty_like(mine) for _ in range(self.world)]
            _call("all_gather", torch.distributed.all_gather, out, mine)
            for r, block in enumerate(blocks):
                if r == self.rank:
                    continue
                for row, i in enumerate(block):
                    flat, offset, ts = out[r][row], 0, listed[i]
                    with torch.no_grad():
                        for k in picks:
                            ts[k].copy_(flat[offset:offset + ts[k].numel()].view_as(ts[k]))
                            offset += ts[k].numel()

    def exchange_models(self, ens: Ensemble, blocks: list[list[int]] | None = None) -> None:
        """Every network's parameters and buffers (BatchNorm statistics too) from its owner to all ranks."""
        self.exchange(ens.n, lambda i: list(ens.nets[i].state_dict().values()), blocks)

    def share_from_writer(self, ens: Ensemble, *, with_optimizer: bool) -> None:
        """Rank 0's networks (and Adam state), e.g. just loaded from a snapshot, on every rank."""
        everything = [list(range(ens.n))] + [[] for _ in range(self.world - 1)]
        self.exchange_models(ens, everything)
        if with_optimizer:
            self.exchange_optimizers(ens, everything)

    def exchange_optimizers(self, ens: Ensemble, blocks: list[list[int]] | None = None) -> None:
        """Every network's optimizer state from its owner to all ranks (before rank 0 writes a snapshot).

        Rank 0 always trains network 0, so its state names the layout (keys, shapes, dtypes) every
        network's state has; a rank that never trained a network starts it from zeros of that layout.
        """
        if not self.distributed:
            return
        state = ens.optimizer_tensors()
        first = ens.names[0] + "/"
        layout = self.broadcast_json([[k[len(first):], list(v.shape), str(v.dtype).removeprefix("torch.")]
                                      for k, v in state.items() if k.startswith(first)])
        full = {f"{name}/{k}": state[f"{name}/{k}"] if f"{name}/{k}" in state
                else torch.zeros(shape, dtype=getattr(torch, dtype)) for name in ens.names for k, shape, dtype in layout}
        self.exchange(ens.n, lambda i: [full[f"{ens.names[i]}/{k}"] for k, _, _ in layout], blocks)
        if self.writer or blocks is not None:      # before a snapshot only rank 0, which writes it, needs them all
            ens.load_optimizer_tensors(full, "the optimizer state exchanged between ranks")


def _call(what: str, fn, *args):
    """A collective; a lost peer becomes a RunFailure that says how to resume."""
    try:
        return fn(*args)
    except RuntimeError as e:
        raise RunFailure(
            f"rank {env_rank()} lost contact with another rank during {what} ({str(e).splitlines()[0][:120]}); "
            "the run directory holds the last finished epoch: rerun the same torchrun command to resume"
        ) from None


def env_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def from_environment(device: str) -> tuple[Group, str]:
    """The process group torchrun describes in the environment (WORLD_SIZE, RANK, …), and the device to use.

    A single process (no WORLD_SIZE, or 1) gets `Group()`. gloo on CPU, NCCL on CUDA (one GPU per local rank).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Group(), device
    import torch.distributed as dist


    rank = int(os.environ["RANK"])
    try:
        use_cuda = resolve_device(device).type == "cuda"      # a bad --device is refused as in one process
    except UserError:
        if rank:
            leave_to_rank_0()                                 # every rank finds it; rank 0 alone tells it
        raise
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        timeout = timedelta(seconds=float(os.environ.get("JOINTNET_DIST_TIMEOUT", "1800")))
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timeout)
    signal.signal(signal.SIGTERM, _stopped_by_launcher)
    return Group(rank=rank, world=world, device="cuda" if use_cuda else "cpu"), ("cuda" if use_cuda else "cpu")


def _stopped_by_launcher(signum, frame) -> None:
    raise RunFailure(
        f"rank {env_rank()} was stopped by torchrun (another rank failed or the job was cancelled); "
        "the run directory holds the last finished epoch: rerun the same torchrun command to resume"
    )


def close(group: Group, *, finished: bool) -> None:
    """Leave the process group. After a finished command every rank first waits for the others (a rank
    that tears its connections down while another still writes its last files can make gloo abort the
    other); after a failure it leaves at once, so the launcher can end the rest."""
    if group.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            if finished:
                try:
                    dist.barrier()
                except RuntimeError:
                    pass                   # a peer is already gone: nothing left to wait for
            dist.destroy_process_group()


def check_world(group: Group, n: int) -> None:
    if group.world > n:
        raise UserError(f"torchrun started {group.world} processes for {n} datasets; use at most {n}")


def train_round_synced(ens: Ensemble, c: torch.Tensor, domains: list[DomainData], task: Task, *,
                       batch_size: int, seed: int, key: tuple, group: Group, sync_every: int = 0,
                       on_step: Callable[[], None] | None = None, stats: dict | None = None,
                       prox: float | None = None, precision: Precision = FULL) -> list[float]:
    """One round (every network one epoch) with anchors (eq. 9) fixed between synchronisation points.

    The networks step in lockstep, one mini-batch each per step; every
    `sync_every` steps (0: once, at the end of the round) the ranks exchange
    parameters and each network's anchor is recomputed from everyone's current
    parameters. The result depends on `sync_every`, never on how many ranks
    share the work. Returns the mean data loss f_i of every network (all ranks).
    """
    mine = group.owned(ens.n)
    round_steps = RoundSteps(ens, domains, task, mine, seed=seed, key=key, on_step=on_step, prox=prox,
                             precision=precision)
    batches = {i: list(round_steps.batches(i, batch_size)) for i in mine}
    steps = max(d.train.num_batches(batch_size) for d in domains)
    anchor_of = Anchors(ens, c)
    anchor: dict[int, dict[int, Anchor]] = {i: anchor_of(i) for i in mine}
    for t in range(steps):
        for i in mine:
            if t < len(batches[i]):
                round_steps.step(i, batches[i][t], anchor[i])
        if sync_every and (t + 1) % sync_every == 0 and t + 1 < steps:
            group.exchange_models(ens)
            anchor_of.refresh()
            anchor = {i: anchor_of(i) for i in mine}
    group.exchange_models(ens)
    local = {ens.names[i]: [round_steps.mean_loss(i), round_steps.mean_stats(i)] for i in mine}
    merged = {name: v for part in group.gather_json(local) for name, v in part.items()}
    if stats is not None:
        stats.update({name: s for name, (_, s) in merged.items() if s})
    return [merged[name][0] for name in ens.names]
