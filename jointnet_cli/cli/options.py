"""Option types shared by the commands (one polarity per idea, kebab-case).

Options with fixed choices are enums built from the lists in `runs.config` (the one source of those
choices), so `--help` lists them, the shell completes them and a typo is refused at once with the
nearest spelling (`cli.app`). Boolean flags show no `<bool>` placeholder (`cli.root`).
"""

from __future__ import annotations

from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from jointnet_cli.runs.logbook import LOGGERS
from jointnet_cli.runs.config import (BASELINES, BLOCKS, CHOICES, COUPLES, DEVICES, METHOD, OPTION_OF_FIELD,
                                      SCHEDULES, TASK_ARCHS, TRAINING, RunConfig, config_options, option_types)


def choices(name: str, values: Any) -> type[Enum]:
    """A str enum whose members are `values` (what Typer turns into a listed, completed choice)."""
    return Enum(name, {str(v): str(v) for v in values}, type=str)


TaskChoice = choices("Task", TASK_ARCHS)
ArchChoice = choices("Arch", dict.fromkeys(a for archs in TASK_ARCHS.values() for a in archs))
ScheduleChoice = choices("Schedule", SCHEDULES)
BlockChoice = choices("Block", BLOCKS)
DeviceChoice = choices("Device", DEVICES)
CoupleChoice = choices("Couple", COUPLES)
SigmaChoice, WeightChoice, PenaltyChoice, ApplyChoice, StartChoice = (
    choices(k.capitalize(), CHOICES[k]) for k in ("sigma", "weight", "penalty", "apply", "start"))
BaselineChoice = choices("Baseline", BASELINES)
PrecisionChoice = choices("Precision", CHOICES["precision"])

def config_option(name: str, kind: Any = None) -> Any:
    """The Typer option of RunConfig field `name`, built from the field (the one source): its flag
    (`--lambda` for `lam`), type (`kind`, e.g. a choice enum, else the field's), help, shown default and
    help panel. Unset, it is None, so that recipes and defaults apply (defaults < recipe < flags)."""
    f = CONFIG_FIELDS_BY_NAME[name]
    flag = "--" + OPTION_OF_FIELD.get(name, name).replace("_", "-")
    shown = f.metadata["shown"]
    if shown is None:
        shown = str(f.default)
    kind = kind or option_types()[OPTION_OF_FIELD.get(name, name)]
    return Annotated[Optional[kind], typer.Option(flag, help=f.metadata["help"], show_default=shown,
                                                  rich_help_panel=f.metadata["panel"])]


CONFIG_FIELDS_BY_NAME = {f.name: f for f in fields(RunConfig)}

Task = config_option("task", TaskChoice)
Datasets = config_option("datasets")
Run = Annotated[Optional[Path], typer.Option(
    "--run", help="Run directory. Default: runs/<task>-<datasets>.", rich_help_panel=TRAINING)]
Arch = config_option("arch", ArchChoice)
Size = config_option("image_size")
Seed = config_option("seed")
Lambda = config_option("lam", str)                      # a number or "auto" (cli.options.parse_lambda)
Lr = config_option("lr")
BatchSize = config_option("batch_size")
Epochs = config_option("epochs")
EpochsPerIter = config_option("epochs_per_iter")
MaxIters = config_option("max_iters")
Tol = config_option("tol")
Block = config_option("block", BlockChoice)
Schedule = config_option("schedule", ScheduleChoice)
SyncEvery = config_option("sync_every")
Width = config_option("width")
Pretrained = config_option("pretrained")
InitWeights = config_option("init_weights")
Latent = config_option("latent")
Couple = config_option("couple", CoupleChoice)
Hole = config_option("hole")
EvalEvery = config_option("eval_every")
Precision = config_option("precision", PrecisionChoice)

Paper = Annotated[bool, typer.Option(
    "--paper", help="Exactly the paper's method: --sigma fixed --weight paper --penalty raw --apply grad "
    "--start random --lambda 10 (other flags given still override).", rich_help_panel=METHOD)]
Sigma = config_option("sigma", SigmaChoice)
Anneal = config_option("anneal")
Weight = config_option("weight", WeightChoice)
Penalty = config_option("penalty", PenaltyChoice)
Apply = config_option("apply", ApplyChoice)
Start = config_option("start", StartChoice)
StartEpochs = config_option("start_epochs")
GroupRatio = config_option("group_ratio")
LambdaGrid = config_option("lambda_grid")
Holdout = config_option("holdout")
PretrainEpochs = config_option("pretrain_epochs")
Groups = config_option("groups")

_G = "General"
DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Where prepared datasets live. An existing run remembers the one it was created with.",
    show_default="data, or the run's", rich_help_panel=_G)]
Device = Annotated[Optional[DeviceChoice], typer.Option("--device", help="Where to train: auto (cuda when there is one), cpu or cuda.", show_default="auto", rich_help_panel=_G)]
Threads = Annotated[Optional[int], typer.Option(
    "--threads", help="CPU threads torch may use (lower it when other work shares the cores).",
    show_default="the cores this process may use", rich_help_panel=_G)]
Recipe = Annotated[Optional[Path], typer.Option("--recipe", help="TOML recipe; flags override it.", rich_help_panel=_G)]
LoggerChoice = choices("Logger", LOGGERS)
Logger = Annotated[Optional[LoggerChoice], typer.Option(
    "--logger", help="Per-epoch scalars: csv (RUN/metrics.csv, always written) or tensorboard (also event files "
    "under RUN/tb/<method>/; needs pip install -e '.[tensorboard]').", show_default="csv", rich_help_panel=_G)]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.", rich_help_panel=_G)]

# CLI option name → RunConfig field, derived from RunConfig (runs.config.config_options)
CONFIG_FIELDS = config_options()


def command_flags(params: dict, *, drop: tuple[str, ...] = ()) -> dict:
    """A training command's parameters (its `locals()`) as option-named flags: `lambda_` → `lambda`;
    `recipe`, `json_` and the names in `drop` (the command's own, non-configuration options) left out."""
    out = {k: (v.value if isinstance(v, Enum) else v) for k, v in params.items()
           if k not in ("recipe", "json_", *drop)}
    if "lambda_" in out:
        out["lambda"] = out.pop("lambda_")
    return out


def merge(recipe: dict, flags: dict) -> dict:
    """defaults < recipe < flags: flags that were given (not None) win over the recipe.

    `--paper` (or `paper = true` in a recipe) puts the paper's method over the recipe; flags given
    beside it still win."""
    from jointnet_cli.runs.config import PAPER

    given = {k: v for k, v in flags.items() if v is not None and k != "paper"}
    paper = flags.get("paper") or recipe.get("paper")
    method = {("lambda" if k == "lam" else k): v for k, v in PAPER.items()} if paper else {}
    merged = {**{k: v for k, v in recipe.items() if k != "paper"}, **method, **given}
    if "lambda" in merged:
        merged["lambda"] = parse_lambda(merged["lambda"])
    return merged


def parse_lambda(value: object) -> float | str:
    """--lambda: a number > 0, or "auto"."""
    from jointnet_cli.errors import UserError

    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        try:
            return float(value)
        except ValueError:
            raise UserError(f"--lambda must be a number > 0 or auto (got {value!r})") from None
    return value


def config_settings(settings: dict) -> dict:
    """The subset of merged settings that are run-configuration fields, renamed."""
    return {CONFIG_FIELDS[k]: v for k, v in settings.items() if k in CONFIG_FIELDS and v is not None}


def plain(value: Any) -> Any:
    """An enum option's value as its string (None stays None)."""
    return value.value if isinstance(value, Enum) else value


def set_threads(threads: int | None) -> int:
    """`--threads`: torch's intra-op threads (default: the cores this process may use); returns the count."""
    from jointnet_cli.errors import UserError

    if threads is not None and threads < 1:
        raise UserError(f"--threads must be a whole number ≥ 1 (got {threads})")
    import torch

    from jointnet_cli.data.ingest import available_cores

    count = threads or available_cores()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def deprecated_alias(command: str, new: str, new_value: Any, old: str, old_value: Any) -> Any:
    """The value of option `new`, also given by its old spelling `old` (which still works and warns once);
    giving both with different values is refused."""
    if old_value is None:
        return new_value
    from jointnet_cli.cli.output import console
    from jointnet_cli.errors import UserError

    console().print(f"jointnet: warning: `{command} {old}` is deprecated; use {new} (same meaning)")
    if new_value is not None and new_value != old_value:
        raise UserError(f"give {new} once ({old} is its deprecated spelling)")
    return old_value
