"""The quickstart pipeline: synth8 at 32 px → warm start → IRLS → baselines → evaluate with plots.

The same settings ship as recipes/quickstart.toml (a test keeps the two equal),
so `jointnet irls --recipe recipes/quickstart.toml` reproduces the joint run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

# RunConfig fields (datasets as a spec); sized to finish in about 5 minutes on 2 CPU cores.
SETTINGS: dict[str, Any] = {
    "task": "ae", "datasets": "@synth8", "arch": "ae9", "width": 16, "batch_size": 32, "lr": 0.002,
    "seed": 0, "epochs": 4, "start_epochs": 10, "epochs_per_iter": 2, "max_iters": 2,
}
BASELINES = ("isolated", "shareall", "l2")
IMAGE_SIZE, TRAIN, TEST = 32, 500, 100


def run_quickstart(*, data_dir: Path, run: Path, device: str = "auto", reporter=None,
                   say: Callable[[str], None] = lambda text: None) -> dict:
    """Run every stage (each resumes if it was done before) and return evaluate's result."""
    from jointnet_cli.data.collections import BUILTIN
    from jointnet_cli.data.format import list_datasets, read_manifest
    from jointnet_cli.data.synth8 import prepare_synth8
    from jointnet_cli.joint.stages import baseline, irls
    from jointnet_cli.report.evaluate import evaluate_run

    present = set(list_datasets(data_dir)) if Path(data_dir).is_dir() else set()
    names = BUILTIN["synth8"].datasets
    if not all(n in present and read_manifest(data_dir, n)["image_size"] == IMAGE_SIZE for n in names):
        say(f"1/5 preparing synth8 at {IMAGE_SIZE} px in {data_dir}")
        prepare_synth8(data_dir=data_dir, size=IMAGE_SIZE, train=TRAIN, test=TEST, force=True)
    else:
        say(f"1/5 synth8 already prepared in {data_dir}")
    kw = dict(data_dir=data_dir, device=device, reporter=reporter)
    say(f"2/5 joint learning (warm start, then IRLS) in {run}")
    irls(run, SETTINGS, **kw)
    for i, method in enumerate(BASELINES, 1):
        say(f"3/5 baseline {i}/{len(BASELINES)}: {method}")
        baseline(run, SETTINGS, method=method, **kw)
    say("4/5 evaluating every method, drawing plots")
    result = evaluate_run(run, data_dir=data_dir, device=device, plots=True, html=True)
    example = Path(__file__).resolve().parents[2] / "assets" / "shapes-1.png"
    if example.is_file():
        from jointnet_cli.apply.complete import complete_images

        out = Path(run) / "report" / "complete-shapes-1.png"
        say(f"5/5 filling a hole in {example.name} with the joint network of shapes-1")
        done = complete_images(run, "shapes-1", [str(example)], out=str(out), side_by_side=True, force=True,
                               device=device)
        result["files"] += [d[k] for d in done for k in ("output", "side_by_side") if d.get(k)]
    else:
        say("5/5 skipped: assets/ (example images) is not next to this installation")
    return result
