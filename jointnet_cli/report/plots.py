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
from jointnet_cli.report.graph import check_graph, group_colors, window_title
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
    marks: dict[str, float] | None = None,
) -> Path:
    """Line plot with one line per method of (x, y) points, e.g. test metric per epoch; whole-number
    x ticks; `marks` draws a labelled vertical line at each x (e.g. "IRLS starts" after the warm start)."""
    from matplotlib.ticker import MaxNLocator

    if not any(series.values()):
        raise UserError(f"nothing to plot for {title or path}")
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    for method, points in series.items():
        if not points:
            continue
        xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        ax.plot(xy[:, 0], xy[:, 1], marker="o", markersize=3, label=method)
    for label, x in (marks or {}).items():
        ax.axvline(x, color="#888888", linestyle="--", linewidth=1, zorder=0)
        ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3),
                    textcoords="offset points", ha="left", va="top", fontsize="small", color="#555555")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_weight_heatmaps(weights: np.ndarray, names: list[str], path: Path, *, title: str,
                         windows: list[str] | None = None) -> Path:
    """Grid of W heatmaps of the IRLS weights w_ijw, one per window. The diagonal (w_ii = 1 by
    definition) is blanked so that the colour scale, shared by all windows with one colour bar, spans the
    off-diagonal weights from 0 to their largest value; each cell prints its weight."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise UserError(f"weights must have shape [W, n, n], got {list(w.shape)}")
    num_windows, n = w.shape[0], w.shape[1]
    if num_windows == 0 or n == 0:
        raise UserError("no weights to plot")
    if len(names) != n:
        raise UserError(f"{len(names)} names given for {n} datasets")
    off = ~np.eye(n, dtype=bool)
    top = float(w[:, off].max()) if n > 1 else 1.0
    top = top if top > 0 else 1.0
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
        shown = np.ma.masked_array(w[k], mask=~off)
        cmap = _cmap("viridis", bad="#d9d9d9")
        image = ax.imshow(shown, vmin=0.0, vmax=top, cmap=cmap, interpolation="nearest")
        ax.set_title(window_title(k, windows[k] if windows else None), fontsize=9)
        ax.set_xticks(range(n), [str(s) for s in names], rotation=90, fontsize=fontsize)
        ax.set_yticks(range(n), [str(s) for s in names], fontsize=fontsize)
        if n <= 12:  # print the values in the cells, dark on light colours and light on dark ones
            for i in range(n):
                for j in range(n):
                    if i != j:
                        ax.text(j, i, _short(w[k, i, j]), ha="center", va="center", fontsize=7 if n <= 8 else 5,
                                color="black" if w[k, i, j] > 0.55 * top else "white")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="w_ij off the diagonal (w_ii = 1, grey)")
    fig.suptitle(title)
    return _save(fig, path)


def _cmap(name: str, *, bad: str):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=bad)


def _short(v: float) -> str:
    """A weight in a cell: two decimals, or its order of magnitude when it would print as 0.00."""
    return f"{v:.2f}" if v >= 0.005 or v == 0 else f"{v:.0e}".replace("e-0", "e-")


SHOWN_WEIGHT = 0.005    # sharing graphs draw no edge whose weight would print as 0.00


def plot_sharing_graph(
    names: list[str],
    edges: list[tuple[int, int]],
    path: Path,
    *,
    groups: list[str | None] | None = None,
    weights: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Sharing graph with datasets on a circle, filled by group, edge width proportional to weight;
    edges of weight below 0.005 (which would print as 0.00) are left out."""
    edges, w = check_graph(names, edges, weights, groups)
    if w is not None:
        edges = [(i, j) for i, j in edges if w[i, j] >= SHOWN_WEIGHT]
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
        ax.text(1.3 * xy[i, 0], 1.22 * xy[i, 1], str(name), ha="center", va="center", fontsize=9)
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


def plot_image_rows(rows: dict[str, list[np.ndarray]], path: Path, *, title: str,
                    columns: list[str] | None = None) -> Path:
    """Images in a labelled grid: one row per name (a dataset), its images left to right, optional
    column titles (e.g. "input", "completed", "original"). Images are (H, W, 3) uint8."""
    if not rows or not any(rows.values()):
        raise UserError(f"no images to draw for {title}")
    ncols = max(len(v) for v in rows.values())
    fig = _figure(1.0 + 1.1 * ncols, 0.6 + 1.1 * len(rows))
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(images):
                ax.imshow(images[c], interpolation="nearest")
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0 and columns and c < len(columns):
                ax.set_title(columns[c], fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)
