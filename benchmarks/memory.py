"""Memory of a joint run: peak RSS of an 8-dataset ae9 64 px irls run, and whether it grows.

    python benchmarks/memory.py [--train 300 --width 32 --epochs 2 --iters 5]

Prepares synth8 at 64 px in a temporary folder, runs the warm start and IRLS
(the same library call as `jointnet irls`), and records the resident set size
after every epoch. Prints the peak RSS (ru_maxrss) and the RSS after each IRLS
iteration; the run passes when the last iteration holds no more than the
first plus 5 % (memory must not grow across iterations).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from pathlib import Path

from jointnet_cli.data.synth8 import prepare_synth8
from jointnet_cli.joint.reporter import Reporter
from jointnet_cli.joint.stages import irls


def rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class MemoryLog(Reporter):
    """Records RSS after every epoch and every IRLS iteration."""

    def __init__(self) -> None:
        self.epochs: list[tuple[str, int, float]] = []
        self.iterations: list[tuple[int, float]] = []

    def epoch(self, stage: str, info: dict) -> None:
        self.epochs.append((stage, info.get("epoch", 0), rss_mib()))

    def iteration(self, entry: dict) -> None:
        self.iterations.append((entry["k"], rss_mib()))
        print(f"  IRLS iteration {entry['k']}: RSS {self.iterations[-1][1]:.0f} MiB, δ = {entry['delta']:.3f}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--train", type=int, default=300, help="training images per dataset")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2, help="warm-start epochs")
    ap.add_argument("--iters", type=int, default=5, help="IRLS iterations (1 epoch each)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare_synth8(data_dir=data, size=args.size, train=args.train, test=50)
        print(f"ae9 width {args.width}, {args.size} px, 8 datasets × {args.train} images; "
              f"RSS before training {rss_mib():.0f} MiB", flush=True)
        log = MemoryLog()
        irls(Path(tmp) / "run", {"task": "ae", "datasets": "@synth8", "width": args.width, "epochs": args.epochs,
                                 "epochs_per_iter": 1, "max_iters": args.iters, "tol": 1e-9},
             data_dir=data, device="cpu", reporter=log)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first, last = log.iterations[0][1], log.iterations[-1][1]
    print(f"peak RSS {peak:.0f} MiB; after IRLS iteration 1: {first:.0f} MiB, after iteration "
          f"{log.iterations[-1][0]}: {last:.0f} MiB ({100 * (last - first) / first:+.1f} %)  "
          f"{'PASS' if last <= 1.05 * first else 'FAIL'} (no growth beyond 5 %)")


if __name__ == "__main__":
    main()
