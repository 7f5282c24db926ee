"""Plots: each function writes a real PNG of a plausible size, creating folders as needed."""

import numpy as np
import pytest
from PIL import Image

from jointnet_cli.errors import UserError
from jointnet_cli.report.plots import plot_curves, plot_sharing_graph, plot_weight_heatmaps

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_side=200):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert min(im.size) >= min_side and max(im.size) < 5000
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_plot_curves(tmp_path):
    series = {"joint": [(1, 0.05), (2, 0.03), (3, 0.02)], "isolated": [(1, 0.06), (2, 0.05), (3, 0.045)]}
    out = plot_curves(series, tmp_path / "report" / "mse.png", xlabel="epoch", ylabel="MSE", title="test MSE")
    assert out == tmp_path / "report" / "mse.png"
    assert_png(out)
    with pytest.raises(UserError):
        plot_curves({"joint": []}, tmp_path / "empty.png", xlabel="x", ylabel="y", title="t")


def test_plot_weight_heatmaps(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.random((3, 4, 4))
    w = (w + w.transpose(0, 2, 1)) / 2
    w[:, range(4), range(4)] = 1.0
    out = plot_weight_heatmaps(w, ["bird", "dog", "wolf", "car"], tmp_path / "weights.png", title="IRLS weights")
    assert_png(out)
    with pytest.raises(UserError):
        plot_weight_heatmaps(w, ["bird"], tmp_path / "bad.png", title="t")


def test_plot_sharing_graph(tmp_path):
    names = ["a", "b", "c", "d", "e"]
    w = np.full((5, 5), 0.2)
    np.fill_diagonal(w, 1.0)
    w[0, 1] = w[1, 0] = 0.9
    out = plot_sharing_graph(names, [(0, 1), (2, 3)], tmp_path / "g" / "graph-1.png",
                             groups=["x", "x", "y", "y", None], weights=w, title="window 1")
    assert_png(out)
    assert_png(plot_sharing_graph(names, [], tmp_path / "bare.png"))
