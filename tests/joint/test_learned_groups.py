"""`--start groups`: groups from transfer ratios, one network per group trained on its union, IRLS from them."""

import json

import pytest
import torch

from jointnet_cli.joint.baselines import joint_budget
from jointnet_cli.joint.learned_groups import groups_from_ratios, transfer_ratios
from jointnet_cli.joint.shared import members_mean
from jointnet_cli.joint.session import generator
from jointnet_cli.joint.stages import training_session
from jointnet_cli.runs.config import RunConfig

FLAGS = ["--width", "4", "--batch-size", "8", "--device", "cpu", "--epochs", "1", "--epochs-per-iter", "1"]
DATASETS = "shapes-1,shapes-2,stripes-1,blobs-1"


def ratios(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def test_groups_hold_only_pairs_within_the_ratio_both_ways():
    t = ratios([[1.0, 1.2, 5.0, 9.0],
                [1.3, 1.0, 6.0, 9.0],
                [4.0, 4.0, 1.0, 1.1],
                [9.0, 9.0, 2.5, 1.0]])        # 3 and 4: 1.1 one way, 2.5 the other: S = 2.5
    assert groups_from_ratios(t, 2.0) == ["g1", "g1", "g2", "g3"]
    assert groups_from_ratios(t, 3.0) == ["g1", "g1", "g2", "g2"]
    assert groups_from_ratios(t, 1.0) == ["g1", "g2", "g3", "g4"]
    assert groups_from_ratios(t, 100.0) == ["g1"] * 4


def test_complete_linkage_never_chains_a_to_c_through_b():
    """a ~ b and b ~ c within the ratio, but a and c far apart: no group holds all three."""
    t = ratios([[1.0, 1.5, 3.0],
                [1.5, 1.0, 1.4],
                [3.0, 1.4, 1.0]])
    labels = groups_from_ratios(t, 2.0)
    assert len(set(labels)) == 2 and labels[0] != labels[2]


def test_a_network_better_on_anothers_data_than_its_own_and_an_infinite_loss_are_handled():
    t = ratios([[1.0, 0.5], [float("inf"), 1.0]])
    assert groups_from_ratios(t, 2.0) == ["g1", "g2"]
    assert groups_from_ratios(ratios([[1.0, 0.5], [0.7, 1.0]]), 1.0) == ["g1", "g1"]   # S clipped at 1


def test_transfer_ratios_are_each_networks_loss_on_each_dataset_over_the_datasets_own(synth_dir, tmp_path):
    given = {"task": "ae", "datasets": "shapes-1,stripes-1,blobs-1", "width": 4, "batch_size": 4, "seed": 3}
    with training_session(tmp_path / "r", given, data_dir=synth_dir, device="cpu") as s:
        with torch.no_grad():                                  # three different networks
            for i, net in enumerate(s.ens.nets):
                for p in net.parameters():
                    p.add_(0.05 * i * torch.randn_like(p))
        by_hand = torch.zeros(3, 3, dtype=torch.float64)
        for i, net in enumerate(s.ens.nets):
            torch.set_grad_enabled(False)
            net.eval()
            for j, dom in enumerate(s.domains):
                gen = generator(3, "objective", dom.name)
                sq, count = 0.0, 0
                for idx in dom.train.batches(256):
                    x, target = s.task.inputs(dom.train, idx, gen)
                    sq += float(((net(x) - target) ** 2).sum())
                    count += target.numel()
                by_hand[i, j] = sq / count
            net.train()
            torch.set_grad_enabled(True)
        t = transfer_ratios(s)
    assert torch.allclose(t, by_hand / by_hand.diagonal()[None, :], rtol=1e-5)
    assert torch.equal(t.diagonal(), torch.ones(3, dtype=torch.float64))


def test_the_shared_start_is_the_members_mean_and_a_classifier_keeps_a_head_per_label_set(synth_dir, tmp_path):
    given = {"task": "classify", "datasets": "shapes-1,shapes-2,stripes-1", "width": 4, "batch_size": 4}
    with training_session(tmp_path / "c", given, data_dir=synth_dir, device="cpu") as s:
        with torch.no_grad():
            for i, net in enumerate(s.ens.nets):
                for p in net.parameters():
                    p.fill_(float(i))
        mean = members_mean(s, [0, 1, 2], heads_of=[0, 0, 1])
        w = mean["head.weight"]
        k = s.ens.nets[0].head.weight.shape[0]
        assert w.shape[0] == 2 * k                              # two label sets: two heads
        assert torch.all(w[:k] == 0.5) and torch.all(w[k:] == 2.0)   # shapes: mean of 0 and 1; stripes: 2
        body = [key for key, _ in s.ens.nets[0].named_parameters() if not key.startswith("head.")]
        assert body and all(torch.all(mean[key] == 1.0) for key in body)          # (0 + 1 + 2) / 3
        buffers = dict(s.ens.nets[0].named_buffers())
        assert all(torch.equal(mean[key], buffers[key]) for key in buffers if key != "class_mask")


def test_irls_starts_from_identical_networks_inside_each_learned_group(cli, synth_dir, tmp_path):
    run = tmp_path / "g"
    r = cli("irls", "--task", "ae", "--datasets", DATASETS, "--run", run, "--data-dir", synth_dir, *FLAGS,
            "--max-iters", "2", "--start", "groups", "--start-epochs", "2", "--group-ratio", "1.5")
    assert r.code == 0, r.err
    state = json.loads((run / "state.json").read_text())
    start = state["start"]
    t = torch.tensor(start["transfer_ratios"], dtype=torch.float64)
    assert start["labels"] == groups_from_ratios(t, 1.5) and start["epochs"] == 2
    assert "learned groups: " in r.err
    assert state["irls"]["iterations"]                         # the first iteration trains even if δ = 0
    w1 = torch.tensor(state["irls"]["iterations"][0]["weights"], dtype=torch.float64)
    labels = start["labels"]
    for i in range(4):
        for j in range(4):
            if labels[i] == labels[j]:                          # the same network: distance 0, weight 1
                assert torch.all(w1[:, i, j] == 1.0)
    assert (run / start["checkpoint"]).is_file()
    r = cli("evaluate", "--run", run, "--json")
    assert r.code == 0 and r.json["learned_groups"] == \
        [[d for d, g in zip(DATASETS.split(","), labels) if g == label] for label in dict.fromkeys(labels)]
    assert [p["members"] for p in start["parts"].values()] == \
        [[d for d, g in zip(DATASETS.split(","), labels) if g == label] for label in dict.fromkeys(labels)]
    epochs, why = joint_budget(RunConfig.from_json(json.loads((run / "config.json").read_text())), state)
    assert epochs == 1 + 2 + len(state["irls"]["iterations"])           # warm start + groups + IRLS
    assert why.startswith("joint: 1 warm start + 2 learned groups + ")


def test_start_groups_is_refused_where_it_cannot_apply(cli, synth_dir, tmp_path):
    r = cli("irls", "--task", "ae", "--datasets", DATASETS, "--run", tmp_path / "x", "--data-dir", synth_dir, *FLAGS,
            "--start", "groups", "--start-epochs", "-1")
    assert r.code == 2 and "--start-epochs must be a whole number ≥ 0" in r.err and not (tmp_path / "x").exists()
    r = cli("irls", "--task", "ae", "--datasets", DATASETS, "--run", tmp_path / "y", "--data-dir", synth_dir, *FLAGS,
            "--start", "groups", "--start-epochs", "1", "--group-ratio", "0.5")
    assert r.code == 2 and "--group-ratio must be a number ≥ 1" in r.err and not (tmp_path / "y").exists()
    r = cli("irls", "--task", "ae", "--datasets", DATASETS, "--run", tmp_path / "z", "--data-dir", synth_dir, *FLAGS,
            "--start", "random", "--group-ratio", "3")
    assert r.code == 2 and "--group-ratio applies with --start groups only" in r.err


@pytest.mark.slow
def test_a_killed_group_start_resumes_to_the_same_numbers(cli, synth_dir, tmp_path, monkeypatch):
    """Interrupted in the second group's training, the rerun ends with the numbers of an uninterrupted run."""
    args = ["--task", "ae", "--datasets", DATASETS, "--data-dir", synth_dir, *FLAGS, "--max-iters", "1",
            "--start", "groups", "--start-epochs", "2", "--group-ratio", "1"]      # ratio 1: a group per dataset
    assert cli("irls", *args, "--run", tmp_path / "whole").code == 0
    whole = json.loads((tmp_path / "whole" / "state.json").read_text())
    assert whole["start"]["labels"] == ["g1", "g2", "g3", "g4"]

    from jointnet_cli.joint import shared

    calls = {"n": 0}
    real = shared.Session.train_resumable

    def stop_in_second_group(self, state, entry, c, *, stage, **kw):
        if stage.startswith("start-") and stage != "start-g1":
            calls["n"] += 1
            raise KeyboardInterrupt
        return real(self, state, entry, c, stage=stage, **kw)

    monkeypatch.setattr(shared.Session, "train_resumable", stop_in_second_group)
    assert cli("irls", *args, "--run", tmp_path / "cut").code == 130 and calls["n"] == 1
    monkeypatch.setattr(shared.Session, "train_resumable", real)
    assert cli("irls", *args, "--run", tmp_path / "cut").code == 0
    cut = json.loads((tmp_path / "cut" / "state.json").read_text())
    assert cut["start"]["labels"] == whole["start"]["labels"]
    assert cut["irls"]["iterations"][-1]["metrics"] == whole["irls"]["iterations"][-1]["metrics"]


def test_auto_is_learned_groups_for_ae_and_classify_and_a_seeded_start_for_gan():
    made = {task: RunConfig(task=task, datasets=("a", "b")) for task in ("ae", "classify", "gan")}
    assert {task: cfg.start_method for task, cfg in made.items()} == {"ae": "groups", "classify": "groups",
                                                                      "gan": "random"}
    assert made["ae"].start == "auto" and made["ae"].start_budget == made["ae"].epochs   # 0: the warm start's
    assert RunConfig(task="ae", datasets=("a",), start_epochs=3).start_budget == 3
    assert made["gan"].start_budget == 0 and RunConfig(task="ae", datasets=("a",), start="random").start_budget == 0


def test_sigma_auto_anneals_for_a_gan_from_a_seeded_start_and_is_fixed_otherwise():
    def schedule(task, **given):
        return RunConfig(task=task, datasets=("a", "b"), **given).sigma_schedule

    assert [schedule(task) for task in ("ae", "classify", "gan")] == ["fixed", "fixed", "anneal"]
    assert schedule("gan", start="random") == "anneal" and schedule("gan", start="groups") == "fixed"
    assert schedule("gan", start="shareall") == "fixed"                  # not measured: the paper's σ
    assert schedule("ae", start="random") == "fixed"                     # annealing lost on ae (validation copy)
    assert schedule("ae", sigma="refit") == "refit" and schedule("gan", sigma="fixed") == "fixed"


def test_groups_list_their_members_in_order_of_first_member():
    from jointnet_cli.runs.config import group_members, joint_stages

    assert group_members(["g2", "g1", "g2", "g3"]) == [[0, 2], [1], [3]]
    assert joint_stages(4, 8, "groups") == "4 warm start + 8 learned groups"
    assert joint_stages(2, 3, "shareall") == "3 shareall start + 2 warm start"
    assert joint_stages(6, 0, "random") == "6 warm start"


def test_continuing_a_run_compares_the_sigma_schedule_it_ran_not_the_word_auto():
    from jointnet_cli.runs.configure import stage_conflicts

    gan = RunConfig(task="gan", datasets=("a", "b"))                       # --sigma auto ran anneal
    state = {"irls": {"iterations": [{"k": 1}], "settings": {"sigma": "anneal", "anneal": 1.4, "weight": "gm",
                                                             "penalty": "raw"}}}
    assert stage_conflicts(gan, {"sigma": "auto"}, state) == [] == stage_conflicts(gan, {"sigma": "anneal"}, state)
    [problem] = stage_conflicts(gan, {"sigma": "fixed"}, state)
    assert "--sigma fixed" in problem and "--sigma anneal" in problem
    ae = RunConfig(task="ae", datasets=("a", "b"))                         # auto means fixed here
    [problem] = stage_conflicts(ae, {"sigma": "auto"}, state)
    assert problem.startswith("--sigma auto (for this run: fixed): IRLS iteration 1 was computed with --sigma anneal")
    assert stage_conflicts(ae, {"sigma": "auto"}, {"irls": {"iterations": [{"k": 1}]}}) == []   # from config.json
    assert stage_conflicts(gan, {"sigma": "fixed"}, {"irls": {}}) == []  # free until IRLS iteration 1
