"""Library entry points of the training stages (what the CLI calls, and a notebook can too).

    from jointnet_cli.joint.stages import irls
    irls("runs/ae8", {"task": "ae", "datasets": "@synth8"}, data_dir="data")
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from jointnet_cli.errors import UserError
from jointnet_cli.joint.distributed import Group, check_world
from jointnet_cli.joint.irls import run_irls
from jointnet_cli.joint.reporter import Reporter
from jointnet_cli.joint.session import Session, resolve_device
from jointnet_cli.joint.warmstart import run_warmstart
from jointnet_cli.runs.config import RunConfig
from jointnet_cli.runs.configure import configure_run
from jointnet_cli.runs.rundir import RunDir


@contextmanager
def training_session(run_path: Path | str, given: dict[str, Any], *, data_dir: Path | str = "data",
                     device: str = "auto", reporter: Reporter | None = None,
                     group: Group | None = None) -> Iterator[Session]:
    """Validate settings, lock the run directory, create its config.json if new, and open a Session.

    `given` holds RunConfig fields (datasets as a spec: "a,b,c" or "@synth8").
    Nothing is written before every setting has been checked. Under torchrun
    (`group` with several ranks) rank 0 does all of this and sends the
    configuration to the other ranks, which never touch the run directory.
    """
    group = group or Group()
    run, data_dir = RunDir(run_path), Path(data_dir)
    if not group.writer:
        sent = group.broadcast_json(None)
        if "error" in sent:
            raise SystemExit(sent["exit"])                   # rank 0 has said what is wrong
        cfg = replace(RunConfig.from_json(sent["config"], where="the configuration sent by rank 0"),
                      sync_every=sent["sync_every"])
        session = Session.open(run, cfg, data_dir=data_dir, device=resolve_device(device), reporter=reporter,
                               group=group)
        group.share_from_writer(session.ens, with_optimizer=False)   # rank 0's initial weights
        yield session
        return
    told = False                                             # have the other ranks been sent the configuration?
    created = not run.path.exists()
    try:
        dev = resolve_device(device)
        configure_run(run, given, data_dir=data_dir)         # validate before touching the disk
        run.path.mkdir(parents=True, exist_ok=True)
        with run.lock():
            cfg, prints, new = configure_run(run, given, data_dir=data_dir)
            check_world(group, len(cfg.datasets))
            if group.distributed and cfg.schedule == "batched":
                raise UserError("--schedule batched trains every network in one process; under torchrun use bcd")
            session = Session.open(run, cfg, data_dir=data_dir, device=dev, reporter=reporter, group=group)
            config = cfg.to_json(layers=session.ens.layers, data=prints, chains=session.ens.chains,
                                 window_names=session.window_names)
            if new:
                run.write_config(config)
            group.broadcast_json({"config": config, "sync_every": cfg.sync_every})
            told = True
            group.share_from_writer(session.ens, with_optimizer=False)
            yield session
    except BaseException as e:
        if created and not run.exists():
            shutil.rmtree(run.path, ignore_errors=True)
        if group.distributed and not told:                   # the other ranks wait for a configuration
            group.broadcast_json({"error": str(e), "exit": 2 if isinstance(e, UserError) else 1})
        raise


def warmstart(run_path: Path | str, given: dict[str, Any], **kw: Any) -> dict:
    """Train (or resume) the warm start of a run; returns its state.json entry."""
    with training_session(run_path, given, **kw) as s:
        return run_warmstart(s)


def baseline(run_path: Path | str, given: dict[str, Any], *, method: str, fraction: float | None = None,
             epochs: int | None = None, **kw: Any) -> dict:
    """Train (or resume) one baseline (`isolated`, `shareall`, `l2`, `l2-partial`, `finetune`)."""
    from jointnet_cli.joint.baselines import run_baseline

    with training_session(run_path, given, **kw) as s:
        return run_baseline(s, method, fraction=fraction, epochs=epochs)


def irls(run_path: Path | str, given: dict[str, Any], **kw: Any) -> dict:
    """Run the warm start if the run has none, then IRLS; returns the `irls` state entry."""
    with training_session(run_path, given, **kw) as s:
        run_warmstart(s)
        return run_irls(s)
