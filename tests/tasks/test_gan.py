"""The gan task: tiny DCGAN and BEGAN runs through warmstart → irls → sample, per-player windows, watchdogs."""

import json

import pytest

from jointnet_cli.joint.weights import chain_windows

FLAGS = ["--task", "gan", "--datasets", "shapes-1,shapes-2,blobs-1", "--width", "4", "--latent", "8",
         "--batch-size", "8", "--device", "cpu", "--epochs", "1", "--epochs-per-iter", "1", "--max-iters", "1"]


def test_windows_pair_layers_inside_each_players_chain_only():
    assert chain_windows([4, 4]) == [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6), (6, 7)]
    assert chain_windows([1, 3]) == [(0,), (1, 2), (2, 3)]
    assert chain_windows([9]) == [(l, l + 1) for l in range(8)]


@pytest.mark.parametrize("arch, couple, windows, stats", [
    ("dcgan", "both", ["G w1", "G w2", "G w3", "D w1", "D w2", "D w3"], {"d_real", "d_fake"}),
    ("began", "d", [f"D w{k}" for k in range(1, 9)], {"M", "k"}),
])
def test_tiny_gan_warmstart_irls_sample(cli, synth_dir, tmp_path, arch, couple, windows, stats):
    run = tmp_path / arch
    r = cli("warmstart", "--arch", arch, "--run", run, "--data-dir", synth_dir, *FLAGS, "--json")
    assert r.code == 0, r.err
    config = json.loads((run / "config.json").read_text())
    assert config["window_names"] == windows and config["lr"] == 2e-4 and config["couple"] == ""
    players = {name.split(".")[0] for layer in config["layers"] for name in layer}
    assert players == ({"G", "D"} if couple == "both" else {"D"})
    epoch = r.json["history"][0]
    assert set(epoch["stats"]["blobs-1"]) == stats                   # D(x), D(G(z)) or BEGAN's M and k_t
    assert "swd" in epoch["metrics"]["shapes-1"] and len(epoch["metrics"]["shapes-1"]["swd_levels"]) == 2

    r = cli("irls", "--run", run, "--data-dir", synth_dir, "--json")
    assert r.code == 0, r.err
    w = r.json["iterations"][0]["weights"]
    assert len(w) == len(windows) and len(w[0]) == 3
    state = json.loads((run / "state.json").read_text())            # --sigma auto: annealed from the L2 problem
    assert config["sigma"] == "auto" and state["irls"]["settings"]["sigma"] == "anneal"
    assert min(x for window in w for row in window for x in row) >= 0.99 - 1e-12
    assert all(it.get("annealing") for it in state["irls"]["iterations"])   # σ above its floor: cannot stop yet
    again = cli("irls", "--run", run, "--data-dir", synth_dir)             # finished: says why it did not stop
    assert again.code == 0 and "σ was still annealing" in again.out

    a, b, c = (tmp_path / f"{x}.png" for x in "abc")
    assert cli("sample", "--run", run, "--dataset", "blobs-1", "-n", "10", "--out", a).code == 0
    assert cli("sample", "--run", run, "--dataset", "blobs-1", "-n", "10", "--out", b).code == 0
    assert cli("sample", "--run", run, "--dataset", "blobs-1", "-n", "10", "--seed", "1", "--out", c).code == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()          # same seed, same bytes
    from PIL import Image

    assert Image.open(a).size == (4 * 32 + 5 * 2, 3 * 32 + 4 * 2)     # 10 samples → 3 rows × 4 columns, 2 px gaps
    r = cli("sample", "--run", run, "--dataset", "blobs-1", "-n", "3", "--out", tmp_path / "many", "--individual")
    assert r.code == 0 and sorted(p.name for p in (tmp_path / "many").iterdir()) == ["0000.png", "0001.png", "0002.png"]


def test_sample_refuses_a_non_gan_run_and_existing_output(cli, synth_dir, tmp_path):
    run = tmp_path / "ae"
    assert cli("baseline", "isolated", "--task", "ae", "--datasets", "shapes-1", "--run", run, "--data-dir", synth_dir,
               "--width", "4", "--budget", "1", "--device", "cpu").code == 0
    r = cli("sample", "--run", run, "--dataset", "shapes-1")
    assert r.code == 2 and "needs a gan run" in r.err


def test_an_exploding_gan_stops_with_a_message_and_keeps_the_last_good_state(cli, synth_dir, tmp_path):
    run = tmp_path / "boom"
    r = cli("warmstart", "--arch", "dcgan", "--run", run, "--data-dir", synth_dir, *FLAGS, "--lr", "1e12",
            "--epochs", "3")
    assert r.code == 1, r.err
    assert "training diverged" in r.err and "epoch" in r.err and "smaller --lr" in r.err
    state = json.loads((run / "state.json").read_text()) if (run / "state.json").exists() else {}
    done = state.get("warmstart", {}).get("epochs_done", 0)
    assert done < 3 and "checkpoint" not in state.get("warmstart", {})
    if done:
        assert (run / state["warmstart"]["progress"]).is_file()


def test_gan_baselines_and_evaluate_write_sample_grids(cli, synth_dir, tmp_path):
    run = tmp_path / "g"
    common = ["--run", run, "--data-dir", synth_dir]
    assert cli("irls", "--arch", "began", *common, *FLAGS).code == 0
    for method in ("shareall", "isolated", "l2"):
        r = cli("baseline", method, *common, "--budget", "1")
        assert r.code == 0, r.err
    r = cli("baseline", "finetune", *common, "--budget", "2")
    assert r.code == 0, r.err
    r = cli("evaluate", *common, "--json")
    assert r.code == 0, r.err
    res = r.json
    assert res["metric"] == "swd" and set(res["metrics"]) == {"joint", "shareall", "finetune", "isolated", "l2"}
    assert res["sharing"]["windows"][0] == "D w1"
    from PIL import Image

    grid = Image.open(run / "report/samples-joint.png")         # 8 samples per dataset, one labelled row each
    assert grid.format == "PNG" and grid.size[0] > 8 * 16 and grid.size[1] > 3 * 16
