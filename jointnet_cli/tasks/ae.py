"""The `ae` task: image completion with an auto-encoder (DESIGN §2).

Loss f_i = mean over pixels of ‖I − G(I ⊙ M)‖², where M zeroes one random
square hole per image per step: the hole is filled with zeros (black, in the
[0, 1] pixel scale), exactly the I ⊙ M of the formula. The test metric is the
mean squared error over the whole image and over the hole alone, with holes
placed by a generator seeded from the run seed and the dataset name, so every
method trained in a run is scored on the same holes.
"""

from __future__ import annotations

import torch
from torch import nn

from jointnet_cli.data.loader import SplitTensors, as_float
from jointnet_cli.seeding import generator


def hole_masks(count: int, size: int, hole: int, gen: torch.Generator,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """(count, 1, size, size) float masks on `device`: 0 inside one uniformly placed hole×hole square, 1 elsewhere.

    The positions are drawn from `gen` (a CPU generator) and only they travel to the device.
    """
    top = torch.randint(0, size - hole + 1, (count,), generator=gen).to(device, non_blocking=True)
    left = torch.randint(0, size - hole + 1, (count,), generator=gen).to(device, non_blocking=True)
    pos = torch.arange(size, device=device)
    rows = (pos >= top[:, None]) & (pos < top[:, None] + hole)     # (count, size)
    cols = (pos >= left[:, None]) & (pos < left[:, None] + hole)   # (count, size)
    inside = rows[:, :, None] & cols[:, None, :]                   # (count, size, size)
    return (~inside).float().unsqueeze(1)


class AeTask:
    """Image completion: train on random holes, score whole-image and hole MSE."""

    name = "ae"
    primary_metric = "mse"        # lower is better
    higher_is_better = False
    one_loss = True               # one loss per network: `inputs` + `criterion` (the batched schedule can vmap it)
    directions = {"mse": False, "mse_hole": False, "psnr": True, "ssim": True, "psnr_hole": True,
                  "ssim_hole": True}   # metric → higher is better
    optimizers = None             # one Adam per network

    def __init__(self, hole: int = 22):
        self.hole = hole

    def inputs(self, split: SplitTensors, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One training mini-batch as (network input I ⊙ M, target I), holes drawn from `gen`."""
        images = as_float(split.images[idx])                                           # (B, C, H, W)
        mask = hole_masks(images.shape[0], images.shape[-1], self.hole, gen, images.device)
        return images * mask, images

    def criterion(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """‖I − G(I ⊙ M)‖², mean over pixels."""
        return nn.functional.mse_loss(output, target)

    def loss(self, net: nn.Module, split: SplitTensors, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """f_i on one mini-batch: MSE between G(I ⊙ M) and I."""
        x, target = self.inputs(split, idx, gen)
        return self.criterion(net(x), target)

    fit_loss = loss                # how well a network fits a dataset (learned groups' transfer ratios)

    def calibrate(self, net: nn.Module, split: SplitTensors) -> None:
        """Nothing: ae trains on the inputs it is evaluated on (images with holes), so BatchNorm's running
        statistics already describe them."""

    @torch.no_grad()
    def evaluate(self, net: nn.Module, split: SplitTensors, *, seed: int, dataset: str,
                 batch_size: int = 256) -> dict[str, float]:
        """Test MSE over whole images and over the holes (sums over the split, divided once)."""
        was_training = net.training
        net.eval()
        gen = generator(seed, "test-holes", dataset)
        total_sq = hole_sq = 0.0
        total_px = hole_px = 0
        for idx in split.batches(batch_size):
            images = as_float(split.images[idx])
            mask = hole_masks(images.shape[0], images.shape[-1], self.hole, gen, images.device)
            sq = (net(images * mask) - images).pow(2)
            total_sq += sq.sum().item()
            total_px += sq.numel()
            hole_sq += (sq * (1 - mask)).sum().item()
            hole_px += int((1 - mask).sum().item()) * images.shape[1]
        net.train(was_training)
        return {"mse": total_sq / max(total_px, 1), "mse_hole": hole_sq / max(hole_px, 1)}

    @torch.no_grad()
    def report_metrics(self, net: nn.Module, split: SplitTensors, *, seed: int, dataset: str,
                       batch_size: int = 256) -> dict[str, float]:
        """What `evaluate` reports: the MSEs above, and the mean over test images of PSNR and SSIM
        (scikit-image's, data range 1) over the whole image and over the hole alone (the SSIM map's
        mean over the hole's pixels), on the same seeded holes. Too slow to score every epoch."""
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        out = self.evaluate(net, split, seed=seed, dataset=dataset, batch_size=batch_size)
        was_training = net.training
        net.eval()
        gen = generator(seed, "test-holes", dataset)                  # the same holes as `evaluate`
        scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_hole": [], "ssim_hole": []}
        for idx in split.batches(batch_size):
            images = as_float(split.images[idx])
            mask = hole_masks(images.shape[0], images.shape[-1], self.hole, gen, images.device)
            filled = net(images * mask).clamp(0, 1).double().cpu().numpy()
            truth = images.double().cpu().numpy()
            holes = (mask[:, 0] == 0).cpu().numpy()                    # (B, H, W)
            for t, f, hole in zip(truth, filled, holes):               # (C, H, W) each
                _, ssim_map = structural_similarity(t, f, channel_axis=0, data_range=1.0, full=True)
                scores["psnr"].append(peak_signal_noise_ratio(t, f, data_range=1.0))
                scores["ssim"].append(float(ssim_map.mean()))
                scores["psnr_hole"].append(peak_signal_noise_ratio(t[:, hole], f[:, hole], data_range=1.0))
                scores["ssim_hole"].append(float(ssim_map[:, hole].mean()))
        net.train(was_training)
        return {**out, **{k: float(sum(v) / max(len(v), 1)) for k, v in scores.items()}}
