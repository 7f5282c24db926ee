"""The warm start (paper §4.2.1, eq. 5): the robust norm replaced by the plain square.

Train Σ_i f_i + λ Σ_{i<j} Σ_w d_ijw² (all window weights 1), then set
σ_w = mean_i min_{j≠i} d_ijw from the resulting parameters.
"""

from __future__ import annotations

import torch

from jointnet_cli.joint import weights as jw
from jointnet_cli.joint.session import Session


def objective_terms(session: Session, c: torch.Tensor, losses: list[float],
                    sigma: torch.Tensor | None) -> dict:
    """Data loss per dataset, weighted consistency (eq. 6) and, once σ is known, the robust objective (eq. 4)."""
    layer_d2 = session.layer_sq_distances()
    terms = {
        "data_loss": dict(zip(session.ens.names, losses)),
        "weighted_consistency": jw.weighted_consistency(layer_d2, c),
    }
    if sigma is not None:
        robust = jw.robust_consistency(session.window_sq_distances(layer_d2), sigma, session.cfg.lam)
        terms["robust_consistency"] = robust
        terms["robust_objective"] = sum(losses) + robust
    return terms


def run_warmstart(session: Session) -> dict:
    """Train (or resume) the warm start and record it in state.json; returns its state entry."""
    cfg = session.cfg
    state = session.read_state()
    ws = state.setdefault("warmstart", {})
    if ws.get("checkpoint"):
        session.reporter.message(f"warm start already done ({ws['epochs_done']} epochs)")
        return ws
    ones = session.all_ones()
    c = session.coupling(ones)                                    # eq. 5 as an instance of eq. 6
    if ws.get("progress"):
        session.load_snapshot(ws["progress"])
        session.reporter.message(f"resuming the warm start after epoch {ws['epochs_done']}")
    ws["epochs"] = cfg.epochs
    losses = session.train_resumable(state, ws, c, stage="warmstart", iteration=0, epochs=cfg.epochs,
                                     prefix="warmstart")

    sigma = jw.sigma_from(session.window_sq_distances())
    ws.update(
        checkpoint=session.save_snapshot("warmstart", stage="warmstart", epoch=cfg.epochs, weights=ones, sigma=sigma),
        sigma=sigma.tolist(),
        metrics=session.evaluate(),
        objective=objective_terms(session, c, losses, sigma),
        seconds=sum(h["seconds"] for h in ws["history"]),
    )
    session.finish_resumable(state, ws, "warmstart")
    return ws
