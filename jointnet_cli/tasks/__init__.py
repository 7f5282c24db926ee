"""Tasks: the loss f_i, the test metric, and how a batch is drawn (DESIGN §2)."""

from __future__ import annotations

from jointnet_cli.errors import UserError


def make_task(name: str, *, hole: int = 22):
    if name == "ae":
        from jointnet_cli.tasks.ae import AeTask

        return AeTask(hole=hole)
    raise UserError(f"unknown task {name!r}")
