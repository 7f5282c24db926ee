"""`jointnet quickstart`: the whole pipeline on the builtin synth8 collection, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jointnet_cli.cli import options as o
from jointnet_cli.cli.options import plain
from jointnet_cli.cli.output import RichReporter, console, print_json
from jointnet_cli.cli.root import Command, app


@app.command(cls=Command, epilog="Example: jointnet quickstart    (then open runs/quickstart/report/results.md)")
def quickstart(
    run: Annotated[Path, typer.Option("--run", help="Run directory.")] = Path("runs/quickstart"),
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where synth8 is (or will be) prepared.")] = Path("data"),
    device: o.Device = None,
    json_: o.Json = False,
) -> None:
    """Prepare synth8 at 32 px, train the joint method (warm start → IRLS) and the isolated, shareall and l2 baselines, evaluate them all with plots, and print the results table.

    About 5 minutes on 2 CPU cores. Every stage resumes if interrupted and rerun; a finished stage is not redone.
    """
    from jointnet_cli.cli.evaluate import _print
    from jointnet_cli.joint.device import resolve_device
    from jointnet_cli.apply.quickstart import run_quickstart

    device = plain(device) or "auto"
    resolve_device(device)
    con = console(quiet=json_)
    with RichReporter(con) as reporter:
        result = run_quickstart(data_dir=data_dir, run=run, device=device, reporter=reporter,
                                say=lambda text: con.log(f"[bold]{text}[/]"))
    if json_:
        print_json(result)
    else:
        _print(result)
