"""`--precision`: the arithmetic of the training steps.

    32          float32 throughout (the default)
    bf16-mixed  the forward pass (and so the backward's matrix products) under `torch.autocast` in bfloat16
    16-mixed    the same in float16, with a gradient scaler per optimizer so small gradients do not
                underflow (one-loss tasks with `bcd`; GAN players and `batched` take bf16-mixed)
    auto        what measured fastest at equal quality on the device's type (`AUTO`)

Parameters, optimizer state, the coupling (anchors, proximal steps, coupling gradients), distances, σ, the
IRLS weights and every checkpoint stay float32/float64: the coupling is applied to unscaled float32
gradients and parameters, outside autocast. Evaluation runs in float32.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch

from jointnet_cli.runs.config import CHOICES

PRECISIONS = CHOICES["precision"]                  # 32, bf16-mixed, 16-mixed, auto (the option's one source)

# `--precision auto` by device type, from benchmarks/precision.py (benchmark recipes, synth8's validation
# copy, seeds 0 and 1) and speed.py (d). On an H200 the mixed settings were slower at equal quality:
# epoch seconds against 32 ae 1.16× (bf16-mixed) and 1.29× (16-mixed), classify 1.05× and 1.09×, with
# validation MSE 0.0123 (32), 0.0124, 0.0125 and accuracy 0.988, 0.990, 0.991; a joint round of ae9 width 32
# at 64 px 1.10–1.12× and 1.16–1.37×. These networks are too small for half-width matrix products to pay
# for autocast's casts. On the 2-core CPU a bf16-mixed epoch of the ae recipe took 18.8× as long (seed 0),
# and both mixed settings 6–11× at --quick sizes.
AUTO = {"cuda": "32", "cpu": "32"}


def resolve(mode: str, device: torch.device | str) -> str:
    """The precision a run trains in: `mode`, or for `auto` the measured choice for the device's type
    (32 where nothing was measured)."""
    if mode not in PRECISIONS:
        raise ValueError(f"unknown precision {mode!r}")
    return AUTO.get(torch.device(device).type, "32") if mode == "auto" else mode


class Precision:
    def __init__(self, mode: str = "32", device: torch.device | str = "cpu") -> None:
        self.mode = resolve(mode, device)
        self.device_type = torch.device(device).type
        self.scalers: dict[int, torch.amp.GradScaler] = {}        # optimizer id → its scaler (16-mixed)

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(self.mode)

    def autocast(self):
        """The context a forward pass runs in: autocast to the mixed dtype, or nothing for 32."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer,
                          before_step: Callable[[], None] | None = None) -> None:
        """loss.backward(), then `before_step` (e.g. the coupling gradient, on true-scale gradients), then
        the optimizer step; with 16-mixed through the optimizer's gradient scaler (a step whose gradients
        overflowed is skipped and the scale lowered, as torch.amp does)."""
        if self.mode != "16-mixed":
            loss.backward()
            if before_step:
                before_step()
            opt.step()
            return
        scaler = self.scalers.get(id(opt))
        if scaler is None:
            scaler = self.scalers[id(opt)] = torch.amp.GradScaler(self.device_type)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        if before_step:
            before_step()
        scaler.step(opt)
        scaler.update()


FULL = Precision("32")
