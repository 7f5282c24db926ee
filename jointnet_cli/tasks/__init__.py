"""Tasks: the loss f_i, the test metric, and how a batch is drawn (DESIGN §2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

from jointnet_cli.errors import UserError

if TYPE_CHECKING:
    import torch


class Task(Protocol):
    """What training, learned groups and evaluation ask of every task (ae, classify, gan).

    `one_loss` tells the two kinds apart: True for one loss per network (`loss`, built from `inputs` and
    `criterion`, which the batched schedule vmaps over networks); False for several players that the task
    steps in its own order (`step`: the GAN's discriminator and generator).
    """

    name: str
    primary_metric: str
    higher_is_better: bool
    one_loss: bool
    directions: dict[str, bool]          # metric → higher is better, for every metric `evaluate` returns
    # the optimizers of one network (a GAN: one per player), or None: one Adam over all its parameters
    optimizers: Callable[[torch.nn.Module, float], list[torch.optim.Optimizer]] | None

    def fit_loss(self, net, split, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """How well `net` fits a mini-batch of a dataset's training images (learned groups' transfer ratios)."""
        ...

    def calibrate(self, net, split) -> None:
        """Before `net` is scored and saved at the end of an epoch: whatever evaluation needs that training
        does not keep (classify: BatchNorm statistics of the unaugmented training split)."""
        ...

    def evaluate(self, net, split, *, seed: int, dataset: str) -> dict:
        """The test metrics training scores after each epoch."""
        ...


def make_task(name: str, *, hole: int = 22, classes_per_head: int = 0, augment=None, gan: dict | None = None) -> Task:
    """The task object: `loss(net, split, idx, gen)`, `evaluate(net, split, seed=, dataset=)`, metric names."""
    if name == "ae":
        from jointnet_cli.tasks.ae import AeTask

        return AeTask(hole=hole)
    if name == "classify":
        from jointnet_cli.tasks.classify import ClassifyTask

        return ClassifyTask(classes_per_head, augment)
    if name == "gan":
        from jointnet_cli.tasks.gan import GanTask

        return GanTask(**(gan or {}))
    raise UserError(f"unknown task {name!r}")
