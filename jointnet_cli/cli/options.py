"""Option types shared by the commands (one polarity per idea, kebab-case).

Options with fixed choices are enums built from the lists in `runs.config` (the one source of those
choices), so `--help` lists them, the shell completes them and a typo is refused at once with the
nearest spelling (`cli.app`). Boolean flags show no `<bool>` placeholder (`cli.root`).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from jointnet_cli.runs.config import (BASELINES, BLOCKS, CHOICES, COUPLES, DEVICES, SCHEDULES, TASK_ARCHS,
                                      config_options)


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

_T = "Training"
Task = Annotated[Optional[TaskChoice], typer.Option("--task", help="Task: ae (image completion), classify or gan.", rich_help_panel=_T)]
Datasets = Annotated[Optional[str], typer.Option(
    "--datasets", help="Comma list of prepared datasets, or @synth8 for a builtin collection.", rich_help_panel=_T)]
Run = Annotated[Optional[Path], typer.Option(
    "--run", help="Run directory. Default: runs/<task>-<datasets>.", rich_help_panel=_T)]
Arch = Annotated[Optional[ArchChoice], typer.Option("--arch", help="Architecture (ae: ae9; classify: convnet, resnet18, inception_v3; gan: dcgan, began).", show_default="the task's first", rich_help_panel=_T)]
Size = Annotated[Optional[int], typer.Option("--size", help="Image size; must match the data.", rich_help_panel=_T)]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Seed of initial weights, batch order and holes.", show_default="0", rich_help_panel=_T)]
Lambda = Annotated[Optional[str], typer.Option(
    "--lambda", help="λ, consistency strength: a number, or auto (chosen on a held-out part of each training split).",
    show_default="1 (--paper: 10)", rich_help_panel=_T)]
Lr = Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate.", show_default="0.001", rich_help_panel=_T)]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Mini-batch size.", show_default="32", rich_help_panel=_T)]
Epochs = Annotated[Optional[int], typer.Option("--epochs", help="Warm-start epochs per dataset.", show_default="10", rich_help_panel=_T)]
EpochsPerIter = Annotated[Optional[int], typer.Option("--epochs-per-iter", help="Epochs per IRLS iteration.", show_default="3", rich_help_panel=_T)]
MaxIters = Annotated[Optional[int], typer.Option("--max-iters", help="IRLS iterations at most.", show_default="8", rich_help_panel=_T)]
Tol = Annotated[Optional[float], typer.Option("--tol", help="Stop IRLS when δ ≤ tol.", show_default="0.01", rich_help_panel=_T)]
Block = Annotated[Optional[BlockChoice], typer.Option(
    "--block", help="BCD block: epoch (one epoch per network in turn, the paper) or step (round-robin mini-batches).", show_default="epoch",
    rich_help_panel=_T)]
Schedule = Annotated[Optional[ScheduleChoice], typer.Option(
    "--schedule", help="bcd (networks in turn against the others' anchors), batched (all networks step together, "
    "vmapped, CUDA graphs on a GPU; same objective) or auto: batched on a GPU for ae9 and convnet (5-7x faster "
    "for ae9 there), bcd otherwise (faster on CPUs; GANs; large backbones). May change between stages of a run.", show_default="auto", rich_help_panel=_T)]
SyncEvery = Annotated[Optional[int], typer.Option(
    "--sync-every", help="Refresh every network's anchors (and, under torchrun, exchange parameters between "
    "processes) every K steps; 0 = once per epoch. Set, one process computes exactly what torchrun runs compute. "
    "Default: plain bcd in one process, 0 under torchrun.", show_default=False, rich_help_panel=_T)]
Width = Annotated[Optional[int], typer.Option("--width", help="Channels of the first layer (network width).", show_default="32", rich_help_panel=_T)]
Pretrained = Annotated[Optional[bool], typer.Option("--pretrained", help="classify: start from torchvision's ImageNet weights (needs the internet).", show_default=False, rich_help_panel=_T)]
InitWeights = Annotated[Optional[str], typer.Option("--init-weights", help="classify: start the backbone from a local .safetensors file.", rich_help_panel=_T)]
Latent = Annotated[Optional[int], typer.Option("--latent", help="gan: size of the latent z.", show_default="64", rich_help_panel=_T)]
Couple = Annotated[Optional[CoupleChoice], typer.Option("--couple", help="gan: coupled players g | d | both.", show_default="dcgan both, began d", rich_help_panel=_T)]
Hole = Annotated[Optional[int], typer.Option("--hole", help="ae: side of the square hole the network learns to fill.", show_default="22", rich_help_panel=_T)]

_M = "Method (README \"The method\"; defaults chosen on validation data)"
Paper = Annotated[bool, typer.Option(
    "--paper", help="Exactly the paper's method: --sigma fixed --weight paper --penalty raw --apply grad "
    "--start random --lambda 10 (other flags given still override).", rich_help_panel=_M)]
Sigma = Annotated[Optional[SigmaChoice], typer.Option(
    "--sigma", help="σ schedule: fixed (from the warm start, paper), refit (recomputed before each weighting) or "
    "anneal (from every w ≈ 1 down to the refit value).", show_default="fixed", rich_help_panel=_M)]
Anneal = Annotated[Optional[float], typer.Option("--anneal", help="anneal: σ divided by this per iteration.",
                                                 show_default="1.4", rich_help_panel=_M)]
Weight = Annotated[Optional[WeightChoice], typer.Option(
    "--weight", help="IRLS weight: paper (eq. 7, σ²/(σ²+d²)) or gm (σ⁴/(σ²+d²)², the exact majorizer of ρ).",
    show_default="gm", rich_help_panel=_M)]
Penalty = Annotated[Optional[PenaltyChoice], typer.Option(
    "--penalty", help="raw (λ Σ w d², paper) or normalized (λ Σ w d²/σ², λ in data-loss units per pair).",
    show_default="raw", rich_help_panel=_M)]
Apply = Annotated[Optional[ApplyChoice], typer.Option(
    "--apply", help="How the coupling acts: grad (a gradient the optimizer sees, paper) or prox (a proximal step "
    "before each data step, decoupled from Adam as AdamW decouples weight decay).", show_default="prox",
    rich_help_panel=_M)]
Start = Annotated[Optional[StartChoice], typer.Option(
    "--start", help="random (every network from one seeded start) or shareall (from one network trained "
    "--start-epochs on the union; counted in the budget).", show_default="random", rich_help_panel=_M)]
StartEpochs = Annotated[Optional[int], typer.Option("--start-epochs", help="start shareall: its epochs.",
                                                    show_default="0", rich_help_panel=_M)]
LambdaGrid = Annotated[Optional[str], typer.Option("--lambda-grid", help="--lambda auto: the λ values tried.",
                                                   show_default="0.1,1,10", rich_help_panel=_M)]
Holdout = Annotated[Optional[float], typer.Option(
    "--holdout", help="--lambda auto: fraction of each training split held out to score λ (the test split is never read).",
    show_default="0.2", rich_help_panel=_M)]

PretrainEpochs = Annotated[Optional[int], typer.Option(
    "--pretrain-epochs", help="finetune, groupshare: epochs of the shared pretraining, counted in the budget.",
    show_default="half the budget", rich_help_panel=_M)]
Groups = Annotated[Optional[str], typer.Option(
    "--groups", help="groupshare: one group label per dataset, in order (a,a,b,…). Default: the manifests' groups.",
    rich_help_panel=_M)]

EvalEvery = Annotated[Optional[int], typer.Option(
    "--eval-every", help="Score the test split every K epochs while training (0: only at the end of each "
    "stage; GAN scores are slow).", show_default="1", rich_help_panel=_T)]

_G = "General"
DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Where prepared datasets live. An existing run remembers the one it was created with.",
    show_default="data, or the run's", rich_help_panel=_G)]
Device = Annotated[Optional[DeviceChoice], typer.Option("--device", help="Where to train: auto (cuda when there is one), cpu or cuda.", show_default="auto", rich_help_panel=_G)]
Threads = Annotated[Optional[int], typer.Option(
    "--threads", help="CPU threads torch may use (lower it when other work shares the cores).",
    show_default="the cores this process may use", rich_help_panel=_G)]
Recipe = Annotated[Optional[Path], typer.Option("--recipe", help="TOML recipe; flags override it.", rich_help_panel=_G)]
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
