"""The paper's baselines, each a coupling (or tying) run through the same trainer (DESIGN §1 table).

| method              | what is trained                                                          |
|---------------------|--------------------------------------------------------------------------|
| isolated            | C = 0: every network alone                                               |
| l2                  | C from all window weights 1 (the warm-start problem), for the full budget |
| l2-partial -f p     | as l2 on the first ⌈p·L⌉ layers, 0 elsewhere                             |
| l2-groups           | as l2 with weights 1 inside each known group, 0 across (the weights' oracle) |
| shareall            | one network on the union of the datasets                                 |
| finetune            | shareall for P epochs, then each dataset fine-tunes its own copy (C = 0)  |
| groupshare          | shareall inside each known group for P epochs, then finetune (the oracle) |

Budgets are fair by default: every baseline trains as many epochs per dataset
as the joint method (its shareall start, warm start and all IRLS iterations; the
planned maximum while IRLS has not run), unless `epochs` (`--budget`) is given. Pretraining
counts: finetune and groupshare spend P of those epochs (`--pretrain-epochs`,
default half) on the union, and the rest fine-tuning.
"""

from __future__ import annotations

import math

import torch

from jointnet_cli.errors import UserError
from jointnet_cli.joint.session import Session
from jointnet_cli.joint.shared import known_groups, train_shared
from jointnet_cli.runs.config import BASELINES, joint_stages
from jointnet_cli.wording import plural

METHODS = BASELINES


def baseline_key(method: str, fraction: float | None = None) -> str:
    """The name under `state.json["baselines"]` and of the checkpoint: l2-partial carries its percentage."""
    if method not in METHODS:
        raise UserError(f"unknown baseline {method!r} (choose {', '.join(METHODS)})")
    if method == "l2-partial":
        if fraction is None or not (0 < fraction <= 1):
            raise UserError(f"--fraction must be in (0, 1] for l2-partial (got {fraction})")
        return f"l2-partial-{round(100 * fraction):g}"
    return method


def coupled_layers(num_layers: int, fraction: float) -> int:
    """⌈p·L⌉: how many leading layers l2-partial couples."""
    return min(num_layers, math.ceil(fraction * num_layers - 1e-9))


def partial_coupling(c: torch.Tensor, fraction: float, chains: list[int] | None = None) -> torch.Tensor:
    """The coupling `c` kept on the first ⌈p·L⌉ layers of each chain (player) and zeroed on the rest.

    The kept layers keep their l2 strength c_ijl = λ(w_ij,l−1 + w_ij,l), so the last kept layer still
    counts the window it shares with the first free layer (the l2 problem restricted by zeroing c).
    """
    out = torch.zeros_like(c)
    start = 0
    for length in chains or [c.shape[0]]:
        keep = coupled_layers(length, fraction)
        out[start:start + keep] = c[start:start + keep]
        start += length
    return out


def same_group(labels: list[str]) -> torch.Tensor:
    """(n, n) float64: 1 where datasets i and j carry the same group label, 0 elsewhere (l2-groups' weights)."""
    return torch.tensor([[float(a == b) for b in labels] for a in labels], dtype=torch.float64)


def joint_budget(cfg, state: dict) -> tuple[int, str]:
    """Epochs per dataset of the joint method (shareall start + warm start + learned-groups start + IRLS):
    the finished run's, or the planned maximum."""
    ws_epochs = state.get("warmstart", {}).get("epochs", cfg.epochs)
    start = cfg.start_budget
    stages = joint_stages(ws_epochs, start, cfg.start_method)
    irls = state.get("irls", {})
    if "final_checkpoint" in irls:
        its = irls.get("iterations", [])
        return start + ws_epochs + sum(it["epochs"] for it in its), f"joint: {stages} + {len(its)} IRLS iterations"
    planned = start + ws_epochs + cfg.max_iters * cfg.epochs_per_iter
    return planned, f"planned joint maximum: {stages} + {cfg.max_iters} × {cfg.epochs_per_iter}"


def run_baseline(session: Session, method: str, *, fraction: float | None = None,
                 epochs: int | None = None) -> dict:
    """Train (or resume) one baseline; returns its `state.json["baselines"][key]` entry."""
    key = baseline_key(method, fraction)
    state = session.snapshots.read_state()
    entry = state.setdefault("baselines", {}).setdefault(key, {"method": method})
    if "epochs" in entry and epochs and epochs != entry["epochs"]:
        budget_conflict(key, entry, epochs)
        entry.update(epochs=epochs, budget="--budget")               # a plain baseline in progress: train on
    if entry.get("checkpoint"):
        session.reporter.message(f"baseline {key} already trained ({plural(entry['epochs'], 'epoch')})")
        return entry
    if "epochs" not in entry:
        budget, why = (epochs, "--budget") if epochs else joint_budget(session.cfg, state)
        entry.update(epochs=budget, budget=why)
        if fraction is not None:
            entry["fraction"] = fraction
    if method == "l2-groups":
        labels = known_groups(session)
        if entry.setdefault("groups", labels) != labels:
            raise UserError(f"l2-groups was started with groups {','.join(entry['groups'])}; rerun without --groups "
                            "to resume it")
    session.snapshots.write_state(state)

    if method == "shareall":
        train_shared(session, state, entry, members=list(range(session.n)), prefix="shareall",
                     epochs=entry["epochs"])
        return _finish(session, state, entry, "shareall")
    if method in ("finetune", "groupshare"):
        return _pretrain_then_finetune(session, state, entry, key)

    L = session.ens.num_layers
    if method == "isolated":
        c = torch.zeros(L, session.n, session.n, dtype=torch.float64)
    elif method == "l2-groups":
        c = session.coupling(session.all_ones() * same_group(entry["groups"]))
    else:
        c = session.coupling(session.all_ones())
        if method == "l2-partial":
            c = partial_coupling(c, fraction, session.ens.chains)
            entry["coupled_layers"] = sum(coupled_layers(length, fraction) for length in session.ens.chains)
    if entry.get("progress"):
        session.snapshots.load(entry["progress"])
    session.train_resumable(state, entry, c, stage=key, iteration=0, epochs=entry["epochs"], prefix=key)
    return _finish(session, state, entry, key)


def budget_conflict(key: str, entry: dict, epochs: int) -> None:
    """A new --budget for a baseline already started: refused where it contradicts work done (a finished
    baseline, more epochs already trained, or the pretraining split of finetune/groupshare)."""
    done = entry.get("epochs_done", 0)
    if entry.get("checkpoint"):
        raise UserError(f"baseline {key} was trained with --budget {entry['epochs']}; drop --budget to keep it, "
                        "or use a new --run")
    if entry.get("method") in ("finetune", "groupshare") and "pretrained" in entry:
        raise UserError(f"baseline {key} started with --budget {entry['epochs']} (its pretraining split depends on "
                        "it); drop --budget to resume it")
    if done > epochs:
        raise UserError(f"--budget {epochs}: baseline {key} has already trained {plural(done, 'epoch')}")


def _finish(session: Session, state: dict, entry: dict, key: str) -> dict:
    entry["checkpoint"] = session.snapshots.save(key, stage=key, epoch=entry["epochs"])
    entry["metrics"] = session.final_metrics(entry)
    entry["seconds"] = sum(h["seconds"] for h in entry.get("history", []))
    session.finish_resumable(state, entry, key)
    return entry


def _pretrain_then_finetune(session: Session, state: dict, entry: dict, key: str) -> dict:
    """finetune / groupshare: P epochs of one network per group (finetune: one group of all) on the
    union of its datasets, then every dataset fine-tunes its own copy alone (C = 0) for the rest of the budget."""
    total = entry["epochs"]
    pre_epochs = session.cfg.pretrain_epochs or total // 2
    if not 1 <= pre_epochs < total:
        raise UserError(f"{key}: --pretrain-epochs must be at least 1 and below the budget of {plural(total, 'epoch')} "
                        f"(got {pre_epochs}; the budget may be set with --budget)")
    if key == "groupshare":
        labels = known_groups(session)
    else:
        labels = ["all"] * session.n
    groups = list(dict.fromkeys(labels))
    pre = entry.setdefault("pretrained", {"epochs": pre_epochs, "groups": labels})
    if (pre["epochs"], pre["groups"]) != (pre_epochs, labels):
        flag = "--pretrain-epochs" if pre["epochs"] != pre_epochs else "--groups"
        raise UserError(f"{key} was started with {pre['epochs']} pretraining epochs and groups "
                        f"{','.join(pre['groups'])}; rerun without {flag} to resume it")
    if not pre.get("checkpoint"):
        parts = pre.setdefault("parts", {})
        for g, label in enumerate(groups):
            members = [i for i, x in enumerate(labels) if x == label]
            part = parts.setdefault(str(label), {"members": [session.ens.names[i] for i in members]})
            name = f"{key}-pretrain" + (f"-g{g + 1}" if len(groups) > 1 else "")
            if part.get("checkpoint"):
                session.snapshots.load(part["checkpoint"], with_optimizer=False)    # its members' networks
                continue
            train_shared(session, state, part, members=members, prefix=name, epochs=pre_epochs)
            part["checkpoint"] = session.snapshots.save(name, stage=name, epoch=pre_epochs)
            session.snapshots.drop_optimizer_state(part["checkpoint"])
            session.finish_resumable(state, part, name)
        pre["checkpoint"] = session.snapshots.save(f"{key}-pretrain", stage=f"{key}-pretrain", epoch=pre_epochs)
        session.snapshots.drop_optimizer_state(pre["checkpoint"])
        for part in parts.values():                                   # the whole start is in one file now
            if part.get("checkpoint") != pre["checkpoint"]:
                session.snapshots.remove(part.pop("checkpoint", None))
        session.snapshots.write_state(state)
    if entry.get("progress"):
        session.snapshots.load(entry["progress"])
    else:
        session.snapshots.load(pre["checkpoint"], with_optimizer=False)
    c = torch.zeros(session.ens.num_layers, session.n, session.n, dtype=torch.float64)
    session.train_resumable(state, entry, c, stage=key, iteration=0, epochs=total - pre_epochs, prefix=key)
    return _finish(session, state, entry, key)
