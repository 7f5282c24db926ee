"""The ae task's report metrics: PSNR and SSIM over the whole image and the hole, checked by hand."""

import math

import pytest
import torch
from torch import nn

from jointnet_cli.data.loader import SplitTensors
from jointnet_cli.tasks.ae import AeTask


class Constant(nn.Module):
    """Outputs the same grey level everywhere, whatever the input."""

    def __init__(self, level: float):
        super().__init__()
        self.level = level

    def forward(self, x):
        return torch.full_like(x, self.level)


def grey_split(value: int, count: int = 5, size: int = 16) -> SplitTensors:
    return SplitTensors(torch.full((count, 3, size, size), value, dtype=torch.uint8), None)


def test_psnr_and_ssim_of_constant_images_match_their_formulas():
    c, d = 200 / 255, 0.25
    m = AeTask(hole=6).report_metrics(Constant(d), grey_split(200), seed=0, dataset="x", batch_size=2)
    mse = (c - d) ** 2
    assert m["mse"] == pytest.approx(mse) and m["mse_hole"] == pytest.approx(mse)
    psnr = 10 * math.log10(1 / mse)                              # data range 1
    assert m["psnr"] == pytest.approx(psnr) and m["psnr_hole"] == pytest.approx(psnr)
    c1 = (0.01 * 1.0) ** 2                                       # flat images: only SSIM's luminance term is left
    ssim = (2 * c * d + c1) / (c * c + d * d + c1)
    assert m["ssim"] == pytest.approx(ssim, rel=1e-6) and m["ssim_hole"] == pytest.approx(ssim, rel=1e-6)


def test_report_metrics_keep_the_training_metric_and_score_the_same_holes():
    task = AeTask(hole=6)
    images = torch.randint(0, 256, (7, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    split = SplitTensors(images, None)
    net = nn.Conv2d(3, 3, 3, padding=1)
    plain = task.evaluate(net, split, seed=3, dataset="x")
    full = task.report_metrics(net, split, seed=3, dataset="x")
    assert {k: full[k] for k in plain} == plain
    assert set(full) == {"mse", "mse_hole", "psnr", "ssim", "psnr_hole", "ssim_hole"}
    assert -1 <= full["ssim_hole"] <= 1 and -1 <= full["ssim"] <= 1
