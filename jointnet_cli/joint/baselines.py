"""The paper's baselines, each a coupling (or tying) run through the same trainer (DESIGN §1 table).

| method              | what is trained                                                          |
|---------------------|--------------------------------------------------------------------------|
| isolated            | C = 0: every network alone                                               |
| l2                  | C from all window weights 1 (the warm-start problem), for the full budget |
| l2-partial -f p     | as l2 on the first ⌈p·L⌉ layers, 0 elsewhere                             |
| shareall            | one network on the union of the datasets                                 |
| finetune            | shareall, then each dataset fine-tunes its own copy with C = 0           |

Budgets are fair by default: every baseline trains as many epochs per dataset
as the joint method (warm start + all IRLS iterations; the planned maximum
while IRLS has not run), unless `epochs` is given.
"""

from __future__ import annotations

import math

import torch

from jointnet_cli.data.loader import DomainData, SplitTensors
from jointnet_cli.errors import UserError
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.session import Session, initial_network

METHODS = ("isolated", "shareall", "l2", "l2-partial", "finetune")


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


def joint_budget(cfg, state: dict) -> tuple[int, str]:
    """Epochs per dataset of the joint method: the finished run's, or the planned maximum."""
    ws_epochs = state.get("warmstart", {}).get("epochs", cfg.epochs)
    irls = state.get("irls", {})
    if "final_checkpoint" in irls:
        its = irls.get("iterations", [])
        return ws_epochs + sum(it["epochs"] for it in its), f"joint: {ws_epochs} warm start + {len(its)} IRLS iterations"
    planned = ws_epochs + cfg.max_iters * cfg.epochs_per_iter
    return planned, f"planned joint maximum: {ws_epochs} + {cfg.max_iters} × {cfg.epochs_per_iter}"


def head_of(domains: list[DomainData]) -> list[int]:
    """Which head of a shared classifier serves each dataset: one head per distinct label set."""
    label_sets = [tuple(d.manifest.get("classes", [])) for d in domains]
    distinct = list(dict.fromkeys(label_sets))
    return [distinct.index(s) for s in label_sets]


def union(domains: list[DomainData], classes_per_head: int = 0, heads: list[int] | None = None) -> DomainData:
    """All training sets as one dataset (for shareall); labels become head·K + class."""
    images = torch.cat([d.train.images for d in domains])
    labels = None
    if classes_per_head:
        heads = heads or list(range(len(domains)))
        labels = torch.cat([heads[i] * classes_per_head + d.train.labels for i, d in enumerate(domains)])
    split = SplitTensors(images, labels)
    return DomainData("shared", split, split, {})


def distribute(shared, ens: Ensemble, classes_per_head: int = 0, heads: list[int] | None = None) -> None:
    """Give every dataset's network the shared backbone and, for classify, the head of its label set."""
    state = shared.state_dict()
    head_names = set(getattr(shared, "head_names", ()))
    heads = heads or list(range(ens.n))
    for i, net in enumerate(ens.nets):
        own = net.state_dict()
        new = {k: state[k] for k in own if k not in head_names and k != "class_mask"}
        for k in head_names:
            new[k] = state[k][heads[i] * classes_per_head:(heads[i] + 1) * classes_per_head]
        if "class_mask" in own:
            new["class_mask"] = own["class_mask"]
        net.load_state_dict(new)


def run_baseline(session: Session, method: str, *, fraction: float | None = None,
                 epochs: int | None = None) -> dict:
    """Train (or resume) one baseline; returns its `state.json["baselines"][key]` entry."""
    key = baseline_key(method, fraction)
    state = session.read_state()
    entry = state.setdefault("baselines", {}).setdefault(key, {"method": method})
    if entry.get("checkpoint"):
        session.reporter.message(f"baseline {key} already trained ({entry['epochs']} epochs)")
        return entry
    if "epochs" not in entry:
        budget, why = (epochs, "--epochs") if epochs else joint_budget(session.cfg, state)
        entry.update(epochs=budget, budget=why)
        if fraction is not None:
            entry["fraction"] = fraction
    elif epochs and epochs != entry["epochs"]:
        raise UserError(f"baseline {key} was started with --epochs {entry['epochs']}; rerun without --epochs to resume it")
    session.write_state(state)

    if method == "shareall":
        return _shareall(session, state, entry)
    if method == "finetune":
        return _finetune(session, state, entry)

    L = session.ens.num_layers
    if method == "isolated":
        c = torch.zeros(L, session.n, session.n, dtype=torch.float64)
    else:
        c = session.coupling(session.all_ones())
        if method == "l2-partial":
            c = partial_coupling(c, fraction, session.ens.chains)
            entry["coupled_layers"] = sum(coupled_layers(length, fraction) for length in session.ens.chains)
    if entry.get("progress"):
        session.load_snapshot(entry["progress"])
    session.train_resumable(state, entry, c, stage=key, iteration=0, epochs=entry["epochs"], prefix=key)
    return _finish(session, state, entry, key)


def _finish(session: Session, state: dict, entry: dict, key: str) -> dict:
    entry["checkpoint"] = session.save_snapshot(key, stage=key, epoch=entry["epochs"])
    entry["metrics"] = session.evaluate()
    entry["seconds"] = sum(h["seconds"] for h in entry.get("history", []))
    session.finish_resumable(state, entry, key)
    return entry


def _shareall(session: Session, state: dict, entry: dict) -> dict:
    """One network, from the same initial weights, trained on the union of all training sets.

    For classification it has one head per distinct label set (datasets with the same classes share a
    head; those whose label sets differ get their own); the backbone is shared.
    """
    k = getattr(session.task, "k", 0)
    heads_of = head_of(session.domains) if k else []
    heads = max(heads_of) + 1 if k else 0
    built = initial_network(session.cfg, channels=session.domains[0].train.images.shape[1], num_classes=heads * k,
                            run=session.run, writer=session.group.writer)
    shared = Session(session.run, session.cfg, [union(session.domains, k, heads_of)],
                     Ensemble(["shared"], built.model, session.ens.layers, lr=session.cfg.lr, device=session.device,
                              chains=session.ens.chains, optimizers=getattr(session.task, "optimizers", None)),
                     session.task, session.device, session.reporter, group=session.group)
    session.group.share_from_writer(shared.ens, with_optimizer=False)      # under torchrun: rank 0's start
    if k:
        first = [heads_of.index(h) for h in range(heads)]             # a dataset of each label set
        shared.ens.nets[0].class_mask.copy_(torch.cat([session.ens.nets[i].class_mask for i in first]))
    if entry.get("progress"):
        shared.load_snapshot(entry["progress"])

    def per_dataset_metrics() -> dict:
        distribute(shared.ens.nets[0], session.ens, k, heads_of)
        return session.evaluate()

    none = torch.zeros(session.ens.num_layers, 1, 1, dtype=torch.float64)
    shared.train_resumable(state, entry, none, stage="shareall", iteration=0, epochs=entry["epochs"],
                           prefix="shareall", evaluate=per_dataset_metrics)
    distribute(shared.ens.nets[0], session.ens, k, heads_of)
    return _finish(session, state, entry, "shareall")


def _finetune(session: Session, state: dict, entry: dict) -> dict:
    """Start every dataset from the shareall network, then train each copy alone (C = 0)."""
    pre = state.get("baselines", {}).get("shareall", {})
    if not pre.get("checkpoint"):
        session.reporter.message("finetune needs shareall first: training it now")
        run_baseline(session, "shareall", epochs=entry["epochs"] if entry.get("budget") == "--epochs" else None)
        state = session.read_state()
        entry = state["baselines"]["finetune"]
        pre = state["baselines"]["shareall"]
    entry["pretrained"] = {"checkpoint": pre["checkpoint"], "epochs": pre["epochs"]}
    if entry.get("progress"):
        session.load_snapshot(entry["progress"])
    else:
        session.load_snapshot(pre["checkpoint"], with_optimizer=False)
    c = torch.zeros(session.ens.num_layers, session.n, session.n, dtype=torch.float64)
    session.train_resumable(state, entry, c, stage="finetune", iteration=0, epochs=entry["epochs"], prefix="finetune")
    return _finish(session, state, entry, "finetune")
