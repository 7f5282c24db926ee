"""How noisy is a GAN's score by itself? SWD of one trained generator over several draws of samples.

    python benchmarks/swd_noise.py RUN [--methods joint,l2 --datasets shapes-1,blobs-1 --draws 8]

A gan run is scored by the sliced Wasserstein distance between as many generated samples as the test
split has images and those images (`GanTask.evaluate`). For each method's final networks in RUN, this
draws `--draws` fresh sets of samples (and patch positions and directions) per dataset and prints the SWD
of each draw, their mean and standard deviation: the spread a method's score has before any training
seed varies. A difference between two methods smaller than this spread (divided by √(datasets · seeds)
for a benchmark average) is the estimator's noise, not the methods'. RUN is only read; the data come from
the run's own data folder unless --data-dir is given.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("run", type=Path)
    ap.add_argument("--methods", default="", help="comma list (default: every method the run has finished)")
    ap.add_argument("--datasets", default="", help="comma list (default: all of the run's)")
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from jointnet_cli.apply.trained import find_checkpoint, load_model
    from jointnet_cli.data.loader import as_float, load_domains
    from jointnet_cli.report.evaluate import trained_methods
    from jointnet_cli.runs.rundir import run_data_dir
    from jointnet_cli.tasks.gan import GanTask
    from jointnet_cli.tasks.swd import swd

    state = json.loads((args.run / "state.json").read_text())
    config = json.loads((args.run / "config.json").read_text())
    methods = [m for m in args.methods.split(",") if m] or sorted(trained_methods(state))
    names = [d for d in args.datasets.split(",") if d] or config["datasets"]
    data_dir = run_data_dir(args.run, args.data_dir)
    domains = {d.name: d for d in load_domains(data_dir, names, "cpu")}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; run {args.run}; {args.draws} draws of "
          f"{len(domains[names[0]].test)} samples per dataset")
    for method in methods:
        means = []
        for name in names:
            ck = find_checkpoint(args.run, name, method, task="gan")
            net, _ = load_model(ck, "cpu")
            task = GanTask(ck.cfg.arch, nz=ck.cfg.latent)
            test = domains[name].test
            scores = []
            for k in range(args.draws):
                fake = task.sample(net, len(test), torch.Generator().manual_seed(1000 + k))
                scores.append(swd(as_float(fake), as_float(test.images), seed=k)["swd"])
            means.append(statistics.fmean(scores))
            print(f"  {method:<14} {name:<12} mean {means[-1]:7.2f}  sd {statistics.stdev(scores):5.2f}  "
                  + " ".join(f"{s:.1f}" for s in scores), flush=True)
        print(f"{method}: average over datasets {statistics.fmean(means):.2f}")


if __name__ == "__main__":
    main()
