"""--precision: mixed-precision training steps, with the coupling and every IRLS number in full precision."""

import json
import math

import pytest
import torch
from torch import nn

from jointnet_cli.joint.precision import AUTO, Precision, resolve
from jointnet_cli.store.tensors import load_tensors

TINY = ["--task", "ae", "--datasets", "shapes-1,stripes-1,blobs-1", "--width", "4", "--batch-size", "8",
        "--epochs", "2", "--epochs-per-iter", "1", "--max-iters", "2", "--tol", "1e-9", "--device", "cpu"]


def test_autocast_computes_in_the_mixed_dtype_and_32_does_not():
    conv, x = nn.Conv2d(3, 4, 3), torch.rand(2, 3, 8, 8)
    with Precision("bf16-mixed").autocast():
        assert conv(x).dtype == torch.bfloat16
    with Precision("32").autocast():
        assert conv(x).dtype == torch.float32


def test_sixteen_mixed_hands_the_coupling_true_scale_gradients_and_skips_an_overflowing_step():
    torch.manual_seed(0)
    net = nn.Linear(4, 1)
    x, y = torch.rand(8, 4), torch.rand(8, 1)
    expected = torch.autograd.grad(nn.functional.mse_loss(net(x), y), net.weight)[0]
    prec = Precision("16-mixed")
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    prec.scalers[id(opt)] = torch.amp.GradScaler("cpu", init_scale=64.0)  # (the default 2¹⁶ overflows this toy)
    seen = []
    with prec.autocast():
        loss = nn.functional.mse_loss(net(x), y)
    prec.backward_and_step(loss, opt, lambda: seen.append(net.weight.grad.clone()))
    assert torch.allclose(seen[0], expected, rtol=1e-2, atol=1e-3)       # unscaled before the coupling sees it
    before, scale = net.weight.detach().clone(), prec.scalers[id(opt)].get_scale()
    opt.zero_grad()
    with prec.autocast():
        huge = net(x).sum() * 1e30                                      # its gradients overflow: inf
    prec.backward_and_step(huge, opt)
    assert torch.equal(net.weight, before) and prec.scalers[id(opt)].get_scale() < scale   # skipped, scale lowered


@pytest.mark.parametrize("mode", ["bf16-mixed", "16-mixed"])
def test_a_mixed_precision_run_trains_and_keeps_every_irls_number_finite_and_float32_files(cli, synth_dir,
                                                                                         tmp_path, mode):
    run = tmp_path / mode
    r = cli("irls", *TINY, "--run", run, "--data-dir", synth_dir, "--precision", mode)
    assert r.code == 0, r.err
    assert f"precision {mode}" in r.err
    assert json.loads((run / "config.json").read_text())["precision"] == mode
    state = json.loads((run / "state.json").read_text())
    numbers = [*state["warmstart"]["sigma"]]
    for it in state["irls"]["iterations"]:
        numbers += [it["delta"], *it["sigma"], *(w for m in it["weights"] for row in m for w in row)]
        numbers += [v["mse"] for v in it["metrics"].values()]
    assert numbers and all(math.isfinite(v) for v in numbers)
    tensors, _ = load_tensors(run / state["irls"]["final_checkpoint"])
    floats = [t for k, t in tensors.items() if t.is_floating_point() and not k.startswith("coupling/")]
    assert floats and all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in floats)


def test_auto_takes_the_measured_choice_of_the_device_type_and_leaves_the_others_alone():
    assert resolve("auto", "cpu") == AUTO["cpu"] == "32" and resolve("auto", "cuda:0") == AUTO["cuda"]
    assert resolve("auto", "meta") == "32"                                    # nothing measured there
    assert "16-mixed" not in AUTO.values()      # config's checks refuse 16-mixed for batched and GAN runs by name
    assert [resolve(m, "cpu") for m in ("32", "bf16-mixed", "16-mixed")] == ["32", "bf16-mixed", "16-mixed"]
    assert Precision("auto", "cpu").dtype is None
    with pytest.raises(ValueError, match="unknown precision"):
        resolve("fp8", "cpu")


def test_a_run_with_precision_auto_records_auto_and_says_what_it_trains_in(cli, synth_dir, tmp_path):
    r = cli("irls", *TINY, "--run", tmp_path / "a", "--data-dir", synth_dir, "--precision", "auto",
            "--max-iters", "1")
    assert r.code == 0, r.err
    assert "precision 32 (auto)" in r.err
    assert json.loads((tmp_path / "a" / "config.json").read_text())["precision"] == "auto"
    state = json.loads((tmp_path / "a" / "state.json").read_text())
    epochs = state["warmstart"]["history"] + [h for it in state["irls"]["iterations"] for h in it["history"]]
    assert epochs and {h["precision"] for h in epochs} == {"32"}


def test_sixteen_mixed_is_refused_where_no_gradient_scaler_applies(cli, synth_dir, tmp_path):
    r = cli("irls", *TINY, "--run", tmp_path / "b", "--data-dir", synth_dir, "--precision", "16-mixed",
            "--schedule", "batched")
    assert r.code == 2 and "16-mixed trains with --schedule bcd" in r.err and not (tmp_path / "b").exists()
    r = cli("irls", "--task", "gan", "--datasets", "shapes-1,stripes-1", "--run", tmp_path / "g", "--data-dir",
            synth_dir, "--precision", "16-mixed")
    assert r.code == 2 and "GAN players" in r.err and not (tmp_path / "g").exists()
