"""What each method option costs per epoch, on the ae benchmark's setting (CPU by default).

    python benchmarks/option_cost.py                 # 8 synth8 domains, 200 images each, ae9 width 16, 32 px
    python benchmarks/option_cost.py --rounds 5 --device cuda

Times one round (every network one epoch) of the trainer with no coupling, with the
coupling as a gradient (`--apply grad`) and as a proximal step (`--apply prox`), for
`bcd` and `batched`; and one IRLS weighting step (distances, σ by each schedule, w by
each weight function). Prints the median seconds over --rounds and the ratio to the
uncoupled round. Run it alone: two timings side by side on 2 cores disturb each other.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-option-cost")
    args = ap.parse_args()

    import torch

    from jointnet_cli.data.loader import load_domains
    from jointnet_cli.data.synth8 import DOMAINS, prepare_synth8
    from jointnet_cli.joint import weights as jw
    from jointnet_cli.joint.batched import BatchedRounds
    from jointnet_cli.joint.bcd import train_round
    from jointnet_cli.joint.ensemble import Ensemble
    from jointnet_cli.models.registry import build
    from jointnet_cli.tasks import make_task

    data = args.out / f"data-{args.train}"
    if not (data / ".complete").exists():
        prepare_synth8(data_dir=data, size=32, train=args.train, test=8, seed=0, force=True)
        (data / ".complete").write_text("")
    names = [name for name, _ in DOMAINS]
    device = torch.device(args.device)
    domains = load_domains(data, names, device)
    task = make_task("ae", hole=22)
    torch.manual_seed(0)
    built = build("ae9", image_size=32, channels=3, width=16)
    ens = Ensemble(names, built.model, built.layers, lr=2e-3, device=device)
    n, L = ens.n, ens.num_layers
    windows = jw.chain_windows([L])
    coupled = jw.coupling(torch.full((len(windows), n, n), 0.5, dtype=torch.float64), 1.0, L, windows)
    none = torch.zeros_like(coupled)
    batched = BatchedRounds()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}; n = {n}, "
          f"{args.train} images per dataset, ae9 width 16, 32 px; median of {args.rounds} rounds", flush=True)

    def timed(fn) -> float:
        fn()                                                          # warm-up round
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    rows = []
    for schedule, trainer in (("bcd", train_round), ("batched", batched)):
        for label, c, prox in (("no coupling", none, None), ("grad", coupled, None), ("prox", coupled, 2e-3)):
            seconds = timed(lambda: trainer(ens, c, domains, task, batch_size=32, seed=0, key=("cost",),
                                            prox=prox))
            rows.append((f"{schedule}, {label}", seconds))
    base = {s: dict(rows)[f"{s}, no coupling"] for s in ("bcd", "batched")}
    print("\n| round (one epoch of every network) | seconds | vs no coupling |\n|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} | {seconds / base[label.split(',')[0]]:.3f} |")

    print("\n| weighting step | milliseconds | % of a bcd round with coupling |\n|---|---|---|")
    round_s = dict(rows)["bcd, grad"]
    distances = jw.LayerDistances()                      # its scratch kept between steps, as a session's
    for schedule in ("fixed", "refit", "anneal"):
        for kind in ("paper", "gm"):
            def weighting() -> None:
                d2 = jw.window_sq_distances(distances(ens.layer_rows()), windows)
                refit = jw.sigma_from(d2)
                sigma = jw.next_sigma(schedule, fixed=refit, refit=refit, previous=None, window_d2=d2, kind=kind)
                jw.irls_weights(d2, sigma, kind)
            seconds = timed(weighting)
            print(f"| σ {schedule}, w {kind} | {seconds * 1e3:.1f} | {100 * seconds / round_s:.2f} % |")


if __name__ == "__main__":
    main()
