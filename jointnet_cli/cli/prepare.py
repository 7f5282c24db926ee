"""`jointnet prepare`: turn an image folder, or a builtin collection, into a prepared dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from jointnet_cli.cli import options as o
from jointnet_cli.cli.options import merge
from jointnet_cli.cli.output import console, print_json, stdout
from jointnet_cli.cli.recipe import load_recipe
from jointnet_cli.cli.root import Command, app
from jointnet_cli.errors import UserError


@app.command(cls=Command, epilog=(
    "Examples: jointnet prepare birds --from ~/photos/birds --size 64 --train 500 --test 100    |    "
    "jointnet prepare --builtin synth8 --size 32"))
def prepare(
    name: Annotated[Optional[str], typer.Argument(help="Name of the dataset to create in --data-dir.")] = None,
    source: Annotated[Optional[Path], typer.Option(
        "--from", help="Folder of images: DIR/<class>/* (labelled) or a flat folder (unlabelled).")] = None,
    builtin: Annotated[Optional[str], typer.Option("--builtin", help="Make a builtin collection instead: synth8.")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Side of the square images.", show_default="64; synth8: 32")] = None,
    train: Annotated[Optional[str], typer.Option(
        "--train", help="Training images per class (per domain for synth8), or 'all'.", show_default="500")] = None,
    test: Annotated[Optional[float], typer.Option(
        "--test", help="Test images per class (a count, or a fraction < 1).", show_default="100")] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Seed of the train/test split (synth8: of the generated images).", show_default="0")] = None,
    force: Annotated[Optional[bool], typer.Option("--force", help="Overwrite an existing dataset.")] = None,
    data_dir: o.DataDir = None,
    recipe: o.Recipe = None,
    json_: o.Json = False,
) -> None:
    """Decode, resize, centre-crop and split images into DATA_DIR/NAME (train/test safetensors + manifest)."""
    s = merge(load_recipe(recipe, "prepare"), dict(
        source=source, builtin=builtin, size=size, train=train, test=test, seed=seed, force=force, data_dir=data_dir))
    data_dir_path = Path(s.get("data_dir") or "data")
    train_n = _parse_train(s.get("train"))
    test_n = s.get("test", 100)
    if isinstance(test_n, float) and test_n >= 1:
        if test_n != int(test_n):
            raise UserError(f"--test must be a whole count or a fraction below 1 (got {test_n})")
        test_n = int(test_n)
    con = console(quiet=json_)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if name:
        from jointnet_cli.data.format import validate_name

        validate_name(name)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=con, transient=True, disable=not con.is_terminal) as bar:
        job = bar.add_task("preparing", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total)

        if s.get("builtin"):
            if name or s.get("source"):
                raise UserError("give either NAME --from DIR or --builtin COLLECTION, not both")
            if s["builtin"] != "synth8":
                raise UserError(f"unknown builtin collection {s['builtin']!r} (known: synth8)")
            from jointnet_cli.data.synth8 import prepare_synth8

            if isinstance(test_n, float):
                raise UserError(f"--test {test_n}: synth8 generates its test images, give a count (e.g. --test 100)")
            bar.update(job, description="generating synth8")
            results = prepare_synth8(data_dir=data_dir_path, size=32 if s.get("size") is None else s["size"],
                                     train=train_n or 500,
                                     test=int(test_n), seed=s.get("seed") or 0, force=bool(s.get("force")),
                                     progress=progress)
        else:
            if not name:
                raise UserError("missing NAME (or use --builtin synth8)")
            if not s.get("source"):
                raise UserError("missing --from DIR: the folder of images to prepare")
            from jointnet_cli.data.ingest import prepare_folder

            bar.update(job, description=f"decoding {s['source']}")
            results = [prepare_folder(name, Path(s["source"]), data_dir=data_dir_path, size=64 if s.get("size") is None else s["size"],
                                      train=500 if s.get("train") is None else train_n, test=test_n,
                                      seed=s.get("seed") or 0, force=bool(s.get("force")), progress=progress)]
    out = [{"name": r.name, "path": str(r.path), "counts": r.manifest["counts"], "classes": r.manifest.get("classes", []),
            "group": r.manifest.get("group"), "skipped": r.skipped} for r in results]
    if json_:
        print_json({"datasets": out})
        return
    for r in out:
        skipped = f", skipped {len(r['skipped'])} file(s) (listed in manifest.json)" if r["skipped"] else ""
        group = f" (group {r['group']})" if r["group"] else ""
        stdout().print(f"{r['name']}{group}: {r['counts']['train']} train / {r['counts']['test']} test, "
                        f"{len(r['classes'])} classes → {r['path']}{skipped}")


def _parse_train(value: object) -> int | None:
    if value is None or value == "all":
        return None
    try:
        n = int(str(value))
    except ValueError:
        raise UserError(f"--train must be a whole number or 'all' (got {value!r})") from None
    if n < 1:
        raise UserError(f"--train must be at least 1 (got {n})")
    return n
