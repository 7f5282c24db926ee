"""Architectures and their explicit layer lists (DESIGN §1 "What is a layer")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from jointnet_cli.errors import UserError


@dataclass(frozen=True)
class Built:
    model: "object"               # torch.nn.Module
    layers: list[list[str]]       # θ^1..θ^L as groups of parameter names


def build(arch: str, *, image_size: int, channels: int = 3, width: int = 32) -> Built:
    """Build architecture `arch` for `image_size` px and return it with its layer list."""
    builders: dict[str, Callable[[], Built]] = {
        "ae9": lambda: _ae9(image_size, channels, width),
    }
    if arch not in builders:
        raise UserError(f"unknown architecture {arch!r} (known: {', '.join(builders)})")
    return builders[arch]()


def _ae9(image_size: int, channels: int, width: int) -> Built:
    from jointnet_cli.models import ae9

    if image_size % 16 or image_size < 16:
        raise UserError(f"ae9 needs an image size that is a multiple of 16 (e.g. 32 or 64), got {image_size}")
    model = ae9.AE9(image_size=image_size, channels=channels, width=width)
    return Built(model, ae9.layers(model))
