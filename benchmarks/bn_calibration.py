"""How much does scoring a classifier with its training-time BatchNorm statistics cost? One finished run.

    python benchmarks/bn_calibration.py RUN [--methods isolated,l2]

For each method's final checkpoint in RUN (a classify run: `joint`'s final IRLS checkpoint, or a
baseline), prints the test accuracy per dataset twice: with the BatchNorm statistics as saved, and after
`ClassifyTask.calibrate` recomputed them from each dataset's unaugmented training split. Runs made since
training calibrates before every scored epoch show the same numbers twice; runs made before show what
the running averages of augmented batches had cost. Also prints what the recalibration costs: seconds for
all networks against the method's last training epoch (state.json). Works on a copy: RUN is only read.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("run", type=Path)
    ap.add_argument("--methods", default="", help="comma list (default: every method the run has finished)")
    args = ap.parse_args()

    from jointnet_cli.joint.stages import training_session

    state = json.loads((args.run / "state.json").read_text())
    finished = {m: e["checkpoint"] for m, e in state.get("baselines", {}).items() if e.get("checkpoint")}
    epoch_seconds = {m: e["history"][-1]["seconds"] for m, e in state.get("baselines", {}).items() if e.get("history")}
    if state.get("irls", {}).get("final_checkpoint"):
        finished["joint"] = state["irls"]["final_checkpoint"]
        epoch_seconds["joint"] = state["irls"]["iterations"][-1]["history"][-1]["seconds"]
    methods = [m for m in args.methods.split(",") if m] or sorted(finished)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(args.run, copy, ignore=shutil.ignore_patterns("report", "tb", ".lock"))
        with training_session(copy, {}, device="cpu") as s:
            if s.cfg.task != "classify":
                raise SystemExit(f"{args.run} is a {s.cfg.task} run; only classify calibrates BatchNorm")
            print(f"{args.run}: test accuracy, as saved → calibrated")
            for method in methods:
                s.snapshots.load(finished[method], with_optimizer=False)
                saved = s.evaluate()
                t0 = time.perf_counter()
                s.calibrate()
                seconds = time.perf_counter() - t0
                calibrated = s.evaluate()
                cells = [f"{d} {saved[d]['accuracy']:.3f}→{calibrated[d]['accuracy']:.3f}" for d in saved]
                means = [statistics.fmean(x[d]["accuracy"] for d in saved) for x in (saved, calibrated)]
                print(f"{method:<14} average {means[0]:.3f}→{means[1]:.3f} | " + ", ".join(cells))
                if method in epoch_seconds:
                    print(f"{'':<14} recalibrating {s.n} networks: {seconds:.2f} s; the last training epoch: "
                          f"{epoch_seconds[method]:.2f} s ({100 * seconds / epoch_seconds[method]:.0f} %)")


if __name__ == "__main__":
    main()
