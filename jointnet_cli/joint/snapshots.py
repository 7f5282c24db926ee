"""A run's state.json and checkpoint files as the training stages use them (DESIGN §4).

Naming: `checkpoints/NAME.safetensors` holds all n networks (`{dataset}/{param}`) and, when known, the
coupling weights and σ; the Adam state sits beside it as `NAME.optim.safetensors`; a stage's progress
snapshots are `PREFIX-eNNNN`. Pruning: a superseded snapshot, its Adam state, and temporary files of
interrupted writes are removed. Under torchrun rank 0 alone reads and writes; the other ranks receive
what it read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from jointnet_cli.errors import UserError
from jointnet_cli.joint.distributed import Group
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.runs.logbook import Logbook
from jointnet_cli.runs.rundir import RunDir
from jointnet_cli.store.tensors import load_tensors, optim_path, save_tensors


@dataclass
class Snapshots:
    run: RunDir
    ens: Ensemble
    group: Group
    arch: str
    datasets: tuple[str, ...]
    device: torch.device
    logbook: Logbook | None = field(default=None, repr=False)   # metrics.csv (and TensorBoard), rank 0

    def read_state(self) -> dict:
        """state.json as rank 0 reads it, on every rank."""
        return self.group.broadcast_json(self.run.read_state() if self.group.writer else None)

    def write_state(self, state: dict) -> None:
        """state.json, then the logs derived from it (so they never run ahead of it)."""
        if self.group.writer:
            self.run.write_state(state)
            if self.logbook is not None:
                self.logbook.update(state)

    def save(self, name: str, *, stage: str, iteration: int = 0, epoch: int = 0,
             weights: torch.Tensor | None = None, sigma: torch.Tensor | None = None) -> str:
        """Write checkpoints/NAME.safetensors (+ .optim) and return its path relative to the run."""
        path = self.run.checkpoint(name)
        self.group.exchange_optimizers(self.ens)            # rank 0 writes every network's Adam state
        if not self.group.writer:
            return self.run.relative(path)
        meta = {"stage": stage, "iteration": str(iteration), "epoch": str(epoch), "arch": self.arch,
                "datasets": ",".join(self.datasets)}
        save_tensors(optim_path(path), self.ens.optimizer_tensors(), meta)
        tensors = self.ens.model_tensors()
        if weights is not None:
            tensors["coupling/weights"] = weights.double()
        if sigma is not None:
            tensors["coupling/sigma"] = sigma.double()
        save_tensors(path, tensors, meta)
        return self.run.relative(path)

    def load(self, relative: str, *, with_optimizer: bool = True) -> dict[str, torch.Tensor]:
        """Load a snapshot's networks (and Adam state); under torchrun rank 0 reads it and sends it on."""
        if self.group.distributed:
            tensors = self._load(relative, with_optimizer) if self.group.writer else {}
            self.group.share_from_writer(self.ens, with_optimizer=with_optimizer)
            return tensors
        return self._load(relative, with_optimizer)

    def _load(self, relative: str, with_optimizer: bool) -> dict[str, torch.Tensor]:
        path = self.run.resolve(relative)
        tensors, meta = load_tensors(path)
        if meta.get("arch") != self.arch:
            raise UserError(f"checkpoint {path} holds a {meta.get('arch')!r} model; the run uses {self.arch!r}")
        self.ens.load_model_tensors({k: v.to(self.device) for k, v in tensors.items()}, str(path))
        if with_optimizer:
            opt_tensors, _ = load_tensors(optim_path(path))
            self.ens.load_optimizer_tensors(opt_tensors, str(optim_path(path)))
        return tensors

    def drop_optimizer_state(self, relative: str | None) -> None:
        """Remove NAME.optim.safetensors once a later snapshot supersedes it for resuming."""
        if relative and self.group.writer:
            optim_path(self.run.resolve(relative)).unlink(missing_ok=True)

    def prune(self, pattern: str) -> None:
        """Delete leftovers of writes a kill interrupted: temporary files and superseded snapshots matching
        `pattern` (in checkpoints/)."""
        if not self.group.writer:
            return
        self.run.remove_stale_temp_files()
        for path in self.run.checkpoints.glob(pattern):
            path.unlink(missing_ok=True)

    def remove(self, relative: str | None) -> None:
        """Delete a snapshot and its Adam state."""
        if not relative or not self.group.writer:
            return
        path = self.run.resolve(relative)
        path.unlink(missing_ok=True)
        optim_path(path).unlink(missing_ok=True)
