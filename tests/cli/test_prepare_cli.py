"""`jointnet prepare` from the command line: a real folder, the builtin collection, and user mistakes."""

import json

import numpy as np
import pytest
from PIL import Image


def make_folder(root, classes=("cat", "dog"), per_class=5, size=40):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size + 7, 3), dtype=np.uint8)).save(root / c / f"img {k}.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_prepare_a_labelled_folder(cli, tmp_path):
    src = make_folder(tmp_path / "photos")
    r = cli("prepare", "pets", "--from", src, "--size", "16", "--train", "3", "--test", "2",
            "--data-dir", tmp_path / "data", "--json")
    assert r.code == 0, r.err
    (ds,) = r.json["datasets"]
    assert ds["counts"] == {"train": 6, "test": 4} and ds["classes"] == ["cat", "dog"]
    assert [s["path"] for s in ds["skipped"]] == ["cat/notes.txt"]
    manifest = json.loads((tmp_path / "data/pets/manifest.json").read_text())
    assert manifest["image_size"] == 16 and manifest["skipped"][0]["reason"]

    # again without --force: refused, the dataset untouched
    before = (tmp_path / "data/pets/train.safetensors").read_bytes()
    r = cli("prepare", "pets", "--from", src, "--size", "16", "--data-dir", tmp_path / "data")
    assert r.code == 2 and "--force" in r.err
    assert (tmp_path / "data/pets/train.safetensors").read_bytes() == before


def test_prepare_builtin_synth8_human_output(cli, tmp_path):
    r = cli("prepare", "--builtin", "synth8", "--size", "16", "--train", "4", "--test", "2", "--data-dir", tmp_path)
    assert r.code == 0, r.err
    lines = r.out.strip().splitlines()
    assert len(lines) == 8 and lines[0].startswith("shapes-1 (group shapes): 4 train / 2 test")


@pytest.mark.parametrize("args, message", [
    (["x", "--from", "{tmp}/missing"], "missing"),
    (["x", "--from", "{tmp}/empty"], "empty"),
    (["x", "--from", "{tmp}/photos", "--size", "0"], "size"),
    (["x", "--from", "{tmp}/photos", "--size", "5000"], "size"),
    (["x", "--from", "{tmp}/photos", "--train", "-3"], "--train"),
    (["x", "--from", "{tmp}/photos", "--test", "2.5"], "--test"),
    (["../escape", "--from", "{tmp}/photos"], "name"),
    (["x"], "--from"),
    (["--builtin", "synth9"], "synth9"),
    (["x", "--builtin", "synth8"], "not both"),
])
def test_prepare_mistakes_exit_2_with_one_line_and_write_nothing(cli, tmp_path, args, message):
    make_folder(tmp_path / "photos")
    (tmp_path / "empty").mkdir()
    data = tmp_path / "data"
    r = cli("prepare", *[a.format(tmp=tmp_path) for a in args], "--data-dir", data)
    lines = r.err.strip().splitlines()
    assert r.code == 2 and len(lines) == 1 and lines[0].startswith("jointnet: error:"), r.err
    assert message.lower() in lines[0].lower()
    assert not data.exists() or not any(data.iterdir())
