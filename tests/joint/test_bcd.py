"""bcd's coupling gradient (eq. 9, `add_coupling_grad`) against autograd of eq. 6 with the others fixed."""

from types import SimpleNamespace

import torch

from jointnet_cli.joint import weights as jw
from jointnet_cli.joint.bcd import add_coupling_grad, anchors


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
