"""Result tables like the paper's: one row per dataset, one column per method.

`results_table` turns method → dataset → value into a `ResultTable` holding the
cells, the best method(s) of every row and each method's average; the
`table_*` functions render it as JSON, CSV, Markdown or a rich table.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jointnet_cli.errors import UserError

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class ResultTable:
    """Cells `values[method][dataset]` (None = missing), best methods per dataset, per-method averages."""

    datasets: list[str]  # rows, in first-seen order
    methods: list[str]  # columns
    values: dict[str, dict[str, float | None]]
    higher_is_better: bool
    best: dict[str, list[str]]  # dataset → the method(s) with the best value (all tied ones)
    average: dict[str, float | None]  # method → mean over all datasets; None when a cell is missing

    def best_average(self) -> list[str]:
        """The method(s) with the best average among those that have one."""
        return _best({m: a for m, a in self.average.items() if a is not None}, self.higher_is_better)


def numeric_metrics(per_method: dict[str, dict[str, dict[str, Any]]], primary: str) -> list[str]:
    """The numeric metrics of method → dataset → scores (per-class lists stay in JSON), the primary first."""
    first = next(iter(next(iter(per_method.values())).values()))
    found = [m for m, v in first.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return sorted(found, key=lambda m: m != primary)


def _best(cells: dict[str, float], higher_is_better: bool) -> list[str]:
    if not cells:
        return []
    target = max(cells.values()) if higher_is_better else min(cells.values())
    return [m for m, v in cells.items() if v == target]


def results_table(
    metrics: dict[str, dict[str, float]],
    *,
    higher_is_better: bool,
    methods_order: list[str] | None = None,
) -> ResultTable:
    """Build the table from method → dataset → value.

    Columns follow `methods_order` (methods without results are left out),
    then any other method in the order given. NaN or infinite values count as
    missing cells. A method's average is reported only when it has every dataset.
    """
    if not metrics:
        raise UserError("no results to tabulate")
    order = [m for m in (methods_order or []) if m in metrics]
    methods = list(dict.fromkeys(order + list(metrics)))
    datasets: list[str] = []
    for m in methods:
        for d in metrics[m]:
            if d not in datasets:
                datasets.append(d)
    values: dict[str, dict[str, float | None]] = {}
    for m in methods:
        row: dict[str, float | None] = {}
        for d in datasets:
            v = metrics[m].get(d)
            row[d] = float(v) if v is not None and math.isfinite(float(v)) else None
        values[m] = row
    best = {
        d: _best({m: values[m][d] for m in methods if values[m][d] is not None}, higher_is_better)  # type: ignore[misc]
        for d in datasets
    }
    average: dict[str, float | None] = {}
    for m in methods:
        cells = [values[m][d] for d in datasets]
        average[m] = None if any(v is None for v in cells) else math.fsum(cells) / len(cells)  # type: ignore[arg-type]
    return ResultTable(datasets, methods, values, higher_is_better, best, average)


def table_json(t: ResultTable) -> dict[str, Any]:
    """JSON-ready dict: methods, one entry per dataset row (values and best), and averages."""
    return {
        "higher_is_better": t.higher_is_better,
        "methods": list(t.methods),
        "rows": [
            {"dataset": d, "values": {m: t.values[m][d] for m in t.methods}, "best": list(t.best[d])}
            for d in t.datasets
        ],
        "average": dict(t.average),
        "best_average": t.best_average(),
    }


def _csv_cell(v: float | None) -> str:
    return "" if v is None else repr(v)  # repr round-trips a float exactly


def table_csv(t: ResultTable) -> str:
    """CSV text: header `dataset,<methods…>`, one row per dataset, last row `average`; missing cells empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dataset", *t.methods])
    for d in t.datasets:
        writer.writerow([d, *(_csv_cell(t.values[m][d]) for m in t.methods)])
    writer.writerow(["average", *(_csv_cell(t.average[m]) for m in t.methods)])
    return out.getvalue()


def _md_text(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def table_markdown(t: ResultTable, fmt: str = "{:.4f}") -> str:
    """GitHub Markdown table with the best value of each row (and the best average) in bold, `–` when missing."""

    def cell(v: float | None, bold: bool) -> str:
        if v is None:
            return "–"
        s = fmt.format(v)
        return f"**{s}**" if bold else s

    lines = [
        "| dataset | " + " | ".join(_md_text(m) for m in t.methods) + " |",
        "|---|" + "---:|" * len(t.methods),
    ]
    for d in t.datasets:
        cells = [cell(t.values[m][d], m in t.best[d]) for m in t.methods]
        lines.append(f"| {_md_text(d)} | " + " | ".join(cells) + " |")
    best_avg = t.best_average()
    lines.append("| Avg | " + " | ".join(cell(t.average[m], m in best_avg) for m in t.methods) + " |")
    return "\n".join(lines) + "\n"


def table_rich(t: ResultTable, title: str, fmt: str = "{:.4f}") -> "Table":
    """A `rich.table.Table` of the results: best per row in bold, an average row at the bottom."""
    from rich.table import Table
    from rich.text import Text

    def cell(v: float | None, bold: bool) -> Text:
        if v is None:
            return Text("–", style="dim")
        return Text(fmt.format(v), style="bold" if bold else "")

    arrow = "higher is better" if t.higher_is_better else "lower is better"
    table = Table(title=title, caption=arrow)
    table.add_column("dataset")
    for m in t.methods:
        table.add_column(Text(m), justify="right")
    for i, d in enumerate(t.datasets):
        table.add_row(
            Text(d),
            *(cell(t.values[m][d], m in t.best[d]) for m in t.methods),
            end_section=i == len(t.datasets) - 1,
        )
    best_avg = t.best_average()
    table.add_row(Text("average", style="italic"), *(cell(t.average[m], m in best_avg) for m in t.methods))
    return table
