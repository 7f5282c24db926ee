"""Inception-style augmentation of uint8 image batches, on the batch's device.

Random resized crop (area fraction and aspect ratio drawn per image), horizontal
flip and colour jitter (brightness, contrast, saturation), all drawn from the
given generator so a rerun draws the same augmentations. One `grid_sample` does
crop, flip and resize for the whole batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Augment:
    crop_scale: tuple[float, float] = (0.35, 1.0)     # fraction of the image area kept by the crop
    aspect: tuple[float, float] = (3 / 4, 4 / 3)      # crop width / height
    flip: bool = True                                  # horizontal flip with probability 1/2
    jitter: float = 0.2                                # brightness, contrast, saturation factors in 1 ± jitter


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def augment_batch(images: torch.Tensor, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """uint8 (B, C, H, W) → augmented float32 (B, C, H, W) in [0, 1]."""
    b = images.shape[0]
    x = images.float().div_(255.0)
    area = _uniform(b, *aug.crop_scale, gen)
    log_ratio = _uniform(b, math.log(aug.aspect[0]), math.log(aug.aspect[1]), gen)
    ratio = log_ratio.exp()
    w = (area * ratio).sqrt().clamp(max=1.0)            # crop width, in image widths
    h = (area / ratio).sqrt().clamp(max=1.0)            # crop height, in image heights
    cx = _uniform(b, 0, 1, gen) * (1 - w) + w / 2        # crop centre, in [w/2, 1 − w/2]
    cy = _uniform(b, 0, 1, gen) * (1 - h) + h / 2
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0).double() if aug.flip else torch.ones(b, dtype=torch.float64)
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = 2 * cx - 1
    theta[:, 1, 1] = h
    theta[:, 1, 2] = 2 * cy - 1
    grid = F.affine_grid(theta.float().to(x.device, non_blocking=True), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if aug.jitter > 0:
        j = aug.jitter
        bright, contrast, sat = (_uniform(b, 1 - j, 1 + j, gen).float().to(x.device, non_blocking=True).view(b, 1, 1, 1) for _ in range(3))
        x = x * bright
        gray = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]) if x.shape[1] == 3 else x[:, :1]
        x = (x - gray.mean(dim=(2, 3), keepdim=True)) * contrast + gray.mean(dim=(2, 3), keepdim=True)
        gray = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]) if x.shape[1] == 3 else x[:, :1]
        x = gray + (x - gray) * sat
    return x.clamp_(0.0, 1.0)
