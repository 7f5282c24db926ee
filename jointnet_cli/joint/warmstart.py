"""The warm start (paper §4.2.1, eq. 5): the robust norm replaced by the plain square.

Train Σ_i f_i + λ Σ_{i<j} Σ_w d_ijw² (all window weights 1), then set
σ_w = mean_i min_{j≠i} d_ijw from the resulting parameters.
"""

from __future__ import annotations

import torch

from jointnet_cli.joint import weights as jw
from jointnet_cli.joint.session import Session
from jointnet_cli.joint.shared import train_shared
from jointnet_cli.wording import plural


def objective_terms(session: Session, c: torch.Tensor, losses: list[float], sigma: torch.Tensor | None,
                    at_checkpoint: bool = False, layer_d2: torch.Tensor | None = None) -> dict:
    """Data loss per dataset (the epoch's running mean), weighted consistency (eq. 6) and, once σ is known,
    the robust objective (eq. 4).

    With `at_checkpoint`, `checkpoint_objective` adds eq. 4 at the saved parameters themselves: f_i
    recomputed on the whole training split (`Session.data_loss_at_parameters`: fixed holes, eval-mode
    statistics) plus λ Σ ρ(d, σ) from the same parameters — recomputable from the checkpoint alone,
    so a user sees whether IRLS decreases it (not for GAN tasks, whose f_i needs sampling).
    `layer_d2`: the current parameters' layer distances, when the caller has them already.
    """
    if layer_d2 is None:
        layer_d2 = session.layer_sq_distances()
    terms = {
        "data_loss": dict(zip(session.ens.names, losses)),
        "weighted_consistency": jw.weighted_consistency(layer_d2, c),
    }
    if sigma is not None:
        normalized = session.cfg.penalty == "normalized"
        robust = jw.robust_consistency(session.window_sq_distances(layer_d2), sigma, session.lam, normalized)
        terms["robust_consistency"] = robust
        terms["robust_objective"] = sum(losses) + robust
        at = session.data_loss_at_parameters() if at_checkpoint else None
        if at is not None:
            terms["checkpoint_objective"] = {"data_loss": at, "robust_consistency": robust,
                                             "robust_objective": sum(at.values()) + robust}
    return terms


def shareall_start(session: Session, state: dict) -> str:
    """`--start shareall`: one network trained `start_epochs` epochs on the union of all datasets, given
    to every dataset as its start (its epochs count in the joint budget); returns its checkpoint."""
    start = state.setdefault("start", {"method": "shareall", "epochs": session.cfg.start_budget})
    if not start.get("checkpoint"):
        train_shared(session, state, start, members=list(range(session.n)), prefix="start",
                     epochs=start["epochs"])
        start["checkpoint"] = session.snapshots.save("start", stage="start", epoch=start["epochs"])
        session.snapshots.drop_optimizer_state(start["checkpoint"])
        session.finish_resumable(state, start, "start")
    return start["checkpoint"]


def run_warmstart(session: Session) -> dict:
    """Train (or resume) the warm start and record it in state.json; returns its state entry."""
    cfg = session.cfg
    state = session.snapshots.read_state()
    ws = state.setdefault("warmstart", {})
    if ws.get("checkpoint"):
        session.reporter.message(f"warm start already done ({plural(ws['epochs_done'], 'epoch')})")
        return ws
    ones = session.all_ones()
    c = session.coupling(ones)                                    # eq. 5 as an instance of eq. 6 (raw: no σ yet)
    if ws.get("progress"):
        session.snapshots.load(ws["progress"])
        session.reporter.message(f"resuming the warm start after epoch {ws['epochs_done']}")
    elif cfg.start_method == "shareall":
        session.snapshots.load(shareall_start(session, state), with_optimizer=False)
    ws["epochs"] = cfg.epochs
    losses = session.train_resumable(state, ws, c, stage="warmstart", iteration=0, epochs=cfg.epochs,
                                     prefix="warmstart")

    layer_d2 = session.layer_sq_distances()                       # for σ and for the objective below
    sigma = jw.sigma_from(session.window_sq_distances(layer_d2))
    ws.update(
        checkpoint=session.snapshots.save("warmstart", stage="warmstart", epoch=cfg.epochs, weights=ones, sigma=sigma),
        sigma=sigma.tolist(),
        metrics=session.final_metrics(ws),
        objective=objective_terms(session, c, losses, sigma, layer_d2=layer_d2),
        seconds=sum(h["seconds"] for h in ws["history"]),
    )
    session.finish_resumable(state, ws, "warmstart")
    return ws
