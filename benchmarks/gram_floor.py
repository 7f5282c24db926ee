"""How fast can the weighting step's distances be on this machine? The Gram product it rests on, alone.

    python benchmarks/gram_floor.py [--n 16 --params 2000000 --threads 2]

`weights.layer_sq_distances` takes every pairwise distance from one Gram matrix of the stacked parameters,
in float64 (close pairs keep their digits). This times the pieces on random parameters of the size of 16
ae9 networks of width 32 (2.0 M each): one float32 pass over them, the float64 copy, the float64 product,
and the float32 product for comparison; and the one pass that replaces stacking, subtracting and
copying (`weights.relative_rows`: each network's tensor minus the first, written widened into the float64
matrix), with its product taken whole or as batched column slices that run on separate cores
(`weights.block_gram`). Last, that pass and the Gram product taken a block of columns at a time while the
block is in cache (`weights.relative_gram`), three ways, alternated, median of 15: each block's product
whole, as column slices, or as bands of rows against the rows from the band's first on (the upper block
triangle, what the weighting step uses). The others: median of 5 after one warm-up. Last, all the layer
distances of n ae9 networks with the weighting step's scratch matrices kept between calls or fresh.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="networks")
    ap.add_argument("--params", type=int, default=2_000_000, help="parameters per network")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    x = torch.randn(args.n, args.params, generator=torch.Generator().manual_seed(0))
    xd = x.double()

    def ms(f) -> float:
        f()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3

    print(f"torch {torch.__version__}, {args.threads} threads, {args.n} × {args.params:,} parameters")
    print(f"one float32 pass (sum):        {ms(lambda: x.sum()):7.1f} ms")
    print(f"float64 copy:                  {ms(lambda: x.double()):7.1f} ms")
    print(f"float64 Gram (of that copy):   {ms(lambda: xd @ xd.T):7.1f} ms")
    print(f"float32 Gram:                  {ms(lambda: x @ x.T):7.1f} ms")
    from jointnet_cli.joint.weights import GRAM_BLOCK, relative_gram, relative_rows

    rows = [r.clone() for r in x.unbind(0)]                  # separate tensors, as the networks hold them
    print(f"stack, subtract, float64 copy: {ms(lambda: (torch.stack(rows) - rows[0]).double()):7.1f} ms")
    print(f"relative_rows (one pass):      {ms(lambda: relative_rows(rows)):7.1f} ms")
    a = relative_rows(rows)
    print(f"  + its float64 Gram:          {ms(lambda: a @ a.T):7.1f} ms")
    from jointnet_cli.joint.weights import GRAM_BAND, GRAM_SPLIT, block_gram

    print(f"  same, {GRAM_SPLIT} slices in one bmm: {ms(lambda: block_gram(a)):7.1f} ms")
    print(f"relative_gram (blocks of {GRAM_BLOCK}), rows and Gram together, alternated, median of 15:")
    ways = {"one product per block": (args.n, 1), f"{GRAM_SPLIT} batched slices per block": (args.n, GRAM_SPLIT),
            f"bands of {GRAM_BAND} rows, {GRAM_SPLIT} slices (used)": (GRAM_BAND, GRAM_SPLIT)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    buf = torch.empty(args.n, GRAM_BLOCK, dtype=torch.float64)
    for r in range(16):
        for name in list(ways)[::1 if r % 2 == 0 else -1]:          # which goes first swaps every round
            band, split = ways[name]
            t0 = time.perf_counter()
            relative_gram(rows, split=split, band=band, buf=buf)
            seconds[name].append(time.perf_counter() - t0)
    for name, s in seconds.items():
        print(f"  {name + ':':36s} {statistics.median(s[1:]) * 1e3:7.1f} ms")
    whole_step(args.n)


def whole_step(n: int) -> None:
    """Every layer's distances of n ae9 networks (width 32, 32 px: 34 tensors, 29 of them ≤ 65,536
    coordinates), the way a session takes them (`LayerDistances`, its scratch kept between calls) and
    with fresh scratch on each call (`layer_sq_distances`), alternated, median of 21 after one warm-up."""
    import torch

    from jointnet_cli.joint.ensemble import Ensemble
    from jointnet_cli.joint.weights import LayerDistances, layer_sq_distances
    from jointnet_cli.models.ae9 import AE9, layers

    template = AE9(32, 3, 32)
    ens = Ensemble([f"d{i}" for i in range(n)], template, layers(template), lr=1e-3, device="cpu")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in (p for net in ens.params for layer in net for p in layer):
            p.add_(1e-3 * torch.randn(p.shape, generator=g))
    rows, kept = ens.layer_rows(), LayerDistances()
    ways = {"scratch kept (a session)": lambda: kept(rows), "fresh scratch each call": lambda: layer_sq_distances(rows)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for r in range(22):
        for name in list(ways)[::1 if r % 2 == 0 else -1]:
            t0 = time.perf_counter()
            ways[name]()
            seconds[name].append(time.perf_counter() - t0)
    print(f"all layers' distances of {n} ae9 networks (1.97 M parameters each), alternated, median of 21:")
    for name, s in seconds.items():
        print(f"  {name + ':':36s} {statistics.median(s[1:]) * 1e3:7.1f} ms")
    kept_s, fresh_s = seconds.values()
    print(f"  kept / fresh, paired median:        {statistics.median(a / b for a, b in zip(kept_s[1:], fresh_s[1:])):7.3f}")


if __name__ == "__main__":
    main()
