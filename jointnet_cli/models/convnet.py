"""`convnet`: a small CNN for the classification task, quick on 2 CPU cores at 32 px.

Four Conv → BatchNorm → ReLU layers (max-pooling after the 2nd and 4th), global
average pooling, dropout and a linear head. The head is per dataset and never
coupled; it has `num_classes` outputs (the largest class count of the run) and
the `class_mask` buffer hides the outputs a dataset does not use.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ConvNet(nn.Module):
    head_names = ("head.weight", "head.bias")

    def __init__(self, num_classes: int, channels: int = 3, width: int = 32):
        super().__init__()
        w = width
        self.conv1 = _block(channels, w)        # (B, w,  S,   S)
        self.conv2 = _block(w, 2 * w)           # (B, 2w, S,   S) → pool → S/2
        self.conv3 = _block(2 * w, 4 * w)       # (B, 4w, S/2, S/2)
        self.conv4 = _block(4 * w, 4 * w)       # (B, 4w, S/2, S/2) → pool → S/4
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(4 * w, num_classes)
        self.register_buffer("class_mask", torch.ones(num_classes, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(self.conv2(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(self.conv4(self.conv3(x)), 2)
        x = self.drop(x.mean(dim=(2, 3)))       # (B, 4w)
        return self.head(x).masked_fill(~self.class_mask, float("-inf"))


def layers(model: ConvNet) -> list[list[str]]:
    """θ^1..θ^4: each conv with its bias and BatchNorm affine; the head is not a coupled layer."""
    return [[f"conv{k}.0.weight", f"conv{k}.0.bias", f"conv{k}.1.weight", f"conv{k}.1.bias"] for k in range(1, 5)]
