"""`jointnet sample`: draw images from a trained GAN of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from jointnet_cli.cli import options as o
from jointnet_cli.cli.output import print_json, stdout
from jointnet_cli.cli.root import app


@app.command(epilog="Examples: jointnet sample --run runs/gan --dataset shapes-1 -n 64 --out grid.png    |    "
                    "jointnet sample --run runs/gan --dataset shapes-1 -n 16 --out samples/ --individual")
def sample(
    run: Annotated[Path, typer.Option("--run", help="Run directory of a gan run.")],
    dataset: Annotated[str, typer.Option("--dataset", help="Whose generator to sample.")],
    n: Annotated[int, typer.Option("-n", help="How many samples.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the latents: same seed, same images.")] = 0,
    method: Annotated[Optional[str], typer.Option("--method", help="joint (default) or a trained baseline.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Grid PNG, or a folder with --individual.")] = Path("samples.png"),
    individual: Annotated[bool, typer.Option("--individual", help="One PNG per sample in the folder --out.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    device: o.Device = None,
    json_: o.Json = False,
) -> None:
    """Sample a dataset's trained generator into a grid PNG (layout chosen from n) or individual PNGs; byte-identical for the same seed."""
    from jointnet_cli.sampling import sample_images, write_samples

    images = sample_images(run, dataset, n=n, seed=seed, method=method, device=device or "auto")
    paths = write_samples(images, out, individual=individual, force=force)
    if json_:
        print_json({"run": str(run), "dataset": dataset, "n": n, "seed": seed, "files": [str(p) for p in paths]})
    else:
        stdout().print(f"{n} samples of {dataset} → {out}" + (f" ({len(paths)} files)" if individual else ""))
