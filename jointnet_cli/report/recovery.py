"""How well the learned IRLS weights recover known dataset groups.

Each window's weight matrix is a similarity between datasets. We cluster it
(average linkage on distance 1 − w) into as many clusters as there are
ground-truth groups and score the agreement with the adjusted Rand index
(Hubert & Arabie, 1985): 1 for the same partition, about 0 for chance.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Hashable, Sequence

import numpy as np

from jointnet_cli.errors import UserError


def _pairs(m: int) -> int:
    """Number of unordered pairs among m items, C(m, 2)."""
    return m * (m - 1) // 2


def adjusted_rand_index(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Adjusted Rand index of two labelings of the same items (label names do not matter).

    ARI = (Σ_ij C(n_ij,2) − E) / (½(Σ_i C(a_i,2) + Σ_j C(b_j,2)) − E),
    E = Σ_i C(a_i,2) · Σ_j C(b_j,2) / C(n,2), from the contingency table n_ij.
    """
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise UserError(f"labelings have different lengths ({len(a)} and {len(b)})")
    if not a:
        raise UserError("cannot compare empty labelings")
    together = sum(_pairs(c) for c in Counter(zip(a, b)).values())
    rows = sum(_pairs(c) for c in Counter(a).values())
    cols = sum(_pairs(c) for c in Counter(b).values())
    total = _pairs(len(a))
    # Integer arithmetic scaled by `total` keeps identical partitions at exactly 1.0.
    index = together * total
    expected = rows * cols
    maximum = (rows + cols) * total
    if 2 * expected == maximum:
        # Only when both are all singletons or both one cluster (or n = 1): the same partition.
        return 1.0
    return float((2 * index - 2 * expected) / (maximum - 2 * expected))


def _similarity(w: Any) -> np.ndarray:
    s = np.asarray(w, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise UserError(f"weight matrix must be square [n, n], got shape {list(s.shape)}")
    if not np.all(np.isfinite(s)):
        raise UserError("weight matrix contains NaN or infinite values")
    return (s + s.T) / 2.0


def cluster_weights(w: np.ndarray, num_clusters: int) -> list[int]:
    """Cluster labels of the n datasets from one window's weights: average-linkage
    agglomerative clustering on distance 1 − w, cut at `num_clusters` clusters.

    Labels are 0..num_clusters-1 in order of first appearance; ties merge the
    pair of clusters with the lowest smallest members first.
    """
    dist = 1.0 - _similarity(w)
    n = dist.shape[0]
    if isinstance(num_clusters, bool) or not isinstance(num_clusters, (int, np.integer)) or not 1 <= num_clusters <= n:
        raise UserError(f"num_clusters must be between 1 and {n}, got {num_clusters!r}")
    clusters: list[list[int]] = [[i] for i in range(n)]  # kept sorted by smallest member
    while len(clusters) > num_clusters:
        best: tuple[float, int, int] | None = None
        for p in range(len(clusters)):
            for q in range(p + 1, len(clusters)):
                d = float(dist[np.ix_(clusters[p], clusters[q])].mean())
                if best is None or d < best[0]:
                    best = (d, p, q)
        assert best is not None
        _, p, q = best
        clusters[p] = sorted(clusters[p] + clusters[q])
        del clusters[q]
    label_of = {i: c for c, members in enumerate(clusters) for i in members}
    # Clusters are ordered by smallest member, which is the order of first appearance.
    return [label_of[i] for i in range(n)]


def group_recovery(weights: np.ndarray, groups: list[str]) -> list[float]:
    """Per window, the ARI between the clusters of that window's weights and the ground-truth groups."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise UserError(f"weights must have shape [W, n, n], got {list(w.shape)}")
    if len(groups) != w.shape[1]:
        raise UserError(f"{len(groups)} groups given for {w.shape[1]} datasets")
    if any(g is None for g in groups):
        raise UserError("every dataset needs a ground-truth group to measure recovery")
    k = len(set(groups))
    return [adjusted_rand_index(cluster_weights(w_w, k), groups) for w_w in w]
