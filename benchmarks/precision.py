"""Does a mixed --precision pay on this device? Speed and quality of each --precision against 32.

    python benchmarks/precision.py --device cuda                        # ae and classify, seeds 0 1
    python benchmarks/precision.py --device cpu --quick --precisions 32,bf16-mixed

For each task, seed and --precision (same seeds, one after the other, never two at once), the joint
method (`irls`) is trained with the task's benchmark recipe (recipes/bench-synth8-{task}.toml) on the
validation copy of synth8 (data seed 1: what `--precision auto` was chosen by must not be the test split)
and scored there. Prints each run as it ends, then per task and precision: the primary metric's mean ± std
over seeds, the median seconds of a training epoch (from state.json: training alone, without the start-up
and the evaluation) and its ratio to 32's, and the whole run's wall time. Every precision has the same
budget (the recipe's epochs). Writes precision.json to --out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import REPO, prepared, settings_for  # noqa: E402  (the quality benchmark's recipes and data)


def epoch_seconds(run: Path) -> float:
    """Median seconds of the run's training epochs (warm start, learned groups' start, IRLS)."""
    state = json.loads((run / "state.json").read_text())
    found: list[float] = []

    def collect(node) -> None:
        if isinstance(node, dict):
            if "seconds" in node and "epoch" in node:
                found.append(float(node["seconds"]))
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(state)
    return statistics.median(found) if found else float("nan")


def table(rows: list[dict], precisions: list[str]) -> str:
    """Per task and precision: metric mean ± std over seeds, epoch seconds and their ratio to 32."""
    lines = ["| task | precision | seeds | metric (mean ± std) | s / epoch | vs 32 | wall s / run |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for task in dict.fromkeys(r["task"] for r in rows):
        base = [r["epoch_s"] for r in rows if r["task"] == task and r["precision"] == "32"]
        for p in precisions:
            mine = [r for r in rows if r["task"] == task and r["precision"] == p]
            if not mine:
                continue
            scores = [r["score"] for r in mine]
            sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
            sec = statistics.median(r["epoch_s"] for r in mine)
            ratio = f"{sec / statistics.median(base):.2f}×" if base else "n/a"
            lines.append(f"| {task} | {p} | {len(mine)} | {mine[0]['metric']} {statistics.fmean(scores):.4f} ± "
                         f"{sd:.4f} | {sec:.3f} | {ratio} | {statistics.median(r['wall_s'] for r in mine):.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--device", default="cuda", help="cuda, cpu, … (the runs' --device)")
    ap.add_argument("--tasks", default="ae,classify", help="comma list of ae, classify")
    ap.add_argument("--precisions", default="32,bf16-mixed,16-mixed", help="comma list; 32 is the reference")
    ap.add_argument("--seeds", default="0,1", help="training seeds (comma list)")
    ap.add_argument("--quick", action="store_true", help="tiny data and budgets (the quality benchmark's --quick)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-precision")
    args = ap.parse_args()

    import torch

    from jointnet_cli.joint.stages import irls
    from jointnet_cli.report.evaluate import evaluate_run

    precisions = [p for p in args.precisions.split(",") if p]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__} on {name}; precisions {precisions}; seeds {seeds}; validation split",
          flush=True)
    tasks = [t for t in args.tasks.split(",") if t]
    recipes = {t: settings_for(t, args.quick, None) for t in tasks}
    rows: list[dict] = []
    for seed in seeds:                  # every task and precision at a seed before the next seed
        for task in tasks:
            settings, prep = recipes[task]
            data = prepared(args.out, prep, data_seed=1)
            for p in precisions:
                run = args.out / f"{'quick-' if args.quick else ''}{task}-seed{seed}-{p}"
                shutil.rmtree(run, ignore_errors=True)          # a fresh run: a finished one would be skipped
                t0 = time.perf_counter()
                irls(run, {**settings, "seed": seed, "precision": p}, data_dir=data, device=args.device)
                result = evaluate_run(run, data_dir=data, device=args.device)
                wall = time.perf_counter() - t0
                metric = result["metric"]
                score = statistics.fmean(v[metric] for v in result["metrics"]["joint"].values())
                rows.append({"task": task, "seed": seed, "precision": p, "metric": metric, "score": score,
                             "epoch_s": epoch_seconds(run), "wall_s": wall})
                print(f"  {task} seed {seed} {p:<10} {metric} {score:.4f}  {rows[-1]['epoch_s']:.3f} s/epoch  "
                      f"{wall:.1f} s", flush=True)
        print("\n" + table(rows, precisions) + "\n", flush=True)
        (args.out / "precision.json").write_text(json.dumps({"device": name, "rows": rows}, indent=1))
    print(f"wrote {args.out / 'precision.json'}")


if __name__ == "__main__":
    main()
