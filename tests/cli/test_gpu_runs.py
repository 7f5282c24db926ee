"""On a CUDA device every task trains, weights and evaluates as it does on the CPU (skipped without CUDA).

The random draws (batch order, holes, latents) come from CPU generators keyed by
the run seed, so a CUDA run of the auto-encoder sees the batches and holes of a
CPU run; the numbers differ only by float rounding (TF32 convolutions, other
kernels), which a few epochs of training amplify a little. Dropout masks
(classification) and adversarial training (GAN) are not comparable across
devices, so those runs are checked for finishing with finite numbers.
"""

import json
import math

import pytest
import torch

DATASETS = "shapes-1,stripes-1,blobs-1"
SHORT = ["--epochs", "2", "--epochs-per-iter", "1", "--max-iters", "2", "--tol", "1e-9", "--batch-size", "8",
         "--width", "4"]


def train(cli, run, data, device: str, args: list[str]) -> dict:
    r = cli("irls", "--datasets", DATASETS, "--run", run, "--data-dir", data, "--device", device, *SHORT, *args)
    assert r.code == 0, r.err
    return json.loads((run / "state.json").read_text())


def all_finite(state: dict) -> bool:
    values = [v for it in state["irls"]["iterations"] for per in it["metrics"].values() for v in per.values()
              if isinstance(v, float)]
    return bool(values) and all(math.isfinite(v) for v in values) and all(math.isfinite(s)
                                                                         for s in state["warmstart"]["sigma"])


@pytest.mark.gpu
@pytest.mark.parametrize("schedule", ["bcd", "batched"])
def test_the_auto_encoder_on_cuda_gives_the_cpu_numbers(cli, synth_dir, tmp_path, schedule):
    args = ["--task", "ae", "--schedule", schedule]
    cpu, gpu = (train(cli, tmp_path / device, synth_dir, device, args) for device in ("cpu", "cuda"))

    assert gpu["warmstart"]["sigma"] == pytest.approx(cpu["warmstart"]["sigma"], rel=0.05)
    for a, b in zip(cpu["irls"]["iterations"], gpu["irls"]["iterations"]):
        assert (torch.tensor(b["weights"]) - torch.tensor(a["weights"])).abs().max() < 0.05
        for name, per in a["metrics"].items():
            assert b["metrics"][name]["mse"] == pytest.approx(per["mse"], rel=0.1), name
    r = cli("evaluate", "--run", tmp_path / "cuda", "--data-dir", synth_dir, "--device", "cuda", "--json")
    assert r.code == 0, r.err


@pytest.mark.gpu
@pytest.mark.parametrize("schedule, trained_by", [("auto", "batched"), ("bcd", "bcd")])
def test_classification_trains_and_evaluates_on_cuda(cli, synth_dir, tmp_path, schedule, trained_by):
    state = train(cli, tmp_path / "run", synth_dir, "cuda", ["--task", "classify", "--schedule", schedule])

    assert len(state["irls"]["iterations"]) == 2 and all_finite(state)
    assert {h["schedule"] for h in state["warmstart"]["history"]} == {trained_by}
    r = cli("evaluate", "--run", tmp_path / "run", "--data-dir", synth_dir, "--device", "cuda", "--json")
    assert r.code == 0, r.err


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ["dcgan", "began"])
def test_gans_train_and_sample_on_cuda(cli, synth_dir, tmp_path, arch):
    run = tmp_path / arch
    state = train(cli, run, synth_dir, "cuda", ["--task", "gan", "--arch", arch, "--latent", "8"])

    assert len(state["irls"]["iterations"]) == 2 and all_finite(state)
    assert {h["schedule"] for h in state["warmstart"]["history"]} == {"bcd"}       # auto: D then G steps
    grid = tmp_path / "grid.png"
    r = cli("sample", "--run", run, "--dataset", "blobs-1", "-n", "4", "--out", grid, "--device", "cuda")
    assert r.code == 0, r.err
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.gpu
@pytest.mark.parametrize("precision, trained_by", [("bf16-mixed", "batched"), ("16-mixed", "bcd")])
def test_mixed_precision_trains_on_cuda_with_finite_irls_numbers(cli, synth_dir, tmp_path, precision, trained_by):
    state = train(cli, tmp_path / "run", synth_dir, "cuda", ["--task", "ae", "--precision", precision])

    assert len(state["irls"]["iterations"]) == 2 and all_finite(state)
    assert all(torch.tensor(it["weights"]).isfinite().all() for it in state["irls"]["iterations"])
    assert {h["schedule"] for h in state["warmstart"]["history"]} == {trained_by}   # fp16's scaler: bcd
    assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == precision
