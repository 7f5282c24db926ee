"""The sharing graph: mutual top-k edges and their DOT / JSON exports."""

import numpy as np
import pytest

from jointnet_cli.errors import UserError
from jointnet_cli.report.graph import PALETTE, graph_dot, graph_json, mutual_top_k


def two_blocks() -> np.ndarray:
    """Datasets 0,1,2 and 3,4,5 share strongly inside their block, weakly across."""
    w = np.full((6, 6), 0.1)
    w[:3, :3] = 0.9
    w[3:, 3:] = 0.8
    np.fill_diagonal(w, 1.0)
    return w


def test_mutual_top_2_keeps_only_edges_inside_blocks():
    assert mutual_top_k(two_blocks(), k=2) == [(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)]


def test_no_edge_when_the_liking_is_one_sided():
    # 0 likes 1 best, but 1 likes 2 and 3 more than 0.
    w = np.array([
        [1.0, 0.9, 0.2, 0.1],
        [0.9, 1.0, 0.95, 0.95],
        [0.2, 0.95, 1.0, 0.3],
        [0.1, 0.95, 0.3, 1.0],
    ])
    edges = mutual_top_k(w, k=2)
    assert (0, 1) not in edges
    assert edges == [(1, 2), (1, 3), (2, 3)]


def test_ties_go_to_the_lower_index():
    w = np.ones((3, 3))  # everyone equally liked: top-1 of 0 is 1, of 1 is 0, of 2 is 0
    assert mutual_top_k(w, k=1) == [(0, 1)]


@pytest.mark.parametrize("k", [5, 9])
def test_k_at_least_n_minus_1_gives_every_pair(k):
    rng = np.random.default_rng(0)
    w = rng.random((6, 6))
    w = (w + w.T) / 2
    assert mutual_top_k(w, k=k) == [(i, j) for i in range(6) for j in range(i + 1, 6)]


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError):
        mutual_top_k(np.ones((2, 3)))
    with pytest.raises(UserError):
        mutual_top_k(np.ones((3, 3)), k=0)
    with pytest.raises(UserError):
        graph_dot(["a", "b"], [(0, 2)])


def test_dot_has_every_node_edge_weight_and_group_colour():
    names = ["bird", "dog", "wolf", "car"]
    w = np.array([[1, 0.9, 0.8, 0.1], [0.9, 1, 0.7, 0.1], [0.8, 0.7, 1, 0.1], [0.1, 0.1, 0.1, 1.0]])
    groups = ["animals", "animals", "animals", "vehicles"]
    dot = graph_dot(names, [(0, 1), (1, 2)], weights=w, groups=groups, title="window 1")

    assert dot.startswith("graph G {") and dot.rstrip().endswith("}")
    assert 'label="window 1"' in dot
    for i, name in enumerate(names):
        assert f'n{i} [label="{name}"' in dot
    assert 'n0 -- n1 [label="0.90", penwidth=4.10]' in dot
    assert 'n1 -- n2 [label="0.70", penwidth=3.30]' in dot
    assert dot.count(" -- ") == 2
    # same group → same colour, a second group → the next palette colour
    assert dot.count(f'fillcolor="{PALETTE[0]}"') == 3
    assert dot.count(f'fillcolor="{PALETTE[1]}"') == 1


def test_dot_escapes_quotes_backslashes_and_spaces_in_names():
    dot = graph_dot(['say "hi"', "back\\slash", "two words"], [(0, 2)])
    assert r'label="say \"hi\""' in dot
    assert r'label="back\\slash"' in dot
    assert 'label="two words"' in dot
    assert "n0 -- n2;" in dot


def test_graph_json_lists_nodes_and_weighted_edges():
    w = two_blocks()
    g = graph_json(["a", "b", "c", "d", "e", "f"], mutual_top_k(w, 2), weights=w, groups=list("xxxyyy"))
    assert g["nodes"][0] == {"id": 0, "name": "a", "group": "x"}
    assert g["nodes"][5] == {"id": 5, "name": "f", "group": "y"}
    assert g["edges"][0] == {"source": 0, "target": 1, "weight": 0.9}
    assert g["edges"][-1] == {"source": 4, "target": 5, "weight": 0.8}
    assert graph_json(["a", "b"], [(0, 1)])["edges"] == [{"source": 0, "target": 1, "weight": None}]
