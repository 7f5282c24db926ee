"""What the training subcommands share: settings from recipe and flags, the run path, output."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from jointnet_cli.cli.options import config_settings
from jointnet_cli.cli.output import RichReporter, console, print_json
from jointnet_cli.errors import UserError
from jointnet_cli.joint.reporter import Reporter
from jointnet_cli.runs.rundir import default_run_path


def resolve_run_path(settings: dict[str, Any], command: str = "") -> Path:
    if settings.get("run"):
        return Path(settings["run"])
    if settings.get("task") and settings.get("datasets"):
        return default_run_path(settings["task"], settings["datasets"])
    if command in ("evaluate", "complete", "sample"):
        raise UserError("give --run DIR: the run directory to read")
    raise UserError("give --run DIR, or --task and --datasets for a new run")


def run_training_command(command: str, settings: dict[str, Any], as_json: bool, stage: Callable[..., dict]) -> dict:
    """Run `stage` on the run the merged settings name, with a live display; return its result.

    The stage announces the resolved configuration (device, threads, seed, schedule, λ, data and run
    directories) once its settings have been checked. Under torchrun every process runs this; rank 0
    alone draws progress and prints results.
    """
    from jointnet_cli.cli.options import set_threads
    from jointnet_cli.joint.distributed import close, from_environment

    run_path = resolve_run_path(settings)
    data_dir = settings.get("data_dir")              # None: the run's own (config.json), or data/ for a new run
    set_threads(settings.get("threads"))
    group, device = from_environment(settings.get("device") or "auto")
    con = console(quiet=as_json or not group.writer)
    given = config_settings(settings)
    finished = False
    try:
        with RichReporter(con) as shown:              # its notes show only once the settings have been checked
            reporter = shown if group.writer else Reporter()     # other ranks stay silent
            result = stage(run_path, given, data_dir=data_dir, device=device, reporter=reporter, group=group,
                           announce=f"jointnet {command}", logger=settings.get("logger") or "csv")
        finished = True
    finally:
        close(group, finished=finished)
    return {"run": str(run_path), **result}


def emit(result: dict, as_json: bool, human: Callable[[], None]) -> None:
    from jointnet_cli.joint.distributed import env_rank

    if env_rank() != 0:                                  # under torchrun only rank 0 prints results
        return
    if as_json:
        print_json(result)
    else:
        human()
