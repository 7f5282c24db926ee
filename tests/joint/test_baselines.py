"""Baselines through the same trainer: couplings, budgets, and a tiny run of each from the CLI."""

import json
import math

import pytest
import torch

from jointnet_cli.joint import weights as jw
from jointnet_cli.joint.baselines import baseline_key, partial_coupling
from jointnet_cli.store.tensors import load_tensors

FLAGS = ["--width", "4", "--batch-size", "8", "--device", "cpu"]
DATASETS = "shapes-1,shapes-2,blobs-1"


@pytest.mark.parametrize("num_layers", [1, 2, 3, 4, 9])
@pytest.mark.parametrize("fraction", [0.25, 1 / 3, 0.5, 0.9, 1.0])
def test_l2_partial_couples_exactly_the_first_ceil_pL_layers(num_layers, fraction):
    n = 4
    c = jw.coupling(torch.ones(len(jw.chain_windows([num_layers])), n, n, dtype=torch.float64), 10.0, num_layers)
    partial = partial_coupling(c, fraction)
    coupled = [l for l in range(num_layers) if partial[l].abs().sum() > 0]
    assert coupled == list(range(math.ceil(fraction * num_layers)))
    assert torch.equal(partial[: len(coupled)], c[: len(coupled)])     # those layers keep their l2 coupling


def test_baseline_keys():
    assert baseline_key("l2-partial", 0.25) == "l2-partial-25" and baseline_key("isolated") == "isolated"
    with pytest.raises(Exception, match="unknown baseline"):
        baseline_key("sharesome")


def test_every_baseline_then_evaluate_on_a_tiny_run(cli, synth_dir, tmp_path):
    run = tmp_path / "run"
    common = ["--run", run, "--data-dir", synth_dir]
    # a baseline may be the first stage of a run: it fixes the configuration (here the warm-start
    # epochs come from a recipe; the baseline's own --budget is its budget)
    recipe = tmp_path / "r.toml"
    recipe.write_text("epochs = 2\nepochs-per-iter = 3\n")
    r = cli("baseline", "isolated", "--task", "ae", "--datasets", DATASETS, *common, *FLAGS, "--recipe", recipe,
            "--budget", "1", "--json")
    assert r.code == 0, r.err
    assert json.loads((run / "config.json").read_text())["datasets"] == DATASETS.split(",")
    assert r.json["epochs"] == 1 and r.json["budget"] == "--budget"

    for args in (["l2", "--budget", "1"], ["l2-partial", "--fraction", "0.5", "--budget", "1"],
                 ["shareall", "--budget", "1"], ["finetune", "--budget", "3"]):
        r = cli("baseline", *args, *common, "--json")
        assert r.code == 0, r.err
    state = json.loads((run / "state.json").read_text())
    assert set(state["baselines"]) == {"isolated", "l2", "l2-partial-50", "shareall", "finetune"}
    assert state["baselines"]["l2-partial-50"]["coupled_layers"] == 5          # ⌈0.5 · 9⌉
    fine = state["baselines"]["finetune"]                   # pretraining counts in the budget: 1 of 3 epochs, then 2
    assert fine["pretrained"]["checkpoint"] == "checkpoints/finetune-pretrain.safetensors"
    assert fine["pretrained"]["epochs"] == 1 and fine["epochs"] == 3 and len(fine["history"]) == 2

    shared, _ = load_tensors(run / "checkpoints/shareall.safetensors")
    iso, _ = load_tensors(run / "checkpoints/isolated.safetensors")
    key = "enc1.0.weight"
    assert torch.equal(shared[f"shapes-1/{key}"], shared[f"blobs-1/{key}"])      # one network for all
    assert not torch.equal(iso[f"shapes-1/{key}"], iso[f"blobs-1/{key}"])       # each alone

    # the joint method, then a baseline with the default budget = joint's epochs per dataset
    assert cli("irls", *common, "--max-iters", "1").code == 0
    r = cli("baseline", "l2-partial", "--fraction", "0.25", *common, "--json")
    assert r.code == 0, r.err
    assert r.json["epochs"] == 2 + 2 + 3 and "joint" in r.json["budget"]  # warm start 2 + learned groups as many
                                                                          # + 1 iteration × 3

    r = cli("evaluate", *common, "--plots", "--json")
    assert r.code == 0, r.err
    res = r.json
    assert set(res["metrics"]) == {"joint", "isolated", "l2", "l2-partial-25", "l2-partial-50", "shareall", "finetune"}
    for method, entry in state["baselines"].items():   # recomputed from the checkpoints = recorded at training end
        for d, m in entry["metrics"].items():
            assert res["metrics"][method][d]["mse"] == pytest.approx(m["mse"], rel=1e-6)
    report = run / "report"
    for name in ("results.json", "results.csv", "results.md", "curves-mse.png", "consistency.png",
                 "weights-k001.png", "graph-w01.png", "graph-w01.dot", "graph-w08.dot"):
        assert (report / name).is_file(), name
    csv_lines = (report / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("dataset,joint,isolated") and csv_lines[-1].startswith("average")
    assert len(res["group_recovery"]) == 8 and all(-1 <= v <= 1 for v in res["group_recovery"])
    assert "**" in (report / "results.md").read_text()          # best per row in bold


def test_evaluate_refuses_a_run_with_nothing_trained(cli, synth_dir, tmp_path):
    r = cli("evaluate", "--run", tmp_path / "none", "--data-dir", synth_dir)
    assert r.code == 2 and "no run" in r.err


def test_l2_partial_counts_layers_per_player():
    c = torch.ones(8, 2, 2, dtype=torch.float64)
    partial = partial_coupling(c, 0.5, chains=[4, 4])          # a GAN: G layers 0–3, D layers 4–7
    assert [l for l in range(8) if partial[l].sum() > 0] == [0, 1, 4, 5]


def test_recipe_baseline_table_sets_the_budget_not_the_warm_start(cli, synth_dir, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('task = "ae"\ndatasets = "shapes-1"\nwidth = 4\nepochs = 3\n[baseline]\nepochs = 1\n')
    r = cli("baseline", "isolated", "--recipe", recipe, "--run", tmp_path / "r", "--data-dir", synth_dir,
            "--device", "cpu", "--json")
    assert r.code == 0, r.err
    assert r.json["epochs"] == 1
    assert json.loads((tmp_path / "r/config.json").read_text())["epochs"] == 3


def test_shareall_heads_follow_label_sets():
    from jointnet_cli.joint.shared import head_of

    class D:
        def __init__(self, classes):
            self.manifest = {"classes": classes}

    assert head_of([D(["a", "b"]), D(["x", "y", "z"]), D(["a", "b"])]) == [0, 1, 0]
