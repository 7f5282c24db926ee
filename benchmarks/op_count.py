"""PyTorch operations per network-step of each schedule: a CPU stand-in for GPU kernel launches.

    python benchmarks/op_count.py [--n 8 --width 4 --train 256 --batch-size 16]

On a GPU these small networks are bound by the time it takes to launch kernels
(README "Benchmarks"), so the number of operations a training step dispatches
predicts its cost there. This counts, on the CPU, every compute operation
(views, and scalar reads, which here read CPU tensors: Adam's step counts
and the coupling coefficients, left out) that one round dispatches, for `bcd` and
`batched`, with the coupling on (joint, all weights 1) and off (isolated), and
prints them per network-step. Adam runs in its multi-tensor (foreach) form, as
it does on a GPU.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jointnet_cli.data.synth8 import DOMAINS, prepare_synth8
from jointnet_cli.joint.batched import train_round_batched
from jointnet_cli.joint.bcd import steps_per_round, train_round
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.stages import training_session

NOT_LAUNCHES = {"view", "_unsafe_view", "reshape", "detach", "alias", "select", "slice", "unbind", "unsqueeze",
                "squeeze", "expand", "permute", "t", "as_strided", "_local_scalar_dense", "lift_fresh", "empty",
                "empty_like", "empty_strided", "set_"}


class OpCounter(TorchDispatchMode):
    """Counts the aten operations dispatched while active, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))

    def launches(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in NOT_LAUNCHES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--train", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    if args.n > 8:
        ap.error("--n is at most 8 (the synth8 domains)")

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare_synth8(data_dir=data, size=32, train=args.train, test=4)
        names = ",".join(name for name, _ in DOMAINS[:args.n])
        given = {"task": "ae", "datasets": names, "width": args.width, "batch_size": args.batch_size}
        with training_session(Path(tmp) / "run", given, data_dir=data, device="cpu") as s:
            steps = steps_per_round(s.domains, args.batch_size)
            print(f"ae9 width {args.width}, n = {args.n}, {args.train} images per dataset, batch {args.batch_size}; "
                  f"operations per network-step (views and scalar reads left out)")
            for label, w in (("joint", 1.0), ("isolated", 0.0)):
                c = s.coupling(torch.full((len(s.windows), args.n, args.n), w, dtype=torch.float64))
                row = []
                for name, train in (("bcd", train_round), ("batched", train_round_batched)):
                    ens = Ensemble(s.ens.names, s.ens.nets[0], s.ens.layers, lr=s.cfg.lr, device="cpu",
                                   optimizers=lambda net, lr: [torch.optim.Adam(net.parameters(), lr=lr, foreach=True)])
                    with OpCounter() as counter:
                        train(ens, c, s.domains, s.task, batch_size=args.batch_size, seed=0, key=("count",))
                    row.append(f"{name} {counter.launches() / steps:6.1f}")
                print(f"  {label:<8}  " + "   ".join(row))


if __name__ == "__main__":
    main()
