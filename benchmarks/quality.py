"""Does joint learning help? Every method on synth8, for each task, over several seeds.

    python benchmarks/quality.py                       # ae, classify, gan × 7 methods × seeds 0 1 2
    python benchmarks/quality.py --quick               # ≤ 5 min on 2 CPU cores: tiny data, 1 seed
    python benchmarks/quality.py --tasks ae --split validation --lambda 0.1 --methods joint,isolated
    python benchmarks/quality.py --tasks ae,classify --methods joint --schedule batched

Settings come from recipes/bench-synth8-{task}.toml (training) and their
[prepare] table (images per domain). Every method gets the joint method's
budget in epochs per dataset (the trainer's rule, see README "Baselines").
The test split is the synth8 collection generated with data seed 0;
`--split validation` scores on a second copy generated with data seed 1
instead, so hyper-parameters (λ, epochs per iteration, …) can be chosen
without looking at the test split. Seeds vary the training (initial
weights, batch order, holes); the data stay fixed.

Runs are ordinary run directories under --out (default runs/bench-quality);
rerunning the script resumes where it stopped and skips finished methods.
Prints, per task, the paper-style table (mean ± std over seeds, per dataset
and the average) and, for joint, the adjusted Rand index between clusters of
the learned weights and the 3 known synth8 groups, per window. Writes the
same to quality.json and quality.md in --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from jointnet_cli.report.compare import markdown, summarize

REPO = Path(__file__).resolve().parents[1]
TASKS = ("ae", "classify", "gan")
METHODS = ("joint", "isolated", "shareall", "l2", "l2-partial-25", "l2-partial-50", "finetune", "groupshare",
           "l2-groups")
QUICK = {"train": 48, "test": 48, "epochs": 2, "epochs_per_iter": 1, "max_iters": 2, "width": 8}


def settings_for(task: str, quick: bool, lam: float | None) -> tuple[dict, dict]:
    """(run settings as RunConfig fields, prepare settings) from the task's benchmark recipe."""
    from jointnet_cli.cli.options import config_settings
    from jointnet_cli.cli.recipe import load_recipe

    recipe = REPO / "recipes" / f"bench-synth8-{task}.toml"
    run = config_settings(load_recipe(recipe, "irls"))
    prep = {k: v for k, v in load_recipe(recipe, "prepare").items() if k in ("size", "train", "test")}
    if quick:
        prep.update(train=QUICK["train"], test=QUICK["test"])
        run.update({k: QUICK[k] for k in ("epochs", "epochs_per_iter", "max_iters", "width")})
    if lam is not None:
        run["lam"] = lam
    return run, prep


def prepared(root: Path, prep: dict, data_seed: int) -> Path:
    """synth8 for these settings (generated once per size/count/seed, then reused)."""
    from jointnet_cli.data.synth8 import prepare_synth8

    data = root / f"data-{prep['size']}px-{prep['train']}-{prep['test']}-seed{data_seed}"
    if not (data / ".complete").exists():
        prepare_synth8(data_dir=data, size=prep["size"], train=prep["train"], test=int(prep["test"]),
                       seed=data_seed, force=True)
        (data / ".complete").write_text("")
    return data


def train_method(run: Path, settings: dict, method: str, data: Path) -> None:
    """Train (or resume, or skip when finished) one method in the run directory."""
    from jointnet_cli.joint.stages import baseline, irls

    if method == "joint":
        irls(run, settings, data_dir=data, device="cpu")
    elif method.startswith("l2-partial-"):
        fraction = int(method.rsplit("-", 1)[1]) / 100
        baseline(run, settings, method="l2-partial", fraction=fraction, data_dir=data, device="cpu")
    else:
        baseline(run, settings, method=method, data_dir=data, device="cpu")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma list of ae, classify, gan")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS))
    ap.add_argument("--seeds", default="0,1,2", help="training seeds (comma list)")
    ap.add_argument("--split", choices=("test", "validation"), default="test",
                    help="score on the test split (data seed 0) or on a validation copy (data seed 1)")
    ap.add_argument("--lambda", dest="lam", type=float, default=None, help="override the recipes' λ")
    ap.add_argument("--schedule", choices=("bcd", "batched"), default=None,
                    help="train with this schedule (default: the trainer's default)")
    ap.add_argument("--quick", action="store_true", help="tiny data and budgets, seed 0 only (≤ 5 min)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-quality")
    args = ap.parse_args()

    import torch

    from jointnet_cli.report.evaluate import evaluate_run

    tasks = [t for t in args.tasks.split(",") if t]
    methods = [m for m in args.methods.split(",") if m]
    if bad := [t for t in tasks if t not in TASKS] + [m for m in methods if m not in METHODS]:
        ap.error(f"unknown task or method: {', '.join(bad)}")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    data_seed = 1 if args.split == "validation" else 0
    tag = ("quick-" if args.quick else "") + args.split + (f"-lam{args.lam:g}" if args.lam is not None else "") \
        + (f"-{args.schedule}" if args.schedule else "")
    root = args.out / tag
    root.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; tasks {', '.join(tasks)}; "
          f"seeds {seeds}; {args.split} split; results in {root}", flush=True)

    started = time.perf_counter()
    summaries = []
    for task in tasks:
        settings, prep = settings_for(task, args.quick, args.lam)
        if args.schedule and task != "gan":                     # GAN runs train with bcd only
            settings["schedule"] = args.schedule
        data = prepared(args.out, prep, data_seed)
        results = []
        for seed in seeds:
            run = root / f"{task}-seed{seed}"
            for method in methods:
                t0 = time.perf_counter()
                train_method(run, {**settings, "seed": seed}, method, data)
                print(f"  {task} seed {seed} {method:<14} {time.perf_counter() - t0:6.1f} s", flush=True)
            results.append(evaluate_run(run, data_dir=data, device="cpu"))
        summary = summarize(task, results, methods)
        summary.update(settings={k: v for k, v in settings.items() if k != "datasets"}, prepare=prep,
                       split=args.split)
        summaries.append(summary)
        print("\n" + markdown(summary), flush=True)

    minutes = (time.perf_counter() - started) / 60
    md = "\n".join(markdown(s) for s in summaries) + f"\nTotal time: {minutes:.1f} min\n"
    (root / "quality.md").write_text(md)
    (root / "quality.json").write_text(json.dumps({"minutes": minutes, "tasks": summaries}, indent=1))
    print(f"total {minutes:.1f} min; wrote {root / 'quality.md'} and quality.json")


if __name__ == "__main__":
    main()
