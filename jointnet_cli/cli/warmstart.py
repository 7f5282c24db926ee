"""`jointnet warmstart`: train the L2 (all weights 1) problem and set σ per window."""

from __future__ import annotations

from jointnet_cli.cli import options as o
from jointnet_cli.cli.options import command_flags, merge
from jointnet_cli.cli.output import stdout
from jointnet_cli.cli.recipe import load_recipe
from jointnet_cli.cli.root import Command, app
from jointnet_cli.cli.training import emit, run_training_command
from jointnet_cli.wording import plural


@app.command(cls=Command, epilog="Example: jointnet warmstart --task ae --datasets @synth8 --run runs/ae8 --epochs 10")
def warmstart(
    task: o.Task = None, datasets: o.Datasets = None, run: o.Run = None, arch: o.Arch = None,
    size: o.Size = None, seed: o.Seed = None, lambda_: o.Lambda = None, lr: o.Lr = None,
    batch_size: o.BatchSize = None, epochs: o.Epochs = None, epochs_per_iter: o.EpochsPerIter = None,
    max_iters: o.MaxIters = None, tol: o.Tol = None, block: o.Block = None, schedule: o.Schedule = None, sync_every: o.SyncEvery = None,
    hole: o.Hole = None, width: o.Width = None, pretrained: o.Pretrained = None, init_weights: o.InitWeights = None,
    latent: o.Latent = None, couple: o.Couple = None,
    paper: o.Paper = False, sigma: o.Sigma = None, anneal: o.Anneal = None, weight: o.Weight = None,
    penalty: o.Penalty = None, apply: o.Apply = None, start: o.Start = None, start_epochs: o.StartEpochs = None, group_ratio: o.GroupRatio = None,
    lambda_grid: o.LambdaGrid = None, holdout: o.Holdout = None, eval_every: o.EvalEvery = None, precision: o.Precision = None,
    data_dir: o.DataDir = None, device: o.Device = None, threads: o.Threads = None, logger: o.Logger = None, recipe: o.Recipe = None,
    json_: o.Json = False,
) -> None:
    """Warm start: train every network with the plain L2 coupling, then compute σ (paper eq. 5).

    Creates the run directory (config.json) when it is new; resumes from the last completed epoch when rerun.
    """
    flags = command_flags(locals())                      # first, while locals() holds only the options
    from jointnet_cli.joint.stages import warmstart as stage

    settings = merge(load_recipe(recipe, "warmstart"), flags)
    result = run_training_command("warmstart", settings, json_, stage)
    emit(result, json_, lambda: stdout().print(
        f"warm start done: {plural(result['epochs_done'], 'epoch')}, σ per window = "
        + ", ".join(f"{s:.4g}" for s in result["sigma"]) + f"\ncheckpoint: {result['run']}/{result['checkpoint']}"))
