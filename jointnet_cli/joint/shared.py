"""One network trained on the union of several datasets, then given to each of them.

`shareall` (all datasets), the pretraining of `finetune` and `groupshare` (one
network per known group), and the `shareall` start of the joint method all use
`train_shared`. For classification the shared network has one head per
distinct label set (datasets with the same classes share a head); the backbone
is shared.
"""

from __future__ import annotations

import torch

from jointnet_cli.data.loader import DomainData, SplitTensors
from jointnet_cli.errors import UserError
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.session import Session, initial_network


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


def distribute(shared, ens: Ensemble, classes_per_head: int = 0, heads: list[int] | None = None,
               members: list[int] | None = None) -> None:
    """Give each dataset's network in `members` (default: all) the shared backbone and, for classify,
    the head of its label set (`heads[m]` for the m-th member)."""
    state = shared.state_dict()
    head_names = set(getattr(shared, "head_names", ()))
    members = list(range(ens.n)) if members is None else members
    heads = heads or list(range(len(members)))
    for m, i in enumerate(members):
        net = ens.nets[i]
        own = net.state_dict()
        new = {k: state[k] for k in own if k not in head_names and k != "class_mask"}
        for k in head_names:
            new[k] = state[k][heads[m] * classes_per_head:(heads[m] + 1) * classes_per_head]
        if "class_mask" in own:
            new["class_mask"] = own["class_mask"]
        net.load_state_dict(new)


def known_groups(session: Session) -> list[str]:
    """Each dataset's group: `--groups` (a,a,b,…) or the manifests' `group` (builtin collections)."""
    if session.cfg.groups:
        labels = [g.strip() for g in session.cfg.groups.split(",")]
        if len(labels) != session.n or not all(labels):
            raise UserError(f"--groups names {len(labels)} groups for {session.n} datasets "
                            f"({', '.join(session.ens.names)}); give one label per dataset")
        return labels
    labels = [d.manifest.get("group") for d in session.domains]
    missing = [d.name for d, g in zip(session.domains, labels) if g in (None, "")]
    if missing:
        raise UserError(f"dataset {missing[0]} has no known group; give --groups with one label per dataset")
    return [str(g) for g in labels]


def members_mean(session: Session, members: list[int], heads_of: list[int]) -> dict[str, torch.Tensor]:
    """The shared network's start: the mean of the members' networks (floating tensors; integer
    buffers from the first member). A classifier's heads: head h is the mean of the members that use it."""
    nets = [session.ens.nets[i].state_dict() for i in members]
    head_names = set(getattr(session.ens.nets[members[0]], "head_names", ()))
    out = {}
    for key, first in nets[0].items():
        if key == "class_mask":
            continue
        if key in head_names:
            heads = max(heads_of) + 1
            out[key] = torch.cat([torch.stack([nets[m][key] for m in range(len(members)) if heads_of[m] == h]).mean(0)
                                  for h in range(heads)])
        elif first.is_floating_point():
            out[key] = torch.stack([net[key] for net in nets]).mean(0)
        else:
            out[key] = first.clone()
    return out


def train_shared(session: Session, state: dict, entry: dict, *, members: list[int], prefix: str,
                 epochs: int, from_members_mean: bool = False) -> None:
    """Train one network, from the run's initial weights (or, `from_members_mean`, the mean of the members'
    networks: `members_mean`), `epochs` epochs on the union of the datasets `members`, and give it to each
    of them. Resumable like every stage: `entry` records the epochs done
    and progress snapshots (`checkpoints/{prefix}-eNNNN`); the test metrics per epoch are those of the members.
    """
    domains = [session.domains[i] for i in members]
    k = getattr(session.task, "k", 0)
    heads_of = head_of(domains) if k else []
    heads = max(heads_of) + 1 if k else 0
    built = initial_network(session.cfg, channels=domains[0].train.images.shape[1], num_classes=heads * k,
                            run=session.run, writer=session.group.writer)
    shared = Session(session.run, session.cfg, [union(domains, k, heads_of)],
                     Ensemble(["shared"], built.model, session.ens.layers, lr=session.cfg.lr, device=session.device,
                              chains=session.ens.chains, optimizers=session.task.optimizers),
                     session.task, session.device, session.reporter, group=session.group)
    session.group.share_from_writer(shared.ens, with_optimizer=False)      # under torchrun: rank 0's start
    if k:
        first = [members[heads_of.index(h)] for h in range(heads)]     # a dataset of each label set
        shared.ens.nets[0].class_mask.copy_(torch.cat([session.ens.nets[i].class_mask for i in first]))
    if entry.get("progress"):
        shared.snapshots.load(entry["progress"])
    elif from_members_mean:
        net = shared.ens.nets[0]
        mask = {"class_mask": net.class_mask} if hasattr(net, "class_mask") else {}
        net.load_state_dict({**members_mean(session, members, heads_of or [0] * len(members)), **mask})

    def members_metrics() -> dict:
        distribute(shared.ens.nets[0], session.ens, k, heads_of, members)
        return session.evaluate(members)

    none = torch.zeros(session.ens.num_layers, 1, 1, dtype=torch.float64)
    shared.train_resumable(state, entry, none, stage=prefix, iteration=0, epochs=epochs, prefix=prefix,
                           evaluate=members_metrics)
    distribute(shared.ens.nets[0], session.ens, k, heads_of, members)
