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
from jointnet_cli.joint.session import Session
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
    primary_metric = "mse"
    higher_is_better = False
    one_loss = True
    directions = {"mse": False}
    optimizers = None

    def inputs(self, split, idx, gen):
        return split.images[idx], split.labels[idx]

    def criterion(self, output, target):
        return nn.functional.mse_loss(output, target)

    def loss(self, net, split, idx, gen):
        return self.criterion(net(split.images[idx]), split.labels[idx])

    fit_loss = loss

    def calibrate(self, net, split):
        """Nothing to recompute: the toy networks have no BatchNorm."""

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
