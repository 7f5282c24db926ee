"""`jointnet irls`: IRLS reweighting until the weights stop moving (warm start first if needed)."""

from __future__ import annotations

from jointnet_cli.cli import options as o
from jointnet_cli.cli.options import command_flags, merge
from jointnet_cli.cli.output import stdout
from jointnet_cli.cli.recipe import load_recipe
from jointnet_cli.cli.root import Command, app
from jointnet_cli.cli.training import emit, run_training_command


@app.command(cls=Command, epilog="Examples: jointnet irls --task ae --datasets @synth8    |    jointnet irls --run runs/ae8 --max-iters 8")
def irls(
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
    """Robust joint learning: weighting (eq. 7) then optimization (eq. 8) until δ ≤ tol or max-iters.

    Without --run, the run directory is runs/<task>-<datasets>. Runs the warm start first when the run has none. Rerun the same command after an interruption to resume from the last completed epoch.

    Default method (chosen on the synth8 validation copy, README "Choosing the defaults"): for ae and classify, IRLS starts from learned groups (--start auto: the warm start's networks are scored on every dataset, datasets whose networks transfer within --group-ratio 1.5 share one network trained --start-epochs on their union); the coupling acts as a proximal step (--apply prox) with the exact IRLS weight (--weight gm), raw penalty and λ = 1 for every task; σ stays fixed, except for gan from its seeded start, where it is annealed from the warm start's problem (--sigma auto); --paper runs exactly the paper's method.
    """
    flags = command_flags(locals())                      # first, while locals() holds only the options
    from jointnet_cli.joint.stages import irls as stage

    settings = merge(load_recipe(recipe, "irls"), flags)
    result = run_training_command("irls", settings, json_, stage)

    def human() -> None:
        its = result["iterations"]
        if result.get("converged"):
            stop = result.get("stopped", {})
            line = f"converged: δ = {stop.get('delta', 0):.4g} ≤ tol at iteration {stop.get('k')} after {len(its)} optimized iterations"
        else:
            line = f"not converged: stopped after max-iters = {len(its)} iterations (last δ = {its[-1]['delta']:.4g})" if its \
                else "not converged"
            if its and its[-1].get("annealing"):
                line += "; σ was still annealing (above its refit floor), and IRLS does not stop before it lands"
        stdout().print(f"{line}\nfinal networks: {result['run']}/{result['final_checkpoint']}")

    emit(result, json_, human)
