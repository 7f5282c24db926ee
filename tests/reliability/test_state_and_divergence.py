"""A diverging run never saves NaN or inf as success, and a damaged state.json is refused by key, not used."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from jointnet_cli.cli.app import main
from jointnet_cli.store.tensors import load_tensors

TINY = ["--task", "ae", "--datasets", "shapes-1,stripes-1,blobs-1", "--width", "4", "--batch-size", "8",
        "--epochs", "2", "--epochs-per-iter", "1", "--max-iters", "2", "--tol", "1e-9", "--device", "cpu"]


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def all_finite(run: Path) -> bool:
    for path in (run / "checkpoints").glob("*.safetensors"):
        tensors, _ = load_tensors(path)
        if not all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
            return False
    return True


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_dir) -> Path:
    run = tmp_path_factory.mktemp("state") / "R"
    try:
        main([str(a) for a in ("irls", *TINY, "--run", run, "--data-dir", synth_dir)])
    except SystemExit as e:
        assert e.code in (0, None)
    return run


def test_a_learning_rate_that_diverges_stops_before_a_bad_snapshot_and_a_new_lr_continues(cli, synth_dir, tmp_path):
    run = tmp_path / "lr"
    r = cli("irls", *TINY, "--run", run, "--data-dir", synth_dir, "--lr", "1e10")
    assert r.code == 1 and "training diverged" in r.err and "NaN or inf" in r.err and "smaller --lr" in r.err
    assert any(name in r.err for name in ("shapes-1", "stripes-1", "blobs-1"))
    assert all_finite(run)                                            # no snapshot holds the divergence
    state = json.loads((run / "state.json").read_text()) if (run / "state.json").exists() else {}
    done = state.get("warmstart", {}).get("epochs_done", 0)          # (it may diverge in its first epoch)
    assert done < 2 and all(all(math.isfinite(v) for v in h["data_loss"].values())
                            for h in state.get("warmstart", {}).get("history", []))
    r = cli("irls", "--run", run, "--lr", "3e-3")                     # the same run takes a new rate
    assert r.code == 0, r.err
    state = json.loads((run / "state.json").read_text())
    assert state["lr_changes"] == [{"lr": 3e-3, "was": 1e10, "epochs_trained": {"joint": done} if done else {}}]
    assert json.loads((run / "config.json").read_text())["lr"] == 3e-3
    assert len(state["irls"]["iterations"]) == 2 and all_finite(run)


@pytest.mark.parametrize("edit, key", [
    (lambda s: s["irls"]["iterations"][0].update(weights=[[1.0]]), "irls.iterations[0].weights"),
    (lambda s: s["irls"]["iterations"][1].update(weights=[[[0.5] * 3] * 3] * 7), "irls.iterations[1].weights"),
    (lambda s: s["irls"]["iterations"][0]["weights"][0][0].__setitem__(1, 1.5), "irls.iterations[0].weights[0][0][1]"),
    (lambda s: s["warmstart"].update(epochs_done=-5), "warmstart.epochs_done"),
    (lambda s: s["warmstart"].update(epochs_done=10 ** 30), "warmstart.epochs_done"),
    (lambda s: s["warmstart"].update(epochs_done="abc"), "warmstart.epochs_done"),
    (lambda s: s["warmstart"].update(epochs_done="7"), "warmstart.epochs_done"),
    (lambda s: s["warmstart"]["sigma"].pop(), "warmstart.sigma"),
    (lambda s: s["irls"]["iterations"][0].update(delta="x"), "irls.iterations[0].delta"),
    (lambda s: s["irls"]["iterations"][0].update(k=5), "irls.iterations[0].k"),
    (lambda s: s["warmstart"].update(checkpoint="checkpoints/gone.safetensors"), "warmstart.checkpoint"),
    (lambda s: s["warmstart"].update(checkpoint="../../etc/passwd"), "warmstart.checkpoint"),
])
@pytest.mark.parametrize("command", ["irls", "evaluate"])
def test_a_damaged_state_json_is_refused_naming_the_key_and_nothing_is_written(cli, trained, tmp_path, edit, key,
                                                                              command):
    run = Path(shutil.copytree(trained, tmp_path / "R"))
    state = json.loads((run / "state.json").read_text())
    edit(state)
    (run / "state.json").write_text(json.dumps(state))
    before = files(run)
    extra = ["--max-iters", "3"] if command == "irls" else []
    r = cli(command, "--run", run, *extra)
    assert r.code == 2, r.err
    assert len(r.err.strip().splitlines()) == 1 and key in r.err and "state.json" in r.err
    assert files(run) == before


@pytest.mark.parametrize("edit, key", [
    (lambda c: c.update(lr="fast"), "--lr"),
    (lambda c: c.update(epochs_per_iter=0), "--epochs-per-iter"),
    (lambda c: c.update(weight="huber"), "--weight"),
    (lambda c: c.update(layers="all"), "'layers'"),
    (lambda c: c.update(chains=[4, 4]), "'chains'"),
    (lambda c: c.update(data=["x"]), "'data'"),
    (lambda c: c.update(datasets="shapes-1"), "'datasets'"),
])
def test_a_damaged_config_json_is_refused_naming_the_key(cli, trained, tmp_path, edit, key):
    run = Path(shutil.copytree(trained, tmp_path / "R"))
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    before = files(run)
    r = cli("irls", "--run", run, "--max-iters", "3")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and key in r.err and "config.json" in r.err, r.err
    assert files(run) == before


def test_the_divergence_check_names_a_nan_in_adam_state_and_ignores_huge_finite_values():
    from jointnet_cli.joint.ensemble import Ensemble
    from jointnet_cli.models.registry import build

    built = build("ae9", image_size=32, channels=3, width=4, num_classes=0, nz=8, couple="")
    ens = Ensemble(["a", "b", "c"], built.model, built.layers, lr=1e-3, device=torch.device("cpu"), chains=built.chains)
    for net, (opt,) in zip(ens.nets, ens.optimizers):
        net(torch.rand(2, 3, 32, 32)).mean().backward()
        opt.step()
    assert ens.first_non_finite() is None
    with torch.no_grad():
        next(ens.nets[0].parameters()).fill_(3e38)                  # finite, though its sum overflows
    assert ens.first_non_finite() is None
    state = ens.optimizers[2][0].state
    state[next(iter(state))]["exp_avg_sq"].view(-1)[0] = float("nan")
    assert ens.first_non_finite() == ("c", "enc1.0.weight/exp_avg_sq")
    ens.nets[1].enc1[1].running_var[0] = float("inf")               # a BatchNorm buffer, found first (b before c)
    assert ens.first_non_finite() == ("b", "enc1.1.running_var")
