"""warmstart → irls from the command line on a tiny synth8 run, and the files it leaves (DESIGN §4)."""

import json
import os

import pytest
import torch

from jointnet_cli.joint import weights as jw
from jointnet_cli.store.tensors import load_tensors

TINY_FLAGS = ["--task", "ae", "--epochs", "2", "--epochs-per-iter", "1", "--max-iters", "2",
              "--batch-size", "8", "--width", "4", "--device", "cpu"]


def test_warmstart_then_irls_writes_the_documented_run_directory(cli, synth_dir, tmp_path):
    run = tmp_path / "ae8"
    r = cli("warmstart", "--datasets", "@synth8", "--run", run, "--data-dir", synth_dir, *TINY_FLAGS, "--start", "random", "--json")
    assert r.code == 0, r.err
    ws = r.json
    assert ws["epochs_done"] == 2 and len(ws["sigma"]) == 8          # ae9: L = 9 layers → W = 8 windows
    config = json.loads((run / "config.json").read_text())
    assert config["format"] == "jointnet-run/1" and config["task"] == "ae" and config["arch"] == "ae9"
    assert config["datasets"] == ["shapes-1", "shapes-2", "shapes-3", "stripes-1", "stripes-2", "stripes-3",
                                  "blobs-1", "blobs-2"]
    assert config["layers"][0] == ["enc1.0.weight", "enc1.0.bias", "enc1.1.weight", "enc1.1.bias"]
    assert len(config["layers"]) == 9 and config["lambda"] == 1.0 and config["seed"] == 0
    assert (config["apply"], config["weight"], config["sigma"]) == ("prox", "gm", "auto")       # the defaults

    r = cli("irls", "--run", run, "--data-dir", synth_dir, "--device", "cpu", "--json")
    assert r.code == 0, r.err
    state = json.loads((run / "state.json").read_text())
    assert state["warmstart"]["checkpoint"] == "checkpoints/warmstart.safetensors"
    its = state["irls"]["iterations"]
    assert [it["k"] for it in its] == [1, 2] and state["irls"]["converged"] is False
    assert its[0]["checkpoint"] == "checkpoints/irls-001.safetensors"
    for it in its:
        w = torch.tensor(it["weights"])
        assert w.shape == (8, 8, 8) and (w.diagonal(dim1=1, dim2=2) == 1).all()
        assert set(it["metrics"]) == set(config["datasets"]) and "mse_hole" in it["metrics"]["blobs-1"]
        assert set(it["objective"]) == {"data_loss", "weighted_consistency", "robust_consistency", "robust_objective",
                                        "checkpoint_objective"}
    files = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert files == [".lock", "checkpoints/irls-001.safetensors", "checkpoints/irls-002.optim.safetensors",
                     "checkpoints/irls-002.safetensors", "checkpoints/warmstart.safetensors",
                     "config.json", "metrics.csv", "state.json"]

    # the weights of iteration 1 can be recomputed from the warm-start checkpoint and σ alone
    tensors, meta = load_tensors(run / "checkpoints/warmstart.safetensors")
    assert meta["stage"] == "warmstart"
    stacks = [torch.stack([torch.cat([tensors[f"{d}/{p}"].reshape(-1) for p in layer]) for d in config["datasets"]])
              for layer in config["layers"]]
    dw = jw.window_sq_distances(jw.layer_sq_distances(stacks))
    assert torch.allclose(dw.sqrt().new_tensor(state["warmstart"]["sigma"]), jw.sigma_from(dw))
    w1 = jw.irls_weights(dw, torch.tensor(state["warmstart"]["sigma"], dtype=torch.float64), "gm")
    assert torch.allclose(w1, torch.tensor(its[0]["weights"], dtype=torch.float64))
    assert its[0]["delta"] == pytest.approx(jw.delta(w1, torch.ones_like(w1)))

    # rerunning a finished stage does no work and changes nothing
    before = (run / "state.json").read_bytes()
    assert cli("irls", "--run", run, "--data-dir", synth_dir, "--device", "cpu").code == 0
    assert (run / "state.json").read_bytes() == before


def test_irls_one_liner_runs_the_warm_start_first_in_the_default_run_dir(cli, synth_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli("irls", "--datasets", "shapes-1,stripes-1", "--data-dir", synth_dir, *TINY_FLAGS)
    assert r.code == 0, r.err
    assert "runs/ae-shapes-1+stripes-1" in r.err               # printed at the start
    state = json.loads((tmp_path / "runs/ae-shapes-1+stripes-1/state.json").read_text())
    assert state["warmstart"]["epochs_done"] == 2 and state["irls"]["iterations"]
    assert "converged" in r.out


@pytest.mark.parametrize("args, message", [
    (["--datasets", "nope", "--run", "R"], "nope"),
    (["--datasets", "shapes-1,shapes-1", "--run", "R"], "more than once"),
    (["--datasets", "@synth8", "--run", "R", "--lambda", "0"], "--lambda"),
    (["--datasets", "@synth8", "--run", "R", "--lr", "-1"], "--lr"),
    (["--datasets", "@synth8", "--run", "R", "--epochs", "0"], "--epochs"),
    (["--datasets", "@synth8", "--run", "R", "--tol", "0"], "--tol"),
    (["--datasets", "@synth8", "--run", "R", "--block", "sometimes"], "--block"),
    (["--datasets", "@synth8", "--run", "R", "--hole", "40"], "--hole"),
    (["--datasets", "@synth8", "--run", "R", "--size", "64"], "--size"),
    (["--datasets", "@synth8", "--run", "R", "--device", "tpu"], "--device"),
])
def test_bad_training_input_is_one_line_exit_2_and_writes_nothing(cli, synth_dir, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    r = cli("warmstart", "--task", "ae", "--data-dir", synth_dir, *args)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jointnet: error:") and message in lines[0], r.err
    assert not (tmp_path / "R").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--run", "R"], "--task is required"),
    (["--datasets", "@synth8"], "give --run DIR, or --task and --datasets"),
    (["--run", "R", "--task", "ae", "--datasets", "@synth8", "--bogus"], "No such option"),
    (["--run", "R", "--task", "ae", "--datasets", "@synth8", "--epochs", "many"], "Invalid value for '--epochs'"),
])
def test_missing_or_malformed_flags_exit_2_with_one_line(cli, synth_dir, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    r = cli("warmstart", "--data-dir", synth_dir, *args)
    lines = r.err.strip().splitlines()
    assert r.code == 2 and len(lines) == 1 and message in lines[0], r.err
    assert not (tmp_path / "R").exists()


def test_an_existing_run_refuses_conflicting_flags(cli, synth_dir, tmp_path):
    run = tmp_path / "r"
    assert cli("warmstart", "--datasets", "shapes-1,blobs-1", "--run", run, "--data-dir", synth_dir, *TINY_FLAGS).code == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    r = cli("irls", "--run", run, "--data-dir", synth_dir, "--lambda", "5", "--datasets", "shapes-1")
    assert r.code == 2 and "--lambda (run has 1.0)" in r.err and "--datasets" in r.err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_second_process_on_the_same_run_is_refused(tmp_path):
    from jointnet_cli.errors import UserError
    from jointnet_cli.store.atomic import RunLock

    with RunLock(tmp_path):
        with pytest.raises(UserError, match="in use by another jointnet process"):
            RunLock(tmp_path).__enter__()
    with RunLock(tmp_path) as lock:      # released with its holder
        assert lock.path.read_text() == str(os.getpid())
