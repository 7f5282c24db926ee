"""Which options make joint learning win? An ablation on the synth8 *validation* copy only.

    python benchmarks/ablation.py --task ae --seeds 0,1                      # the focus set of variants
    python benchmarks/ablation.py --task ae --variants paper-recipe,prox --seeds 0
    python benchmarks/ablation.py --task classify --list                     # what each variant sets

Every variant is the joint method with the benchmark recipe's settings
(recipes/bench-synth8-{task}.toml) and a few options changed; every one gets the
recipe's budget in epochs per dataset (a shareall start takes its epochs from the
warm start's). The reference methods (isolated, finetune, groupshare,
l2-partial-50) are trained beside them with the same budget. Scores are on the
validation copy (synth8 generated with data seed 1; `--data-seed 2` makes another
validation copy), never on the test split: this is where defaults are chosen. Prints, per variant, the mean ± std over seeds
of the average metric, the worst per-dataset difference to isolated (in isolated's
direction: > 0 is worse), the lowest group recovery (ARI) over windows, and how
many runs converged (δ ≤ tol). Runs resume; results go to --out/ablation-{task}.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from quality import REPO, prepared, settings_for, train_method

REFERENCES = ("isolated", "finetune", "groupshare", "l2-partial-50")

# name → options over the recipe (RunConfig fields). `epochs` is the warm start's.
VARIANTS: dict[str, dict[str, dict]] = {
    "ae": {
        "paper-recipe": {},                                           # the paper's method with the first benchmark's λ
        "paper-lam10": {"lam": 10.0},                                 # the paper's λ on the mean-over-pixels loss
        "refit": {"sigma": "refit"},
        "gm": {"weight": "gm"},
        "refit-gm": {"sigma": "refit", "weight": "gm"},
        "anneal-gm": {"sigma": "anneal", "weight": "gm"},
        "normalized-0.01": {"penalty": "normalized", "lam": 0.01, "sigma": "refit"},
        "prox-1": {"apply": "prox", "lam": 1.0},
        "prox-10": {"apply": "prox", "lam": 10.0},
        "prox-gm-0.3": {"apply": "prox", "lam": 0.3, "weight": "gm"},
        "prox-gm-1": {"apply": "prox", "lam": 1.0, "weight": "gm"},
        "prox-gm-3": {"apply": "prox", "lam": 3.0, "weight": "gm"},
        "prox-refit-gm-1": {"apply": "prox", "lam": 1.0, "sigma": "refit", "weight": "gm"},
        "prox-anneal-gm-1": {"apply": "prox", "lam": 1.0, "sigma": "anneal", "weight": "gm"},
        "batched-prox-10": {"apply": "prox", "lam": 10.0, "schedule": "batched"},
        "batched-prox-100": {"apply": "prox", "lam": 100.0, "schedule": "batched"},
        "batched-prox-refit-gm-100": {"apply": "prox", "lam": 100.0, "schedule": "batched", "sigma": "refit",
                                      "weight": "gm"},
        "step-prox-100": {"apply": "prox", "lam": 100.0, "block": "step"},
        "step-prox-refit-gm-100": {"apply": "prox", "lam": 100.0, "block": "step", "sigma": "refit", "weight": "gm"},
        "shareall-prox-10": {"apply": "prox", "lam": 10.0, "start": "shareall", "start_epochs": 4, "epochs": 2},
        # learned groups: warm start 4 + group start 6 (or 8) + IRLS 3 (or 2) × 2 = the recipe's 16
        "groups-2": {"start": "groups", "start_epochs": 6, "epochs": 4, "max_iters": 3, "group_ratio": 2.0},
        "groups-1.5": {"start": "groups", "start_epochs": 6, "epochs": 4, "max_iters": 3, "group_ratio": 1.5},
        "groups-1.5-long": {"start": "groups", "start_epochs": 8, "epochs": 4, "max_iters": 2, "group_ratio": 1.5},
        "groups-1.5-long-lam10": {"start": "groups", "start_epochs": 8, "epochs": 4, "max_iters": 2,
                                  "group_ratio": 1.5, "lam": 10.0},
        "groups-1.5-short-ws": {"start": "groups", "start_epochs": 8, "epochs": 2, "max_iters": 3,
                                "group_ratio": 1.5},
        # a longer warm start before the groups are learned (classify's networks are near chance after 4);
        # -ws8 was the classify recipe's split until BatchNorm recalibration (README "Classify scores were a lottery")
        "groups-1.5-ws6": {"start": "groups", "start_epochs": 6, "epochs": 6, "max_iters": 2, "group_ratio": 1.5},
        "groups-1.5-ws8": {"start": "groups", "start_epochs": 4, "epochs": 8, "max_iters": 2, "group_ratio": 1.5},
        # σ annealed from the l2 problem's (every w ≥ 0.99) after the learned groups
        "groups-1.5-long-anneal": {"start": "groups", "start_epochs": 8, "epochs": 4, "max_iters": 2,
                                   "group_ratio": 1.5, "sigma": "anneal"},
        # convergence probe, not a comparison (budget 4 + 8 + up to 12 × 2): does δ reach tol if IRLS goes on?
        "groups-1.5-long-k12": {"start": "groups", "start_epochs": 8, "epochs": 4, "max_iters": 12,
                                "group_ratio": 1.5},
    },
}
VARIANTS["classify"] = dict(VARIANTS["ae"])
VARIANTS["classify"].update({   # the seeded start with the classify recipe's long warm start: 8 + 4 × 2
    "prox-gm-1-ws8": {"apply": "prox", "lam": 1.0, "weight": "gm", "epochs": 8, "max_iters": 4},
    "prox-anneal-gm-1-ws8": {"apply": "prox", "lam": 1.0, "weight": "gm", "sigma": "anneal", "epochs": 8,
                             "max_iters": 4},
})
VARIANTS["gan"] = {k: {o: x for o, x in v.items() if o != "schedule"} for k, v in VARIANTS["ae"].items()
                   if "batched" not in k and "groups" not in k}
VARIANTS["gan"].update({   # the gan recipe's budget is 12: warm start 2 or 4 + group start 6 + IRLS 2 or 1 × 2
    "prox-gm-1-ws8": {"apply": "prox", "lam": 1.0, "weight": "gm", "epochs": 8, "max_iters": 2},   # 8 + 2 × 2
    # the recipe's 8 + 2 × 2 with a weaker cut of the warm start's coupling: IRLS weights inside a group are
    # 0.1–0.25 of l2's there (and ≤ 0.14 across), and l2 is the best non-oracle gan baseline
    "prox-anneal-gm-1-ws8": {"apply": "prox", "lam": 1.0, "weight": "gm", "sigma": "anneal", "epochs": 8,
                             "max_iters": 2},
    "prox-refit-gm-1-ws8": {"apply": "prox", "lam": 1.0, "weight": "gm", "sigma": "refit", "epochs": 8,
                            "max_iters": 2},
    "prox-1-ws8": {"apply": "prox", "lam": 1.0, "epochs": 8, "max_iters": 2},               # eq. 7's weight
    "prox-gm-3-ws8": {"apply": "prox", "lam": 3.0, "weight": "gm", "epochs": 8, "max_iters": 2},
    # convergence probe, not a comparison (budget 8 + up to 12 × 2): does δ reach tol if IRLS goes on?
    "prox-gm-1-ws8-k12": {"apply": "prox", "lam": 1.0, "weight": "gm", "epochs": 8, "max_iters": 12},
    "prox-anneal-gm-1-ws8-k12": {"apply": "prox", "lam": 1.0, "weight": "gm", "sigma": "anneal", "epochs": 8,
                                 "max_iters": 12},
    "groups-1.5": {"start": "groups", "start_epochs": 6, "epochs": 2, "max_iters": 2, "group_ratio": 1.5},
    "groups-1.5-ws4": {"start": "groups", "start_epochs": 6, "epochs": 4, "max_iters": 1, "group_ratio": 1.5},
})

# Variants without learned groups change options over the method the study began from: the paper's
# options, the λ the first benchmark had chosen per task on this copy, a seeded start, and the budget
# split of those days (warm start 6 + 5 IRLS iterations × 2; gan 4 + 4 × 2).
BEFORE_GROUPS: dict[str, dict] = {
    task: {"sigma": "fixed", "weight": "paper", "penalty": "raw", "apply": "grad", "start": "random",
           "lam": lam, "epochs": epochs, "max_iters": iters}
    for task, lam, epochs, iters in (("ae", 0.001, 6, 5), ("classify", 0.01, 6, 5), ("gan", 0.1, 4, 4))}


def variant_settings(task: str, settings: dict, name: str) -> dict:
    """The run settings of one variant: the recipe, then (without learned groups) BEFORE_GROUPS, then the
    variant's own options."""
    options = VARIANTS[task][name]
    if options.get("start") == "groups":
        return {**settings, **options}
    out = {**settings, **BEFORE_GROUPS[task], **options}
    if out["start"] == "random":
        out.pop("start_epochs", None)                            # the recipe's, meaningless without a start
    return out


# The ones the study ran on every task (README "Choosing the defaults"); the others were tried on ae only.
FOCUS = ("paper-recipe", "gm", "refit-gm", "prox-1", "prox-10", "prox-gm-1", "batched-prox-10")


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def score(result: dict, method: str, metric: str) -> dict[str, float]:
    return {d: m[metric] for d, m in result["metrics"][method].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--task", choices=sorted(VARIANTS), default="ae")
    ap.add_argument("--variants", default="", help="comma list (default: the focus set run on every task)")
    ap.add_argument("--references", default=",".join(REFERENCES), help="baselines trained beside (comma list)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--budget-scale", type=int, default=1,
                    help="multiply the recipe's warm-start epochs and epochs per IRLS iteration (every method's "
                         "budget with them): does a longer, converged budget change the ranking?")
    ap.add_argument("--data-seed", type=int, default=1,
                    help="synth8's generator seed: 1 is the validation copy; other seeds make more validation "
                         "copies (0 is the test split's and is refused)")
    ap.add_argument("--list", action="store_true", help="print the variants and exit")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-ablation")
    args = ap.parse_args()
    variants = VARIANTS[args.task]
    if args.list:
        for name in variants:
            print(f"{name:<36} {variant_settings(args.task, {}, name)}")
        return
    names = [v for v in args.variants.split(",") if v] or [v for v in FOCUS if v in variants]
    if bad := [v for v in names if v not in variants]:
        ap.error(f"unknown variant(s) {', '.join(bad)}; --list shows them")
    if args.data_seed == 0:
        ap.error("--data-seed 0 is the test split's copy: defaults are never chosen on it")
    refs = [m for m in args.references.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",")]

    import torch

    from jointnet_cli.report.evaluate import evaluate_run

    settings, prep = settings_for(args.task, False, None)
    if args.budget_scale != 1:
        settings.update(epochs=settings["epochs"] * args.budget_scale,
                        epochs_per_iter=settings["epochs_per_iter"] * args.budget_scale)
    data = prepared(args.out, prep, data_seed=args.data_seed)    # a validation copy, never the test split
    root = args.out / (f"validation-{args.task}" + (f"-x{args.budget_scale}" if args.budget_scale != 1 else "")
                       + (f"-data{args.data_seed}" if args.data_seed != 1 else ""))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; task {args.task}; seeds {seeds}; "
          f"validation copy; runs in {root}", flush=True)
    rows: dict[str, list[dict]] = {}
    ref_results: dict[int, dict] = {}
    for seed in seeds:
        ref_run = root / f"references-seed{seed}"
        for m in refs:
            t0 = time.perf_counter()
            train_method(ref_run, {**settings, "seed": seed}, m, data)
            print(f"  seed {seed} {m:<36} {time.perf_counter() - t0:6.1f} s", flush=True)
        if refs:
            ref_results[seed] = evaluate_run(ref_run, data_dir=data, device="cpu")
        for name in names:
            run = root / name / f"seed{seed}"
            t0 = time.perf_counter()
            train_method(run, {**variant_settings(args.task, settings, name), "seed": seed}, "joint", data)
            seconds = time.perf_counter() - t0
            res = evaluate_run(run, data_dir=data, device="cpu")
            state = json.loads((run / "state.json").read_text())
            its = state["irls"]["iterations"]
            rows.setdefault(name, []).append({"result": res, "converged": bool(state["irls"].get("converged")),
                                              "last_delta": its[-1]["delta"] if its else None, "seconds": seconds})
            print(f"  seed {seed} {name:<36} {seconds:6.1f} s", flush=True)

    first = next(iter(rows.values()))[0]["result"] if rows else ref_results[seeds[0]]
    metric, higher = first["metric"], first["higher_is_better"]
    sign = -1 if higher else 1                                   # > 0: worse than isolated
    lines = [f"### {args.task}: validation {metric} ({'higher' if higher else 'lower'} is better), "
             f"seeds {', '.join(map(str, seeds))}; every method {first['budgets']['joint']['epochs']} epochs per dataset",
             "", "| method | average (mean ± std) | worst dataset vs isolated | lowest ARI | converged |",
             "|---|---|---|---|---|"]

    def line(name: str, per_seed: list[dict[str, float]], extra: tuple[str, str, str]) -> str:
        avg = mean_std([statistics.fmean(s.values()) for s in per_seed])
        worst = "–"
        if "isolated" in refs:
            iso = [score(ref_results[s], "isolated", metric) for s in seeds]
            gaps = [sign * (statistics.fmean(p[d] for p in per_seed) - statistics.fmean(i[d] for i in iso))
                    for d in per_seed[0]]
            worst = f"{max(gaps):+.4f}"
        return f"| {name} | {avg[0]:.4f} ± {avg[1]:.4f} | {worst} | {' | '.join(extra)} |"

    for m in refs:
        lines.append(line(m, [score(ref_results[s], m, metric) for s in seeds], ("", "")))
    for name, runs in rows.items():
        aris = [min(r["result"]["group_recovery"]) for r in runs if r["result"].get("group_recovery")]
        conv = sum(r["converged"] for r in runs)
        lines.append(line(name, [score(r["result"], "joint", metric) for r in runs],
                          (f"{statistics.fmean(aris):.2f}" if aris else "–", f"{conv}/{len(runs)}")))
    md = "\n".join(lines) + "\n"
    print("\n" + md, flush=True)
    (args.out / f"{root.name.replace('validation', 'ablation')}.md").write_text(md)


if __name__ == "__main__":
    main()
