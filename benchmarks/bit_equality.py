"""Do two checkouts of jointnet train the same numbers, bit for bit? (A refactor must not change them.)

    python benchmarks/bit_equality.py --source /path/to/old --out old.json     # fingerprint a checkout
    python benchmarks/bit_equality.py --out new.json                           # this one
    python benchmarks/bit_equality.py --compare old.json new.json              # exit 1 on any difference

A fingerprint is a tiny run of every task and schedule (ae and classify with bcd and batched, gan with
bcd; warm start and 2 IRLS iterations), a finetune baseline and `evaluate`, all from the command line
of that checkout (`python -m jointnet_cli` with PYTHONPATH set to it) on the CPU with 2 threads: the
sha256 of every tensor of every checkpoint, and state.json and report/results.json without their
seconds. Same data for both (synth8, 16 training images per domain, made by this checkout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["--width", "4", "--epochs", "1", "--epochs-per-iter", "1", "--max-iters", "2", "--batch-size", "8",
        "--device", "cpu", "--tol", "1e-9"]
RUNS = [("ae", "bcd"), ("ae", "batched"), ("classify", "bcd"), ("classify", "batched"), ("gan", "bcd")]


def without_seconds(obj):
    if isinstance(obj, dict):
        return {k: without_seconds(v) for k, v in obj.items() if k not in ("seconds",)}
    if isinstance(obj, list):
        return [without_seconds(v) for v in obj]
    return obj


def tensor_digests(run: Path) -> dict[str, str]:
    from safetensors.numpy import load_file

    out = {}
    for path in sorted((run / "checkpoints").glob("*.safetensors")):
        for name, array in sorted(load_file(str(path)).items()):
            out[f"{path.name}:{name}"] = hashlib.sha256(array.tobytes()).hexdigest()[:16]
    return out


def fingerprint(source: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source), "OMP_NUM_THREADS": "2", "COLUMNS": "200"}

    def jointnet(*args: object) -> None:
        cmd = [sys.executable, "-m", "jointnet_cli", *map(str, args)]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"failed ({p.returncode}): {' '.join(cmd[2:])}\n{p.stderr[-2000:]}")

    from jointnet_cli.data.synth8 import prepare_synth8

    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare_synth8(data_dir=data, size=32, train=16, test=8, seed=0)
        for task, schedule in RUNS:
            run = Path(tmp) / f"{task}-{schedule}"
            jointnet("irls", "--task", task, "--datasets", "shapes-1,stripes-1,blobs-1", "--run", run,
                     "--data-dir", data, "--schedule", schedule, *TINY)
            if (task, schedule) == ("ae", "bcd"):
                jointnet("baseline", "finetune", "--run", run, "--data-dir", data, "--device", "cpu")
            jointnet("evaluate", "--run", run, "--data-dir", data, "--device", "cpu")
            result[f"{task}-{schedule}"] = {
                "tensors": tensor_digests(run),
                "state": without_seconds(json.loads((run / "state.json").read_text())),
                "results": without_seconds(json.loads((run / "report/results.json").read_text()
                                                      .replace(str(tmp), "TMP"))),
            }
    return result


def compare(a: dict, b: dict) -> list[str]:
    diffs = []
    for run in sorted(set(a) | set(b)):
        if run not in a or run not in b:
            diffs.append(f"{run}: only in one fingerprint")
            continue
        for part in ("tensors", "state", "results"):
            if a[run][part] != b[run][part]:
                if part == "tensors":
                    keys = [k for k in set(a[run][part]) | set(b[run][part])
                            if a[run][part].get(k) != b[run][part].get(k)]
                    diffs.append(f"{run}: {len(keys)} tensors differ, e.g. {sorted(keys)[:3]}")
                else:
                    diffs.append(f"{run}: {part} differs")
    return diffs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--source", type=Path, default=REPO, help="the checkout to fingerprint")
    ap.add_argument("--out", type=Path, help="write the fingerprint here")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = ap.parse_args()
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        diffs = compare(a, b)
        n = sum(len(r["tensors"]) for r in a.values())
        print("\n".join(diffs) if diffs else f"identical: {len(a)} runs, {n} tensors, state and results")
        sys.exit(1 if diffs else 0)
    fp = fingerprint(args.source.resolve())
    text = json.dumps(fp, indent=1, sort_keys=True)
    if args.out:
        args.out.write_text(text)
    print(f"{args.source}: {len(fp)} runs, {sum(len(r['tensors']) for r in fp.values())} tensors, "
          f"digest {hashlib.sha256(text.encode()).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
