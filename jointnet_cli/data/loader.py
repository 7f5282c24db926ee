"""Prepared datasets held in memory as uint8 tensors, batched on the fly.

A dataset is read from disk once; each step indexes the in-memory tensor, so
there is no per-step file I/O. Conversion to float (and augmentation, where a
task has it) happens per batch, on the training device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from jointnet_cli.data.format import PreparedDataset, load_dataset
from jointnet_cli.errors import UserError


@dataclass
class SplitTensors:
    images: torch.Tensor            # uint8 (N, C, H, W), on the device
    labels: torch.Tensor | None     # int64 (N,) or None

    def __len__(self) -> int:
        return self.images.shape[0]

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Index tensors of one epoch: shuffled by `generator` (training), in order when it is None (evaluation).

        The last batch may be short; in training a last batch of a single image joins the one before
        (BatchNorm cannot train on one sample), so no image is dropped.
        """
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        starts = list(range(0, n, batch_size))
        if generator is not None and len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else n
            yield order[start:end].to(self.images.device, non_blocking=True)   # a GPU need not wait for it

    def num_batches(self, batch_size: int) -> int:
        n = len(self)
        return -(-n // batch_size) - (1 if n > batch_size and n % batch_size == 1 else 0)


@dataclass
class DomainData:
    """One dataset of a run: its name, train and test splits on the device, and its manifest."""

    name: str
    train: SplitTensors
    test: SplitTensors
    manifest: dict


def to_device(ds: PreparedDataset, device: torch.device | str) -> DomainData:
    def split(s) -> SplitTensors:
        labels = torch.from_numpy(s.labels).to(device) if s.labels is not None else None
        return SplitTensors(torch.from_numpy(s.images).to(device), labels)

    return DomainData(ds.name, split(ds.train), split(ds.test) if ds.test is not None else None, ds.manifest)


def split_off(split: SplitTensors, fraction: float, gen: torch.Generator) -> tuple[SplitTensors, SplitTensors]:
    """(kept, held out): a seeded `fraction` of the split's images (at least one, never all) held out."""
    n = len(split)
    held = min(max(1, round(fraction * n)), n - 1)
    order = torch.randperm(n, generator=gen).to(split.images.device)

    def part(idx: torch.Tensor) -> SplitTensors:
        return SplitTensors(split.images[idx], split.labels[idx] if split.labels is not None else None)

    return part(order[held:]), part(order[:held])


def load_domains(data_dir: Path, names: list[str], device: torch.device | str,
                 holdout: tuple[float, int] | None = None) -> list[DomainData]:
    """Load every named dataset into memory on `device` (checksums verified).

    With `holdout` = (fraction, seed) the test split is never read: each training split is cut into the
    part trained on and a seeded held-out part that serves as the split scored ("test") instead."""
    if holdout is None:
        domains = [to_device(load_dataset(Path(data_dir), name), device) for name in names]
        if empty := [d.name for d in domains if len(d.train) == 0]:
            raise UserError(f"dataset {empty[0]} in {data_dir} has no training images; prepare it with --train ≥ 1")
        return domains
    from jointnet_cli.seeding import generator

    fraction, seed = holdout
    out = []
    for name in names:
        d = to_device(load_dataset(Path(data_dir), name, test=False), device)
        kept, held = split_off(d.train, fraction, generator(seed, "holdout", name))
        out.append(DomainData(d.name, kept, held, d.manifest))
    return out


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] → float32 in [0, 1]."""
    return images.float().div_(255.0)
