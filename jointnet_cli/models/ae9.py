"""`ae9`: the 9-layer convolutional auto-encoder of the image-completion task.

Four strided convolutions halve the image four times, a 3×3 bottleneck
convolution mixes the code, and four transposed convolutions bring it back to
full size. Every hidden layer is Conv → BatchNorm → ReLU; the output layer is a
transposed convolution followed by a sigmoid, so the output is an image in
[0, 1]. Works at 32 px (code 2×2) and 64 px (code 4×4), or any multiple of 16.
"""

from __future__ import annotations

import torch
from torch import nn


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class AE9(nn.Module):
    """9 weight layers: enc1..enc4, bottleneck, dec1..dec4 (`width` = channels of enc1)."""

    def __init__(self, image_size: int = 32, channels: int = 3, width: int = 32):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"ae9 needs an image size divisible by 16, got {image_size}")
        w = width
        self.enc1 = _down(channels, w)      # (B, w,  S/2,  S/2)
        self.enc2 = _down(w, 2 * w)         # (B, 2w, S/4,  S/4)
        self.enc3 = _down(2 * w, 4 * w)     # (B, 4w, S/8,  S/8)
        self.enc4 = _down(4 * w, 8 * w)     # (B, 8w, S/16, S/16)
        self.bottleneck = nn.Sequential(    # (B, 8w, S/16, S/16)
            nn.Conv2d(8 * w, 8 * w, 3, padding=1), nn.BatchNorm2d(8 * w), nn.ReLU(inplace=True)
        )
        self.dec1 = _up(8 * w, 4 * w)       # (B, 4w, S/8,  S/8)
        self.dec2 = _up(4 * w, 2 * w)       # (B, 2w, S/4,  S/4)
        self.dec3 = _up(2 * w, w)           # (B, w,  S/2,  S/2)
        self.dec4 = nn.ConvTranspose2d(w, channels, 4, stride=2, padding=1)  # (B, C, S, S)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (self.enc1, self.enc2, self.enc3, self.enc4, self.bottleneck, self.dec1, self.dec2, self.dec3):
            x = block(x)
        return torch.sigmoid(self.dec4(x))


def layers(model: AE9) -> list[list[str]]:
    """The coupling layers θ^1..θ^9: each weight-bearing module with its bias and BatchNorm affine."""
    groups = []
    for name in ("enc1", "enc2", "enc3", "enc4", "bottleneck", "dec1", "dec2", "dec3"):
        groups.append([f"{name}.0.weight", f"{name}.0.bias", f"{name}.1.weight", f"{name}.1.bias"])
    groups.append(["dec4.weight", "dec4.bias"])
    return groups
