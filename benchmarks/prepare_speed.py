"""How fast is `jointnet prepare`? Folder ingestion (images/s) and the synth8 collection (seconds).

    python benchmarks/prepare_speed.py --n 1000 --size 64

Targets on 2 CPU cores: ingestion >= 500 images/s of 256x256 JPEGs at 64 px;
synth8 at 64 px with 500 train / 100 test per domain in <= 10 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from jointnet_cli.data.ingest import prepare_folder
from jointnet_cli.data.synth8 import prepare_synth8

INGEST_TARGET = 500.0  # images/s, at least
SYNTH_TARGET = 10.0  # seconds, at most


def write_jpegs(folder: Path, n: int, classes: int = 4, side: int = 256) -> None:
    """n random-ish 256x256 JPEGs (smooth colour field plus noise) in `classes` sub-folders."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side] / side
    for i in range(n):
        cls = folder / f"class-{i % classes}"
        cls.mkdir(parents=True, exist_ok=True)
        phase = rng.uniform(0, 2 * np.pi, 3)
        field = 0.5 + 0.4 * np.sin(2 * np.pi * (xx[..., None] * rng.uniform(0.5, 3, 3) + yy[..., None]) + phase)
        pixels = np.clip(field * 255 + rng.normal(0, 12, (side, side, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(cls / f"img-{i:05d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="number of JPEGs to ingest")
    parser.add_argument("--size", type=int, default=64, help="prepared image size")
    parser.add_argument("--workers", type=int, default=None, help="decode processes (default: all cores)")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores: {cores}, n: {args.n}, size: {args.size}, workers: {args.workers or cores}")
    with tempfile.TemporaryDirectory() as tmp:
        src, data = Path(tmp) / "src", Path(tmp) / "data"
        write_jpegs(src, args.n)  # not timed

        start = time.perf_counter()
        prepare_folder("bench", src, data_dir=data, size=args.size, train=None, test=0.1, workers=args.workers)
        ingest_s = time.perf_counter() - start
        rate = args.n / ingest_s

        start = time.perf_counter()
        prepare_synth8(data_dir=data, size=64, train=500, test=100)
        synth_s = time.perf_counter() - start

    ok_ingest, ok_synth = rate >= INGEST_TARGET, synth_s <= SYNTH_TARGET
    print(f"prepare_folder: {rate:8.0f} images/s ({ingest_s:.2f} s)   target >= {INGEST_TARGET:.0f}   "
          f"{'PASS' if ok_ingest else 'FAIL'}")
    print(f"prepare_synth8: {synth_s:8.2f} s (64 px, 8 x 600)     target <= {SYNTH_TARGET:.0f} s  "
          f"{'PASS' if ok_synth else 'FAIL'}")


if __name__ == "__main__":
    main()
