"""Which torch device a command trains on (`--device auto | cpu | cuda`)."""

from __future__ import annotations

import torch

from jointnet_cli.errors import UserError


def resolve_device(device: str) -> torch.device:
    """`auto`: CUDA when there is one, else the CPU; `cuda` without one is refused."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda (got {device!r})")
    return torch.device(device)
