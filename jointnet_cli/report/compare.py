"""Compare evaluated runs across seeds: mean ± std per dataset and method, from the files alone.

A run's numbers are its `report/results.json` (written by `jointnet evaluate`); nothing is retrained or
re-scored. Runs whose configurations differ only in the seed form one group; several groups are shown
side by side, each method labelled with the settings that tell its group apart.
"""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any, Callable

from jointnet_cli.errors import UserError
from jointnet_cli.report.tables import numeric_metrics
from jointnet_cli.runs.config import RESOLVED, RunConfig
from jointnet_cli.runs.rundir import RunDir
from jointnet_cli.store.atomic import read_json
from jointnet_cli.wording import plural

# config.json keys that do not make two runs different experiments
NOT_SETTINGS = {"seed", "format", "layers", "data", "data_dir", "chains", "window_names"}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def metrics_of(result: dict) -> list[str]:
    """The numeric metrics an `evaluate` result holds, the primary one first."""
    return numeric_metrics(result["metrics"], result["metric"])


def summarize(task: str, results: list[dict], methods: list[str] | None = None, metric: str | None = None) -> dict:
    """Mean ± std over seeds (the entries of `results`, each an `evaluate` result) of `metric` (default:
    the primary one) per method and dataset, of its average over datasets, and of the group recovery per window."""
    metric = metric or results[0]["metric"]
    available = metrics_of(results[0])
    if metric not in available:
        raise UserError(f"--metric {metric!r}: these runs report {', '.join(available)}")
    higher = results[0].get("higher_is_better_of", {}).get(metric, results[0]["higher_is_better"])
    names = list(next(iter(results[0]["metrics"].values())))
    methods = methods or list(dict.fromkeys(m for r in results for m in r["metrics"]))
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for m in methods:
        per_seed = [r["metrics"][m] for r in results if m in r["metrics"]]
        if not per_seed:
            continue
        row = {d: mean_std([s[d][metric] for s in per_seed]) for d in names}
        row["average"] = mean_std([statistics.fmean(s[d][metric] for d in names) for s in per_seed])
        table[m] = row
    recovery = [r["group_recovery"] for r in results if "group_recovery" in r]
    windows = results[0].get("sharing", {}).get("windows", [])
    return {
        "task": task, "metric": metric, "higher_is_better": higher, "metrics": available,
        "seeds": len(results), "datasets": names,
        "table": {m: {d: {"mean": v[0], "std": v[1]} for d, v in row.items()} for m, row in table.items()},
        "recovery": [{"window": windows[w] if w < len(windows) else f"w{w + 1}",
                      "mean": mean_std([r[w] for r in recovery])[0], "std": mean_std([r[w] for r in recovery])[1]}
                     for w in range(len(recovery[0]))] if recovery else [],
        "budgets": {m: b for r in reversed(results) for m, b in r["budgets"].items()},   # every run's methods
    }


def cell_format(metric: str) -> str:
    """How a mean ± std of `metric` is printed (dB to 0.01, fractions to 0.001, errors to 0.0001)."""
    if metric.startswith("psnr"):
        return "{:.2f} ± {:.2f}"
    if metric == "accuracy" or metric.startswith("ssim"):
        return "{:.3f} ± {:.3f}"
    return "{:.4f} ± {:.4f}"


def markdown(summary: dict) -> str:
    """The paper-style table: one row per method, one column per dataset and the average (best in bold)."""
    names, t = summary["datasets"], summary["table"]
    fmt = cell_format(summary["metric"])
    better = max if summary["higher_is_better"] else min
    best = better(t, key=lambda m: t[m]["average"]["mean"]) if t else None
    lines = [f"| method | {' | '.join(names)} | average |", "|---" * (len(names) + 2) + "|"]
    for m, row in t.items():
        cells = [fmt.format(row[d]["mean"], row[d]["std"]) for d in [*names, "average"]]
        if m == best:
            cells[-1] = f"**{cells[-1]}**"
        lines.append(f"| {m} | {' | '.join(cells)} |")
    out = [f"### {summary['task']}: test {summary['metric']} "
           f"({'higher' if summary['higher_is_better'] else 'lower'} is better), "
           f"mean ± std over {plural(summary['seeds'], 'seed')}", "", *lines]
    if summary["recovery"]:
        out += ["", "Joint: recovery of the known groups by the final IRLS weights "
                    "(adjusted Rand index, mean ± std over seeds; 1 = exact, ≈ 0 = chance):", "",
                ", ".join(f"{r['window']}: {r['mean']:.2f} ± {r['std']:.2f}" for r in summary["recovery"])]
    budgets = summary["budgets"]
    if budgets:
        out += ["", "Budgets (epochs per dataset): " + "; ".join(f"{m} {b['epochs']}" for m, b in budgets.items())]
    return "\n".join(out) + "\n"


def to_csv(summary: dict) -> str:
    """One row per method and dataset (and `average`): mean and std over seeds."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "dataset", f"{summary['metric']}_mean", f"{summary['metric']}_std", "seeds"])
    for m, row in summary["table"].items():
        for d, v in row.items():
            w.writerow([m, d, repr(v["mean"]), repr(v["std"]), summary["seeds"]])
    return buf.getvalue()


def expand_runs(specs: list[str]) -> list[Path]:
    """Run directories from paths and glob patterns, each once, in the order given."""
    import glob

    out: list[Path] = []
    for spec in specs:
        matches = sorted(glob.glob(spec)) if any(ch in spec for ch in "*?[") else [spec]
        if not matches:
            raise UserError(f"no run directory matches {spec!r}")
        out += [Path(m) for m in matches if Path(m) not in out]
    return out


def _config(path: Path) -> dict:
    run = RunDir(path)
    if not run.exists():
        raise UserError(f"no run at {path} (config.json missing)")
    config = run.read_config()
    cfg = RunConfig.from_json(config, where=str(run.config_path))    # a valid run configuration
    # what ran, not the word `auto`: a run with --sigma auto and one with the σ it resolved to are one group
    return {**config, **{key: getattr(cfg, used) for key, used in RESOLVED.items()}}


def _results(path: Path) -> dict:
    results_path = RunDir(path).report / "results.json"
    if not results_path.is_file():
        raise UserError(f"run {path} has no report/results.json; run `jointnet evaluate --run {path}` first")
    results = read_json(results_path, "results")
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict) or not results["metrics"]:
        raise UserError(f"{results_path} holds no results")
    return results


def compare_runs(specs: list[str], metric: str | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Read every run, group the runs that differ only in seed, and summarize each group across seeds.

    Returns {"task", "datasets", "metric", "groups": [{"settings", "runs", "seeds", "summary"}], "summary"}:
    `summary` merges the groups' tables, each method labelled with its group's distinguishing settings
    when there are several groups."""
    paths = expand_runs(specs)
    if not paths:
        raise UserError("give at least one run directory")
    configs = [(p, _config(p)) for p in paths]
    first_path, first = configs[0]
    for p, config in configs[1:]:                                    # one task and dataset list, before any result
        for key in ("task", "datasets"):
            if config.get(key) != first.get(key):
                shown = (lambda v: ",".join(v) if isinstance(v, list) else v)
                raise UserError(f"runs differ in {key}: {first_path} has {shown(first.get(key))}, "
                                f"{p} has {shown(config.get(key))}; compare runs of one task and dataset list")
    read = []
    for done, (p, config) in enumerate(configs):
        if progress:
            progress("reading results", done, len(configs))
        read.append((p, config, _results(p)))
    groups: dict[tuple, list[tuple[Path, dict, dict]]] = {}
    for p, config, results in read:
        key = tuple(sorted((k, repr(v)) for k, v in config.items() if k not in NOT_SETTINGS))
        groups.setdefault(key, []).append((p, config, results))
    differing = sorted({k for key in groups for k, _ in key if len({dict(g).get(k) for g in groups}) > 1})
    out_groups, merged = [], None
    for members in groups.values():
        config = members[0][1]
        label = ", ".join(f"{k}={config.get(k)}" for k in differing)
        summary = summarize(config["task"], [r for _, _, r in members], metric=metric)
        out_groups.append({"settings": {k: config.get(k) for k in differing}, "runs": [str(p) for p, _, _ in members],
                           "seeds": sorted(c.get("seed", 0) for _, c, _ in members), "summary": summary})
        renamed = {(f"{m} [{label}]" if label else m): row for m, row in summary["table"].items()}
        budgets = {(f"{m} [{label}]" if label else m): b for m, b in summary["budgets"].items()}
        if merged is None:
            merged = {**summary, "table": renamed, "budgets": budgets}
        else:
            merged["table"].update(renamed)
            merged["budgets"].update(budgets)
            merged["seeds"] = min(merged["seeds"], summary["seeds"])
    return {"task": first["task"], "datasets": first["datasets"], "metric": merged["metric"],
            "groups": out_groups, "summary": merged}
