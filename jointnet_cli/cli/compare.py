"""`jointnet compare`: one table across runs (seeds), from their evaluated results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from jointnet_cli.cli import options as o
from jointnet_cli.cli.output import console, phase_bars, print_json, stdout
from jointnet_cli.cli.root import Command, app
from jointnet_cli.wording import plural


@app.command(cls=Command, epilog="Examples: jointnet compare runs/ae-seed*    |    "
                                 "jointnet compare runs/a runs/b runs/c --md table.md --csv table.csv")
def compare(
    runs: Annotated[list[str], typer.Argument(help="Run directories or glob patterns (evaluated runs).",
                                              show_default=False, metavar="RUN")],
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Also write the table as CSV (method, dataset, mean, std).")] = None,
    md: Annotated[Optional[Path], typer.Option("--md", help="Also write the table as Markdown.")] = None,
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write the table, groups, budgets and "
                                                 "group recovery as one self-contained HTML page.")] = None,
    metric: Annotated[Optional[str], typer.Option(
        "--metric", help="The metric to tabulate (ae: mse, mse_hole, psnr, ssim, psnr_hole, ssim_hole).",
        show_default="the task's: mse, accuracy or swd")] = None,
    json_: o.Json = False,
) -> None:
    """Compare runs of one task and dataset list: mean ± std over seeds per method and dataset, and the average.

    Reads each run's report/results.json (run `jointnet evaluate` first); trains and scores nothing. Runs that differ only in --seed form one group; groups that differ in other settings are shown side by side, each method labelled with its group's settings. Also prints each method's budget and, when the datasets carry known groups, the recovery of those groups per window.
    """
    from jointnet_cli.report.compare import compare_runs, markdown, to_csv
    from jointnet_cli.store.atomic import atomic_write_bytes

    with phase_bars(console(quiet=json_)) as progress:
        result = compare_runs(runs, metric, progress=progress)
    summary = result["summary"]
    if csv is not None:
        atomic_write_bytes(csv, to_csv(summary).encode())
    if md is not None:
        atomic_write_bytes(md, markdown(summary).encode())
    if html is not None:
        from jointnet_cli.report.html import compare_page

        atomic_write_bytes(html, compare_page(result).encode())
    if json_:
        print_json(result)
        return
    _print(result)


def _print(result: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    from jointnet_cli.report.compare import cell_format

    s = result["summary"]
    out = stdout()
    if out.is_terminal:
        names, t = s["datasets"], s["table"]
        fmt = cell_format(s["metric"])
        better = max if s["higher_is_better"] else min
        table = Table(title=f"test {s['metric']}: mean ± std over seeds (best per column in bold)",
                      title_justify="left", caption="higher is better" if s["higher_is_better"] else "lower is better")
        table.add_column("method")
        for d in [*names, "average"]:
            table.add_column(d, justify="right")
        best = {d: better(t, key=lambda m: t[m][d]["mean"]) for d in [*names, "average"]}
        for m in t:
            table.add_row(m, *[Text(fmt.format(t[m][d]["mean"], t[m][d]["std"]), style="bold" if best[d] == m else "")
                               for d in [*names, "average"]])
        out.print(table)
    else:                                         # a file or a pipe: the whole table as Markdown, nothing cut
        from jointnet_cli.report.compare import markdown

        out.print(markdown(s), markup=False, soft_wrap=True)
    others = [m for m in s.get("metrics", []) if m != s["metric"]]
    if others:
        out.print(f"also reported: {', '.join(others)} (--metric NAME)", markup=False)
    for g in result["groups"]:
        label = ", ".join(f"{k} {v}" for k, v in g["settings"].items()) or "all runs"
        out.print(f"{label}: {plural(len(g['runs']), 'run')}, seeds {', '.join(map(str, g['seeds']))}", markup=False)
        for m, b in g["summary"]["budgets"].items():
            out.print(f"  {m}: {b['epochs']} epochs per dataset ({b['budget']})", markup=False)
        if g["summary"]["recovery"]:
            out.print("  recovery of the known groups (ARI per window): " + ", ".join(
                f"{r['window']} {r['mean']:.2f} ± {r['std']:.2f}" for r in g["summary"]["recovery"]), markup=False)
