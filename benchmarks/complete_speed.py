"""How fast is `jointnet complete`? Start-up of one call and throughput of a batch, as separate processes.

    python benchmarks/complete_speed.py [--n 200 --repeats 5 --width 16]

Makes its own tiny trained run in a temporary folder (synth8 at 32 px, a
1-epoch isolated baseline on shapes-1), then times, as a user would see it:

  1. one `jointnet complete` call on a 256×256 PNG against `python -c "import torch"`,
     alternated `--repeats` times (medians); target: at most 1.5 s more than importing torch;
  2. one call completing `--n` 256×256 PNGs from a folder (median of up to 3); target: ≥ 50 images/s
     on 2 cores, counting the whole call (start-up included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from jointnet_cli.data.synth8 import DOMAINS, generate_domain

STARTUP_TARGET = 1.5     # seconds more than `import torch`, at most
THROUGHPUT_TARGET = 50.0  # images/s in one call, at least


def jointnet() -> list[str]:
    exe = shutil.which("jointnet")
    return [exe] if exe else [sys.executable, "-m", "jointnet_cli"]


def run(cmd: list, **kw) -> float:
    """Wall seconds of one command (which must succeed)."""
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(map(str, cmd))}\n{done.stderr}")
    return seconds


def write_pngs(folder: Path, n: int, side: int = 256) -> list[Path]:
    """n synth8 images (shapes-1 and blobs-1, alternating) at side×side px; not timed."""
    folder.mkdir(parents=True)
    names = [d for d, _ in DOMAINS]
    per = (n + 1) // 2
    images = [generate_domain(names.index(d), per, side, seed=0, stream=9)[0] for d in ("shapes-1", "blobs-1")]
    paths = []
    for i in range(n):
        path = folder / f"img-{i:04d}.png"
        Image.fromarray(images[i % 2][i // 2].transpose(1, 2, 0)).save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="images in the batch call")
    parser.add_argument("--repeats", type=int, default=5, help="alternated start-up measurements (medians)")
    parser.add_argument("--width", type=int, default=16, help="network width of the tiny run (quickstart: 16)")
    parser.add_argument("--device", default="cpu", help="device of the complete calls")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores: {cores}, images: {args.n} × 256×256 PNG, network ae9 width {args.width} at 32 px, "
          f"device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data, run_dir = tmp / "data", tmp / "run"
        run([*jointnet(), "prepare", "--builtin", "synth8", "--size", "32", "--train", "32", "--test", "8",
             "--data-dir", data])
        run([*jointnet(), "baseline", "isolated", "--task", "ae", "--datasets", "shapes-1", "--run", run_dir,
             "--data-dir", data, "--width", args.width, "--batch-size", "16", "--budget", "1", "--device", "cpu"])
        inputs = write_pngs(tmp / "in", args.n)
        common = ["complete", "--run", run_dir, "--dataset", "shapes-1", "--method", "isolated", "--device", args.device]

        torch_s, one_s = [], []
        run([sys.executable, "-c", "import torch"])                                     # warm the file cache
        for k in range(args.repeats):
            torch_s.append(run([sys.executable, "-c", "import torch"]))
            one_s.append(run([*jointnet(), *common, inputs[0], "--out", tmp / f"one-{k}.png"]))
        t, o = statistics.median(torch_s), statistics.median(one_s)
        print(f"python -c 'import torch':          median {t:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in torch_s)})")
        print(f"jointnet complete, one 256² PNG:   median {o:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in one_s)})")
        print(f"  → {o - t:+.2f} s over importing torch (target ≤ +{STARTUP_TARGET:.1f} s): "
              f"{'ok' if o - t <= STARTUP_TARGET else 'MISSED'}")

        batch_runs = []
        for k in range(min(args.repeats, 3)):
            out = tmp / f"out-{k}"
            batch_runs.append(run([*jointnet(), *common, tmp / "in", "--out", out]))
            written = len(list(out.glob("*.png")))
            if written != args.n:
                sys.exit(f"expected {args.n} outputs, found {written}")
        batch_s = statistics.median(batch_runs)
        rate = args.n / batch_s
        marginal = args.n / max(batch_s - o, 1e-9)
        print(f"jointnet complete, {args.n} PNGs in one call: median {batch_s:.2f} s "
              f"(runs: {', '.join(f'{x:.2f}' for x in batch_runs)}) → {rate:.1f} images/s, start-up included "
              f"(target ≥ {THROUGHPUT_TARGET:.0f}: {'ok' if rate >= THROUGHPUT_TARGET else 'MISSED'}); "
              f"{marginal:.0f} images/s after start-up")


if __name__ == "__main__":
    main()
