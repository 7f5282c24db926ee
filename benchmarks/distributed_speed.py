"""One process with 2 threads, or 2 processes (torchrun, gloo) with 1 thread each? Same run, wall time.

    python benchmarks/distributed_speed.py [--train 250 --width 32 --epochs 3]

Prepares the 8 synth8 datasets (32 px) in a temporary folder and times the
same warm start (`jointnet warmstart --sync-every 0`, ae9) twice from the
command line: `OMP_NUM_THREADS=2 jointnet …` and
`OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 -m jointnet_cli -- …`.
Both compute the same numbers (the script checks the final data losses agree);
it prints the seconds per epoch read from state.json and the wall times,
start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jointnet_cli.data.synth8 import prepare_synth8


def run(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--train", type=int, default=250, help="training images per dataset")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepare_synth8(data_dir=tmp / "data", size=32, train=args.train, test=50)
        common = ["warmstart", "--task", "ae", "--datasets", "@synth8", "--width", str(args.width),
                  "--epochs", str(args.epochs), "--sync-every", "0", "--device", "cpu", "--data-dir", str(tmp / "data")]
        jointnet = [sys.executable, "-m", "jointnet_cli"]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    "-m", "jointnet_cli", "--"]
        results = {}
        for label, launch, threads in (("1 process × 2 threads", jointnet, 2),
                                       ("2 processes × 1 thread", torchrun, 1)):
            path = tmp / label.replace(" ", "")
            wall = run([*launch, *common, "--run", str(path)], threads)
            ws = json.loads((path / "state.json").read_text())["warmstart"]
            results[label] = (wall, [h["seconds"] for h in ws["history"]], ws["history"][-1]["data_loss"])

    print(f"ae9 width {args.width}, 32 px, 8 datasets × {args.train} images, {args.epochs} warm-start epochs")
    for label, (wall, seconds, _) in results.items():
        per_epoch = sorted(seconds)[len(seconds) // 2]
        print(f"{label:<24} {per_epoch:6.2f} s per epoch (median)   {wall:6.1f} s wall, start-up included")
    (a_wall, a_s, a_loss), (b_wall, b_s, b_loss) = results.values()
    worst = max(abs(a_loss[k] - b_loss[k]) / abs(a_loss[k]) for k in a_loss)
    print(f"2 processes / 1 process, per epoch: {sorted(b_s)[len(b_s) // 2] / sorted(a_s)[len(a_s) // 2]:.3f}; "
          f"final data losses agree to {worst:.1e} (relative)")


if __name__ == "__main__":
    main()
