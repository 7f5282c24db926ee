"""Runs split across processes with torchrun (gloo on CPU) compute what one process computes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from jointnet_cli.joint.bcd import train_round
from jointnet_cli.joint.distributed import Group, owned, train_round_synced
from jointnet_cli.joint.stages import training_session
from jointnet_cli.runs.checkpoint import load_tensors

DATASETS = "shapes-1,shapes-2,stripes-1,blobs-1"
TINY = ["--task", "ae", "--datasets", DATASETS, "--width", "4", "--batch-size", "4", "--device", "cpu",
        "--epochs", "2", "--epochs-per-iter", "1", "--max-iters", "2", "--tol", "1e-9", "--sync-every", "2"]


def test_each_rank_trains_a_contiguous_block_and_rank_0_always_has_network_0():
    assert [owned(8, r, 3) for r in range(3)] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert [owned(1, r, 2) for r in range(2)] == [[0], []]
    assert sorted(i for r in range(4) for i in owned(10, r, 4)) == list(range(10))


def test_without_coupling_a_synchronised_round_is_exactly_the_bcd_round(synth_dir, tmp_path):
    given = {"task": "ae", "datasets": "shapes-1,stripes-1", "width": 4, "batch_size": 4}
    results = []
    for trainer in ("bcd", "synced"):
        with training_session(tmp_path / trainer, given, data_dir=synth_dir, device="cpu") as s:
            zero = torch.zeros(s.ens.num_layers, 2, 2, dtype=torch.float64)
            kw = dict(batch_size=4, seed=0, key=("test",))
            if trainer == "bcd":
                losses = train_round(s.ens, zero, s.domains, s.task, **kw)
            else:
                losses = train_round_synced(s.ens, zero, s.domains, s.task, group=Group(), sync_every=3, **kw)
            results.append((losses, s.ens.model_tensors()))
    (loss_a, net_a), (loss_b, net_b) = results
    assert loss_a == loss_b
    assert all(torch.equal(net_a[k], net_b[k]) for k in net_a)


def jointnet(args: list[str], run: Path, data: Path, procs: int = 1, **popen) -> subprocess.Popen:
    """`jointnet ARGS` in one process, or under torchrun with `procs` processes of one thread each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JOINTNET_DIST_TIMEOUT": "60"}
    launch = [sys.executable, "-m", "jointnet_cli"] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m", "jointnet_cli", "--"]
    return subprocess.Popen([*launch, *args, "--run", str(run), "--data-dir", str(data)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finished(p: subprocess.Popen) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err


def numbers(run: Path) -> dict:
    s = json.loads((run / "state.json").read_text())
    return {"sigma": s["warmstart"]["sigma"], "weights": [it["weights"] for it in s["irls"]["iterations"]],
            "delta": [it["delta"] for it in s["irls"]["iterations"]],
            "metrics": s["irls"]["iterations"][-1]["metrics"]}


def assert_close(a, b, tol=1e-4):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_close(a[k], b[k], tol)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_close(x, y, tol)
    else:
        assert a == pytest.approx(b, rel=tol, abs=tol)


@pytest.fixture(scope="module")
def one_process(synth_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("single") / "run"
    code, _, err = finished(jointnet(["irls", *TINY], run, synth_dir))
    assert code == 0, err
    return run


def test_two_processes_give_the_numbers_of_one(one_process, synth_dir, tmp_path):
    run = tmp_path / "run"
    code, out, err = finished(jointnet(["irls", *TINY], run, synth_dir, procs=2))
    assert code == 0, err
    assert_close(numbers(run), numbers(one_process))
    a, _ = load_tensors(run / "checkpoints" / "irls-002.safetensors")
    b, _ = load_tensors(one_process / "checkpoints" / "irls-002.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].double(), b[k].double(), atol=1e-4) for k in a)
    assert out.count("final networks:") == 1                        # only rank 0 prints results


def test_a_killed_rank_ends_the_run_clearly_and_a_rerun_resumes(one_process, synth_dir, tmp_path):
    run = tmp_path / "run"
    p = jointnet(["irls", *TINY], run, synth_dir, procs=2, start_new_session=True)
    state = run / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (state.exists() and "warmstart" in state.read_text()
                                          and '"epochs_done": 1' in state.read_text()):
        time.sleep(0.2)
    rank1 = [pid for pid in _children(p.pid) if b"RANK=1\0" in Path(f"/proc/{pid}/environ").read_bytes()
             and b"jointnet_cli" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert rank1, "rank 1 was not found"
    os.kill(rank1[0], signal.SIGKILL)
    code, _, err = finished(p)
    assert code != 0
    assert "rerun the same torchrun command to resume" in err
    code, _, err = finished(jointnet(["irls", *TINY], run, synth_dir, procs=2))
    assert code == 0, err
    assert_close(numbers(run), numbers(one_process))


def _children(pid: int) -> list[int]:
    """All descendants of `pid` (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            kids = (task / "children").read_text().split()
            out += [int(k) for k in kids]
            todo += [int(k) for k in kids]
    return out


@pytest.mark.parametrize("args", [["--sync-every", "-1"], ["--schedule", "batched", "--sync-every", "2"]])
def test_a_bad_sync_period_is_one_line_exit_2(cli, synth_dir, tmp_path, args):
    r = cli("irls", "--task", "ae", "--datasets", "shapes-1,stripes-1", "--width", "4", *args,
            "--run", tmp_path / "run", "--data-dir", synth_dir)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "--sync-every" in r.err
    assert not (tmp_path / "run").exists()
