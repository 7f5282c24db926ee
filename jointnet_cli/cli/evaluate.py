"""`jointnet evaluate`: the paper-style results table of every trained method, with plots on request."""

from __future__ import annotations

from typing import Annotated

import typer

from jointnet_cli.cli import options as o
from jointnet_cli.cli.options import merge, plain
from jointnet_cli.cli.output import console, phase_bars, print_json, stdout
from jointnet_cli.cli.recipe import load_recipe
from jointnet_cli.cli.root import Command, app
from jointnet_cli.cli.training import resolve_run_path
from jointnet_cli.wording import plural


@app.command(cls=Command, epilog="Examples: jointnet evaluate --run runs/ae8 --plots    |    jointnet evaluate --run runs/ae8 --html")
def evaluate(
    run: o.Run = None,
    plots: Annotated[bool, typer.Option("--plots", help="Also draw PNG curves, weight heatmaps and sharing graphs.")] = False,
    html: Annotated[bool, typer.Option("--html", help="Also write report/index.html: tables, every plot (embedded), "
                                       "the configuration; one self-contained page (implies --plots).")] = False,
    top_k: Annotated[int, typer.Option("--top-k", help="Sharing graph: edge i–j when each is among the other's k strongest.")] = 3,
    task: o.Task = None, datasets: o.Datasets = None,
    data_dir: o.DataDir = None, device: o.Device = None, recipe: o.Recipe = None, json_: o.Json = False,
) -> None:
    """Evaluate every trained method (joint and baselines) on every dataset's test split.

    Prints a table (datasets × methods, best per row in bold, an average row) and writes report/results.json, results.csv and results.md, the sharing graph per window as DOT, and with --plots PNG curves, heatmaps of the IRLS weights and sharing graphs. When the datasets carry known groups, reports how well each window's weights recover them (adjusted Rand index).
    """
    from jointnet_cli.report.evaluate import evaluate_run

    s = merge(load_recipe(recipe, "evaluate"), dict(run=run, task=plain(task), datasets=datasets,
                                                     data_dir=data_dir, device=plain(device)))
    run_path = resolve_run_path(s, "evaluate")
    con = console(quiet=json_)
    with phase_bars(con) as progress:
        result = evaluate_run(run_path, data_dir=s.get("data_dir"), device=s.get("device") or "auto",
                              plots=plots, top_k=top_k, html=html, progress=progress)
    if json_:
        print_json(result)
        return
    _print(result)


def _print(result: dict) -> None:
    from jointnet_cli.report.tables import results_table, table_rich

    out = stdout()
    metric = result["metric"]
    per = {m: {d: v[metric] for d, v in ds.items()} for m, ds in result["metrics"].items()}
    from jointnet_cli.report.evaluate import METHOD_ORDER

    t = results_table(per, higher_is_better=result["higher_is_better"], methods_order=METHOD_ORDER)
    out.print(table_rich(t, title=f"test {metric} — {result['run']}", fmt="{:.5f}"))
    for m, b in result["budgets"].items():
        out.print(f"  {m}: {plural(b['epochs'], 'epoch')} per dataset ({b['budget']})")
    if "learned_groups" in result:
        out.print("learned groups (joint's start): " + "; ".join(", ".join(g) for g in result["learned_groups"]))
    if "group_recovery" in result:
        names = result["sharing"]["windows"]
        out.print("recovery of the known groups (ARI per window): "
                  + ", ".join(f"{names[i]} {v:.2f}" for i, v in enumerate(result["group_recovery"])))
    out.print("files:\n  " + "\n  ".join(result["files"]))
