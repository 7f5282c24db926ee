"""Library entry points of the training stages (what the CLI calls, and a notebook can too).

    from jointnet_cli.joint.stages import irls
    irls("runs/ae8", {"task": "ae", "datasets": "@synth8"}, data_dir="data")
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import fields, replace
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from jointnet_cli.errors import UserError, leave_to_rank_0
from jointnet_cli.joint.distributed import Group, check_world
from jointnet_cli.joint.irls import run_irls
from jointnet_cli.joint.learned_groups import run_learned_groups
from jointnet_cli.joint.reporter import Reporter
from jointnet_cli.joint.device import resolve_device
from jointnet_cli.joint.session import Session
from jointnet_cli.joint.warmstart import run_warmstart
from jointnet_cli.runs.config import TASK_ONLY, RunConfig, lambda_grid
from jointnet_cli.runs.configure import configure_run, record_lr_change, stage_updates
from jointnet_cli.runs.logbook import Logbook, check_logger
from jointnet_cli.runs.rundir import RunDir, data_dir_record, run_data_dir
from jointnet_cli.store.atomic import atomic_write_json, check_folder, read_json
from jointnet_cli.wording import plural


@contextmanager
def training_session(run_path: Path | str, given: dict[str, Any], *, data_dir: Path | str | None = None,
                     device: str = "auto", reporter: Reporter | None = None,
                     group: Group | None = None, announce: str | None = None,
                     logger: str = "csv", joint: bool = False) -> Iterator[Session]:
    """Validate settings, lock the run directory, create its config.json if new, and open a Session.

    `given` holds RunConfig fields (datasets as a spec: "a,b,c" or "@synth8"). `data_dir` None: the one
    the run was created with (config.json "data_dir"), or `data` for a new run. `announce`: a title for
    the line that tells the reporter the resolved configuration (device, threads, seed, schedule, λ, …).
    `logger`: csv (metrics.csv, always kept) or tensorboard (event files under RUN/tb/ too). `joint`: the
    command trains the joint method (warm start, IRLS), so its start must be possible in this launch.
    Nothing is written before every setting has been checked. Under torchrun
    (`group` with several ranks) rank 0 does all of this and sends the
    configuration to the other ranks, which never touch the run directory.
    """
    group = group or Group()
    run, data_dir = RunDir(run_path), run_data_dir(run_path, data_dir)
    if not group.writer:
        sent = group.broadcast_json(None)
        if "error" in sent:
            leave_to_rank_0()                                # rank 0 says what is wrong
        cfg = replace(RunConfig.from_json(sent["config"], where="the configuration sent by rank 0"),
                      sync_every=sent["sync_every"])
        session = Session.open(run, cfg, data_dir=data_dir, device=resolve_device(device), reporter=reporter,
                               group=group)
        group.share_from_writer(session.ens, with_optimizer=False)   # rank 0's initial weights
        yield session
        return
    told = False                                             # have the other ranks been sent the configuration?
    created = not run.path.exists()
    logbook = None
    try:
        dev = resolve_device(device)
        check_logger(logger)
        check_folder(run.path, "--run")
        check_folder(data_dir, "--data-dir")
        run.check_contained()
        configure_run(run, given, data_dir=data_dir)         # validate before touching the disk
        run.path.mkdir(parents=True, exist_ok=True)
        with run.lock():
            run.remove_stale_temp_files()                    # left by an earlier run of this one that was killed
            cfg, prints, new = configure_run(run, given, data_dir=data_dir)
            check_world(group, len(cfg.datasets))
            if group.distributed and cfg.schedule == "batched":
                raise UserError("--schedule batched trains every network in one process; under torchrun use bcd")
            if group.distributed and joint and cfg.start_method == "groups":    # (baselines have no start)
                raise UserError(f"--start {cfg.start} learns groups by scoring every network on every dataset in one "
                                "process; under torchrun give --start random")
            if group.distributed and cfg.block == "step":
                raise UserError("--block step: torchrun processes train whole epochs between exchanges; "
                                "use --block epoch (or one process)")
            session = Session.open(run, cfg, data_dir=data_dir, device=dev, reporter=reporter, group=group)
            config = cfg.to_json(layers=session.ens.layers, data=prints, chains=session.ens.chains,
                                 window_names=session.window_names)
            if new:
                run.write_config({**config, "data_dir": data_dir_record(data_dir)})
            elif updates := stage_updates(stored := run.read_config(), cfg):   # stage settings this command set
                if "lr" in updates:
                    run.write_state(record_lr_change(run.read_state(), stored.get("lr"), cfg.lr))
                run.write_config({**stored, **updates})
            group.broadcast_json({"config": config, "sync_every": cfg.sync_every})
            told = True
            group.share_from_writer(session.ens, with_optimizer=False)
            logbook = session.snapshots.logbook = Logbook(run.path, session.window_names, logger)
            if announce:
                session.reporter.message(f"{announce}: {describe(session, data_dir, new)}")
            if cfg.lam == "auto":
                if group.distributed:
                    raise UserError("--lambda auto searches in one process; run it once without torchrun "
                                    "(or give --lambda a number)")
                session.chosen_lam = search_lambda(session, data_dir=data_dir, device=dev.type)
            yield session
            logbook.close()
    except BaseException as e:
        if logbook is not None:
            logbook.close()
            logbook = None
        if created and not run.exists():
            shutil.rmtree(run.path, ignore_errors=True)
        if group.distributed and not told:                   # the other ranks wait for a configuration
            group.broadcast_json({"error": str(e)})
        raise


def describe(session: Session, data_dir: Path, new: bool) -> str:
    """The configuration a stage resolved, in one line: run and data directories, device (GPU name),
    threads, seed, schedule (what `auto` chose), λ and the method."""
    import torch

    cfg, dev = session.cfg, session.device
    device = f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "cpu"
    schedule = session.schedule + (" (auto)" if cfg.schedule == "auto" else "")
    lam = f"auto over {cfg.lambda_grid}" if cfg.lam == "auto" else f"{cfg.lam:g}"
    sigma = cfg.sigma_schedule + (" (auto)" if cfg.sigma == "auto" else "")
    return (f"run {session.run.path} ({'new' if new else 'existing'}), data {data_dir}, device {device}, "
            f"{plural(torch.get_num_threads(), 'thread')}, seed {cfg.seed}, task {cfg.task} ({cfg.arch}), "
            f"schedule {schedule}, λ {lam}, coupling {cfg.apply}, weight {cfg.weight}, σ {sigma}, "
            f"precision {session.precision.mode}{' (auto)' if cfg.precision == 'auto' else ''}")


class TrialReporter(Reporter):
    """A λ trial shows its progress bars and messages, not its epochs and IRLS table (those are the run's)."""

    def __init__(self, shown: Reporter) -> None:
        self.shown = shown

    def start(self, title: str, total: int) -> None:
        self.shown.start(f"λ trial: {title}", total)

    def advance(self, steps: int = 1) -> None:
        self.shown.advance(steps)

    def finish(self) -> None:
        self.shown.finish()

    def message(self, text: str) -> None:
        self.shown.message(text)


def search_lambda(session: Session, *, data_dir: Path, device: str) -> float:
    """`--lambda auto`: a trial per λ of the grid, each trained on part of every training split and scored
    on the seeded rest (`evaluate_on = holdout`: the test split is never opened); the best mean score wins.

    What comes before IRLS does not depend on λ, so it is trained once: a *trunk* run (the run's own warm
    start and start — learned groups or shareall — on the trials' data) under RUN/lambda-search/trunk.
    Each trial is a copy of the trunk (`lambda-search/lambda-X`) that runs its λ's IRLS for about
    1/len(grid) of the run's iterations. Everything resumes; the grid, scores, epochs, seconds and choice
    are recorded in state.json["lambda_search"]."""
    cfg, task = session.cfg, session.task
    state = session.snapshots.read_state()
    search = state.setdefault("lambda_search", {"grid": lambda_grid(cfg.lambda_grid), "holdout": cfg.holdout,
                                                "metric": task.primary_metric, "scores": {}, "trials": {}})
    if "chosen" in search:
        return float(search["chosen"])
    grid = search["grid"]
    folder = session.run.path / "lambda-search"
    trunk_path = folder / "trunk"
    if "trunk" not in search:
        session.reporter.message(f"--lambda auto: the trials' shared warm start and start, on {1 - cfg.holdout:.0%} "
                                 "of each training split")
        t0 = time.perf_counter()
        with training_session(trunk_path, trial_settings(cfg, grid[0], len(grid)), data_dir=data_dir, device=device,
                              reporter=TrialReporter(session.reporter)) as trunk:
            run_before_irls(trunk)
            epochs = trunk.snapshots.read_state()["warmstart"]["epochs"] + trunk.cfg.start_budget
        search["trunk"] = {"run": session.run.relative(trunk_path), "epochs": epochs,
                           "seconds": time.perf_counter() - t0}
        session.snapshots.write_state(state)
    for number, lam in enumerate(grid, 1):
        key = f"{lam:g}"
        if key in search["scores"]:
            continue
        path = folder / f"lambda-{key}"
        session.reporter.message(f"--lambda auto: trial {number} of {len(grid)}, λ = {key} "
                                 f"(scored on {cfg.holdout:.0%} held out of each training split)")
        t0 = time.perf_counter()
        branch_from(trunk_path, path, lam)
        with training_session(path, trial_settings(cfg, lam, len(grid)), data_dir=data_dir, device=device,
                              reporter=TrialReporter(session.reporter)) as trial:
            run_irls(trial)
            scores = [m[task.primary_metric] for m in trial.evaluate().values()]
            epochs = trial_budget(trial) - search["trunk"]["epochs"]
        search["scores"][key] = sum(scores) / len(scores)
        search["trials"][key] = {"run": session.run.relative(path), "epochs": epochs,
                                 "seconds": time.perf_counter() - t0}
        session.snapshots.write_state(state)
    pick = max if task.higher_is_better else min
    search["chosen"] = float(pick(grid, key=lambda lam: search["scores"][f"{lam:g}"]))
    session.snapshots.write_state(state)
    session.reporter.message(f"--lambda auto chose λ = {search['chosen']:g} "
                             f"({', '.join(f'{k}: {v:.4g}' for k, v in search['scores'].items())})")
    return search["chosen"]


def run_before_irls(session: Session) -> None:
    """Everything of the joint method that λ does not touch: the warm start (with a shareall start) and,
    with learned groups, the groups' networks."""
    run_warmstart(session)
    if session.cfg.start_method == "groups":
        run_learned_groups(session, session.snapshots.read_state()["warmstart"]["checkpoint"])


def branch_from(trunk: Path, path: Path, lam: float) -> None:
    """A λ trial's run directory: a copy of the trunk's (configuration, state, checkpoints) with its own λ,
    put in place in one rename. A copy killed half-way is removed and redone (the run's lock, held by the
    command, covers RUN/lambda-search)."""
    if path.exists():
        return
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.copytree(trunk, tmp, ignore=shutil.ignore_patterns(".lock", "report", "tb", ".*.tmp"))
    config = read_json(tmp / "config.json", "config.json")
    atomic_write_json(tmp / "config.json", {**config, "lambda": lam})
    os.replace(tmp, path)


def trial_settings(cfg: RunConfig, lam: float, trials: int) -> dict[str, Any]:
    """The settings of the trunk and of one λ trial: the run's own, with that λ, scored on held-out data;
    the warm start and start as the run's (the trunk trains them once), IRLS about 1/trials of the run's
    iterations (≥ 1), so the whole search costs about one run on the trials' share of the data."""
    other_tasks = {k for task, keys in TASK_ONLY.items() if task != cfg.task for k in keys}
    given = {f.name: getattr(cfg, f.name) for f in fields(RunConfig)
             if f.name not in ("extra", "sync_every", *other_tasks)}
    given.update(datasets=",".join(cfg.datasets), lam=lam, evaluate_on="holdout", eval_every=0,   # scored once, at the end
                 max_iters=max(1, round(cfg.max_iters / trials)))
    given.pop("lambda_grid")                                  # a trial has its λ
    return given


def trial_budget(session: Session) -> int:
    from jointnet_cli.joint.baselines import joint_budget

    return joint_budget(session.cfg, session.snapshots.read_state())[0]


def warmstart(run_path: Path | str, given: dict[str, Any], **kw: Any) -> dict:
    """Train (or resume) the warm start of a run; returns its state.json entry."""
    with training_session(run_path, given, joint=True, **kw) as s:
        return run_warmstart(s)


def baseline(run_path: Path | str, given: dict[str, Any], *, method: str, fraction: float | None = None,
             epochs: int | None = None, **kw: Any) -> dict:
    """Train (or resume) one baseline (`isolated`, `shareall`, `l2`, `l2-partial`, `l2-groups`, `finetune`,
    `groupshare`)."""
    from jointnet_cli.joint.baselines import run_baseline

    with training_session(run_path, given, **kw) as s:
        return run_baseline(s, method, fraction=fraction, epochs=epochs)


def irls(run_path: Path | str, given: dict[str, Any], **kw: Any) -> dict:
    """Run the warm start if the run has none, then IRLS; returns the `irls` state entry."""
    with training_session(run_path, given, joint=True, **kw) as s:
        run_warmstart(s)
        return run_irls(s)
