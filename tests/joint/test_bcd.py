"""bcd's coupling gradient (eq. 9, `add_coupling_grad`) against autograd of eq. 6 with the others fixed, and the
anchors of eq. 9 from the stacked copy (`Anchors`) against the network-by-network sums."""

from types import SimpleNamespace

import torch

from jointnet_cli.joint import weights as jw
from jointnet_cli.joint.bcd import STACKED_FROM, Anchors, add_coupling_grad, anchors
from jointnet_cli.joint.ensemble import Ensemble


def test_the_bcd_pull_is_the_autograd_gradient_of_the_coupling_term():
    torch.manual_seed(0)
    n, shapes = 4, [[(3, 2), (3,)], [(5,)], [(2, 2), (2,), (2,)]]          # 3 layers of several tensors each
    params = [[[torch.randn(s, dtype=torch.float64) for s in layer] for layer in shapes] for _ in range(n)]
    w = torch.rand(2, n, n, dtype=torch.float64).triu(1)
    c = jw.coupling(w + w.transpose(1, 2) + torch.eye(n), 3.0, 3)
    ens = SimpleNamespace(params=params, num_layers=3, n=n)
    for i in range(n):
        # autograd: Σ_j Σ_l c_ijl ‖θ_i^l − θ_j^l‖², the part of eq. 6 that depends on θ_i
        mine = [[p.clone().requires_grad_() for p in layer] for layer in params[i]]
        term = sum(c[l, i, j] * sum((a - b).pow(2).sum() for a, b in zip(mine[l], params[j][l]))
                   for l in range(3) for j in range(n) if j != i)
        term.backward()
        for layer in params[i]:
            for p in layer:
                p.grad = torch.zeros_like(p)
        add_coupling_grad(params[i], anchors(ens, c, i))
        for l in range(3):
            for p, q in zip(params[i][l], mine[l]):
                assert torch.allclose(p.grad, q.grad, rtol=1e-12, atol=1e-12)


def test_anchors_from_the_stacked_copy_are_the_network_by_network_sums_and_follow_refreshes():
    torch.manual_seed(0)
    n = STACKED_FROM
    template = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
    ens = Ensemble([f"d{i}" for i in range(n)], template, [["0.weight", "0.bias"], ["1.weight"]], lr=0.1,
                   device="cpu")
    with torch.no_grad():
        for layer_list in ens.params:
            for layer in layer_list:
                for p in layer:
                    p.add_(torch.randn_like(p))
    w = torch.rand(1, n, n, dtype=torch.float64).triu(1)
    c = jw.coupling(w + w.transpose(1, 2), 2.0, 2)
    c[1, 0, :] = 0                                             # network 0's second layer is not coupled
    source = Anchors(ens)
    assert source.rows is not None                             # n ≥ STACKED_FROM: the stacked copy
    for i in range(n):
        mine, loop = source(c, i), anchors(ens, c, i)
        assert mine.keys() == loop.keys() == ({0} if i == 0 else {0, 1})
        for l in loop:
            assert mine[l][0] == loop[l][0]
            for a, b in zip(mine[l][1], loop[l][1]):
                assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        ens.params[3][0][0].add_(1.0)                          # network 3 changes: its copy is stale until refreshed
    stale, now = source(c, 0)[0][1][0], anchors(ens, c, 0)[0][1][0]
    assert not torch.allclose(stale, now, atol=1e-3)
    source.refresh(3)
    assert torch.allclose(source(c, 0)[0][1][0], now, rtol=1e-6, atol=1e-7)


def test_few_networks_sum_network_by_network_without_a_copy():
    ens = Ensemble(["a", "b"], torch.nn.Linear(2, 2), [["weight", "bias"]], lr=0.1, device="cpu")
    assert Anchors(ens).rows is None and ens._rows is None
