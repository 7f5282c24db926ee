"""Helpers for tests that run `jointnet` in a subprocess and kill it: tiny flags, the process, its state."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
