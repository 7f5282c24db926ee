"""IRLS for the robust objective (paper §4.2.2, eqs. 7–8).

Each iteration k:
  1. weighting — σ_w^(k) by the σ schedule (`fixed`: the warm start's, the paper; `refit`;
     `anneal`), then w_ijw^(k) = σ_w² / (σ_w² + d_ijw²) (`paper`, eq. 7) or its square (`gm`)
     from the current parameters,
     δ_k = max_{i<j,w} |w^(k) − w^(k−1)| (the warm start counts as all ones);
     stop when δ_k ≤ tol (an annealed σ must have reached its floor; after a learned-groups start the
     first iteration always trains), or after max_iters;
  2. optimization — train Σ_i f_i + λ Σ_{i<j} Σ_w w_ijw d_ijw² by BCD for the
     configured epochs, weights fixed.
"""

from __future__ import annotations

import torch

from jointnet_cli.errors import UserError
from jointnet_cli.joint import weights as jw
from jointnet_cli.joint.learned_groups import run_learned_groups
from jointnet_cli.joint.session import Session
from jointnet_cli.joint.warmstart import objective_terms


def run_irls(session: Session) -> dict:
    """Run (or resume) IRLS after the warm start; returns the `irls` state entry."""
    run, cfg = session.run, session.cfg
    state = session.snapshots.read_state()
    ws = state.get("warmstart", {})
    if not ws.get("checkpoint"):
        raise UserError(f"run {run.path} has no finished warm start; run `jointnet warmstart --run {run.path}` first")
    # IRLS starts from the warm start, or with --start groups from the learned groups' networks trained from it
    first = ws["checkpoint"]
    if cfg.start_method == "groups":
        first = run_learned_groups(session, ws["checkpoint"])
        state = session.snapshots.read_state()                    # with the start's entry
    sigma_ws = torch.tensor(ws["sigma"], dtype=torch.float64)     # σ of the warm start (the paper's fixed σ)
    ir = state.setdefault("irls", {"iterations": []})
    iterations: list[dict] = ir["iterations"]
    if ir.get("converged"):
        stop = ir.get("stopped", {})
        if stop.get("delta", 0.0) <= cfg.tol or len(iterations) >= cfg.max_iters:
            session.reporter.message(f"IRLS already converged after {len(iterations)} iterations")
            return ir
        session.reporter.message(f"continuing IRLS: δ = {stop['delta']:.4g} at iteration {stop.get('k')} is above "
                                 f"the new --tol {cfg.tol:g}")
        ir.pop("converged")
        ir.pop("stopped", None)
    ir.setdefault("settings", {"sigma": cfg.sigma_schedule,                  # `auto` as resolved for this run
                               **{k: getattr(cfg, k) for k in ("anneal", "weight", "penalty")}})

    # Parameters to continue from: an unfinished iteration, the last finished one, or the start of IRLS.
    current = ir.get("current")
    if current and current.get("progress"):
        session.snapshots.load(current["progress"])
    elif iterations:
        session.snapshots.load(iterations[-1]["checkpoint"])
    else:
        session.snapshots.load(ws["checkpoint"])                   # networks and Adam state of the warm start,
        if first != ws["checkpoint"]:                               # then the learned groups' networks (each
            session.snapshots.load(first, with_optimizer=False)     # dataset's Adam continues from its warm start)

    ir.pop("converged", None)
    known_d2 = None       # layer distances of the current parameters once computed (the last checkpoint's eq. 4)
    while True:
        k = len(iterations) + 1
        if k > cfg.max_iters:
            ir["converged"] = False
            break
        previous = torch.tensor(iterations[-1]["weights"], dtype=torch.float64) if iterations \
            else session.all_ones()
        if current is None:
            # 1. weighting, from the parameters before this iteration's optimization: σ^(k) by the
            #    run's σ schedule, then w^(k) by its weight function
            before = torch.tensor(iterations[-1]["sigma"], dtype=torch.float64) \
                if iterations and "sigma" in iterations[-1] else None
            sigma, refit, w = jw.weighting_step(session.window_sq_distances(known_d2), schedule=cfg.sigma_schedule, fixed=sigma_ws,
                                                previous=before, kind=cfg.weight, rate=cfg.anneal)
            agreed = session.group.broadcast_json({"w": w.tolist(), "sigma": sigma.tolist(),     # ranks agree exactly
                                                   "refit": refit.tolist()})
            w, sigma = torch.tensor(agreed["w"], dtype=torch.float64), torch.tensor(agreed["sigma"], dtype=torch.float64)
            d = jw.delta(w, previous)
            annealing = cfg.sigma_schedule == "anneal" and bool((sigma > torch.tensor(agreed["refit"]) * (1 + 1e-9)).any())
            restart = k == 1 and cfg.start_method == "groups"           # learned groups: all-ones is not what came before
            if d <= cfg.tol and not annealing and not restart:    # an annealed σ must reach its floor first
                ir["converged"] = True
                ir["stopped"] = {"k": k, "delta": d, "weights": w.tolist(), "sigma": sigma.tolist()}
                break
            current = {"k": k, "delta": d, "weights": w.tolist(), "sigma": sigma.tolist(), "epochs_done": 0,
                       **({"annealing": True} if annealing else {})}
            ir["current"] = current
            session.snapshots.write_state(state)
        w = torch.tensor(current["weights"], dtype=torch.float64)
        sigma = torch.tensor(current.get("sigma", ws["sigma"]), dtype=torch.float64)
        c = session.coupling(w, sigma)

        # 2. optimization of eq. 8 with the weights fixed
        losses = session.train_resumable(state, current, c, stage="irls", iteration=k,
                                         epochs=cfg.epochs_per_iter, prefix=f"irls-{k:03d}")
        known_d2 = session.layer_sq_distances()       # eq. 4 at the checkpoint, and the next weighting step's
        entry = {
            "k": k,
            "delta": current["delta"],
            "weights": current["weights"],                 # [W][n][n], w_ii = 1
            "sigma": sigma.tolist(),                       # σ^(k) the weights were computed with
            **({"annealing": True} if current.get("annealing") else {}),   # σ^(k) above its floor: cannot stop
            "checkpoint": session.snapshots.save(f"irls-{k:03d}", stage="irls", iteration=k,
                                                epoch=cfg.epochs_per_iter, weights=w, sigma=sigma),
            "metrics": session.final_metrics(current),
            "objective": objective_terms(session, c, losses, sigma, at_checkpoint=True, layer_d2=known_d2),
            "epochs": cfg.epochs_per_iter,
            "history": current["history"],
            "seconds": sum(h["seconds"] for h in current["history"]),
        }
        superseded = iterations[-1]["checkpoint"] if iterations else ws["checkpoint"]   # whose Adam state k = 1 used
        iterations.append(entry)
        session.finish_resumable(state, ir.pop("current"), f"irls-{k:03d}")
        current = None
        session.snapshots.drop_optimizer_state(superseded)
        session.reporter.iteration(entry)

    ir.pop("current", None)
    ir["final_checkpoint"] = iterations[-1]["checkpoint"] if iterations else first
    ir["max_iters"], ir["tol"] = cfg.max_iters, cfg.tol
    session.snapshots.write_state(state)
    return ir
