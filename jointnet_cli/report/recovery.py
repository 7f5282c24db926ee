"""How well the learned IRLS weights recover known dataset groups.

Each window's weight matrix is a similarity between datasets. We cluster it
(average linkage on distance 1 − w) into as many clusters as there are
ground-truth groups and score the agreement with the adjusted Rand index
(Hubert & Arabie, 1985): 1 for the same partition, about 0 for chance.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np

from jointnet_cli.errors import UserError


def adjusted_rand_index(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Adjusted Rand index of two labelings of the same items (label names do not matter).

    ARI = (Σ_ij C(n_ij,2) − E) / (½(Σ_i C(a_i,2) + Σ_j C(b_j,2)) − E),
    E = Σ_i C(a_i,2) · Σ_j C(b_j,2) / C(n,2), from the contingency table n_ij (scipy's `crosstab`).
    """
    from scipy.special import comb
    from scipy.stats.contingency import crosstab

    a, b = list(a), list(b)
    if len(a) != len(b):
        raise UserError(f"labelings have different lengths ({len(a)} and {len(b)})")
    if not a:
        raise UserError("cannot compare empty labelings")
    table = crosstab(np.unique(a, return_inverse=True)[1], np.unique(b, return_inverse=True)[1]).count
    together = comb(table, 2).sum()
    rows, cols = comb(table.sum(axis=1), 2).sum(), comb(table.sum(axis=0), 2).sum()
    expected = rows * cols / comb(len(a), 2) if len(a) > 1 else 0.0
    maximum = (rows + cols) / 2
    if maximum == expected:
        # Only when both are all singletons or both one cluster (or n = 1): the same partition.
        return 1.0
    return float((together - expected) / (maximum - expected))


def _similarity(w: Any) -> np.ndarray:
    s = np.asarray(w, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise UserError(f"weight matrix must be square [n, n], got shape {list(s.shape)}")
    if not np.all(np.isfinite(s)):
        raise UserError("weight matrix contains NaN or infinite values")
    return (s + s.T) / 2.0


def cluster_weights(w: np.ndarray, num_clusters: int) -> list[int]:
    """Cluster labels of the n datasets from one window's weights: average-linkage agglomerative
    clustering (scipy's `linkage`) on distance 1 − w, cut at `num_clusters` clusters.

    Labels are 0..num_clusters-1 in order of first appearance.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    dist = 1.0 - _similarity(w)
    n = dist.shape[0]
    if isinstance(num_clusters, bool) or not isinstance(num_clusters, (int, np.integer)) or not 1 <= num_clusters <= n:
        raise UserError(f"num_clusters must be between 1 and {n}, got {num_clusters!r}")
    if n == 1:
        return [0]
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method="average")
    raw = fcluster(tree, t=num_clusters, criterion="maxclust")
    first: dict[int, int] = {}
    return [first.setdefault(int(c), len(first)) for c in raw]


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
