"""One self-contained HTML page of a run's report (`evaluate --html`) or of a comparison (`compare --html`).

Everything is inside the file: tables as HTML, every PNG embedded as a base64 data URI, the
configuration as JSON text; no script, stylesheet or font is fetched, so the page opens offline and
can be sent as one file.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from jointnet_cli.report.compare import cell_format

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.best { font-weight: bold; background: #eef6ee; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.85em; }
.note { color: #555; }
.tables { display: flex; flex-wrap: wrap; gap: 0 2.5em; } .tables h3 { font-size: 1em; margin-bottom: 0.2em; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def image_tag(path: Path, caption: str) -> str:
    """A figure with the PNG at `path` embedded (data URI)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def results_table_html(table: dict, fmt: str) -> str:
    """One `evaluate` table (report.tables.table_json): datasets × methods, best per row and average in bold."""
    methods = table["methods"]
    head = "".join(f"<th>{_e(m)}</th>" for m in methods)
    rows = []
    for row in table["rows"]:
        cells = "".join(f'<td class="{"best" if m in row["best"] else ""}">'
                        f'{"–" if row["values"][m] is None else fmt.format(row["values"][m])}</td>' for m in methods)
        rows.append(f"<tr><td>{_e(row['dataset'])}</td>{cells}</tr>")
    avg = "".join(f'<td class="{"best" if m in table["best_average"] else ""}">'
                  f'{"–" if table["average"][m] is None else fmt.format(table["average"][m])}</td>' for m in methods)
    rows.append(f"<tr><td><i>average</i></td>{avg}</tr>")
    return f"<table><tr><th>dataset</th>{head}</tr>{''.join(rows)}</table>"


def summary_table_html(summary: dict) -> str:
    """A `compare` summary: methods × datasets and the average, mean ± std over seeds, best per column in bold."""
    names, t = summary["datasets"], summary["table"]
    fmt = cell_format(summary["metric"])
    better = max if summary["higher_is_better"] else min
    columns = [*names, "average"]
    best = {d: better(t, key=lambda m: t[m][d]["mean"]) for d in columns} if t else {}
    head = "".join(f"<th>{_e(d)}</th>" for d in columns)
    rows = "".join(
        f"<tr><td>{_e(m)}</td>" + "".join(
            f'<td class="{"best" if best[d] == m else ""}">{fmt.format(row[d]["mean"], row[d]["std"])}</td>'
            for d in columns) + "</tr>" for m, row in t.items())
    return f"<table><tr><th>method</th>{head}</tr>{rows}</table>"


def page(title: str, body: list[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n")


def _image_caption(name: str) -> str:
    stem = Path(name).stem
    if stem.startswith("curves-"):
        return f"test {stem[len('curves-'):]} over training, mean over datasets (dashed lines: where a stage starts)"
    if stem == "consistency":
        return "weighted consistency term after each IRLS iteration"
    if stem.startswith("weights-k"):
        return f"IRLS weights of iteration {int(stem[len('weights-k'):])}, per window (diagonal grey)"
    if stem.startswith("graph-w"):
        return f"sharing graph of window {int(stem[len('graph-w'):])} (final networks)"
    if stem.startswith("samples-"):
        return f"samples of {stem[len('samples-'):]}, one row per dataset"
    if stem.startswith("completions-"):
        return f"completed test images, {stem[len('completions-'):]}: input, completed, original"
    return stem


def run_page(result: dict, config: dict) -> str:
    """The report of one evaluated run: tables of every metric, budgets, group recovery, every plot
    it drew (curves, weight heatmaps per iteration, sharing graphs, samples or completions) and its
    configuration."""
    body = [f'<p class="note">Run <code>{_e(result["run"])}</code>, task <b>{_e(result["task"])}</b>; '
            f"test metric <b>{_e(result['metric'])}</b> "
            f"({'higher' if result['higher_is_better'] else 'lower'} is better). Best per row in bold.</p>"]
    higher = result.get("higher_is_better_of", {})
    tables = []
    for metric, table in result["tables"].items():
        arrow = "higher" if higher.get(metric, result["higher_is_better"]) else "lower"
        fmt = cell_format(metric).split(" ± ")[0]
        tables.append(f"<div><h3>test {_e(metric)} ({arrow} is better)</h3>{results_table_html(table, fmt)}</div>")
    body += ["<h2>Results</h2>", '<div class="tables">' + "".join(tables) + "</div>"]
    body.append("<h2>Budgets</h2><ul>" + "".join(f"<li>{_e(m)}: {b['epochs']} epochs per dataset ({_e(b['budget'])})</li>"
                                              for m, b in result["budgets"].items()) + "</ul>")
    if "learned_groups" in result:
        body.append("<h2>Learned groups</h2><p>The groups joint's start trained together: "
                    + "; ".join(_e(", ".join(g)) for g in result["learned_groups"]) + "</p>")
    if "group_recovery" in result:
        windows = result["sharing"]["windows"]
        body.append("<h2>Recovery of the known groups</h2><p>Adjusted Rand index per window (1 = exact, ≈ 0 = chance): "
                    + ", ".join(f"{_e(windows[i])} {v:.2f}" for i, v in enumerate(result["group_recovery"])) + "</p>")
    pngs = [Path(f) for f in result["files"] if str(f).endswith(".png")]
    order = ("curves-", "consistency", "samples-", "completions-", "weights-k", "graph-w")
    pngs.sort(key=lambda p: (next((k for k, o in enumerate(order) if p.name.startswith(o)), len(order)), p.name))
    if pngs:
        body.append("<h2>Figures</h2>")
        body += [image_tag(p, _image_caption(p.name)) for p in pngs if p.is_file()]
    body += ["<h2>Configuration</h2>", f"<pre>{_e(json.dumps(config, indent=2, sort_keys=True))}</pre>"]
    return page(f"jointnet report: {Path(result['run']).name}", body)


def compare_page(result: dict) -> str:
    """The table `jointnet compare` prints, with each group's runs, seeds, budgets and group recovery."""
    s = result["summary"]
    body = [f'<p class="note">Task <b>{_e(result["task"])}</b>, datasets {_e(", ".join(result["datasets"]))}; '
            f"test {_e(s['metric'])}, mean ± std over seeds "
            f"({'higher' if s['higher_is_better'] else 'lower'} is better; best per column in bold).</p>",
            summary_table_html(s)]
    for g in result["groups"]:
        label = ", ".join(f"{k} {v}" for k, v in g["settings"].items()) or "all runs"
        items = [f"<li>runs: {_e(', '.join(g['runs']))} (seeds {_e(', '.join(map(str, g['seeds'])))})</li>"]
        items += [f"<li>{_e(m)}: {b['epochs']} epochs per dataset ({_e(b['budget'])})</li>"
                  for m, b in g["summary"]["budgets"].items()]
        if g["summary"]["recovery"]:
            items.append("<li>recovery of the known groups (ARI per window): " + ", ".join(
                f"{_e(r['window'])} {r['mean']:.2f} ± {r['std']:.2f}" for r in g["summary"]["recovery"]) + "</li>")
        body += [f"<h2>{_e(label)}</h2><ul>{''.join(items)}</ul>"]
    return page(f"jointnet compare: {result['task']}", body)
