"""The classify task: accuracy by hand, per-dataset heads of different sizes, augmentation, init weights."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from jointnet_cli.data.augment import Augment, augment_batch
from jointnet_cli.data.loader import SplitTensors
from jointnet_cli.tasks.classify import ClassifyTask


class FixedLogits(nn.Module):
    """Predicts the class stored in the image's first pixel (red channel)."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        pred = (x[:, 0, 0, 0] * 255).round().long()
        return nn.functional.one_hot(pred, self.k).float()


def test_accuracy_on_a_fixed_set_equals_a_hand_count():
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2, 0])        # right: 1 + 2 + 1 = 4 of 7
    images = torch.zeros(7, 3, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = predicted.to(torch.uint8)
    task = ClassifyTask(classes_per_head=3, augment=None)
    m = task.evaluate(FixedLogits(3), SplitTensors(images, labels), seed=0, dataset="x", batch_size=3)
    assert m["accuracy"] == pytest.approx(4 / 7)
    assert m["per_class"] == pytest.approx([1 / 2, 2 / 3, 1 / 2])


def test_shared_multi_head_logits_pick_each_samples_own_head():
    task = ClassifyTask(classes_per_head=2, augment=None)
    logits = torch.arange(12.0).view(2, 6)                     # 2 samples, 3 heads of 2 classes
    own, y = task.logits_for(logits, torch.tensor([1 * 2 + 1, 2 * 2 + 0]))
    assert own.tolist() == [[2.0, 3.0], [10.0, 11.0]] and y.tolist() == [1, 0]


def test_augmentation_is_seeded_and_identity_when_switched_off():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=g)
    plain = Augment(crop_scale=(1.0, 1.0), aspect=(1.0, 1.0), flip=False, jitter=0.0)
    assert torch.allclose(augment_batch(images, plain, torch.Generator().manual_seed(1)), images.float() / 255, atol=1e-5)
    a = augment_batch(images, Augment(), torch.Generator().manual_seed(5))
    b = augment_batch(images, Augment(), torch.Generator().manual_seed(5))
    c = augment_batch(images, Augment(), torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.min() >= 0 and a.max() <= 1


def two_class_folder(root, n=12, size=32):
    rng = np.random.default_rng(0)
    from PIL import Image

    for cls, colour in (("red", (200, 30, 30)), ("green", (30, 200, 30))):
        (root / cls).mkdir(parents=True)
        for k in range(n):
            img = np.clip(np.array(colour) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / cls / f"{k}.png")
    return root


def test_heads_of_different_sizes_train_together(cli, synth_dir, tmp_path):
    from jointnet_cli.data.ingest import prepare_folder

    prepare_folder("duo", two_class_folder(tmp_path / "duo"), data_dir=synth_dir, size=32, train=8, test=4)
    run = tmp_path / "run"
    r = cli("irls", "--task", "classify", "--arch", "convnet", "--datasets", "duo,shapes-1", "--run", run,
            "--data-dir", synth_dir, "--width", "4", "--epochs", "1", "--epochs-per-iter", "1", "--max-iters", "1",
            "--device", "cpu", "--json")
    assert r.code == 0, r.err
    config = json.loads((run / "config.json").read_text())
    assert all("head" not in name for layer in config["layers"] for name in layer)        # heads are never coupled
    from jointnet_cli.store.tensors import load_tensors

    t, _ = load_tensors(run / "checkpoints/irls-001.safetensors")
    assert t["duo/class_mask"].tolist() == [True, True, False, False]
    assert t["shapes-1/class_mask"].tolist() == [True] * 4
    assert len(r.json["iterations"][0]["metrics"]["duo"]["per_class"]) == 4


def test_classification_refuses_unlabelled_data(cli, synth_dir, tmp_path):
    from PIL import Image

    from jointnet_cli.data.ingest import prepare_folder

    flat = tmp_path / "flat"
    flat.mkdir()
    for k in range(6):
        Image.new("RGB", (32, 32), (k * 40, 0, 0)).save(flat / f"{k}.png")
    data = tmp_path / "data"
    prepare_folder("flat", flat, data_dir=data, size=32, train=4, test=2)
    r = cli("warmstart", "--task", "classify", "--datasets", "flat", "--run", tmp_path / "r", "--data-dir", data)
    assert r.code == 2 and "needs labelled datasets" in r.err and not (tmp_path / "r").exists()


def test_classify_baselines_and_evaluate_report_per_class_accuracy(cli, synth_dir, tmp_path):
    run = tmp_path / "cls"
    common = ["--run", run, "--data-dir", synth_dir]
    r = cli("irls", "--task", "classify", "--datasets", "shapes-1,stripes-1", *common, "--width", "4", "--epochs", "1",
            "--epochs-per-iter", "1", "--max-iters", "1", "--device", "cpu")
    assert r.code == 0, r.err
    for args in (["shareall"], ["l2"], ["l2-partial", "--fraction", "0.5"], ["isolated"]):
        r = cli("baseline", *args, *common, "--budget", "1")
        assert r.code == 0, r.err
    r = cli("baseline", "finetune", *common, "--budget", "2")      # 1 epoch pretraining on the union, 1 alone
    assert r.code == 0, r.err
    from jointnet_cli.store.tensors import load_tensors

    shared, _ = load_tensors(run / "checkpoints/shareall.safetensors")
    assert torch.equal(shared["shapes-1/conv2.0.weight"], shared["stripes-1/conv2.0.weight"])   # one backbone
    assert not torch.equal(shared["shapes-1/head.weight"], shared["stripes-1/head.weight"])     # one head each
    r = cli("evaluate", *common, "--json")
    assert r.code == 0, r.err
    res = r.json
    assert res["metric"] == "accuracy" and res["higher_is_better"] is True
    assert set(res["metrics"]) == {"joint", "shareall", "finetune", "l2", "l2-partial-50", "isolated"}
    m = res["metrics"]["shareall"]["shapes-1"]
    assert len(m["per_class"]) == 4 and 0 <= m["accuracy"] <= 1
    assert set(res["tables"]) == {"accuracy"}                  # per-class lists stay out of the tables


def test_calibrate_sets_batchnorm_statistics_to_those_of_the_plain_training_images():
    """After `calibrate`, a BatchNorm's running mean and variance are the per-channel mean and (unbiased)
    variance of its input over the unaugmented training split (averaged over equal chunks); training
    mode and momentum are as before, and the parameters are untouched."""
    from jointnet_cli.data.loader import as_float

    torch.manual_seed(0)
    conv, norm = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.3)
    net = nn.Sequential(conv, norm, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    split = SplitTensors(images, torch.zeros(10, dtype=torch.long))
    net.eval()
    weights = [p.clone() for p in net.parameters()]
    ClassifyTask(2, Augment()).calibrate(net, split, chunk=5)                # two chunks of 5
    with torch.no_grad():
        feats = [conv(as_float(images[k:k + 5])) for k in (0, 5)]
    mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.transpose(0, 1).reshape(4, -1).var(dim=1) for f in feats]).mean(0)
    assert torch.allclose(norm.running_mean, mean, atol=1e-6)
    assert torch.allclose(norm.running_var, var, atol=1e-6)
    assert not net.training and norm.momentum == 0.3
    assert all(torch.equal(p, w) for p, w in zip(net.parameters(), weights))


def test_a_recipe_can_turn_flips_off_and_the_config_records_it(synth_dir, tmp_path):
    """`flip = false` (for labels a mirror changes, like stripe directions) reaches the augmentation and
    config.json; the default keeps flips."""
    from jointnet_cli.joint.stages import training_session

    given = {"task": "classify", "datasets": "stripes-1,stripes-2", "width": 4, "flip": False}
    with training_session(tmp_path / "off", given, data_dir=synth_dir, device="cpu") as s:
        assert s.task.augment.flip is False
    assert json.loads((tmp_path / "off" / "config.json").read_text())["flip"] is False
    with training_session(tmp_path / "on", {**given, "flip": True}, data_dir=synth_dir, device="cpu") as s:
        assert s.task.augment.flip is True
