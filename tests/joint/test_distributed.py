"""Runs split across processes with torchrun (gloo on CPU) compute what one process computes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from jointnet_cli.joint.bcd import train_round
from jointnet_cli.joint.distributed import Group, owned, train_round_synced
from jointnet_cli.joint.stages import training_session
from jointnet_cli.store.tensors import load_tensors

DATASETS = "shapes-1,shapes-2,stripes-1"          # 3 datasets on 2 ranks: blocks of 2 and 1
TINY = ["--task", "ae", "--datasets", DATASETS, "--width", "4", "--batch-size", "4", "--device", "cpu",
        "--epochs", "2", "--epochs-per-iter", "1", "--max-iters", "2", "--tol", "1e-9", "--sync-every", "2",
        "--start", "random"]                   # learned groups score every network in one process


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


def assert_close(a, b, tol=1e-6):
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


@pytest.mark.slow
def test_two_processes_give_the_numbers_of_one(one_process, synth_dir, tmp_path):
    run = tmp_path / "run"
    code, out, err = finished(jointnet(["irls", *TINY], run, synth_dir, procs=2))
    assert code == 0, err
    assert_close(numbers(run), numbers(one_process))
    a, _ = load_tensors(run / "checkpoints" / "irls-002.safetensors")
    b, _ = load_tensors(one_process / "checkpoints" / "irls-002.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].double(), b[k].double(), rtol=1e-6, atol=1e-7) for k in a)
    assert out.count("final networks:") == 1                        # only rank 0 prints results


@pytest.mark.slow
def test_two_nodes_need_the_run_directory_on_rank_0s_alone(one_process, synth_dir, tmp_path):
    """Two torchrun launchers joined by a c10d rendezvous, as on two machines (`--nnodes 2`), each in its own
    working directory with the same relative `--run`: only the node that drew rank 0 gets a run directory,
    and the numbers are those of one process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JOINTNET_DIST_TIMEOUT": "60"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
              "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=two-nodes",
              "--rdzv_conf=join_timeout=60", "-m", "jointnet_cli", "--",
              "irls", *TINY, "--run", "runs/x", "--data-dir", str(synth_dir)]
    nodes = [tmp_path / "node-a", tmp_path / "node-b"]
    procs = []
    try:
        for node in nodes:
            node.mkdir()
            procs.append(subprocess.Popen(launch, cwd=node, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, start_new_session=True))
        deadline = time.time() + 240
        results = []
        for p in procs:                                              # one deadline for both launchers
            out, err = p.communicate(timeout=max(1.0, deadline - time.time()))
            results.append((p.returncode, out, err))
    finally:
        for p in procs:                                              # nothing outlives a failed test
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    writers = [node for node in nodes if (node / "runs" / "x").exists()]
    assert len(writers) == 1 and not any((node / "runs").exists() for node in nodes if node not in writers)
    assert_close(numbers(writers[0] / "runs" / "x"), numbers(one_process))
    assert sum(out.count("final networks:") for _, out, _ in results) == 1


@pytest.mark.slow
def test_a_killed_rank_ends_the_run_clearly_and_a_rerun_resumes(synth_dir, tmp_path):
    longer = [*TINY, "--epochs", "12"]                          # a warm start long enough to be caught in
    reference = tmp_path / "one"
    code, _, err = finished(jointnet(["irls", *longer], reference, synth_dir))
    assert code == 0, err
    run = tmp_path / "run"
    p = jointnet(["irls", *longer], run, synth_dir, procs=2, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and _epochs_done(run) < 1:
        time.sleep(0.05)
    rank1 = [pid for pid in _children(p.pid) if b"RANK=1\0" in Path(f"/proc/{pid}/environ").read_bytes()
             and b"jointnet_cli" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert rank1 and _epochs_done(run) < 12, "the run ended before rank 1 could be killed"
    os.kill(rank1[0], signal.SIGKILL)
    code, _, err = finished(p)
    assert code != 0
    assert "rerun the same torchrun command to resume" in err
    code, _, err = finished(jointnet(["irls", *longer], run, synth_dir, procs=2))
    assert code == 0, err
    assert_close(numbers(run), numbers(reference))


def _epochs_done(run: Path) -> int:
    try:
        return json.loads((run / "state.json").read_text()).get("warmstart", {}).get("epochs_done", 0)
    except (OSError, ValueError):
        return 0


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


@pytest.mark.slow
def test_classification_baselines_with_a_shared_network_give_the_numbers_of_one_process(synth_dir, tmp_path):
    """finetune pretrains one network on the union (owned by rank 0), then every dataset's copy alone."""
    args = ["baseline", "finetune", "--task", "classify", "--arch", "convnet", "--datasets", DATASETS, "--width", "4",
            "--batch-size", "4", "--epochs", "2", "--device", "cpu", "--sync-every", "0"]
    runs = {}
    for procs in (1, 2):
        runs[procs] = tmp_path / f"run{procs}"
        code, _, err = finished(jointnet(args, runs[procs], synth_dir, procs=procs))
        assert code == 0, err
    states = [json.loads((runs[p] / "state.json").read_text())["baselines"] for p in (1, 2)]
    a, b = (s["finetune"] for s in states)
    for part_a, part_b in ((a["pretrained"]["parts"]["all"], b["pretrained"]["parts"]["all"]), (a, b)):
        assert_close([h["data_loss"] for h in part_a["history"]], [h["data_loss"] for h in part_b["history"]])
        assert_close(part_a["history"][-1]["metrics"], part_b["history"][-1]["metrics"])
    assert_close(a["metrics"], b["metrics"])


@pytest.mark.slow
def test_a_mistake_under_torchrun_is_told_once_by_rank_0(synth_dir, tmp_path):
    no_sync = TINY[:TINY.index("--sync-every")]
    code, _, err = finished(jointnet(["irls", *no_sync, "--schedule", "batched"], tmp_path / "run", synth_dir, procs=2))
    assert code != 0
    assert err.count("jointnet: error: --schedule batched trains every network in one process") == 1
    assert "lost contact" not in err and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_bad_device_under_torchrun_is_refused_as_in_one_process(synth_dir, tmp_path):
    code, _, err = finished(jointnet(["irls", *TINY, "--device", "gpu"], tmp_path / "run", synth_dir, procs=2))
    assert code != 0
    assert err.count("'gpu' is not one of 'auto', 'cpu', 'cuda'") == 1
    assert not (tmp_path / "run").exists()


def test_a_command_line_typo_under_torchrun_is_told_by_rank_0_alone(cli, monkeypatch):
    assert cli("baseline", "isolated", "--epochs-per-iter", "1").err.count("No such option: --epochs-per-iter") == 1
    monkeypatch.setenv("RANK", "1")                          # every other rank parses the same line and
    r = cli("baseline", "isolated", "--epochs-per-iter", "1")   # leaves the failing exit code to rank 0
    assert r.code == 0 and r.err == ""


class SharedAlone(Group):
    """A one-rank group that still issues every collective a K-rank run issues (the NCCL check below)."""

    @property
    def distributed(self) -> bool:
        return True


@pytest.mark.gpu
def test_the_collectives_of_a_run_work_over_nccl(synth_dir, tmp_path, monkeypatch):
    """A smoke test of NCCL: one GPU cannot hold two NCCL ranks, so one rank issues every collective of a run
    (JSON messages, model, buffer and optimizer exchanges, a synchronised round) on the devices and dtypes a
    run uses, and must compute what the plain one-process round does. With one rank nothing is received
    from another, so what crosses between ranks is checked by the gloo tests above."""
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    given = {"task": "ae", "datasets": "shapes-1,stripes-1,blobs-1", "width": 4, "batch_size": 4}
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        nccl = SharedAlone(rank=0, world=1, device="cuda")
        assert nccl.broadcast_json({"config": {"lambda": 10.0, "datasets": ["a", "b"]}}) == \
            {"config": {"lambda": 10.0, "datasets": ["a", "b"]}}
        assert nccl.gather_json({"mse": 0.25}) == [{"mse": 0.25}]
        results = []
        for group in (Group(), nccl):
            with training_session(tmp_path / str(len(results)), given, data_dir=synth_dir, device="cuda") as s:
                c = torch.full((s.ens.num_layers, 3, 3), 0.5, dtype=torch.float64)
                kw = dict(batch_size=4, seed=0, key=("nccl",), group=group, sync_every=2)
                losses = [train_round_synced(s.ens, c, s.domains, s.task, **kw) for _ in range(2)]
                group.exchange_optimizers(s.ens)                   # as before a snapshot
                group.share_from_writer(s.ens, with_optimizer=True)   # as after loading one
                results.append((losses, s.ens.model_tensors(), s.ens.optimizer_tensors()))
    finally:
        dist.destroy_process_group()
    (loss_a, net_a, opt_a), (loss_b, net_b, opt_b) = results
    assert [x for l in loss_b for x in l] == pytest.approx([x for l in loss_a for x in l], rel=1e-6)
    assert net_a.keys() == net_b.keys() and opt_a.keys() == opt_b.keys() and len(opt_a) > 0
    assert all(torch.allclose(net_a[k].double(), net_b[k].double(), rtol=1e-6, atol=1e-7) for k in net_a)
    assert all(torch.allclose(opt_a[k].double(), opt_b[k].double(), rtol=1e-6, atol=1e-7) for k in opt_a)


@pytest.mark.slow
def test_learned_groups_under_torchrun_are_refused_with_one_line(synth_dir, tmp_path):
    default_start = TINY[:TINY.index("--start")]                # --start auto: learned groups for ae
    code, _, err = finished(jointnet(["irls", *default_start], tmp_path / "run", synth_dir, procs=2))
    assert code != 0 and err.count("under torchrun give --start random") == 1
    assert not (tmp_path / "run").exists()
