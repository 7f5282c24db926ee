"""Tasks: the loss f_i, the test metric, and how a batch is drawn (DESIGN §2)."""

from __future__ import annotations

from jointnet_cli.errors import UserError


def make_task(name: str, *, hole: int = 22, classes_per_head: int = 0, augment=None, gan: dict | None = None):
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
