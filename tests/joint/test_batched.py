"""The `batched` schedule: all networks step together, minimizing the same objective as `bcd`."""

import dataclasses
import json
import warnings

import pytest
import torch

from jointnet_cli.data.loader import DomainData, SplitTensors, load_domains
from jointnet_cli.joint.batched import BatchedRounds, anchor_terms, pull, train_round_batched
from jointnet_cli.joint.cuda_graphs import WARMUP_STEPS
from jointnet_cli.joint.bcd import train_round
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.irls import run_irls
from jointnet_cli.joint.warmstart import run_warmstart
from jointnet_cli.models.registry import build
from jointnet_cli.tasks import make_task
from subprocess_runs import FLAGS, jointnet, kill_when, numbers    # helper modules beside this file
from toy_problem import Additive, Regression, toy_session


def sgd(net, lr):
    """Plain SGD: Adam would turn float rounding in near-zero gradients (the conv biases in front of
    BatchNorm, whose true gradient is 0) into full ±lr steps, hiding what these tests compare."""
    return [torch.optim.SGD(net.parameters(), lr=lr)]


# -- 1. same objective: the same IRLS weights as bcd ---------------------------------------------------------

def toy_irls(tmp_path, schedule: str) -> tuple[dict, dict]:
    """Warm start + 3 IRLS iterations of the 6-task / 3-group toy with the given schedule."""
    session = toy_session(tmp_path / schedule)
    session.cfg = dataclasses.replace(session.cfg, schedule=schedule, block="step", batch_size=8, epochs=15,
                                      epochs_per_iter=8, max_iters=3)
    return run_warmstart(session), run_irls(session)


def test_batched_and_bcd_reach_the_same_irls_weights_on_the_toy_problem(tmp_path):
    ws_bcd, bcd = toy_irls(tmp_path, "bcd")
    ws_batched, batched = toy_irls(tmp_path, "batched")

    assert torch.allclose(torch.tensor(ws_batched["sigma"]), torch.tensor(ws_bcd["sigma"]), rtol=1e-2)
    assert len(batched["iterations"]) == len(bcd["iterations"]) == 3
    for a, b in zip(bcd["iterations"], batched["iterations"]):
        w_bcd, w_batched = torch.tensor(a["weights"]), torch.tensor(b["weights"])   # (W, n, n), values in (0, 1]
        assert (w_batched - w_bcd).abs().max() < 2e-3         # measured: 3e-4
        assert w_bcd.min() < 0.2                              # not trivially equal: the groups have separated
    assert {h["schedule"] for h in ws_batched["history"]} == {"batched"}
    assert {h["schedule"] for h in ws_bcd["history"]} == {"bcd"}


# -- 2. BatchNorm: every network keeps and uses its own running statistics -----------------------------------

def test_with_no_coupling_a_batched_round_is_each_network_trained_alone(synth_dir):
    domains = load_domains(synth_dir, ["shapes-1", "stripes-1", "blobs-1"], "cpu")
    short = domains[1]                      # 11 images: batches of 6, 5 while the others have 6, 6, 4
    domains[1] = DomainData(short.name, SplitTensors(short.train.images[:11], None), short.test, short.manifest)
    torch.manual_seed(0)
    built = build("ae9", image_size=32, width=4)
    task = make_task("ae")
    alone, together = (Ensemble([d.name for d in domains], built.model, built.layers, lr=0.1, device="cpu",
                                optimizers=sgd) for _ in range(2))
    c = torch.zeros(len(built.layers), 3, 3, dtype=torch.float64)       # C = 0: nothing couples them

    for r in range(2):
        loss_alone = train_round(alone, c, domains, task, batch_size=6, seed=0, key=("round", r))
        loss_together = train_round_batched(together, c, domains, task, batch_size=6, seed=0, key=("round", r))

    assert loss_together == pytest.approx(loss_alone, rel=1e-5)
    for a, b in zip(alone.nets, together.nets):
        sa, sb = a.state_dict(), b.state_dict()
        for k in sa:                                          # parameters and buffers (running mean, var, count)
            assert torch.allclose(sb[k].double(), sa[k].double(), atol=1e-6), k
    stats = [net.enc1[1].running_mean for net in together.nets]
    assert not torch.allclose(stats[0], stats[1]) and not torch.allclose(stats[1], stats[2])   # one per network
    assert together.nets[1].enc1[1].num_batches_tracked == 4 and together.nets[0].enc1[1].num_batches_tracked == 6
    for d, a, b in zip(domains, alone.nets, together.nets):  # evaluation (eval mode) uses each network's own
        got, want = (task.evaluate(net, d.test, seed=0, dataset=d.name) for net in (b, a))
        assert got["mse"] == pytest.approx(want["mse"], rel=1e-5)


def test_a_batched_classify_round_is_repeatable(synth_dir):
    """Augmentation and dropout draw from generators keyed by the round: a rerun draws the same."""
    domains = load_domains(synth_dir, ["shapes-1", "stripes-1"], "cpu")
    torch.manual_seed(0)
    built = build("convnet", image_size=32, width=4, num_classes=4)
    task = make_task("classify", classes_per_head=4)
    runs = [Ensemble([d.name for d in domains], built.model, built.layers, lr=1e-2, device="cpu") for _ in range(2)]
    c = torch.ones(len(built.layers), 2, 2, dtype=torch.float64) - torch.eye(2, dtype=torch.float64)
    losses = [train_round_batched(ens, c, domains, task, batch_size=6, seed=0, key=("round",)) for ens in runs]
    assert losses[0] == losses[1]
    for a, b in zip(*(ens.nets for ens in runs)):
        assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


# -- 3. the coupling on live parameters is the gradient of the penalty ---------------------------------------

def test_the_coupling_gradient_is_the_gradient_of_the_penalty():
    g = torch.Generator().manual_seed(0)
    n = 5
    theta = torch.randn(n, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.rand(n, n, generator=g, dtype=torch.float64)
    c = c + c.T
    c.fill_diagonal_(0)
    c[0, :] = c[:, 0] = 0                                     # network 0 is not coupled: no pull
    penalty = sum(c[i, j] * (theta[i] - theta[j]).pow(2).sum() for i in range(n) for j in range(i + 1, n))
    penalty.backward()
    got = pull(theta.detach(), *anchor_terms(c))
    assert torch.allclose(got, theta.grad) and (got[0] == 0).all()


class PenaltyOnly(Regression):
    """A data loss that is always 0, so a step moves the parameters by the coupling alone."""

    def criterion(self, output, target):
        return 0 * output.sum()


def test_a_batched_step_follows_the_penalty_gradient_of_every_layer(tmp_path):
    session = toy_session(tmp_path)                           # 6 networks, 3 layers, one batch per epoch
    names = session.ens.names
    ens = Ensemble(names, Additive(), session.ens.layers, lr=0.1, device="cpu", optimizers=sgd)
    with torch.no_grad():
        for net in ens.nets:
            for p in net.parameters():
                p.normal_()
    g = torch.Generator().manual_seed(1)
    c = torch.rand(3, 6, 6, generator=g, dtype=torch.float64)
    c = c + c.transpose(1, 2)
    c[:, range(6), range(6)] = 0
    before = [[[p.detach().clone().requires_grad_() for p in layer] for layer in net] for net in ens.params]
    penalty = sum(c[l, i, j] * sum((a - b).pow(2).sum() for a, b in zip(before[i][l], before[j][l]))
                  for l in range(3) for i in range(6) for j in range(i + 1, 6))
    penalty.backward()

    train_round_batched(ens, c, session.domains, PenaltyOnly(), batch_size=40, seed=0, key=("one step",))
    for i in range(6):
        for l in range(3):
            for now, was in zip(ens.params[i][l], before[i][l]):
                assert torch.allclose(now.double(), (was - 0.1 * was.grad).double(), atol=1e-6)


# -- 4. on a GPU the steps replay CUDA graphs, with the numbers of eager steps ---------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("arch, optimizer", [("ae9", sgd), ("ae9", None), ("convnet", None)])   # None: Adam
def test_recorded_batched_steps_replay_exactly_what_eager_steps_compute(synth_dir, monkeypatch, arch, optimizer):
    """With deterministic cuDNN kernels a replay must give the eager step's numbers bit for bit: on datasets of
    other sizes (eager steps of some networks between replays), a coupling that changes every round with an
    uncoupled layer, dropout (convnet), and after a resume loads new Adam state (recorded again)."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    domains = load_domains(synth_dir, ["shapes-1", "stripes-1", "blobs-1"], "cuda")
    short = domains[1]                      # 11 images: batches of 6, 5 while the others have 6, 6, 4
    labels = None if short.train.labels is None else short.train.labels[:11]
    domains[1] = DomainData(short.name, SplitTensors(short.train.images[:11], labels), short.test, short.manifest)
    torch.manual_seed(0)
    if arch == "ae9":
        built, task = build("ae9", image_size=32, width=4), make_task("ae")
    else:
        built, task = build("convnet", image_size=32, width=4, num_classes=4), make_task("classify", classes_per_head=4)
    graphed, eager = (Ensemble([d.name for d in domains], built.model, built.layers, lr=1e-2, device="cuda",
                               optimizers=optimizer) for _ in range(2))
    # the eager reference: SGD without graphs; Adam as recorded (capturable: other rounding), but never recorded
    rounds = {"graphed": BatchedRounds(), "eager": BatchedRounds(graphs=False) if optimizer else
              BatchedRounds(warmup_steps=10**9)}
    c = torch.rand(len(built.layers), 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = c + c.transpose(1, 2)
    c[0] = 0
    resume = WARMUP_STEPS + 1 if optimizer is None else None     # Adam: new state before this round
    recorded = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")                            # a failed recording warns: fail instead
        for r in range(2 * WARMUP_STEPS + 2):
            if r == resume:
                for ens in (graphed, eager):
                    ens.load_optimizer_tensors({k: v.clone() for k, v in ens.optimizer_tensors().items()}, "test")
            losses = [train(ens, c * (r + 1), domains, task, batch_size=6, seed=0, key=("round", r))
                      for train, ens in zip(rounds.values(), (graphed, eager))]
            assert losses[0] == losses[1], r
            recorded.append(len(rounds["graphed"].recorder.recordings))
    # one full step a round (6 images each): WARMUP_STEPS rounds warm up, then it is recorded and replayed
    w = WARMUP_STEPS
    if resume is None:
        assert recorded == [0] * w + [1] * (w + 2)
    else:                                                         # new state: warm up and record again
        assert recorded == [0] * w + [1] + [0] * w + [1]
    assert not rounds["eager"].recorder.recordings

    for a, b in zip(graphed.nets, eager.nets):
        for k, v in b.state_dict().items():                       # parameters and each network's BatchNorm statistics
            assert torch.equal(a.state_dict()[k], v), k
    for k, v in eager.optimizer_tensors().items():                # Adam's state, step counts back on the CPU
        assert torch.equal(graphed.optimizer_tensors()[k], v) and (not k.endswith("/step") or v.device.type == "cpu")
    moved = [not torch.equal(p.cpu(), q) for p, q in zip(graphed.nets[0].parameters(), built.model.parameters())]
    assert sum(moved) > len(moved) / 2                            # it trained


def test_a_recording_needs_a_warm_up_step():
    with pytest.raises(ValueError, match="at least 1"):
        BatchedRounds(warmup_steps=0)


# -- 5. from the command line ---------------------------------------------------------------------------------

TINY = ["--task", "ae", "--epochs", "2", "--epochs-per-iter", "1", "--max-iters", "2", "--batch-size", "8",
        "--width", "4", "--device", "cpu"]


def test_irls_with_schedule_batched_end_to_end_and_per_stage(cli, synth_dir, tmp_path):
    run = tmp_path / "r"
    common = ["--run", run, "--data-dir", synth_dir]
    r = cli("irls", "--datasets", "shapes-1,stripes-1,blobs-1", *common, *TINY, "--schedule", "batched", "--json")
    assert r.code == 0, r.err
    state = json.loads((run / "state.json").read_text())
    assert json.loads((run / "config.json").read_text())["schedule"] == "batched"
    histories = [state["warmstart"]["history"], *(it["history"] for it in state["irls"]["iterations"])]
    assert {h["schedule"] for hist in histories for h in hist} == {"batched"}
    assert all(0 < v < 1 for hist in histories for h in hist for v in h["data_loss"].values())

    # the schedule may change between stages (same objective); shareall is one network and trains as bcd
    assert cli("baseline", "isolated", *common, "--schedule", "bcd").code == 0
    assert cli("baseline", "shareall", *common, "--schedule", "batched").code == 0
    baselines = json.loads((run / "state.json").read_text())["baselines"]
    assert {h["schedule"] for h in baselines["isolated"]["history"]} == {"bcd"}
    assert {h["schedule"] for h in baselines["shareall"]["history"]} == {"bcd"}


@pytest.mark.slow
def test_a_killed_batched_run_resumes_to_the_uninterrupted_numbers(synth_dir, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    flags = [*FLAGS, "--schedule", "batched"]
    p = jointnet("irls", "--run", clean, "--data-dir", synth_dir, *flags)
    assert p.wait() == 0, p.stderr.read().decode()
    p = jointnet("irls", "--run", killed, "--data-dir", synth_dir, *flags)
    assert kill_when(p, killed, lambda s: s.get("irls", {}).get("current", {}).get("epochs_done", 0) >= 1)
    p = jointnet("irls", "--run", killed, "--data-dir", synth_dir, *flags)
    assert p.wait() == 0, p.stderr.read().decode()
    assert numbers(killed) == numbers(clean)


def test_the_default_schedule_is_batched_on_a_gpu_for_small_one_loss_networks_and_bcd_otherwise(synth_dir, tmp_path):
    """README "Schedules": for ae9 on a GPU batched was 5.4-7.2x faster than bcd (n = 8 and 32, two calls); on a CPU bcd
    was faster."""
    from jointnet_cli.joint.stages import training_session

    resolved = {}
    for task, arch in (("ae", "ae9"), ("classify", "convnet"), ("classify", "resnet18"), ("gan", "dcgan")):
        given = {"task": task, "arch": arch, "datasets": "shapes-1,stripes-1", "width": 4, "batch_size": 4}
        with training_session(tmp_path / arch, given, data_dir=synth_dir, device="cpu") as s:
            assert s.cfg.schedule == "auto"
            on_cpu = s.schedule
            s.device = torch.device("cuda")            # what the schedule would be on a GPU (nothing runs there)
            resolved[arch] = (on_cpu, s.schedule)
        assert json.loads((tmp_path / arch / "config.json").read_text())["schedule"] == "auto"
    assert resolved == {"ae9": ("bcd", "batched"), "convnet": ("bcd", "batched"),
                        "resnet18": ("bcd", "bcd"),                 # a large backbone: n× the activations
                        "dcgan": ("bcd", "bcd")}                    # D then G steps


# -- 6. bad input -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task, schedule, message", [
    ("ae", "sometimes", "'sometimes' is not one of 'auto', 'bcd', 'batched'"),
    ("gan", "batched", "GAN runs (D then G steps) use --schedule bcd"),
])
def test_a_bad_schedule_is_one_line_exit_2(cli, synth_dir, tmp_path, task, schedule, message):
    r = cli("warmstart", "--task", task, "--datasets", "shapes-1", "--run", tmp_path / "R", "--data-dir", synth_dir,
            "--schedule", schedule)
    lines = r.err.strip().splitlines()
    assert r.code == 2 and len(lines) == 1 and message in lines[0], r.err
    assert not (tmp_path / "R").exists()


def test_an_existing_gan_run_refuses_schedule_batched(synth_dir, tmp_path):
    from jointnet_cli.errors import UserError
    from jointnet_cli.runs.config import RunConfig
    from jointnet_cli.runs.configure import configure_run
    from jointnet_cli.runs.rundir import RunDir

    run = RunDir(tmp_path / "gan")
    run.path.mkdir()
    run.write_config(RunConfig(task="gan", datasets=("shapes-1",), arch="dcgan").to_json(layers=[], data={}))
    with pytest.raises(UserError, match="GAN runs"):
        configure_run(run, {"schedule": "batched"}, data_dir=synth_dir)
    cfg, _, new = configure_run(run, {"schedule": "bcd"}, data_dir=synth_dir)
    assert cfg.schedule == "bcd" and not new
