"""Deterministic random streams derived from the run seed.

Every random draw in training (batch order, hole positions, initial weights)
comes from a generator keyed by *where* it is used — stage, iteration, epoch,
network — rather than from one global stream. A run killed and resumed at an
epoch boundary therefore draws exactly the numbers an uninterrupted run draws,
with no random state to save.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit integer determined by the run seed and the keys naming a use."""
    text = "/".join([str(seed), *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def generator(seed: int, *keys: object, device: str = "cpu"):
    """A `torch.Generator` seeded by `derive_seed(seed, *keys)`."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *keys))
    return g


def seed_noise(seed: int, device: torch.device | str = "cpu") -> None:
    """Seed the global generator that layers drawing noise (dropout) use on `device`: the CPU's, and for a
    CUDA device also that device's. The same draws follow as after `torch.manual_seed(seed)`, which seeds
    every device's generator: on a CUDA build of torch that costs ~0.3 ms a call even without a GPU, and a
    training step calls this once (README "Benchmarks")."""
    import torch

    torch.default_generator.manual_seed(seed)
    device = torch.device(device)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)
