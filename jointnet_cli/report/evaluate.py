"""`evaluate`: every trained method of a run on every dataset's test split, the paper-style table,
the learned sharing (heatmaps, graphs, recovery of known groups) and curves over training.

Metrics are recomputed from the checkpoints (the files are the truth); curves
come from the per-epoch history in state.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from jointnet_cli.errors import UserError
from jointnet_cli.report.graph import graph_dot, graph_json, mutual_top_k, window_title
from jointnet_cli.report.recovery import group_recovery
from jointnet_cli.report.tables import numeric_metrics, results_table, table_csv, table_json, table_markdown
from jointnet_cli.store.atomic import RunLock, atomic_write_bytes, atomic_write_json
from jointnet_cli.runs.config import RunConfig, group_members, joint_stages
from jointnet_cli.runs.configure import check_same_data
from jointnet_cli.runs.rundir import RunDir, run_data_dir

METHOD_ORDER = ["joint", "isolated", "l2", "l2-partial-25", "l2-partial-50", "shareall", "finetune", "groupshare",
                "l2-groups"]


def trained_methods(state: dict) -> dict[str, dict]:
    """method → {"checkpoint", "epochs", "budget"} for everything the run has finished."""
    out: dict[str, dict] = {}
    irls, ws = state.get("irls", {}), state.get("warmstart", {})
    if irls.get("final_checkpoint"):
        its = irls.get("iterations", [])
        start = state.get("start", {}).get("epochs", 0)
        epochs = start + ws.get("epochs", 0) + sum(it["epochs"] for it in its)
        stages = joint_stages(ws.get("epochs", 0), start, state.get("start", {}).get("method", "shareall"))
        out["joint"] = {"checkpoint": irls["final_checkpoint"], "epochs": epochs,
                        "budget": f"{stages} + {len(its)} IRLS iterations"
                                  f" ({'converged' if irls.get('converged') else 'not converged'})"}
    for key, b in sorted(state.get("baselines", {}).items()):
        if b.get("checkpoint"):
            budget = b.get("budget", "")
            if "pretrained" in b:
                budget += f"; of which {b['pretrained']['epochs']} pretraining on the union"
            out[key] = {"checkpoint": b["checkpoint"], "epochs": b["epochs"], "budget": budget}
    return out


def _learned(state: dict) -> bool:
    """Did joint start from learned groups (trained after the warm start)?"""
    return state.get("start", {}).get("method") == "groups"


def _group_history(start: dict) -> list[dict]:
    """The learned groups' epochs as one history: epoch e holds every group's members' metrics."""
    merged: dict[int, dict] = {}
    for part in start.get("parts", {}).values():
        for h in part.get("history", []):
            if "metrics" in h:
                merged.setdefault(h["epoch"], {"epoch": h["epoch"], "metrics": {}})["metrics"].update(h["metrics"])
    return [merged[e] for e in sorted(merged)]


def curves(state: dict, metric: str) -> dict[str, list[tuple[float, float]]]:
    """method → [(epoch, mean test metric over datasets)], epochs counted from the start of training."""
    def mean(h: dict) -> float:
        return float(np.mean([m[metric] for m in h["metrics"].values()]))

    out: dict[str, list[tuple[float, float]]] = {}
    ws, start = state.get("warmstart", {}), state.get("start", {})
    if ws.get("history"):
        learned = _learned(state)
        points = [] if learned else [(h["epoch"], mean(h)) for h in start.get("history", []) if "metrics" in h]
        offset = 0 if learned else start.get("epochs", 0)
        points += [(offset + h["epoch"], mean(h)) for h in ws["history"] if "metrics" in h]
        offset += ws.get("epochs", len(ws["history"]))
        if learned:                                         # after the warm start; a point once every group has it
            points += [(offset + h["epoch"], mean(h)) for h in _group_history(start)
                       if len(h["metrics"]) == len(start.get("labels", []))]
            offset += start.get("epochs", 0)
        for it in state.get("irls", {}).get("iterations", []):
            points += [(offset + h["epoch"], mean(h)) for h in it.get("history", []) if "metrics" in h]
            offset += it["epochs"]
        out["joint"] = points
    for key, b in sorted(state.get("baselines", {}).items()):
        start = b.get("pretrained", {}).get("epochs", 0)
        if b.get("history"):
            out[key] = [(start + h["epoch"], mean(h)) for h in b["history"] if "metrics" in h]
    return out


def stage_marks(state: dict) -> dict[str, float]:
    """Where joint's stages begin on the epoch axis: the warm start after a shareall start, the learned
    groups after the warm start, IRLS after them (a vertical line on the curves)."""
    marks: dict[str, float] = {}
    start, ws = state.get("start", {}), state.get("warmstart", {})
    if _learned(state):
        after = ws.get("epochs", len(ws.get("history", [])))
        if start.get("parts"):
            marks["learned groups"] = after + 0.5
        if state.get("irls", {}).get("iterations"):
            marks["IRLS starts"] = after + start.get("epochs", 0) + 0.5
        return marks
    offset = start.get("epochs", 0) if start.get("history") else 0
    if offset:
        marks["warm start"] = offset + 0.5
    if ws.get("history") and state.get("irls", {}).get("iterations"):
        marks["IRLS starts"] = offset + ws.get("epochs", len(ws["history"])) + 0.5
    return marks


def next_weights(session, state: dict):
    """The weights the run's next IRLS weighting step would compute from the loaded (final) networks:
    its σ schedule and weight function applied to their distances."""
    import torch

    from jointnet_cli.joint import weights as jw

    cfg = session.cfg
    its = state.get("irls", {}).get("iterations", [])
    fixed = torch.tensor(state["warmstart"]["sigma"], dtype=torch.float64)
    before = torch.tensor(its[-1]["sigma"], dtype=torch.float64) if its and "sigma" in its[-1] else None
    _, _, w = jw.weighting_step(session.window_sq_distances(), schedule=cfg.sigma_schedule, fixed=fixed, previous=before,
                                kind=cfg.weight, rate=cfg.anneal)
    return w


def evaluate_run(run_path: Path | str, *, data_dir: Path | str | None = None, device: str = "auto",
                 plots: bool = False, top_k: int = 3, html: bool = False,
                 progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Evaluate every trained method of the run; write report/results.{json,csv,md} (and plots).

    `data_dir` None: the directory the run was created with (config.json "data_dir"). `html`: also the
    plots, and report/index.html, one self-contained page of all of it."""
    plots = plots or html
    progress = progress or (lambda phase, done, total: None)
    run = RunDir(run_path)
    if not run.exists():
        raise UserError(f"no run at {run.path} (config.json missing)")
    if top_k < 1:
        raise UserError(f"--top-k must be ≥ 1 (got {top_k})")
    cfg = RunConfig.from_json(run.read_config(), where=str(run.config_path))
    data_dir = run_data_dir(run.path, data_dir)
    check_same_data(run, cfg, data_dir)
    run.check_contained()                                # report/ must not lead outside the run
    state = run.read_state()
    methods = trained_methods(state)
    if not methods:
        raise UserError(f"run {run.path} has no finished method yet (train irls or a baseline first)")
    with RunLock(run.report):                            # one evaluate writes report/ at a time
        for stale in run.report.glob(".*.tmp"):          # left by an evaluate that was killed
            if stale.is_file() and not stale.is_symlink():
                stale.unlink(missing_ok=True)
        return _write_report(run, cfg, state, methods, data_dir=data_dir, device=device, plots=plots, top_k=top_k,
                             html=html, progress=progress)


def _write_report(run: RunDir, cfg: RunConfig, state: dict, methods: dict, *, data_dir: Path, device: str,
                  plots: bool, top_k: int, html: bool, progress: Callable[[str, int, int], None]) -> dict[str, Any]:
    """Score every method and write report/ (evaluate_run's second half, under the report lock)."""
    from jointnet_cli.joint.device import resolve_device
    from jointnet_cli.joint.session import Session

    session = Session.open(run, cfg, data_dir=data_dir, device=resolve_device(device))
    task = session.task
    names = list(cfg.datasets)

    metrics: dict[str, dict[str, dict[str, float]]] = {}
    final_weights = None
    grids = []
    for done, (method, info) in enumerate(methods.items()):
        progress(f"evaluating {run.path}", done, len(methods))
        session.snapshots.load(info["checkpoint"], with_optimizer=False)
        metrics[method] = session.evaluate(report=True)
        if cfg.task == "gan":
            grids.append(_sample_grid(session, run.report / f"samples-{method}.png", method))
        elif cfg.task == "ae" and plots and method in ("joint", "isolated"):
            grids.append(_completions(session, run.report / f"completions-{method}.png", method))
        if method == "joint":
            final_weights = next_weights(session, state).numpy()
    progress(f"evaluating {run.path}", len(methods), len(methods))

    metric_names = numeric_metrics(metrics, task.primary_metric)
    higher = {m: task.directions.get(m, task.higher_is_better) for m in metric_names}
    tables = {
        m: results_table({meth: {d: v[m] for d, v in per.items()} for meth, per in metrics.items()},
                         higher_is_better=higher[m], methods_order=METHOD_ORDER)
        for m in metric_names
    }
    report = run.report
    groups = [session.domains[i].manifest.get("group") for i in range(len(names))]
    windows = session.window_names
    result: dict[str, Any] = {
        "run": str(run.path), "task": cfg.task, "metric": task.primary_metric,
        "higher_is_better": task.higher_is_better, "higher_is_better_of": higher,
        "budgets": {m: {"epochs": i["epochs"], "budget": i["budget"]} for m, i in methods.items()},
        "metrics": metrics, "tables": {m: table_json(t) for m, t in tables.items()},
        "files": [str(g) for g in grids],
    }

    if final_weights is not None:
        graphs = []
        for w in range(final_weights.shape[0]):
            edges = mutual_top_k(final_weights[w], top_k)
            g = graph_json(names, edges, weights=final_weights[w], groups=groups)
            graphs.append({"window": w + 1, "name": windows[w], **g})
            dot = report / f"graph-w{w + 1:02d}.dot"
            atomic_write_bytes(dot, graph_dot(names, edges, weights=final_weights[w], groups=groups,
                                              title=f"{window_title(w, windows[w])}, mutual top-{top_k}").encode())
            result["files"].append(str(dot))
        result["sharing"] = {"top_k": top_k, "windows": windows, "weights": final_weights.tolist(), "graphs": graphs}
        if all(groups):
            result["group_recovery"] = group_recovery(final_weights, groups)
    learned = state.get("start", {})
    if learned.get("method") == "groups" and learned.get("labels"):      # --start groups: what the warm start found
        result["learned_groups"] = [[names[i] for i in group] for group in group_members(learned["labels"])]

    if plots:
        progress("drawing plots", 0, 1)
        result["files"] += [str(p) for p in _plots(report, state, names, groups, final_weights, top_k,
                                                   task.primary_metric, windows)]
        progress("drawing plots", 1, 1)

    primary = tables[task.primary_metric]
    md = [f"# Results: {run.path}", "", f"Task `{cfg.task}`, test metric `{task.primary_metric}` "
          f"({'higher' if task.higher_is_better else 'lower'} is better).", ""]
    for m, t in tables.items():
        md += [f"## {m}", "", table_markdown(t, fmt="{:.5f}"), ""]
    md += ["## Budgets (epochs per dataset)", ""] + [f"- {m}: {b['epochs']} ({b['budget']})"
                                                    for m, b in result["budgets"].items()]
    if "learned_groups" in result:
        md += ["", "## Learned groups (joint's start)", "", "; ".join(", ".join(g) for g in result["learned_groups"])]
    if "group_recovery" in result:
        md += ["", "## Recovery of the known groups (adjusted Rand index per window)", "",
               ", ".join(f"w{i + 1}: {v:.2f}" for i, v in enumerate(result["group_recovery"]))]
    atomic_write_bytes(report / "results.md", ("\n".join(md) + "\n").encode())
    atomic_write_bytes(report / "results.csv", table_csv(primary).encode())
    result["files"] = [str(report / "results.json"), str(report / "results.csv"), str(report / "results.md"),
                       *result["files"]]
    if html:
        from jointnet_cli.report.html import run_page

        result["files"].insert(3, str(report / "index.html"))
        atomic_write_bytes(report / "index.html", run_page(result, run.read_config()).encode())
    atomic_write_json(report / "results.json", result)
    return result


def _sample_grid(session, path: Path, method: str, per_dataset: int = 8) -> Path:
    """8 samples of every dataset's generator (fixed latents), one labelled row per dataset."""
    from jointnet_cli.report.plots import plot_image_rows
    from jointnet_cli.seeding import generator

    rows = {name: list(session.task.sample(net, per_dataset, generator(session.cfg.seed, "report-samples", name))
                       .cpu().numpy().transpose(0, 2, 3, 1))
            for name, net in zip(session.ens.names, session.ens.nets)}
    return plot_image_rows(rows, path, title=f"{method}: {per_dataset} samples per dataset (row), fixed latents")


def _completions(session, path: Path, method: str, examples: int = 3) -> Path:
    """The first test images of every dataset with the evaluation's own seeded holes: input (hole
    zero-filled, as the network sees it), completed, original; one labelled row per dataset."""
    import torch

    from jointnet_cli.data.loader import as_float
    from jointnet_cli.report.plots import plot_image_rows
    from jointnet_cli.seeding import generator
    from jointnet_cli.tasks.ae import hole_masks

    def pixels(x: "torch.Tensor") -> list[np.ndarray]:
        return list((x.clamp(0, 1) * 255).round().byte().cpu().numpy().transpose(0, 2, 3, 1))

    rows = {}
    with torch.no_grad():
        for net, dom in zip(session.ens.nets, session.domains):
            was = net.training
            net.eval()
            images = as_float(dom.test.images[:examples])
            gen = generator(session.cfg.seed, "test-holes", dom.name)       # the holes `evaluate` scores
            mask = hole_masks(images.shape[0], images.shape[-1], session.task.hole, gen, images.device)
            holed, filled = images * mask, net(images * mask)
            net.train(was)
            rows[dom.name] = [p for triple in zip(pixels(holed), pixels(filled), pixels(images)) for p in triple]
    columns = ["input", "completed", "original"] * examples
    return plot_image_rows(rows, path, title=f"{method}: test images with the evaluation's holes", columns=columns)


def _plots(report: Path, state: dict, names: list[str], groups: list, final_weights, top_k: int,
           metric: str, windows: list[str]) -> list[Path]:
    from jointnet_cli.report.plots import plot_curves, plot_sharing_graph, plot_weight_heatmaps

    out = []
    series = curves(state, metric)
    if series:
        out.append(plot_curves(series, report / f"curves-{metric}.png", xlabel="epochs per dataset",
                               ylabel=f"mean test {metric}", title=f"test {metric} over training",
                               marks=stage_marks(state)))
    its = state.get("irls", {}).get("iterations", [])
    if its:
        ws_epochs = state["warmstart"].get("epochs", 0)
        points, offset = [], ws_epochs
        for it in its:
            offset += it["epochs"]
            points.append((offset, it["objective"]["weighted_consistency"]))
        out.append(plot_curves({"joint": points}, report / "consistency.png", xlabel="epochs per dataset",
                               ylabel="weighted consistency Σ c‖Δθ‖²", title="consistency term after each IRLS iteration",
                               marks=stage_marks(state)))
        for it in its:
            out.append(plot_weight_heatmaps(np.asarray(it["weights"]), names, report / f"weights-k{it['k']:03d}.png",
                                            title=f"IRLS weights w_ijw of iteration {it['k']} (from the parameters "
                                                  "before its training)", windows=windows))
    if final_weights is not None:
        for w in range(final_weights.shape[0]):
            out.append(plot_sharing_graph(names, mutual_top_k(final_weights[w], top_k), report / f"graph-w{w + 1:02d}.png",
                                          groups=groups if any(groups) else None, weights=final_weights[w],
                                          title=f"{window_title(w, windows[w])}: mutual top-{top_k} sharing graph\n"
                                                "weights of the final networks (what the next IRLS step would use)"))
    return out
