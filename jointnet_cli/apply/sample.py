"""`sample`: images from a trained GAN generator, reproducible from a seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jointnet_cli.errors import UserError


def sample_images(run: Path | str, dataset: str, *, n: int = 64, seed: int = 0, method: str | None = None,
                  device: str = "cpu") -> np.ndarray:
    """`n` uint8 samples (n, 3, S, S) of `dataset`'s generator; the same seed gives the same images."""
    from jointnet_cli.apply.trained import find_checkpoint, load_model
    from jointnet_cli.seeding import generator
    from jointnet_cli.tasks.gan import GanTask

    if n < 1:
        raise UserError(f"-n must be ≥ 1 (got {n})")
    ck = find_checkpoint(run, dataset, method, task="gan")
    model, _ = load_model(ck, device)
    task = GanTask(ck.cfg.arch, nz=ck.cfg.latent)
    return task.sample(model, n, generator(seed, "sample")).cpu().numpy()


def write_samples(images: np.ndarray, out: Path, *, individual: bool = False, force: bool = False) -> list[Path]:
    """One grid PNG at `out`, or with `individual` one PNG per sample in the folder `out` (0000.png, …)."""
    from jointnet_cli.report.grid import make_grid, save_png

    out = Path(out)
    if individual:
        paths = [out / f"{k:04d}.png" for k in range(len(images))]
        if not force and any(p.exists() for p in paths):
            raise UserError(f"{out} already holds samples (use --force to overwrite)")
        return [save_png(img.transpose(1, 2, 0), p) for img, p in zip(images, paths)]
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: a grid is written as PNG (name it *.png, or use --individual for a folder)")
    if out.exists() and not force:
        raise UserError(f"{out} exists (use --force to overwrite)")
    return [save_png(make_grid(images), out)]
