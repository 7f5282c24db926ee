"""Create or reopen a run directory's configuration from user settings.

The first stage that touches a run fixes its configuration; later stages read
it and refuse a conflicting setting, naming the flag (DESIGN §3). Torch-free.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from jointnet_cli.errors import UserError
from jointnet_cli.runs.config import (ADJUSTABLE, IN_FORCE, OPTION_OF_FIELD, RESOLVED, TASK_ARCHS, RunConfig,
                                     inapplicable, unused_options, validate)
from jointnet_cli.runs.rundir import RunDir
from jointnet_cli.wording import plural

def flag(key: str) -> str:
    """The flag a user types for a RunConfig field (`lam` → `--lambda`)."""
    return "--" + OPTION_OF_FIELD.get(key, key).replace("_", "-")


def _data_fingerprints(data_dir: Path, names: list[str]) -> tuple[dict[str, str], list[dict]]:
    from jointnet_cli.data.format import read_manifest

    manifests = [read_manifest(data_dir, name) for name in names]
    for name, m in zip(names, manifests):
        counts = m.get("counts") if isinstance(m.get("counts"), dict) else {}
        train = counts.get("train")
        if isinstance(train, int) and not isinstance(train, bool) and train < 1:
            raise UserError(f"dataset {name} in {data_dir} has no training images; prepare it with --train ≥ 1")
    prints = {name: m.get("sha256", {}).get("train.safetensors", "") for name, m in zip(names, manifests)}
    return prints, manifests


IRLS_METHOD = ("sigma", "anneal", "weight", "penalty")     # fixed by IRLS iteration 1's weighting


def stage_conflicts(cfg: RunConfig, given: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """Stage settings in `given` that contradict work already done, each naming what fixed it.

    The warm start's `--epochs` is free until it has trained more epochs (or finished); `--epochs-per-iter`
    applies from the next IRLS iteration on (or to the one in progress, if it has not trained more); the σ
    schedule, weight and penalty are fixed by IRLS iteration 1. `--max-iters` and `--tol` always apply:
    raising one or lowering the other continues a finished run."""
    problems: list[str] = []
    ws, ir = state.get("warmstart", {}), state.get("irls", {})
    ws, ir = (ws if isinstance(ws, dict) else {}), (ir if isinstance(ir, dict) else {})
    if "epochs" in given and given["epochs"] != cfg.epochs:
        done = ws.get("epochs_done", 0)
        if ws.get("checkpoint"):
            problems.append(f"--epochs {given['epochs']}: the warm start was trained with --epochs "
                            f"{ws.get('epochs', cfg.epochs)} (drop --epochs, or use a new --run)")
        elif isinstance(done, int) and done > given["epochs"]:
            problems.append(f"--epochs {given['epochs']}: the warm start has already trained {plural(done, 'epoch')}")
    current = ir.get("current") if isinstance(ir.get("current"), dict) else None
    if "epochs_per_iter" in given and current:
        done = current.get("epochs_done", 0)
        if isinstance(done, int) and done > given["epochs_per_iter"]:
            problems.append(f"--epochs-per-iter {given['epochs_per_iter']}: IRLS iteration {current.get('k')} "
                            f"has already trained {plural(done, 'epoch')}")
    if ir.get("iterations") or current:
        recorded = ir.get("settings") if isinstance(ir.get("settings"), dict) else {}
        for key in IRLS_METHOD:
            if key not in given:
                continue
            used = RESOLVED.get(key, key)                        # `--sigma auto`: the schedule it means here
            was = recorded.get(key, getattr(cfg, used))
            now = getattr(replace(cfg, **{key: given[key]}), used)
            if now != was:
                meaning = f" (for this run: {now})" if now != given[key] else ""
                problems.append(f"{flag(key)} {given[key]}{meaning}: IRLS iteration 1 was computed with {flag(key)} "
                                f"{was} (use a new --run to compare)")
    return problems


def stage_updates(stored: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """config.json keys whose value in force (`cfg`, after a command's accepted stage settings) differs
    from the file: what to write back so that config.json says what the stages ran with."""
    return {k: getattr(cfg, k) for k in IN_FORCE if stored.get(k) != getattr(cfg, k)}


def record_lr_change(state: dict[str, Any], was: Any, lr: float) -> dict[str, Any]:
    """state.json with a new --lr logged: the value, the one before it, and the epochs per dataset each
    method had trained (the new rate applies from the next epoch on)."""
    from jointnet_cli.runs.logbook import rows

    trained: dict[str, int] = {}
    for r in rows(state, []):
        trained[r.method] = max(trained.get(r.method, 0), r.step)
    changes = state.get("lr_changes") if isinstance(state.get("lr_changes"), list) else []
    return {**state, "lr_changes": [*changes, {"lr": lr, "was": was, "epochs_trained": trained}]}


def check_same_data(run: RunDir, cfg: RunConfig, data_dir: Path) -> dict[str, str]:
    """The sha256 of every dataset's training split in `data_dir`, refused (one line naming the dataset)
    when it differs from the one recorded in the run's config.json."""
    prints, _ = _data_fingerprints(data_dir, list(cfg.datasets))
    stored = run.read_config().get("data", {})
    stored = stored if isinstance(stored, dict) else {}
    changed = [n for n in cfg.datasets if stored.get(n) and stored[n] != prints[n]]
    if changed:
        raise UserError(f"dataset {changed[0]} in {data_dir} differs from the one run {run.path} was trained on "
                        f"(sha256 of train.safetensors); give the --data-dir it was trained on")
    return prints


def configure_run(run: RunDir, given: dict[str, Any], *, data_dir: Path) -> tuple[RunConfig, dict[str, str], bool]:
    """Resolve the run's configuration: (config, data fingerprints, is_new).

    `given` maps RunConfig field names to the values from recipe and flags, with
    `datasets` as the user's spec (comma list or @collection).
    """
    from jointnet_cli.data.collections import resolve_datasets

    problems = validate({k: v for k, v in given.items() if k != "datasets"})
    if problems:
        raise UserError("; ".join(problems))
    if "datasets" in given and given["datasets"] is not None:
        given = {**given, "datasets": tuple(resolve_datasets(str(given["datasets"]), data_dir))}

    if run.exists():
        cfg = RunConfig.from_json(run.read_config(), where=str(run.config_path))
        if problems := inapplicable(cfg.task, given):
            raise UserError("; ".join(problems))
        conflicts = []
        for f in fields(RunConfig):
            key = f.name
            if key in given and key not in ADJUSTABLE and key != "extra" and given[key] != getattr(cfg, key):
                shown = ",".join(cfg.datasets) if key == "datasets" else getattr(cfg, key)
                conflicts.append(f"{flag(key)} (run has {shown})")
        if conflicts:
            raise UserError(
                f"run {run.path} was created with other settings: {'; '.join(conflicts)}; "
                "drop those flags or use a new --run"
            )
        prints = check_same_data(run, cfg, data_dir)
        problems = stage_conflicts(cfg, given, run.read_state())
        if problems:
            raise UserError(f"run {run.path}: " + "; ".join(problems))
        cfg = cfg.with_adjustments(given)
        if problems := unused_options(given, cfg):
            raise UserError("; ".join(problems))
        problems = validate({"task": cfg.task, "schedule": cfg.schedule,     # an adjustment that does not fit the run
                             "sync_every": cfg.sync_every, "block": cfg.block, "precision": cfg.precision})
        if problems:
            raise UserError("; ".join(problems))
        return cfg, prints, False

    problems = validate(given, require=("task", "datasets"))
    if problems:
        raise UserError("; ".join(problems))
    names = list(given["datasets"])
    prints, manifests = _data_fingerprints(data_dir, names)
    sizes = {m.get("image_size") for m in manifests}
    if len(sizes) != 1:
        listing = ", ".join(f"{n} {m.get('image_size')} px" for n, m in zip(names, manifests))
        raise UserError(f"datasets have different image sizes ({listing}); prepare them at one --size")
    size = sizes.pop()
    if given.get("image_size") and given["image_size"] != size:
        raise UserError(f"--size {given['image_size']} does not match the prepared data ({size} px)")
    task = given["task"]
    values = {k: v for k, v in given.items() if v is not None}
    values["arch"] = values.get("arch") or TASK_ARCHS[task][0]
    if task == "gan" and "lr" not in values:
        values["lr"] = 2e-4                       # DCGAN's Adam learning rate (β1 = 0.5)
    values["image_size"] = size
    cfg = RunConfig(**values)
    if problems := unused_options(given, cfg):
        raise UserError("; ".join(problems))
    if cfg.task == "ae" and cfg.hole >= size:
        raise UserError(f"--hole {cfg.hole} must be smaller than the image size ({size} px)")
    return cfg, prints, True
