"""Layer partition: the parameter tensors of θ_i^1..θ_i^L (DESIGN §1 "What is a layer")."""

from __future__ import annotations

import torch
from torch import nn


def check_layers(model: nn.Module, layers: list[list[str]]) -> None:
    """Every name is a parameter (not a buffer) of `model`, and no name is in two layers."""
    params = dict(model.named_parameters())
    seen: set[str] = set()
    for group in layers:
        if not group:
            raise ValueError("a layer must hold at least one parameter")
        for name in group:
            if name not in params:
                raise ValueError(f"layer list names {name!r}, which is not a parameter of the model")
            if name in seen:
                raise ValueError(f"parameter {name!r} is in two layers")
            seen.add(name)


def layer_params(model: nn.Module, layers: list[list[str]]) -> list[list[torch.Tensor]]:
    """The live parameter tensors of each layer, in layer order."""
    params = dict(model.named_parameters())
    return [[params[name] for name in group] for group in layers]
