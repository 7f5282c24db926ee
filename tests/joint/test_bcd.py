"""bcd's coupling gradient (eq. 9, `add_coupling_grad`) against autograd of eq. 6 with the others fixed, and the
anchors of eq. 9 from the stacked copy (`Anchors`) against the network-by-network sums."""

from types import SimpleNamespace

import pytest
import torch

from jointnet_cli.joint import weights as jw
from jointnet_cli.data.loader import load_domains
from jointnet_cli.joint import bcd
from jointnet_cli.joint.bcd import STACKED_FROM, Anchors, add_coupling_grad, anchors
from jointnet_cli.joint.distributed import Group, train_round_synced
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.models.registry import build
from jointnet_cli.tasks import make_task


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


def perturbed_ensemble(names: list[str], template: torch.nn.Module, layers: list[list[str]]) -> Ensemble:
    """An ensemble whose networks start apart (each parameter moved by its own noise)."""
    ens = Ensemble(names, template, layers, lr=1e-2, device="cpu")
    with torch.no_grad():
        for net in ens.nets:
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.1)
    return ens


def test_anchors_from_the_stacked_copy_are_the_network_by_network_sums_and_follow_refreshes():
    torch.manual_seed(0)
    n = STACKED_FROM
    template = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    ens = perturbed_ensemble([f"d{i}" for i in range(n)], template,
                             [["0.weight", "0.bias"], ["1.weight"], ["2.weight"]])
    w = torch.rand(2, n, n, dtype=torch.float64).triu(1) + 0.01
    c = jw.coupling(w + w.transpose(1, 2), 2.0, 3)
    c[2] = 0                                                   # layer 3 is not coupled: not copied
    c[1, 0, 5] = c[1, 5, 0] = 0                                # networks 0 and 5 do not pull on each other there
    source = Anchors(ens, c)
    assert sorted(source.rows) == [0, 1]
    for i in range(n):
        mine, loop = source(i), anchors(ens, c, i)
        assert mine.keys() == loop.keys() == {0, 1}
        for l in loop:
            assert mine[l][0] == loop[l][0]
            for a, b in zip(mine[l][1], loop[l][1]):
                assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        ens.params[3][0][0].add_(1.0)                          # network 3 changes: its copy is stale until refreshed
    stale, now = source(0)[0][1][0], anchors(ens, c, 0)[0][1][0]
    assert not torch.allclose(stale, now, atol=1e-3)
    source.refresh(3)
    assert torch.allclose(source(0)[0][1][0], now, rtol=1e-6, atol=1e-7)
    with torch.no_grad():                                      # network 5 diverges: 0 does not pull on it in
        ens.params[5][1][0].fill_(float("inf"))                # layer 2, so 0's anchor there stays finite
    source.refresh(5)
    assert torch.isfinite(source(0)[1][1][0]).all() and not torch.isfinite(source(1)[1][1][0]).all()


def test_a_mixed_row_is_the_weighted_sum_of_the_rows_whole_or_as_two_slices(monkeypatch):
    """Σ_j mix_j θ_j from the stacked copy: one matrix–vector product, or from `SPLIT_FROM` coordinates two
    column slices in one batched product; both are the weighted sum written out in float64."""
    g = torch.Generator().manual_seed(3)
    mix = torch.rand(5, generator=g)
    for size in (40, 41):                                      # 41: odd, one product
        rows = torch.randn(5, size, generator=g)
        by_hand = sum(mix[j].double() * rows[j].double() for j in range(5))
        whole = bcd.mixed_rows(rows, mix)
        monkeypatch.setattr(bcd, "SPLIT_FROM", 8)
        split = bcd.mixed_rows(rows, mix)
        monkeypatch.setattr(bcd, "SPLIT_FROM", 1 << 14)
        for got in (whole, split):
            assert got.shape == (size,) and torch.allclose(got.double(), by_hand, rtol=1e-6, atol=1e-6)


def test_few_networks_or_no_coupling_sum_network_by_network_without_a_copy():
    ens = Ensemble(["a", "b"], torch.nn.Linear(2, 2), [["weight", "bias"]], lr=0.1, device="cpu")
    assert Anchors(ens, torch.ones(1, 2, 2, dtype=torch.float64)).rows == {} and ens._rows == {}
    many = Ensemble([f"d{i}" for i in range(STACKED_FROM)], torch.nn.Linear(2, 2), [["weight", "bias"]], lr=0.1,
                    device="cpu")
    assert Anchors(many, torch.zeros(1, STACKED_FROM, STACKED_FROM, dtype=torch.float64)).rows == {}


@pytest.mark.parametrize("block, prox, synced", [("epoch", 1e-2, False), ("step", 1e-2, False),
                                                 ("epoch", None, False), ("epoch", 1e-2, True)])
def test_a_round_with_the_stacked_anchors_trains_what_the_sums_train(synth_dir, monkeypatch, block, prox, synced):
    """The same round (bcd, or synchronised after every step) with the anchors from the stacked copy and from
    the sums; a copy that missed a network's update would leave the next networks a step behind."""
    names = ["shapes-1", "shapes-2", "stripes-1", "blobs-1"]
    domains = load_domains(synth_dir, names, "cpu")
    task = make_task("ae", hole=8)
    finals = {}
    monkeypatch.setattr(bcd, "SPLIT_FROM", 64)                 # tensors of ≥ 64 coordinates: 2 batched slices
    for way, stacked_from in (("stacked", 2), ("sum", 10**9), ("uncoupled", 10**9)):
        monkeypatch.setattr(bcd, "STACKED_FROM", stacked_from)
        torch.manual_seed(0)
        built = build("ae9", image_size=32, channels=3, width=4)
        ens = perturbed_ensemble(names, built.model, built.layers)
        w = torch.rand(len(built.layers) - 1, 4, 4, dtype=torch.float64).triu(1) + 0.1
        c = jw.coupling(w + w.transpose(1, 2), 1.0, len(built.layers)) * (way != "uncoupled")
        assert (Anchors(ens, c).rows != {}) == (way == "stacked")
        kw = dict(batch_size=8, seed=0, key=("t",), prox=prox)
        if synced:
            train_round_synced(ens, c, domains, task, group=Group(), sync_every=1, **kw)
        else:
            bcd.train_round(ens, c, domains, task, block=block, **kw)
        finals[way] = torch.cat([p.detach().flatten() for net in ens.nets for p in net.parameters()])
    assert torch.allclose(finals["stacked"], finals["sum"], rtol=1e-5, atol=1e-6)
    assert (finals["stacked"] - finals["uncoupled"]).abs().max() > 1e-3      # the coupling did something


def test_a_steps_noise_seed_draws_what_torch_manual_seed_draws():
    """`seed_noise` seeds only the generator dropout uses on the step's device (the CPU here): the same
    masks as after `torch.manual_seed`, whatever was drawn before; another seed, other masks."""
    from jointnet_cli.seeding import seed_noise

    x = torch.ones(4000)
    torch.manual_seed(123)
    want = torch.nn.functional.dropout(x, 0.5, training=True)
    torch.rand(7)                                                   # move the global stream on
    seed_noise(123, "cpu")
    assert torch.equal(torch.nn.functional.dropout(x, 0.5, training=True), want)
    seed_noise(124, torch.device("cpu"))
    assert not torch.equal(torch.nn.functional.dropout(x, 0.5, training=True), want)
