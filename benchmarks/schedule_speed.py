"""Which schedule is faster? Seconds per round of `bcd` and `batched` on the same networks, data and coupling.

    python benchmarks/schedule_speed.py [--n 8 --size 32 --train 500 --rounds 3 --width 32 --device cpu --threads 0]
    python benchmarks/schedule_speed.py --n 8,32 --size 64 --device cuda          # on a GPU

Prepares the 8 synth8 domains in a temporary folder; n networks train on them
in turn (for n > 8 the domains repeat under new names). Each round is one
epoch of every network with the warm-start coupling (all window weights 1,
λ = 10): `bcd` (networks in turn, `--block`) and `batched` (all networks step
together, vmapped; on a GPU its full steps replay a CUDA graph) alternate on
copies of the same initial ensemble; on a GPU `batched` without the graph
("eager") runs too. Prints the median seconds per round of each and
batched / bcd (< 1: batched is faster).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from jointnet_cli.data.loader import DomainData
from jointnet_cli.data.synth8 import prepare_synth8
from jointnet_cli.joint.batched import BatchedRounds
from jointnet_cli.joint.bcd import train_round
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.stages import training_session


def time_schedules(s, n: int, rounds: int, batch_size: int, block: str) -> dict[str, float]:
    """Median seconds per round of each schedule for n networks cloned from session `s`'s initial network."""
    domains = [DomainData(f"{d.name}-{k // len(s.domains)}", d.train, d.test, d.manifest)
               for k, d in ((k, s.domains[k % len(s.domains)]) for k in range(n))]
    names = [d.name for d in domains]
    trainers = {"bcd": train_round, "batched": BatchedRounds()}        # a CUDA graph on a GPU
    if s.device.type == "cuda":
        trainers["eager"] = BatchedRounds(graphs=False)
    ensembles = {name: Ensemble(names, s.ens.nets[0], s.ens.layers, lr=s.cfg.lr, device=s.device)
                 for name in trainers}
    c = s.coupling(torch.ones(len(s.windows), n, n, dtype=torch.float64))
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for r in range(rounds + 1):                                    # round 0 warms up
        for name, train in trainers.items():
            if s.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            train(ensembles[name], c, domains, s.task, batch_size=batch_size, seed=0, key=("bench", r), block=block)
            if s.device.type == "cuda":
                torch.cuda.synchronize()
            if r:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="8", help="comma list of network counts")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--train", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--block", default="epoch", help="bcd block: epoch or step")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    counts = [int(v) for v in args.n.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"ae9 width {args.width}, {args.size} px, {args.train} images per dataset, batch {args.batch_size}, "
          f"bcd block {args.block}")

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare_synth8(data_dir=data, size=args.size, train=args.train, test=10)
        given = {"task": "ae", "datasets": "@synth8", "width": args.width, "batch_size": args.batch_size}
        with training_session(Path(tmp) / "run", given, data_dir=data, device=args.device) as s:
            for n in counts:
                t = time_schedules(s, n, args.rounds, args.batch_size, args.block)
                images = n * args.train
                print(f"n = {n:3d}: " + "   ".join(f"{name} {sec:6.2f} s/round ({images / sec:6.0f} img/s)"
                                                     for name, sec in t.items())
                      + f"   batched / bcd = {t['batched'] / t['bcd']:.3f}"
                      + (f"   eager / bcd = {t['eager'] / t['bcd']:.3f}" if "eager" in t else ""))


if __name__ == "__main__":
    main()
