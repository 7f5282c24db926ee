"""Faults: SIGKILL at random moments, Ctrl-C, a full disk — nothing is lost, the numbers are unchanged."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from jointnet_cli.store.tensors import load_tensors

BASE = ["--task", "ae", "--datasets", "shapes-1,stripes-1,blobs-1", "--width", "4", "--batch-size", "4",
        "--device", "cpu"]
TINY = [*BASE, "--epochs", "3", "--epochs-per-iter", "2", "--max-iters", "2", "--tol", "1e-9"]
STAGES = {
    "warmstart": ["warmstart", *TINY],
    "irls": ["irls", *TINY],
    "baseline": ["baseline", "l2-partial", "--fraction", "0.5", "--budget", "4", *BASE],
}


def start(args, run, data) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "jointnet_cli", *args, "--run", str(run), "--data-dir", str(data)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def files(run: Path) -> dict[str, bytes]:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()}


def assert_nothing_half_written(run: Path) -> None:
    """Every file a reader would open parses; only hidden *.tmp files of an interrupted write may remain."""
    for name in files(run):
        path = run / name
        if name.endswith(".tmp") or name.endswith(".lock"):
            continue
        if name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".safetensors"):
            load_tensors(path)


def numbers(run: Path, stage: str) -> dict:
    s = json.loads((run / "state.json").read_text())
    strip = lambda hist: [{k: v for k, v in h.items() if k != "seconds"} for h in hist]
    if stage == "baseline":
        b = s["baselines"]["l2-partial-50"]
        return {"metrics": b["metrics"], "history": strip(b["history"])}
    out = {"sigma": s["warmstart"]["sigma"], "history": strip(s["warmstart"]["history"])}
    if stage == "irls":
        out["iterations"] = [{k: it[k] for k in ("k", "delta", "weights", "metrics", "objective")}
                             for it in s["irls"]["iterations"]]
    return out


def final_checkpoint(run: Path, stage: str) -> Path:
    return run / "checkpoints" / {"warmstart": "warmstart", "irls": "irls-002", "baseline": "l2-partial-50"}[stage]


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_ten_random_sigkills_then_the_same_result(stage, synth_dir, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    t0 = time.perf_counter()
    p = start(STAGES[stage], clean, synth_dir)
    assert p.wait() == 0, p.stderr.read()
    duration = time.perf_counter() - t0
    rng = random.Random(f"kills-{stage}")
    kills = 0
    for _ in range(10):
        p = start(STAGES[stage], killed, synth_dir)
        time.sleep(rng.uniform(0.3, duration))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        if killed.exists():
            assert_nothing_half_written(killed)
    assert kills >= 5                                      # most attempts interrupted a live process
    p = start(STAGES[stage], killed, synth_dir)
    assert p.wait() == 0, p.stderr.read()
    assert numbers(killed, stage) == numbers(clean, stage)
    a, _ = load_tensors(final_checkpoint(clean, stage).with_suffix(".safetensors"))
    b, _ = load_tensors(final_checkpoint(killed, stage).with_suffix(".safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(files(killed)) == sorted(files(clean))    # no temporary or stale files left


@pytest.mark.slow
def test_ctrl_c_stops_at_once_and_says_how_to_resume(synth_dir, tmp_path):
    run = tmp_path / "run"
    p = start(STAGES["irls"], run, synth_dir)
    while p.poll() is None and not (run / "state.json").exists():
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    t0 = time.perf_counter()
    code = p.wait(timeout=30)
    err = p.stderr.read()
    assert code == 130 and time.perf_counter() - t0 < 10
    assert "interrupted" in err and "rerun the same command to resume" in err and "Traceback" not in err
    assert_nothing_half_written(run)
    p = start(STAGES["irls"], run, synth_dir)
    assert p.wait() == 0


def test_a_full_disk_fails_clearly_and_keeps_the_previous_checkpoint(cli, synth_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    common = ["--run", run, "--data-dir", synth_dir, *TINY]
    assert cli("warmstart", *common).code == 0
    before = files(run)

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)             # every write fails when it is flushed to disk
    r = cli("irls", *common)
    monkeypatch.undo()
    assert r.code == 1 and "could not write" in r.err and "No space left on device" in r.err
    last = r.err.strip().splitlines()[-1]
    assert last.startswith("jointnet: error: could not write") and "Traceback" not in r.err
    assert files(run) == before                             # the warm start and its state are untouched
    assert cli("irls", *common).code == 0                   # and the run goes on once there is room
