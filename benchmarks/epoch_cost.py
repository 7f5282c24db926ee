"""What does the coupling cost? A joint (coupled) BCD epoch vs an isolated one, same data and model.

    python benchmarks/epoch_cost.py [--size 32 --train 500 --rounds 3 --width 32]

Prepares the 8 synth8 domains in a temporary folder, then alternates coupled
(all window weights 1, λ = 10) and isolated (C = 0) rounds of the `bcd`
trainer, each round = one epoch of every dataset, and prints the median
seconds per round and their ratio (target ≤ 1.10). Also times one IRLS
weighting step (distances, σ, w) against one epoch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from jointnet_cli.data.synth8 import prepare_synth8
from jointnet_cli.joint import weights as jw
from jointnet_cli.joint.bcd import train_round
from jointnet_cli.joint.stages import training_session


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--train", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--block", default="epoch")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ae9 width {args.width}, "
          f"{args.size} px, 8 × {args.train} images, batch {args.batch_size}, block {args.block}")

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare_synth8(data_dir=data, size=args.size, train=args.train, test=10)
        given = {"task": "ae", "datasets": "@synth8", "width": args.width, "batch_size": args.batch_size,
                 "block": args.block}
        with training_session(Path(tmp) / "run", given, data_dir=data, device="cpu") as s:
            L, n = s.ens.num_layers, s.n
            coupled = s.coupling(s.all_ones())                      # λ = 10 (the default), all weights 1
            isolated = torch.zeros(L, n, n, dtype=torch.float64)
            times = {"joint": [], "isolated": []}
            for r in range(args.rounds + 1):                       # round 0 warms up
                for name, c in (("isolated", isolated), ("joint", coupled)):
                    t0 = time.perf_counter()
                    train_round(s.ens, c, s.domains, s.task, batch_size=args.batch_size, seed=0,
                                key=("bench", name, r), block=args.block)
                    if r:
                        times[name].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            reps = 5
            for _ in range(reps):
                dw = jw.window_sq_distances(s.layer_sq_distances())
                jw.irls_weights(dw, jw.sigma_from(dw))
            weighting = (time.perf_counter() - t0) / reps

    joint, iso = statistics.median(times["joint"]), statistics.median(times["isolated"])
    print(f"isolated epoch (8 datasets): {iso:.2f} s   ({8 * args.train / iso:.0f} img/s)")
    print(f"joint epoch    (8 datasets): {joint:.2f} s   ({8 * args.train / joint:.0f} img/s)")
    print(f"joint / isolated = {joint / iso:.3f}   (target ≤ 1.10: {'PASS' if joint / iso <= 1.10 else 'FAIL'})")
    print(f"IRLS weighting step: {weighting * 1000:.1f} ms = {100 * weighting / joint:.2f} % of a joint epoch")


if __name__ == "__main__":
    main()
