"""IRLS on a toy problem whose groups are known: 6 regression tasks in 3 groups.

Each "network" is an additive linear model y = Σ_k x_k·a_k + b_k with three
layers (one per feature block), so every task has a unique solution and the
robust objective behaves as in the clustering-by-fusion problem the paper
starts from. The real warm start and IRLS loops run on a real run directory.
"""

import torch

from jointnet_cli.joint.irls import run_irls
from jointnet_cli.joint.warmstart import run_warmstart
from toy_problem import toy_session                      # helper module beside this file (tests/joint)


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
