"""metrics.csv and TensorBoard events: every scalar of state.json, once, whatever kills the run."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from jointnet_cli.runs.logbook import rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "joint"))
from subprocess_runs import FLAGS, jointnet, kill_when, state_of  # noqa: E402

TINY = ["--task", "ae", "--datasets", "shapes-1,stripes-1,blobs-1", "--width", "4", "--batch-size", "4",
        "--epochs", "2", "--epochs-per-iter", "1", "--max-iters", "2", "--tol", "1e-9", "--device", "cpu"]
has_tensorboard = importlib.util.find_spec("tensorboard") is not None


def csv_rows(run: Path) -> list[dict]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def keys(table) -> list[tuple]:
    return [(r["method"], r["tag"], int(r["step"])) for r in table]


def events(run: Path, method: str) -> dict[tuple[str, int], float]:
    """The scalars TensorBoard reads from RUN/tb/<method>/ (the last value of a tag and step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb" / method), size_guidance={"scalars": 0})
    acc.Reload()
    return {(tag, e.step): e.value for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)}


def test_every_number_of_state_json_is_a_row_at_its_epoch(cli, synth_dir, tmp_path):
    run = tmp_path / "r"
    assert cli("irls", *TINY, "--run", run, "--data-dir", synth_dir, "--start", "groups", "--start-epochs", "1",
               "--group-ratio", "1").code == 0                                # a group per dataset
    assert cli("baseline", "finetune", "--run", run, "--budget", "4").code == 0
    state = json.loads((run / "state.json").read_text())
    table = csv_rows(run)
    got = {(r["method"], r["stage"], int(r["step"]), r["tag"]): float(r["value"]) for r in table}
    assert len(got) == len(table)                                    # no (method, stage, step, tag) twice
    ws, its = state["warmstart"], state["irls"]["iterations"]
    for h in ws["history"]:                                          # warm start: steps 1, 2
        for d, v in h["data_loss"].items():
            assert got["joint", "warmstart", h["epoch"], f"loss/{d}"] == v
        mean = sum(m["mse"] for m in h["metrics"].values()) / 3
        assert got["joint", "warmstart", h["epoch"], "test/mse/mean"] == pytest.approx(mean)
    for label, part in state["start"]["parts"].items():              # the learned groups' epoch: step 3
        assert got["joint", "start", 3, f"loss/{label}"] == part["history"][0]["data_loss"]["shared"]
    assert got["joint", "irls", 3, "irls/delta"] == its[0]["delta"]    # iteration 1 starts after 2 + 1 epochs
    assert got["joint", "irls", 4, "irls/delta"] == its[1]["delta"]
    w = its[1]["weights"][0]
    assert got["joint", "irls", 4, "irls/weight/w1"] == pytest.approx((sum(map(sum, w)) - 3) / 6)
    assert got["joint", "irls", 4, "loss/blobs-1"] == its[0]["history"][0]["data_loss"]["blobs-1"]
    assert got["joint", "irls", 5, "irls/robust_objective"] == its[1]["objective"]["robust_objective"]
    fine = state["baselines"]["finetune"]
    pre = fine["pretrained"]["epochs"]
    assert {r["step"] for r in table if r["method"] == "finetune" and r["stage"] == "finetune"} == \
        {str(pre + h["epoch"]) for h in fine["history"]}                 # its own epochs after the pretraining
    windows = [f"w{k}" for k in range(1, len(its[0]["weights"]) + 1)]
    rebuilt = sorted((r.method, r.stage, r.step, r.tag, r.value) for r in rows(state, windows))
    assert sorted(got.items()) == [((m, st, step, tag), v) for m, st, step, tag, v in rebuilt]   # state.json alone


@pytest.mark.skipif(not has_tensorboard, reason="the tensorboard extra is not installed")
def test_tensorboard_events_hold_exactly_the_csv_rows(cli, synth_dir, tmp_path):
    run = tmp_path / "tb"
    assert cli("irls", *TINY, "--max-iters", "1", "--run", run, "--data-dir", synth_dir, "--logger",
               "tensorboard").code == 0
    assert cli("irls", "--run", run, "--max-iters", "2", "--logger", "tensorboard").code == 0   # continues
    assert cli("baseline", "isolated", "--run", run, "--logger", "tensorboard").code == 0
    table = csv_rows(run)
    for method in ("joint", "isolated"):
        want = {(r["tag"], int(r["step"])): float(r["value"]) for r in table if r["method"] == method}
        got = events(run, method)
        assert got.keys() == want.keys()
        assert all(got[k] == pytest.approx(v, rel=1e-6) for k, v in want.items())   # events hold float32
    assert len(list((run / "tb" / "joint").glob("events.*"))) == 1   # rewritten, not appended, by the second run


def test_without_the_extra_tensorboard_is_one_line_and_nothing_is_written(cli, synth_dir, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    r = cli("irls", *TINY, "--run", tmp_path / "no", "--data-dir", synth_dir, "--logger", "tensorboard")
    assert r.code == 2 and "pip install -e '.[tensorboard]'" in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()


@pytest.mark.slow
def test_a_killed_run_logs_each_epoch_once(synth_dir, tmp_path):
    run = tmp_path / "k"
    args = ["irls", *FLAGS, "--run", run, "--data-dir", synth_dir]
    proc = jointnet(*args, *(["--logger", "tensorboard"] if has_tensorboard else []))
    killed = kill_when(proc, run, lambda s: s.get("irls", {}).get("iterations"))
    assert killed, "the run finished before it could be killed"
    assert jointnet(*args, *(["--logger", "tensorboard"] if has_tensorboard else [])).wait() == 0
    table = csv_rows(run)
    assert len(set(keys(table))) == len(table)
    state = state_of(run)
    assert {int(r["step"]) for r in table if r["tag"] == "loss/blobs-1"} == \
        set(range(1, 4)) | set(range(3 + 3 + 1, 3 + 3 + 2 * 2 + 1))  # warm start 3, groups 3 (their own tags), IRLS 2 × 2
    assert len(state["irls"]["iterations"]) == 2
    if has_tensorboard:
        want = {(r["tag"], int(r["step"])) for r in table if r["method"] == "joint"}
        assert set(events(run, "joint")) == want
