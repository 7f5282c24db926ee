"""What does joint learning cost? Three measured ratios for ae9, printed in one run.

    python benchmarks/speed.py                          # CPU, 32 px, 200 and 500 images (≈ 11 min on 2 cores)
    python benchmarks/speed.py --train 200 --ns 8,16    # one regime, fewer n
    python benchmarks/speed.py --device cuda --size 64  # on a GPU

(a) joint epoch / isolated epoch for n = 2, 4, 8, 16 datasets (target ≤ 1.05):
    one `bcd` round (every network one epoch) with the l2 coupling (all window
    weights 1, λ = 1) applied as the default does (`--apply prox`: a proximal
    step before every optimizer step; `--apply grad` for the paper's) against
    the same round with C = 0. The two rounds run interleaved step by step: each
    of network i's joint steps next to one of its isolated steps (which goes first
    swaps every step), so a slow spell of the machine slows both alike; the joint
    round's seconds also hold the round's stacked copy, each anchor and each refresh.
    The ratio is the median over rounds of joint over isolated seconds; the seconds
    are medians.
    "own work": the seconds the coupling's own work took inside those joint rounds
    (anchors of eq. 9 with their copies, proximal steps or, with --apply grad, the
    coupling gradients; CPU only, "n/a" on a GPU) over an isolated
    round: the ratio's floor, where the ratio itself moves by a few % between calls.
    Last, a round's anchors timed alone, as `bcd.Anchors` takes them and by the sum
    network by network.
(b) one IRLS weighting step (layer distances, σ, w) against one joint epoch at
    the largest n (target ≤ 1 %): one step after each round, on that round's
    parameters; the share is the median over rounds of step over joint round.
(c) the framework's isolated training against a bare PyTorch loop written here
    (same model, data, batch size, holes and Adam), images per second (target ≥ 0.98):
    one framework epoch and one bare epoch interleaved step by step, as in (a); the
    ratio is the median over 3 × --rounds epochs of bare over framework seconds.
(d) with --precisions: seconds of a joint round at n = 2 for each --precision, against 32.

Each of --train's sizes (images per dataset) is one regime, printed in turn.
n > 8 uses more synth8 domains drawn with other data seeds (d09 = domain 1 of
seed 1, …).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from jointnet_cli.data.format import Split, write_dataset
from jointnet_cli.data.loader import as_float
from jointnet_cli.data.synth8 import generate_domain
from jointnet_cli.joint import weights as jw
from jointnet_cli.joint import bcd
from jointnet_cli.joint.bcd import Anchors, RoundSteps, anchors, train_round
from jointnet_cli.joint.stages import training_session
from jointnet_cli.tasks.ae import hole_masks


def make_datasets(data: Path, n: int, size: int, train: int) -> list[str]:
    """n prepared datasets d01..dn: synth8 domain (k mod 8) generated with data seed k div 8."""
    names = []
    for k in range(n):
        name = f"d{k + 1:02d}"
        if not (data / name).exists():
            tr = generate_domain(k % 8, train, size, k // 8, stream=0)
            te = generate_domain(k % 8, 10, size, k // 8, stream=1)
            write_dataset(data, name, Split(*tr), Split(*te), {"source": "benchmark", "classes": ["a", "b", "c", "d"],
                                                               "split_seed": k // 8, "skipped": []})
        names.append(name)
    return names


def timed(fn) -> float:
    return timed_value(fn)[1]


def timed_value(fn):
    """(what fn returns, its seconds), a GPU's queued work included."""
    t0 = time.perf_counter()
    value = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return value, time.perf_counter() - t0


def first_then_second(pair: list[str], r: int) -> list[str]:
    """The two measurements of pair r, in turn order: swapped every other pair, so neither always runs
    on the heels of the other (on the development machine the second of a pair could run a few % apart)."""
    return pair if r % 2 == 0 else pair[::-1]


def interleaved(seconds: dict[str, float], pairs: Iterable[dict[str, Callable[[], object]]], r: int) -> None:
    """Time each pair's two calls one after the other (which goes first swaps every pair, and between
    rounds r), adding each call's seconds to `seconds` under its name: steps of two loops side by side,
    so a slow spell of the machine slows both alike."""
    for k, calls in enumerate(pairs):
        for name in first_then_second(list(calls), r + k):
            seconds[name] += timed(calls[name])


@contextlib.contextmanager
def coupling_clock(on: bool) -> Iterator[dict[str, float]]:
    """Seconds spent in the coupling's own work while the block runs, by piece: "anchors" (`bcd.Anchors`: its
    copy at a round's start, every anchor, every refresh) and "pull" (`bcd.apply_prox`, or with `--apply grad`
    `bcd.add_coupling_grad`), by wrapping them for the block's duration. A call made inside another clocked
    call (the constructor's refresh) is not counted again. CPU only: on a GPU each piece would need a
    synchronisation."""
    spent = {"anchors": 0.0, "pull": 0.0}
    wrapped = [(bcd.Anchors, "__init__", "anchors"), (bcd.Anchors, "__call__", "anchors"),
               (bcd.Anchors, "refresh", "anchors"), (bcd, "apply_prox", "pull"),
               (bcd, "add_coupling_grad", "pull")] if on else []
    originals = [getattr(owner, name) for owner, name, _ in wrapped]
    depth = [0]

    def clocked(fn, piece):
        def call(*a, **k):
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[piece] += time.perf_counter() - t0
        return call

    for (owner, name, piece), fn in zip(wrapped, originals):
        setattr(owner, name, clocked(fn, piece))
    try:
        yield spent
    finally:
        for (owner, name, _), fn in zip(wrapped, originals):
            setattr(owner, name, fn)


def paired_round(s, c: torch.Tensor, prox: float | None, r: int, batch_size: int,
                 clocked: bool) -> tuple[float, float, dict[str, float]]:
    """(a): one joint round (coupling `c`) and one isolated round of the session's networks, interleaved
    step by step: network i's joint steps (against its anchor) alternate with its isolated steps (which goes
    first swaps every step), each kind with its own batches and holes, so a slow spell of the machine slows
    both alike. The joint round's seconds also hold what `bcd.train_round` adds around the steps: the round's
    stacked copy, each network's anchor and the refresh after its block. Returns (joint seconds, isolated
    seconds, the coupling's own seconds inside the joint round)."""
    n = s.ens.n
    joint = RoundSteps(s.ens, s.domains, s.task, list(range(n)), seed=0, key=("speed", "joint", r), prox=prox)
    isolated = RoundSteps(s.ens, s.domains, s.task, list(range(n)), seed=0, key=("speed", "isolated", r))
    seconds = {"joint": 0.0, "isolated": 0.0}
    with coupling_clock(clocked) as spent:
        anchor_of, took = timed_value(lambda: Anchors(s.ens, c))           # the round's stacked copy
        seconds["joint"] += took
        for i in range(n):
            anchor, took = timed_value(lambda: anchor_of(i))                # one anchor alive, as in train_round
            seconds["joint"] += took
            interleaved(seconds, ({"joint": partial(joint.step, i, jdx, anchor),
                                   "isolated": partial(isolated.step, i, idx, {})}
                                  for jdx, idx in zip(joint.batches(i, batch_size), isolated.batches(i, batch_size))), r)
            seconds["joint"] += timed(lambda: anchor_of.refresh(i))
    return seconds["joint"], seconds["isolated"], dict(spent)


def coupling_cost(tmp: Path, n: int, train: int, args) -> dict:
    """(a) and (b) for n datasets: median seconds of a joint and an isolated round, the coupling's own work
    inside the joint rounds, the anchors timed alone, and one weighting step."""
    names = make_datasets(tmp / f"data-{train}", n, args.size, train)
    given = {"task": "ae", "datasets": ",".join(names), "width": args.width, "batch_size": args.batch_size,
             "image_size": args.size, "apply": args.apply}
    with training_session(tmp / f"run-{train}-{n}", given, data_dir=tmp / f"data-{train}", device=args.device) as s:
        prox = s.cfg.lr if s.cfg.apply == "prox" else None
        c = s.coupling(s.all_ones())
        times: dict[str, list[float]] = {"joint": [], "isolated": []}
        pieces: dict[str, list[float]] = {"anchors": [], "pull": []}
        clocked = args.device == "cpu"                         # a GPU's rounds leave "own work" empty: n/a

        def weighting_step():
            dw = jw.window_sq_distances(s.layer_sq_distances())
            return jw.irls_weights(dw, jw.sigma_from(dw))

        weighting: list[float] = []
        for r in range(args.rounds + 1):                       # round 0 warms up
            joint, isolated, spent = paired_round(s, c, prox, r, args.batch_size, clocked)
            step = timed(weighting_step)                       # on the round's parameters, as IRLS's next step
            if r:
                times["joint"].append(joint)
                times["isolated"].append(isolated)
                weighting.append(step)
                if clocked:
                    for piece, seconds in spent.items():
                        pieces[piece].append(seconds)

        def round_anchors():                                   # what a round does: every anchor, every refresh
            source = Anchors(s.ens, c)
            for i in range(n):
                source(i)
                source.refresh(i)

        anchor_s = [timed(round_anchors) for _ in range(args.rounds + 1)][1:]
        sum_s = [timed(lambda: [anchors(s.ens, c, i) for i in range(n)]) for _ in range(args.rounds + 1)][1:]
    joint, iso = statistics.median(times["joint"]), statistics.median(times["isolated"])
    paired = statistics.median(j / i for j, i in zip(times["joint"], times["isolated"]))
    own = {piece: statistics.median(v) if v else float("nan") for piece, v in pieces.items()}
    share = statistics.median(w / j for w, j in zip(weighting, times["joint"]))
    return {"n": n, "joint": joint, "isolated": iso, "ratio": paired, "weighting": statistics.median(weighting),
            "weighting_share": share,
            "anchors": statistics.median(anchor_s), "anchor_sum": statistics.median(sum_s),
            "own_anchors": own["anchors"], "own_pull": own["pull"]}


def precision_round(tmp: Path, train: int, precision: str, args) -> float:
    """(d): median seconds of a joint bcd round of 2 networks under `precision`."""
    from jointnet_cli.joint.precision import Precision

    names = make_datasets(tmp / f"data-{train}", 2, args.size, train)
    given = {"task": "ae", "datasets": ",".join(names), "width": args.width, "batch_size": args.batch_size,
             "image_size": args.size, "precision": precision}
    with training_session(tmp / f"run-{train}-p{precision}", given, data_dir=tmp / f"data-{train}",
                          device=args.device) as s:
        c, prec = s.coupling(s.all_ones()), Precision(precision, s.device)
        times = [timed(lambda: train_round(s.ens, c, s.domains, s.task, batch_size=args.batch_size, seed=0,
                                           key=("precision", r), prox=s.cfg.lr, precision=prec))
                 for r in range(args.rounds + 1)][1:]
    return statistics.median(times)


class BareLoop:
    """A plain PyTorch training loop for the same objective (ae: holes, MSE, Adam), a step at a time."""

    def __init__(self, model: torch.nn.Module, images: torch.Tensor, batch_size: int, lr: float, hole: int,
                 seed: int):
        self.model, self.images, self.batch_size, self.hole = model, images, batch_size, hole
        self.opt = torch.optim.Adam(model.parameters(), lr=lr)
        self.gen = torch.Generator().manual_seed(seed)

    def epoch(self) -> list[torch.Tensor]:
        """One epoch's shuffled batches of indices."""
        order = torch.randperm(self.images.shape[0], generator=self.gen)
        return list(order.split(self.batch_size))

    def step(self, idx: torch.Tensor) -> None:
        x = as_float(self.images[idx])
        mask = hole_masks(x.shape[0], x.shape[-1], self.hole, self.gen, x.device)
        self.opt.zero_grad()
        loss = torch.nn.functional.mse_loss(self.model(x * mask), x)
        loss.backward()
        self.opt.step()


def paired_epoch(s, zero: torch.Tensor, bare: BareLoop, r: int, batch_size: int) -> tuple[float, float]:
    """(c): one framework epoch of network 0 (what `bcd.train_round` does for it, uncoupled) and one epoch of
    the bare loop, interleaved step by step (which goes first swaps every step), so a slow spell of the
    machine slows both alike. The framework's seconds hold its round's set-up (generators, the uncoupled
    anchor, the batch order), its steps, the refresh after the block and the round's mean loss; the bare
    loop's its batch order and its steps. Returns (framework seconds, bare seconds)."""
    seconds = {"framework": 0.0, "bare": 0.0}

    def framework_setup():
        steps = RoundSteps(s.ens, s.domains, s.task, [0], seed=0, key=("bare", r))
        anchor_of = Anchors(s.ens, zero)
        return steps, anchor_of, anchor_of(0), list(steps.batches(0, batch_size))

    (steps, anchor_of, anchor, fw_batches), seconds["framework"] = timed_value(framework_setup)
    bare_batches, seconds["bare"] = timed_value(bare.epoch)
    interleaved(seconds, ({"framework": partial(steps.step, 0, fidx, anchor), "bare": partial(bare.step, bidx)}
                          for fidx, bidx in zip(fw_batches, bare_batches)), r)
    seconds["framework"] += timed(lambda: (anchor_of.refresh(0), steps.mean_loss(0)))
    return seconds["framework"], seconds["bare"]


def framework_vs_bare(tmp: Path, train: int, args) -> tuple[float, float, float]:
    """(c): images per second of the framework (one isolated network) and of the bare loop (median
    seconds), and the median over epochs of bare over framework seconds."""
    names = make_datasets(tmp / f"data-{train}", 1, args.size, train)
    given = {"task": "ae", "datasets": names[0], "width": args.width, "batch_size": args.batch_size,
             "image_size": args.size}
    with training_session(tmp / f"run-bare-{train}", given, data_dir=tmp / f"data-{train}", device=args.device) as s:
        zero = torch.zeros(s.ens.num_layers, 1, 1, dtype=torch.float64)
        images = s.domains[0].train.images
        bare = BareLoop(copy.deepcopy(s.ens.nets[0]), images, args.batch_size, s.cfg.lr, s.cfg.hole, seed=0)
        fw, plain = [], []
        for r in range(3 * args.rounds + 1):                   # epoch 0 warms up; 3× as many epochs as (a)'s
            # rounds: an epoch is 7 (200 images) or 16 steps, and one slow step moves its ratio by ~2 %
            t_fw, t_bare = paired_epoch(s, zero, bare, r, args.batch_size)
            if r:
                fw.append(t_fw)
                plain.append(t_bare)
    n_img = images.shape[0]
    ratio = statistics.median(b / f for f, b in zip(fw, plain))
    return n_img / statistics.median(fw), n_img / statistics.median(plain), ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--train", default="200,500", help="training images per dataset: one regime per value")
    ap.add_argument("--apply", choices=("prox", "grad"), default="prox", help="how the coupling acts (default: the default)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds per measurement (after one warm-up)")
    ap.add_argument("--ns", default="2,4,8,16")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precisions", default="", help="(d): comma list, e.g. 32,bf16-mixed,16-mixed")
    args = ap.parse_args()
    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {dev}; ae9 width {args.width}, {args.size} px, batch {args.batch_size}, "
          f"coupling --apply {args.apply}, median of {args.rounds} rounds", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for train in [int(v) for v in args.train.split(",")]:
            regime(Path(tmp), train, args)


def regime(tmp: Path, train: int, args) -> None:
    print(f"\n== {train} training images per dataset ==")
    rows = []
    print("(a) joint / isolated epoch (one bcd round: every network one epoch)")
    print(f"{'n':>3}  {'isolated s':>10}  {'joint s':>8}  {'paired ratio':>12}  {'':>13}  {'own work':>8}  "
          f"a round's anchors alone, ms (by the sum)")
    for n in [int(v) for v in args.ns.split(",")]:
        row = coupling_cost(tmp, n, train, args)
        rows.append(row)
        ratio = row["ratio"]
        own = (row["own_anchors"] + row["own_pull"]) / row["isolated"]
        own_cell = f"{'n/a':>8}" if math.isnan(own) else f"{100 * own:>7.1f}%"      # NaN: not timed (GPU)
        print(f"{n:>3}  {row['isolated']:>10.2f}  {row['joint']:>8.2f}  {ratio:>12.3f}  "
              f"{'PASS' if ratio <= 1.05 else 'FAIL'} (≤ 1.05)  {own_cell}  {1000 * row['anchors']:>8.1f} "
              f"({1000 * row['anchor_sum']:.1f})", flush=True)
    big = rows[-1]
    if not math.isnan(big["own_anchors"]):
        pull = "proximal steps" if args.apply == "prox" else "coupling gradients"
        print(f"    own work: the coupling's own seconds inside the joint rounds (median), over an isolated round; "
              f"at n = {big['n']}: anchors and their copies {1000 * big['own_anchors']:.0f} ms, {pull} "
              f"{1000 * big['own_pull']:.0f} ms, against {1000 * (big['joint'] - big['isolated']):.0f} ms "
              f"between the median seconds", flush=True)
    share = big["weighting_share"]
    print(f"(b) IRLS weighting step at n = {big['n']}: {1000 * big['weighting']:.1f} ms = {100 * share:.2f} % "
          f"of a joint epoch ({big['joint']:.2f} s)  {'PASS' if share <= 0.01 else 'FAIL'} (≤ 1 %)", flush=True)
    fw, bare, ratio = framework_vs_bare(tmp, train, args)
    print(f"(c) framework {fw:.0f} img/s, bare PyTorch loop {bare:.0f} img/s: paired ratio {ratio:.3f}  "
          f"{'PASS' if ratio >= 0.98 else 'FAIL'} (≥ 0.98)", flush=True)
    if args.precisions:
        seconds = {p: precision_round(tmp, train, p, args) for p in args.precisions.split(",")}
        base = seconds.get("32")
        print("(d) joint round at n = 2 by --precision: " + ", ".join(
            f"{p} {t:.2f} s" + (f" ({t / base:.2f}× of 32)" if base else "") for p, t in seconds.items()), flush=True)


if __name__ == "__main__":
    main()
