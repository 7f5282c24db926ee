"""`jointnet complete`: fill a hole in images with a run's trained auto-encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from jointnet_cli.cli import options as o
from jointnet_cli.cli.options import deprecated_alias, merge, plain
from jointnet_cli.cli.output import console, phase_bars, print_json, stdout
from jointnet_cli.cli.recipe import load_recipe
from jointnet_cli.cli.root import Command, app

_H = "Hole"
_O = "Output"


@app.command(cls=Command, epilog="Example: jointnet complete --run runs/quickstart --dataset shapes-1 assets/shapes-1.png "
                    "--side-by-side")
def complete(
    images: Annotated[list[str], typer.Argument(help="Image files, folders (their images) or glob patterns.",
                                                show_default=False)],
    dataset: Annotated[str, typer.Option("--dataset", help="Whose network fills the hole (a dataset of the run).",
                                         show_default=False)],
    method: Annotated[Optional[str], typer.Option(
        "--method", help="joint, or a trained baseline: isolated, shareall, l2, l2-partial-25, finetune, …",
        show_default="joint")] = None,
    box: Annotated[Optional[str], typer.Option(
        "--box", help="X,Y: top-left corner of the square hole, in input pixels. Default: centred.", rich_help_panel=_H)] = None,
    hole: Annotated[Optional[int], typer.Option(
        "--hole", help="Side of the square hole in input pixels.", show_default="the run's --hole", rich_help_panel=_H)] = None,
    size: Annotated[Optional[int], typer.Option("--size", hidden=True, help="Deprecated: --hole.")] = None,
    mask: Annotated[Optional[Path], typer.Option(
        "--mask", help="Binary image of the input's size, white = hole (any shape).", rich_help_panel=_H)] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="A file for one input (format from its extension), else a folder of PNGs.",
        show_default="completed/", rich_help_panel=_O)] = None,
    side_by_side: Annotated[bool, typer.Option(
        "--side-by-side", help="Also write NAME-side-by-side: input with hole | completed | original.", rich_help_panel=_O)] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.", rich_help_panel=_O)] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per network call.")] = 64,
    run: o.Run = None, task: o.Task = None, datasets: o.Datasets = None,
    device: o.Device = None, recipe: o.Recipe = None, json_: o.Json = False,
) -> None:
    """Fill a hole in each image with the trained network of one dataset (the final joint network unless --method).

    The hole is a --hole square at --box (centred by default), or any shape given by --mask. Images of any size and any format Pillow reads: the network sees a context window around the hole resampled to its own resolution; the result is pasted back into the hole only, so every other pixel stays as decoded (bit-identical in PNG). Everything is checked before anything is written.
    """
    from jointnet_cli.cli.training import resolve_run_path
    from jointnet_cli.apply.complete import complete_images, parse_box

    # from a recipe: which run (run, or task + datasets) and the device; its `size` is an image size, not a hole
    hole = deprecated_alias("complete", "--hole", hole, "--size", size)
    given = load_recipe(recipe, "complete")
    s = merge({k: v for k, v in given.items() if k in ("run", "task", "datasets", "device")},
              dict(run=run, task=plain(task), datasets=datasets, device=plain(device)))
    run_path = resolve_run_path(s, "complete")
    xy = parse_box(box)
    con = console(quiet=json_)

    with phase_bars(con) as progress:
        records = complete_images(run_path, dataset, images, method=method, box=xy, size=hole, mask=mask, out=out,
                                  side_by_side=side_by_side, force=force, device=s.get("device") or "auto",
                                  batch_size=batch_size, progress=progress)
    if json_:
        print_json(records)
        return
    printer = stdout()
    for r in records[:20]:
        x, y, w, h = r["box"]
        extra = f" (+ {r['side_by_side']})" if r["side_by_side"] else ""
        printer.print(f"{r['input']} → {r['output']}{extra}  hole {w}×{h} at {x},{y}", markup=False)
    if len(records) > 20:
        printer.print(f"… and {len(records) - 20} more")
    printer.print(f"completed {len(records)} image{'s' if len(records) != 1 else ''} with the {records[0]['method']} "
                  f"network of {dataset}" if records else "nothing to complete", markup=False)
