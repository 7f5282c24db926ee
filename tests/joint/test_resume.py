"""Kill a run with SIGKILL at several moments, rerun it, and get exactly the uninterrupted numbers."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from jointnet_cli.store.tensors import load_tensors

FLAGS = ["--task", "ae", "--datasets", "shapes-1,stripes-1,blobs-1", "--epochs", "3", "--epochs-per-iter", "2",
         "--max-iters", "2", "--tol", "1e-9", "--batch-size", "4", "--width", "4", "--device", "cpu"]


def jointnet(*args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "jointnet_cli", *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def state_of(run: Path) -> dict:
    try:
        return json.loads((run / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def kill_when(proc: subprocess.Popen, run: Path, ready) -> bool:
    """SIGKILL `proc` as soon as `ready(state)` holds; False if it finished first."""
    while proc.poll() is None:
        if ready(state_of(run)):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    return False


def numbers(run: Path) -> dict:
    s = state_of(run)
    its = s["irls"]["iterations"]
    return {
        "sigma": s["warmstart"]["sigma"],
        "warm_metrics": s["warmstart"]["metrics"],
        "weights": [it["weights"] for it in its],
        "delta": [it["delta"] for it in its],
        "metrics": [it["metrics"] for it in its],
        "objective": [it["objective"] for it in its],
    }


def test_sigkill_anywhere_then_rerun_equals_uninterrupted(synth_dir, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    p = jointnet("irls", "--run", clean, "--data-dir", synth_dir, *FLAGS)
    assert p.wait() == 0, p.stderr.read().decode()

    moments = [
        lambda s: s.get("warmstart", {}).get("epochs_done", 0) >= 1,          # during the warm start
        lambda s: "current" in s.get("irls", {}),                              # after a weighting step
        lambda s: s.get("irls", {}).get("current", {}).get("epochs_done", 0) >= 1 or
                  len(s.get("irls", {}).get("iterations", [])) >= 1,          # inside / after an IRLS iteration
    ]
    kills = 0
    for ready in moments:
        kills += kill_when(jointnet("irls", "--run", killed, "--data-dir", synth_dir, *FLAGS), killed, ready)
        for f in killed.rglob("*.json"):
            json.loads(f.read_text())                    # never half-written
    assert kills >= 2
    p = jointnet("irls", "--run", killed, "--data-dir", synth_dir, *FLAGS)
    assert p.wait() == 0, p.stderr.read().decode()

    assert numbers(killed) == numbers(clean)
    files = lambda run: sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert files(killed) == files(clean)                 # no temporary or stale snapshot files left behind
    a, _ = load_tensors(clean / "checkpoints/irls-002.safetensors")
    b, _ = load_tensors(killed / "checkpoints/irls-002.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
