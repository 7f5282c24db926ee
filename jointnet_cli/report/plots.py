"""PNG plots for `evaluate --plots`: training curves, weight heatmaps, sharing graphs.

matplotlib is imported inside each function and figures are drawn on an Agg
canvas directly (no pyplot, no global backend switch), so this works headless
and importing the module costs nothing. Each PNG is rendered to memory and
written atomically (temporary file beside the target, then rename).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jointnet_cli.errors import UserError
from jointnet_cli.report.graph import check_graph, group_colors
from jointnet_cli.store.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_DPI = 100
_NO_GROUP = "#d9d9d9"  # node colour when a dataset has no ground-truth group


def _figure(width: float, height: float) -> "Figure":
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: "Figure", path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())  # creates the parent folder
    return path


def plot_curves(
    series: dict[str, list[tuple[float, float]]],
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
) -> Path:
    """Line plot with one line per method of (x, y) points, e.g. test metric per epoch."""
    if not any(series.values()):
        raise UserError(f"nothing to plot for {title or path}")
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    for method, points in series.items():
        if not points:
            continue
        xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        ax.plot(xy[:, 0], xy[:, 1], marker="o", markersize=3, label=method)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_weight_heatmaps(weights: np.ndarray, names: list[str], path: Path, *, title: str) -> Path:
    """Grid of W heatmaps of the IRLS weights w_ijw (one per window, shared 0..1 scale, one colour bar)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise UserError(f"weights must have shape [W, n, n], got {list(w.shape)}")
    num_windows, n = w.shape[0], w.shape[1]
    if num_windows == 0 or n == 0:
        raise UserError("no weights to plot")
    if len(names) != n:
        raise UserError(f"{len(names)} names given for {n} datasets")
    cols = math.ceil(math.sqrt(num_windows))
    rows = math.ceil(num_windows / cols)
    cell = max(2.5, 0.35 * n + 1.0)  # inches per heatmap, grows with the number of datasets
    fig = _figure(cols * cell + 1.0, rows * cell + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    fontsize = 8 if n <= 12 else 6
    for k, ax in enumerate(axes.flat):
        if k >= num_windows:
            ax.set_axis_off()
            continue
        image = ax.imshow(w[k], vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
        ax.set_title(f"window {k + 1}", fontsize=9)
        ax.set_xticks(range(n), [str(s) for s in names], rotation=90, fontsize=fontsize)
        ax.set_yticks(range(n), [str(s) for s in names], fontsize=fontsize)
        if n <= 8:  # small matrices: print the values in the cells
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, f"{w[k, i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="black" if w[k, i, j] > 0.6 else "white")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="w_ij")
    fig.suptitle(title)
    return _save(fig, path)


def plot_sharing_graph(
    names: list[str],
    edges: list[tuple[int, int]],
    path: Path,
    *,
    groups: list[str | None] | None = None,
    weights: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Sharing graph with datasets on a circle, filled by group, edge width proportional to weight."""
    edges, w = check_graph(names, edges, weights, groups)
    n = len(names)
    if n == 0:
        raise UserError("no datasets to draw")
    angles = np.pi / 2 - 2 * np.pi * np.arange(n) / n  # first node at the top, clockwise
    xy = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (n, 2)
    fig = _figure(6.0, 6.0)
    ax = fig.add_subplot()
    for i, j in edges:
        strength = 1.0 if w is None else float(np.clip(w[i, j], 0.0, 1.0))
        ax.plot(xy[[i, j], 0], xy[[i, j], 1], color="#555555", linewidth=0.5 + 5.0 * strength,
                alpha=0.4 + 0.5 * strength, zorder=1, solid_capstyle="round")
        if w is not None:
            mid = (xy[i] + xy[j]) / 2
            ax.text(mid[0], mid[1], f"{w[i, j]:.2f}", fontsize=7, ha="center", va="center",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7}, zorder=3)
    colours = group_colors(groups) if groups is not None else [None] * n
    ax.scatter(xy[:, 0], xy[:, 1], s=500, c=[c or _NO_GROUP for c in colours],
               edgecolors="black", linewidths=0.8, zorder=2)
    for i, name in enumerate(names):
        ax.text(1.22 * xy[i, 0], 1.22 * xy[i, 1], str(name), ha="center", va="center", fontsize=9)
    if groups is not None:
        from matplotlib.lines import Line2D

        seen: dict[str, str] = {}
        for g, c in zip(groups, colours):
            if g is not None and c is not None:
                seen.setdefault(g, c)
        handles: list[Any] = [
            Line2D([], [], marker="o", linestyle="", markerfacecolor=c, markeredgecolor="black", markersize=9, label=g)
            for g, c in seen.items()
        ]
        if handles:
            ax.legend(handles=handles, loc="lower right", fontsize="small", title="group")
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title)
    return _save(fig, path)
