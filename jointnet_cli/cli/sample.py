"""`jointnet sample`: draw images from a trained GAN of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from jointnet_cli.cli import options as o
from jointnet_cli.cli.options import merge, plain
from jointnet_cli.cli.output import print_json, stdout
from jointnet_cli.cli.recipe import load_recipe
from jointnet_cli.cli.root import Command, app


@app.command(cls=Command, epilog="Examples: jointnet sample --run runs/gan --dataset shapes-1 -n 64 --out grid.png    |    "
                    "jointnet sample --run runs/gan --dataset shapes-1 -n 16 --out samples/ --individual")
def sample(
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Whose generator to sample.", show_default=False)] = None,
    n: Annotated[int, typer.Option("-n", help="How many samples.")] = 64,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of the latents: same seed, same images.",
                                                show_default="0")] = None,
    method: Annotated[Optional[str], typer.Option("--method", help="joint (default) or a trained baseline.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Grid PNG, or a folder with --individual.")] = Path("samples.png"),
    individual: Annotated[bool, typer.Option("--individual", help="One PNG per sample in the folder --out.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    run: Annotated[Optional[Path], typer.Option("--run", help="Run directory of a gan run.", show_default=False)] = None,
    task: o.Task = None, datasets: o.Datasets = None,
    device: o.Device = None, recipe: o.Recipe = None,
    json_: o.Json = False,
) -> None:
    """Sample a dataset's trained generator into a grid PNG (layout chosen from n) or individual PNGs; byte-identical for the same seed.

    The run is --run, or the default run directory of --task and --datasets (from flags or a --recipe).
    """
    from jointnet_cli.cli.training import resolve_run_path
    from jointnet_cli.errors import UserError
    from jointnet_cli.apply.sample import sample_images, write_samples

    given = load_recipe(recipe, "sample")
    s = merge({k: v for k, v in given.items() if k in ("run", "task", "datasets", "device", "seed")},
              dict(run=run, task=plain(task), datasets=datasets, device=plain(device), seed=seed))
    run_path = resolve_run_path(s, "sample")
    if not dataset:
        raise UserError("give --dataset NAME: whose generator to sample")
    seed = s.get("seed") or 0
    images = sample_images(run_path, dataset, n=n, seed=seed, method=method, device=s.get("device") or "auto")
    paths = write_samples(images, out, individual=individual, force=force)
    if json_:
        print_json({"run": str(run_path), "dataset": dataset, "n": n, "seed": seed, "files": [str(p) for p in paths]})
    else:
        stdout().print(f"{n} samples of {dataset} → {out}" + (f" ({len(paths)} files)" if individual else ""))
