"""The bookkeeping of batched's CUDA graphs that a CPU can check: when a recording must be made again.

Recording and replaying need a GPU (tests/joint/test_batched.py's graphed tests run there)."""

import pytest
import torch

from jointnet_cli.joint.cuda_graphs import Recording, StepGraphs, recorded_against


def adam_with_state(lr: float = 1e-3) -> torch.optim.Adam:
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([p], lr=lr)
    p.grad = torch.ones(3)
    opt.step()                                                   # creates the state a recording reads
    return opt


def test_a_recording_is_tied_to_the_task_the_settings_the_precision_and_the_addresses():
    task, opt = object(), adam_with_state()
    now = recorded_against(task, opt, "32")
    assert recorded_against(task, opt, "32") == now
    assert recorded_against(task, opt, "bf16-mixed")[1] != now[1]
    opt.param_groups[0]["lr"] = 0.5
    assert recorded_against(task, opt, "32")[1] != now[1]
    opt.param_groups[0]["lr"] = 1e-3
    p = opt.param_groups[0]["params"][0]
    opt.state[p]["exp_avg"] = opt.state[p]["exp_avg"].clone()   # a resume loads new tensors: new addresses
    assert recorded_against(task, opt, "32")[2] != now[2]


@pytest.mark.parametrize("change", ["none", "lr", "task", "state"])
def test_prepare_forgets_recordings_made_against_anything_else(change):
    task, opt = object(), adam_with_state()
    graphs = StepGraphs()
    graphs.reset(enabled=True)
    graphs.prepare(opt, task, "32")                              # step counts get their lasting tensors first
    shape = (torch.Size((2, 3)), torch.float32, torch.Size((2,)), torch.float32)
    graphs.recordings[shape] = Recording(None, torch.zeros(2, 3), torch.zeros(2), recorded_against(task, opt, "32"))
    graphs.warm[shape] = 3
    if change == "lr":
        opt.param_groups[0]["lr"] = 0.5
    elif change == "task":
        task = object()
    elif change == "state":
        p = opt.param_groups[0]["params"][0]
        opt.state[p]["exp_avg_sq"] = opt.state[p]["exp_avg_sq"].clone()
    graphs.prepare(opt, task, "32")
    kept = change == "none"
    assert (shape in graphs.recordings) == kept and (shape in graphs.warm) == kept


def test_step_counts_get_one_lasting_tensor_and_are_on_the_cpu_after_a_round():
    opt = adam_with_state()
    p = opt.param_groups[0]["params"][0]
    graphs = StepGraphs()
    graphs.reset(enabled=True)
    graphs.prepare(opt, object(), "32")
    lasting = opt.state[p]["step"]
    assert lasting is graphs.steps[p] and float(lasting) == 1.0
    graphs.prepare(opt, object(), "32")
    assert opt.state[p]["step"] is lasting                       # the address a recording reads stays
    graphs.release(opt)                                          # (here it is on the CPU already: kept)
    assert opt.state[p]["step"].device.type == "cpu" and float(opt.state[p]["step"]) == 1.0


def test_disabled_graphs_ask_nothing_of_the_optimizer():
    graphs = StepGraphs()
    graphs.reset(enabled=False)
    assert graphs.optimizer_overrides({"capturable": False}) == {}
    graphs.reset(enabled=True)
    assert graphs.optimizer_overrides({"capturable": False}) == {"capturable": True}
    assert graphs.optimizer_overrides({"momentum": 0}) == {}     # SGD has no capturable setting
