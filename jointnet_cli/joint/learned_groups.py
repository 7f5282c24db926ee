"""`--start groups`: IRLS starts from one network per *learned* group, trained on the group's union.

Coupling separate networks cannot give a tightly related group what one network trained on its union
gets: as many optimizer steps per epoch as the group has datasets, on all of their images. This stage
lets the warm start decide which datasets form such groups, and then trains them together:

  1. transfer ratios, from the warm-start networks θ_i on each dataset's training split:
         T_ij = f_j(θ_i) / f_j(θ_j)      (how much worse network i does on dataset j than j's own;
     for a GAN, f is the discriminator's loss on the real images: how well D has learned them);
  2. groups: complete linkage on S_ij = max(T_ij, T_ji), cut at `group_ratio` — two datasets end in one
     group only if every pair in it satisfies S ≤ group_ratio (a dataset unlike all others stays alone);
  3. for each group, one network starts from the mean of its members' warm-start networks, trains
     `start_epochs` epochs on the union (a one-dataset group trains alone), and is given to each member.

IRLS then begins from these networks, with the warm start's σ and each dataset's Adam state from the warm
start: inside a group the distances are 0 and the weights 1, across groups they are what the networks'
separate training made them; its first iteration always trains (δ against the warm start's all-ones
weights would say nothing). Needs every network in one process (refused under torchrun). The epochs count in the
budget (epochs per dataset: one epoch of a group's union is one epoch of each member).
"""

from __future__ import annotations

import math

import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from jointnet_cli.joint.session import Session
from jointnet_cli.joint.shared import train_shared
from jointnet_cli.runs.config import group_members


def transfer_ratios(session: Session) -> torch.Tensor:
    """T_ij = f_j(θ_i) / f_j(θ_j) for the networks as they are: (n, n) float64, diagonal 1.

    f_j is the task's training loss on dataset j's whole training split, with the same holes and
    augmentations for every network (`Session.data_loss_on`)."""
    n = session.n
    loss = torch.tensor([[session.data_loss_on(i, j) for j in range(n)] for i in range(n)], dtype=torch.float64)
    own = loss.diagonal().clamp_min(torch.finfo(torch.float64).tiny)
    return loss / own[None, :]


def groups_from_ratios(ratios: torch.Tensor, limit: float) -> list[str]:
    """Each dataset's group label ("g1", "g2", … in order of first member): complete linkage on
    S_ij = max(T_ij, T_ji, 1), cut so that every pair inside a group has S ≤ limit."""
    n = ratios.shape[0]
    if n == 1:
        return ["g1"]
    s = torch.maximum(ratios, ratios.T).nan_to_num(nan=1e12, posinf=1e12).clamp(1.0, 1e12).numpy().copy()
    s[range(n), range(n)] = 0.0
    ids = fcluster(linkage(squareform(s, checks=False), method="complete"), t=limit, criterion="distance")
    order = list(dict.fromkeys(int(x) for x in ids))
    return [f"g{order.index(int(x)) + 1}" for x in ids]


def run_learned_groups(session: Session, warmstart_checkpoint: str) -> str:
    """Learn the groups from the warm start and train each group's network (resumable); returns the
    checkpoint IRLS starts from. Recorded in state.json["start"]: ratios (null where a loss is infinite: labels
    outside that network's classes), limit, labels, epochs."""
    cfg = session.cfg
    state = session.snapshots.read_state()
    start = state.get("start", {})
    if start.get("checkpoint"):
        return start["checkpoint"]
    if "labels" not in start:
        session.snapshots.load(warmstart_checkpoint, with_optimizer=False)
        ratios = transfer_ratios(session)
        labels = groups_from_ratios(ratios, cfg.group_ratio)
        finite = [[x if math.isfinite(x) else None for x in row] for row in ratios.tolist()]   # JSON has no inf
        start = state["start"] = {"method": "groups", "epochs": cfg.start_budget, "group_ratio": cfg.group_ratio,
                                  "transfer_ratios": finite, "labels": labels, "parts": {}}
        session.snapshots.write_state(state)
        session.reporter.message("learned groups: " + "; ".join(", ".join(session.ens.names[i] for i in members)
                                                                for members in group_members(labels)))
    labels = start["labels"]
    for members in group_members(labels):
        label = labels[members[0]]
        part = start["parts"].setdefault(label, {"members": [session.ens.names[i] for i in members]})
        if part.get("checkpoint"):
            continue
        session.snapshots.load(start.get("last") or warmstart_checkpoint, with_optimizer=False)   # groups done so far
        name = f"start-{label}"
        train_shared(session, state, part, members=members, prefix=name, epochs=start["epochs"],
                     from_members_mean=True)
        part["checkpoint"] = start["last"] = session.snapshots.save(name, stage=name, epoch=start["epochs"])
        session.snapshots.drop_optimizer_state(part["checkpoint"])
        session.finish_resumable(state, part, name)
    start["checkpoint"] = start.pop("last")                      # the last group's file holds every network
    for part in start["parts"].values():
        if part.get("checkpoint") != start["checkpoint"]:
            session.snapshots.remove(part.pop("checkpoint", None))
    session.snapshots.write_state(state)
    return start["checkpoint"]
