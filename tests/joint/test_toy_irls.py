"""IRLS on a toy problem whose groups are known: 6 regression tasks in 3 groups.

Each "network" is an additive linear model y = Σ_k x_k·a_k + b_k with three
layers (one per feature block), so every task has a unique solution and the
robust objective behaves as in the clustering-by-fusion problem the paper
starts from. The real warm start and IRLS loops run on a real run directory.
"""

import torch
from torch import nn

from jointnet_cli.data.loader import DomainData, SplitTensors
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.irls import run_irls
from jointnet_cli.joint.session import Session
from jointnet_cli.joint.warmstart import run_warmstart
from jointnet_cli.runs.config import PAPER, RunConfig
from jointnet_cli.runs.rundir import RunDir


class Additive(nn.Module):
    def __init__(self, parts: int = 3, dim: int = 4):
        super().__init__()
        self.dim = dim
        self.parts = nn.ModuleList(nn.Linear(dim, 1) for _ in range(parts))

    def forward(self, x):
        return sum(p(x[:, k * self.dim:(k + 1) * self.dim]) for k, p in enumerate(self.parts))


class Regression:
    name = "toy"

    def inputs(self, split, idx, gen):
        return split.images[idx], split.labels[idx]

    def criterion(self, output, target):
        return nn.functional.mse_loss(output, target)

    def loss(self, net, split, idx, gen):
        return self.criterion(net(split.images[idx]), split.labels[idx])

    def evaluate(self, net, split, *, seed, dataset):
        with torch.no_grad():
            return {"mse": nn.functional.mse_loss(net(split.images), split.labels).item()}


def toy_session(tmp_path, groups=3, per_group=2, samples=40, dim=4, parts=3) -> Session:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(groups, dim * parts, 1, generator=g) * 2
    domains = []
    for gi in range(groups):
        for k in range(per_group):
            a = centres[gi] + 0.1 * torch.randn(dim * parts, 1, generator=g)      # small shift inside a group
            x = torch.randn(samples, dim * parts, generator=g)
            y = x @ a + 0.1 * torch.randn(samples, 1, generator=g)
            domains.append(DomainData(f"g{gi}-{k}", SplitTensors(x, y), SplitTensors(x, y), {}))
    names = [d.name for d in domains]
    torch.manual_seed(0)
    layers = [[f"parts.{k}.weight", f"parts.{k}.bias"] for k in range(parts)]
    ens = Ensemble(names, Additive(parts, dim), layers, lr=0.05, device="cpu")
    # the paper's method (gradient coupling, eq. 7, fixed σ); λ is relative to the scale of the data loss,
    # 0.1 suits this toy's squared errors
    paper = {k: v for k, v in PAPER.items() if k != "lam"}
    cfg = RunConfig(task="toy", datasets=tuple(names), lam=0.1, batch_size=samples, epochs=60,
                    epochs_per_iter=30, max_iters=8, tol=1e-2, **paper)
    return Session(RunDir(tmp_path / "run"), cfg, domains, ens, Regression(), torch.device("cpu"))


def test_irls_weights_recover_the_groups_and_converge(tmp_path):
    session = toy_session(tmp_path)
    run_warmstart(session)
    result = run_irls(session)

    assert result["converged"] is True
    assert result["stopped"]["k"] <= 8 and result["stopped"]["delta"] <= 1e-2
    w = torch.tensor(result["stopped"]["weights"])          # (W, n, n)
    group = torch.arange(6) // 2
    same = (group[:, None] == group[None, :]) & ~torch.eye(6, dtype=torch.bool)
    across = group[:, None] != group[None, :]
    for window in w:
        assert window[same].min() > 0.5                       # within a group: strongly coupled
        assert window[across].max() < 0.15                    # across groups: nearly free
        assert window[same].min() > 5 * window[across].max()
    # the iterations recorded in state.json are the ones returned
    state = session.run.read_state()
    assert [it["k"] for it in state["irls"]["iterations"]] == list(range(1, result["stopped"]["k"]))


def test_a_coupling_with_nan_stops_before_training_and_names_the_dataset(tmp_path):
    import pytest

    from jointnet_cli.errors import RunFailure

    session = toy_session(tmp_path)
    c = torch.zeros(3, 6, 6, dtype=torch.float64)
    c[1, 2, 4] = c[1, 4, 2] = float("nan")
    state: dict = {}
    with pytest.raises(RunFailure, match="coupling of g1-0 holds NaN or inf before warmstart epoch 1"):
        session.train_resumable(state, state.setdefault("warmstart", {}), c, stage="warmstart", iteration=0,
                                epochs=1, prefix="warmstart")
    assert not (tmp_path / "run").exists()                  # nothing was written
