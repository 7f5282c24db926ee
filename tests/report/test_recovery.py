"""Recovering known dataset groups from IRLS weights: ARI, clustering, per-window scores."""

import itertools

import numpy as np
import pytest

from jointnet_cli.errors import UserError
from jointnet_cli.report.recovery import adjusted_rand_index, cluster_weights, group_recovery


def block_weights(sizes, inside=0.9, across=0.1) -> np.ndarray:
    n = sum(sizes)
    w = np.full((n, n), across)
    start = 0
    for s in sizes:
        w[start:start + s, start:start + s] = inside
        start += s
    np.fill_diagonal(w, 1.0)
    return w


def test_identical_partitions_score_one_whatever_the_label_names():
    assert adjusted_rand_index([0, 0, 1, 1, 2], [0, 0, 1, 1, 2]) == 1.0
    assert adjusted_rand_index([0, 0, 1, 1, 2], ["b", "b", "a", "a", "c"]) == 1.0


def test_degenerate_partitions():
    assert adjusted_rand_index("aaaa", "bbbb") == 1.0  # both one cluster
    assert adjusted_rand_index([1, 2, 3], "xyz") == 1.0  # both all singletons
    assert adjusted_rand_index([7], [3]) == 1.0


def test_hand_computed_value():
    # a = [0,0,0,1,1,1], b = [0,0,1,1,2,2]
    # contingency: a=0 → b{0:2, 1:1}; a=1 → b{1:1, 2:2}
    #   Σ C(n_ij,2) = 1 + 0 + 0 + 1 = 2
    #   rows Σ C(3,2) + C(3,2) = 6, cols C(2,2)*3 = 3, C(6,2) = 15
    #   expected = 6*3/15 = 1.2, max = (6+3)/2 = 4.5
    #   ARI = (2 - 1.2) / (4.5 - 1.2) = 0.8 / 3.3 = 8/33
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(8 / 33)


def ari_by_counting_pairs(a, b):
    """Reference: count agreeing pairs directly; the chance level is the mean over every permutation of b."""
    pairs = list(itertools.combinations(range(len(a)), 2))

    def together(x, y):
        return sum(x[i] == x[j] and y[i] == y[j] for i, j in pairs)

    expected = np.mean([together(a, [b[p] for p in perm]) for perm in itertools.permutations(range(len(b)))])
    maximum = (together(a, a) + together(b, b)) / 2
    return (together(a, b) - expected) / (maximum - expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_pair_counting_reference(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 3, 6).tolist(), rng.integers(0, 2, 6).tolist()
    assert adjusted_rand_index(a, b) == pytest.approx(ari_by_counting_pairs(a, b))


def test_independent_random_labelings_average_near_zero():
    rng = np.random.default_rng(0)
    scores = [adjusted_rand_index(rng.integers(0, 3, 30), rng.integers(0, 3, 30)) for _ in range(200)]
    assert abs(np.mean(scores)) < 0.02
    assert max(scores) < 0.5


def test_mismatched_or_empty_labelings_are_user_errors():
    with pytest.raises(UserError):
        adjusted_rand_index([0, 1], [0])
    with pytest.raises(UserError):
        adjusted_rand_index([], [])


def test_cluster_weights_recovers_blocks_even_when_shuffled():
    assert cluster_weights(block_weights([3, 2, 3]), 3) == [0, 0, 0, 1, 1, 2, 2, 2]
    perm = np.array([5, 0, 3, 7, 1, 6, 2, 4])
    w = block_weights([3, 2, 3])[np.ix_(perm, perm)]
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 2])[perm]
    assert adjusted_rand_index(cluster_weights(w, 3), truth) == 1.0
    # labels come in order of first appearance
    assert cluster_weights(w, 3)[0] == 0


def test_cluster_weights_extremes():
    w = block_weights([2, 2])
    assert cluster_weights(w, 1) == [0, 0, 0, 0]
    assert cluster_weights(w, 4) == [0, 1, 2, 3]
    with pytest.raises(UserError):
        cluster_weights(w, 5)


def test_group_recovery_scores_each_window():
    groups = ["shapes"] * 3 + ["stripes"] * 3 + ["blobs"] * 2
    clean = block_weights([3, 3, 2])
    rng = np.random.default_rng(1)
    noise = rng.random((8, 8))
    noise = (noise + noise.T) / 2
    np.fill_diagonal(noise, 1.0)
    scores = group_recovery(np.stack([clean, noise]), groups)
    assert scores[0] == 1.0
    assert scores[1] < 1.0
    # nested lists as stored in state.json work too
    assert group_recovery([clean.tolist()], groups) == [1.0]
    with pytest.raises(UserError):
        group_recovery(np.stack([clean]), groups[:-1])


def average_linkage_by_hand(w: np.ndarray, k: int) -> list[int]:
    """Reference (the hand-written clustering jointnet used before scipy): merge the two clusters of
    the smallest mean distance 1 − w until k remain; labels in order of first appearance."""
    dist = 1.0 - (w + w.T) / 2
    clusters = [[i] for i in range(len(w))]
    while len(clusters) > k:
        _, p, q = min((dist[np.ix_(clusters[p], clusters[q])].mean(), p, q)
                      for p in range(len(clusters)) for q in range(p + 1, len(clusters)))
        clusters[p] = sorted(clusters[p] + clusters[q])
        del clusters[q]
    label = {i: c for c, members in enumerate(clusters) for i in members}
    return [label[i] for i in range(len(w))]


@pytest.mark.parametrize("seed", range(20))
def test_scipy_clustering_gives_the_hand_written_clusters_and_aris(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(3, 8)), int(rng.integers(1, 4))
    w = rng.random((n, n)) * rng.choice([0.05, 1.0])          # weak or strong, no ties
    w = (w + w.T) / 2
    np.fill_diagonal(w, 1.0)
    assert cluster_weights(w, k) == average_linkage_by_hand(w, k)
    truth = rng.integers(0, 3, n).tolist()
    assert adjusted_rand_index(cluster_weights(w, k), truth) == pytest.approx(
        ari_by_counting_pairs(average_linkage_by_hand(w, k), truth) if len(set(truth)) > 1 or k > 1 else 1.0)
