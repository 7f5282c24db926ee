"""`jointnet baseline METHOD`: the paper's baselines through the same trainer and budget."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from jointnet_cli.cli import options as o
from jointnet_cli.cli.options import command_flags, deprecated_alias, merge, plain
from jointnet_cli.cli.recipe import load_recipe
from jointnet_cli.cli.output import stdout
from jointnet_cli.cli.root import Command, app
from jointnet_cli.wording import plural
from jointnet_cli.cli.training import emit, run_training_command


# the baselines each method-specific option applies to
OWNERS = {"--fraction": ("l2-partial",), "--groups": ("groupshare", "l2-groups"),
          "--pretrain-epochs": ("finetune", "groupshare")}


@app.command(cls=Command, epilog="Examples: jointnet baseline isolated --run runs/ae8    |    "
                    "jointnet baseline l2-partial --fraction 0.5 --run runs/ae8 --budget 20")
def baseline(
    method: Annotated[o.BaselineChoice, typer.Argument(help="Which baseline.", show_default=False, metavar="METHOD")],
    fraction: Annotated[Optional[float], typer.Option(
        "--fraction", help="l2-partial only: share the first ⌈p·L⌉ layers.", show_default="0.25")] = None,
    budget: Annotated[Optional[int], typer.Option(
        "--budget", help="Epochs per dataset for this baseline (default: the joint method's budget).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", hidden=True, help="Deprecated: --budget.")] = None,
    task: o.Task = None, datasets: o.Datasets = None, run: o.Run = None, arch: o.Arch = None,
    size: o.Size = None, seed: o.Seed = None, lambda_: o.Lambda = None, lr: o.Lr = None,
    batch_size: o.BatchSize = None, block: o.Block = None, schedule: o.Schedule = None, sync_every: o.SyncEvery = None,
    hole: o.Hole = None, width: o.Width = None, pretrained: o.Pretrained = None, init_weights: o.InitWeights = None,
    latent: o.Latent = None, couple: o.Couple = None,
    paper: o.Paper = False, sigma: o.Sigma = None, anneal: o.Anneal = None, weight: o.Weight = None,
    penalty: o.Penalty = None, apply: o.Apply = None, start: o.Start = None, start_epochs: o.StartEpochs = None, group_ratio: o.GroupRatio = None,
    lambda_grid: o.LambdaGrid = None, holdout: o.Holdout = None, eval_every: o.EvalEvery = None, precision: o.Precision = None,
    pretrain_epochs: o.PretrainEpochs = None, groups: o.Groups = None,
    data_dir: o.DataDir = None, device: o.Device = None, threads: o.Threads = None, logger: o.Logger = None, recipe: o.Recipe = None,
    json_: o.Json = False,
) -> None:
    """Train a baseline: isolated (C = 0), shareall (one network on the union), l2 (all weights 1), l2-partial (L2 on the first layers), l2-groups (L2 inside each known group: the oracle of the weights), finetune (shareall, then each copy alone) or groupshare (shareall inside each known group, then each copy alone: the oracle).

    Every baseline gets as many epochs per dataset as the joint method (its start, warm start and all IRLS iterations) unless --budget is given; pretraining counts: finetune and groupshare spend --pretrain-epochs (default half) of it on the union. A baseline may be the first stage of a new run. Rerun the same command to resume.
    """
    flags = command_flags(locals(), drop=("method", "fraction", "budget", "epochs"))   # first: locals() = the options
    from jointnet_cli.errors import UserError
    from jointnet_cli.joint.baselines import baseline_key
    from jointnet_cli.joint.stages import baseline as stage

    method = plain(method)
    budget = deprecated_alias("baseline", "--budget", budget, "--epochs", epochs)
    # [baseline] budget (or its old name epochs) in a recipe: this baseline's budget, not the warm start's
    recipe_values = load_recipe(recipe, "baseline", own=("budget", "epochs", "fraction"))
    if budget is None:
        budget = recipe_values.pop("baseline.budget", recipe_values.pop("baseline.epochs", None))
    fraction = fraction if fraction is not None else recipe_values.pop("baseline.fraction", None)
    recipe_values = {k: v for k, v in recipe_values.items() if not k.startswith("baseline.")}
    given = {"--fraction": fraction, "--groups": groups, "--pretrain-epochs": pretrain_epochs}
    if unused := [f for f, v in given.items() if v is not None and method not in OWNERS[f]]:
        raise UserError(f"{unused[0]} applies to baseline {' and '.join(OWNERS[unused[0]])} only, not {method}")
    if method == "l2-partial" and fraction is None:
        fraction = 0.25
    baseline_key(method, fraction)                       # a bad fraction fails here
    if budget is not None and budget < 1:
        raise UserError(f"--budget must be a whole number ≥ 1 (got {budget})")
    result = run_training_command(
        "baseline", merge(recipe_values, flags), json_,
        lambda *a, **kw: stage(*a, method=method, fraction=fraction if method == "l2-partial" else None,
                               epochs=budget, **kw))

    def human() -> None:
        from jointnet_cli.cli.output import primary

        metric, mean = primary(result["metrics"])
        stdout().print(f"baseline {method}: {plural(result['epochs'], 'epoch')} per dataset ({result['budget']}); "
                       f"mean test {metric} {mean:.5f}\ncheckpoint: {result['run']}/{result['checkpoint']}")

    emit(result, json_, human)
