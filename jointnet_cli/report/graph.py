"""The sharing graph (DESIGN §1): which datasets the IRLS weights tie together.

For one window with weight matrix `w` ([n, n], symmetric, w_ii = 1) an edge
i–j exists when j is among i's `k` most strongly weighted neighbours and i is
among j's ("mutual top-k"). The graph is exported as Graphviz DOT text and as
a JSON-ready dict; `report.plots.plot_sharing_graph` draws it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from jointnet_cli.errors import UserError

# Fill colours for ground-truth groups, in order of first appearance (cycled
# when there are more groups than colours). Shared by the DOT export and plots.
PALETTE: tuple[str, ...] = (
    "#4e79a7",  # blue
    "#f28e2b",  # orange
    "#59a14f",  # green
    "#e15759",  # red
    "#b07aa1",  # purple
    "#edc948",  # yellow
    "#76b7b2",  # teal
    "#ff9da7",  # pink
    "#9c755f",  # brown
    "#bab0ac",  # grey
)


def window_title(k: int, name: str | None = None) -> str:
    """'window 4' or, when the window has its own name (a GAN player's), 'window 4 (D w1)': the number
    matches the files (graph-w04.png), the name the player's own layers."""
    return f"window {k + 1}" if not name or name == f"w{k + 1}" else f"window {k + 1} ({name})"


def _square(w: Any, what: str = "weight matrix") -> np.ndarray:
    a = np.asarray(w, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise UserError(f"{what} must be square [n, n], got shape {list(a.shape)}")
    if not np.all(np.isfinite(a)):
        raise UserError(f"{what} contains NaN or infinite values")
    return a


def mutual_top_k(w: np.ndarray, k: int = 3) -> list[tuple[int, int]]:
    """Edges (i, j), i < j, where each of i and j is among the other's k largest off-diagonal weights.

    Ties in weight go to the lower index. With k >= n - 1 every pair is an edge.
    """
    a = _square(w)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UserError(f"k must be a positive integer, got {k!r}")
    n = a.shape[0]
    top: list[set[int]] = []
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: (-a[i, j], j))
        top.append(set(others[: int(k)]))
    return [(i, j) for i in range(n) for j in range(i + 1, n) if j in top[i] and i in top[j]]


def group_colors(groups: Sequence[str | None]) -> list[str | None]:
    """One palette colour per node: same group → same colour; a node without a group gets None."""
    index: dict[str, int] = {}
    colours: list[str | None] = []
    for g in groups:
        if g is None:
            colours.append(None)
            continue
        if g not in index:
            index[g] = len(index)
        colours.append(PALETTE[index[g] % len(PALETTE)])
    return colours


def check_graph(
    names: Sequence[str],
    edges: Sequence[tuple[int, int]],
    weights: Any,
    groups: Sequence[str | None] | None,
) -> tuple[list[tuple[int, int]], np.ndarray | None]:
    """Validate a graph description; return edges as plain int pairs and weights as an array."""
    n = len(names)
    clean: list[tuple[int, int]] = []
    for e in edges:
        if len(e) != 2:
            raise UserError(f"an edge must be a pair of node indices, got {e!r}")
        i, j = int(e[0]), int(e[1])
        if not (0 <= i < n and 0 <= j < n) or i == j:
            raise UserError(f"edge ({i}, {j}) does not join two distinct nodes of {n}")
        clean.append((i, j))
    w = None
    if weights is not None:
        w = _square(weights, "weights")
        if w.shape[0] != n:
            raise UserError(f"weights are {w.shape[0]}x{w.shape[0]} but there are {n} names")
    if groups is not None and len(groups) != n:
        raise UserError(f"{len(groups)} groups given for {n} names")
    return clean, w


def _dot_string(s: str) -> str:
    """A DOT double-quoted string: backslash, quote and newlines escaped."""
    s = str(s).replace("\\", "\\\\").replace('"', '\\"')
    s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{s}"'


def graph_dot(
    names: list[str],
    edges: list[tuple[int, int]],
    *,
    weights: np.ndarray | None = None,
    groups: list[str | None] | None = None,
    title: str = "",
) -> str:
    """Graphviz DOT text of the sharing graph: nodes labelled by name, filled by group,
    edges labelled with their weight and drawn thicker when stronger."""
    edges, w = check_graph(names, edges, weights, groups)
    lines = ["graph G {"]
    if title:
        lines.append(f"  label={_dot_string(title)};")
        lines.append('  labelloc="t";')
    lines.append('  node [shape=ellipse, fontname="Helvetica"];')
    colours = group_colors(groups) if groups is not None else [None] * len(names)
    for i, name in enumerate(names):
        attrs = [f"label={_dot_string(name)}"]
        if colours[i] is not None:
            attrs.append(f'style=filled, fillcolor="{colours[i]}"')
        if groups is not None and groups[i] is not None:
            attrs.append(f"tooltip={_dot_string(groups[i])}")
        lines.append(f"  n{i} [{', '.join(attrs)}];")
    for i, j in edges:
        if w is None:
            lines.append(f"  n{i} -- n{j};")
        else:
            x = float(w[i, j])
            lines.append(f'  n{i} -- n{j} [label="{x:.2f}", penwidth={0.5 + 4.0 * max(x, 0.0):.2f}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_json(
    names: list[str],
    edges: list[tuple[int, int]],
    weights: np.ndarray | None = None,
    groups: list[str | None] | None = None,
) -> dict[str, Any]:
    """The sharing graph as a JSON-ready dict of nodes (id, name, group) and edges (source, target, weight)."""
    edges, w = check_graph(names, edges, weights, groups)
    nodes = [
        {"id": i, "name": str(name), "group": None if groups is None else groups[i]}
        for i, name in enumerate(names)
    ]
    links = [
        {"source": i, "target": j, "weight": None if w is None else float(w[i, j])}
        for i, j in edges
    ]
    return {"nodes": nodes, "edges": links}
