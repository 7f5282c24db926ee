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
        robust = jw.robust_consistency(jw.window_sq_distances(layer_d2), sigma, session.cfg.lam)
        terms["robust_consistency"] = robust
        terms["robust_objective"] = sum(losses) + robust
    return terms


def run_warmstart(session: Session) -> dict:
    """Train (or resume) the warm start and record it in state.json; returns its state entry."""
    run, cfg = session.run, session.cfg
    state = run.read_state()
    ws = state.get("warmstart", {})
    if ws.get("checkpoint"):
        session.reporter.message(f"warm start already done ({ws['epochs_done']} epochs); σ = {ws['sigma']}")
        return ws
    L = session.ens.num_layers
    ones = torch.ones(jw.num_windows(L), session.n, session.n, dtype=torch.float64)
    c = jw.coupling(ones, cfg.lam, L)                          # eq. 5 as an instance of eq. 6
    start = ws.get("epochs_done", 0)
    if start:
        session.load_snapshot(ws["progress"])
        session.reporter.message(f"resuming the warm start after epoch {start}")
    history = ws.get("history", [])

    def checkpoint(epoch: int, losses: list[float], seconds: float) -> None:
        old = ws.get("progress")
        ws["progress"] = session.save_snapshot(f"warmstart-e{epoch:04d}", stage="warmstart", epoch=epoch)
        metrics = session.evaluate()
        history.append({"epoch": epoch, "data_loss": dict(zip(session.ens.names, losses)),
                        "metrics": metrics, "seconds": seconds})
        ws.update(epochs_done=epoch, epochs=cfg.epochs, history=history)
        state["warmstart"] = ws
        run.write_state(state)
        session.remove_snapshot(old)
        session.reporter.epoch("warmstart", history[-1])

    losses = session.train_epochs(c, stage="warmstart", iteration=0, first=start, last=cfg.epochs,
                                  checkpoint_every=checkpoint)
    if not losses:  # all epochs were done before a kill during the final write
        losses = list(history[-1]["data_loss"].values())

    sigma = jw.sigma_from(jw.window_sq_distances(session.layer_sq_distances()))
    final = session.save_snapshot("warmstart", stage="warmstart", epoch=cfg.epochs, weights=ones, sigma=sigma)
    ws.update(
        checkpoint=final,
        sigma=sigma.tolist(),
        metrics=session.evaluate(),
        objective=objective_terms(session, c, losses, sigma),
        seconds=sum(h["seconds"] for h in history),
    )
    progress = ws.pop("progress", None)
    state["warmstart"] = ws
    run.write_state(state)
    session.remove_snapshot(progress)
    session.remove_stale("warmstart-e*.safetensors")
    return ws
