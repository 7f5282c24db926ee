"""Bad input to every subcommand: exit code 2, one line on stderr that names the problem, nothing on disk touched.

Each case runs one `jointnet` command that must be refused (DESIGN §3: "Errors are one clear line on stderr
and exit code 2 (bad usage/input) … never a traceback for a user mistake"). Before and after the command we
snapshot every file (and folder) of the test's working folder and of the shared synth8 data: no file may be
written, changed or removed, and no new run directory may appear.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jointnet_cli.cli.app import main

TINY = ["--width", "4", "--epochs", "1", "--batch-size", "8", "--device", "cpu"]


# ---------------------------------------------------------------- helpers


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and every folder (None) under `roots`."""
    out: dict[str, bytes | None] = {}
    for root in roots:
        root = Path(root)
        if root.exists():
            out[str(root)] = None
        for p in root.rglob("*"):
            out[str(p)] = p.read_bytes() if p.is_file() else None
    return out


def changed(before: dict, after: dict) -> list[str]:
    """Paths that were added, removed or rewritten (sorted), for a readable assertion message."""
    missing = object()
    return sorted(p for p in before.keys() | after.keys() if before.get(p, missing) != after.get(p, missing))


def assert_refused(r, *words: str) -> None:
    """Exit 2 and exactly one stderr line `jointnet: error: …` that mentions every word (case-insensitive)."""
    assert r.code == 2, f"exit code {r.code}, stderr:\n{r.err}"
    lines = r.err.splitlines()
    assert len(lines) == 1, f"stderr is {len(lines)} lines, not one:\n{r.err}"
    line = lines[0]
    assert line.startswith("jointnet: error:"), line
    assert "Traceback" not in line
    for w in words:
        assert w.lower() in line.lower(), f"{w!r} not named in: {line}"


@pytest.fixture
def refused(cli, synth_dir, tmp_path, monkeypatch):
    """`refused(args, *words)`: run `jointnet ARGS` in tmp_path and check it is refused without touching the disk."""
    monkeypatch.chdir(tmp_path)               # a default `runs/…` or `data/` would land here and be caught

    def check(args, *words: str):
        before = snapshot(tmp_path, synth_dir)
        r = cli(*args)
        assert_refused(r, *words)
        assert changed(before, snapshot(tmp_path, synth_dir)) == [], "files changed on disk"
        return r

    return check


def _jointnet(*args) -> None:
    """Run a setup command that must succeed (outside a test's `cli` capture)."""
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        assert e.code == 0, f"setup command failed: jointnet {' '.join(map(str, args))}"


def write_images(folder: Path, n: int, size: int = 40, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"img{k}.png")


@pytest.fixture(scope="module")
def ae_run(synth_dir, tmp_path_factory) -> Path:
    """A tiny finished ae warm start on shapes-1,stripes-1 (copy it before corrupting it)."""
    run = tmp_path_factory.mktemp("ae") / "R"
    _jointnet("warmstart", "--task", "ae", "--datasets", "shapes-1,stripes-1", "--run", run,
              "--data-dir", synth_dir, *TINY)
    return run


@pytest.fixture(scope="module")
def convnet_checkpoint(synth_dir, tmp_path_factory) -> Path:
    """The warm-start checkpoint of a tiny classify/convnet run on the same two datasets."""
    run = tmp_path_factory.mktemp("cls") / "C"
    _jointnet("warmstart", "--task", "classify", "--arch", "convnet", "--datasets", "shapes-1,stripes-1",
              "--run", run, "--data-dir", synth_dir, *TINY)
    return run / "checkpoints" / "warmstart.safetensors"


@pytest.fixture(scope="module")
def mixed_dir(synth_dir, tmp_path_factory) -> Path:
    """A data dir with synth8's shapes-1 (32 px, labelled), `small` (16 px, labelled) and `flat` (32 px, unlabelled)."""
    root = tmp_path_factory.mktemp("mixed")
    data = root / "data"
    shutil.copytree(synth_dir / "shapes-1", data / "shapes-1")
    for c in ("a", "b"):
        write_images(root / "classes" / c, 5, seed=ord(c))
    write_images(root / "flat", 8)
    _jointnet("prepare", "small", "--from", root / "classes", "--size", "16", "--train", "3", "--test", "2",
              "--data-dir", data)
    _jointnet("prepare", "flat", "--from", root / "flat", "--size", "32", "--train", "4", "--test", "2",
              "--data-dir", data)
    return data


@pytest.fixture
def run(ae_run, tmp_path) -> Path:
    """A private copy of the trained ae run, at tmp_path/R."""
    return Path(shutil.copytree(ae_run, tmp_path / "R"))


# ---------------------------------------------------------------- a new run: settings and --datasets


@pytest.mark.parametrize("args, words", [
    (["--datasets", "shapes-1,nope"], ["nope"]),                               # unknown dataset
    (["--datasets", "shapes-1,stripes-1,shapes-1"], ["shapes-1", "more than once"]),
    (["--datasets", "@nosuchcollection"], ["@nosuchcollection"]),
    (["--datasets", "shapes-1,.."], ["'..'"]),                                 # would leave the data dir
    (["--datasets", "shapes-1,../synth8/shapes-1"], ["../synth8/shapes-1"]),
    (["--datasets", "shapes-1,stripes-1", "--lambda", "-1"], ["--lambda"]),
    (["--datasets", "shapes-1,stripes-1", "--lambda", "0"], ["--lambda"]),
    (["--datasets", "shapes-1,stripes-1", "--lr", "0"], ["--lr"]),
    (["--datasets", "shapes-1,stripes-1", "--lr", "-0.001"], ["--lr"]),
    (["--datasets", "shapes-1,stripes-1", "--epochs", "0"], ["--epochs"]),
    (["--datasets", "shapes-1,stripes-1", "--batch-size", "-8"], ["--batch-size"]),
    (["--datasets", "shapes-1,stripes-1", "--batch-size", "0"], ["--batch-size"]),
    (["--datasets", "shapes-1,stripes-1", "--tol", "0"], ["--tol"]),
    (["--datasets", "shapes-1,stripes-1", "--tol", "-0.5"], ["--tol"]),
])
def test_a_new_run_with_bad_settings_is_refused(refused, synth_dir, tmp_path, args, words):
    # TINY comes first so that the flag under test (e.g. --epochs 0) is the one that counts
    refused(["irls", "--task", "ae", "--run", tmp_path / "new", "--data-dir", synth_dir, *TINY, *args], *words)


def test_datasets_of_different_image_sizes_are_refused(refused, mixed_dir, tmp_path):
    refused(["warmstart", "--task", "ae", "--datasets", "shapes-1,small", "--run", tmp_path / "new",
             "--data-dir", mixed_dir, *TINY], "different image sizes", "small 16 px", "shapes-1 32 px")


def test_classification_on_unlabelled_data_is_refused(refused, mixed_dir, tmp_path):
    before = snapshot(mixed_dir)
    refused(["warmstart", "--task", "classify", "--datasets", "shapes-1,flat", "--run", tmp_path / "new",
             "--data-dir", mixed_dir, *TINY], "labelled", "flat")
    assert changed(before, snapshot(mixed_dir)) == []


# ---------------------------------------------------------------- an existing run: flags it cannot take


@pytest.mark.parametrize("args, words", [
    (["--lambda", "5"], ["--lambda (run has 1.0)"]),
    (["--datasets", "shapes-1,blobs-1"], ["--datasets (run has shapes-1,stripes-1)"]),
    (["--arch", "convnet"], ["--arch (run has ae9)"]),
    (["--tol", "-1"], ["--tol"]),                        # adjustable on an existing run, but still checked
    (["--max-iters", "0"], ["--max-iters"]),
])
def test_an_existing_run_refuses_incompatible_or_bad_flags(refused, run, synth_dir, args, words):
    refused(["irls", "--run", run, "--data-dir", synth_dir, "--device", "cpu", *args], *words)


# ---------------------------------------------------------------- an existing run whose files are damaged


def random_bytes(path: Path, other: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def truncated(path: Path, other: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def other_architecture(path: Path, other: Path) -> None:
    shutil.copyfile(other, path)


@pytest.mark.parametrize("damage", [random_bytes, truncated, other_architecture])
def test_a_damaged_checkpoint_named_in_state_json_is_refused(refused, run, synth_dir, convnet_checkpoint, damage):
    state = json.loads((run / "state.json").read_text())
    checkpoint = run / state["warmstart"]["checkpoint"]
    damage(checkpoint, convnet_checkpoint)
    refused(["irls", "--run", run, "--data-dir", synth_dir, "--device", "cpu", *TINY], "warmstart.safetensors")


@pytest.mark.parametrize("file, content, words", [
    ("state.json", b'{"warmstart": {"epochs_done": 1,', ["state.json", "not valid JSON"]),
    ("state.json", b"[1, 2, 3]\n", ["state.json", "not a JSON object"]),
    ("state.json", json.dumps({"format": "jointnet-state/99"}).encode(), ["state.json", "jointnet-state/99"]),
    ("state.json", b"\xff\xfe\x00 binary", ["state.json", "not UTF-8"]),
    ("config.json", b"{{{", ["config.json", "not valid JSON"]),
    ("config.json", b'"ae"', ["config.json", "not a JSON object"]),
])
def test_a_run_with_unreadable_json_is_refused(refused, run, synth_dir, file, content, words):
    (run / file).write_bytes(content)
    refused(["irls", "--run", run, "--data-dir", synth_dir, "--device", "cpu"], *words)


def test_a_config_json_from_a_newer_jointnet_is_refused(refused, run, synth_dir):
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "format": "jointnet-run/2"}))
    refused(["irls", "--run", run, "--data-dir", synth_dir, "--device", "cpu"], "config.json", "jointnet-run/2")


# ---------------------------------------------------------------- recipes


@pytest.mark.parametrize("recipe, words", [
    ("task = 'ae'\nspeed = 3\n", ["unknown key", "speed"]),
    ("task = 'ae'\n[irls]\nepochs = 'ten'\n", ["'epochs' must be int", "ten"]),
    ("task = 'ae'\nlambda = true\n", ["'lambda' must be float"]),
    ("[nosuchcommand]\nepochs = 1\n", ["[nosuchcommand]"]),
    ("epochs = = 3\n", ["not valid TOML"]),
    ("\x00\x01 binary", ["not valid TOML"]),
])
def test_a_bad_recipe_is_refused(refused, synth_dir, tmp_path, recipe, words):
    path = tmp_path / "recipe.toml"
    path.write_text(recipe)
    refused(["irls", "--recipe", path, "--datasets", "shapes-1,stripes-1", "--run", tmp_path / "new",
             "--data-dir", synth_dir, *TINY], *words)


def test_a_missing_recipe_is_refused(refused, synth_dir, tmp_path):
    refused(["warmstart", "--recipe", tmp_path / "nope.toml", "--task", "ae", "--datasets", "shapes-1",
             "--run", tmp_path / "new", "--data-dir", synth_dir], "recipe not found", "nope.toml")


def unreadable(path: Path) -> None:
    """chmod 000 `path`, or skip the test when this user can read it anyway (root)."""
    path.chmod(0)
    if os.access(path, os.R_OK):
        path.chmod(0o755)
        pytest.skip("running as a user who reads files without read permission (root): cannot test chmod 000")


def test_a_recipe_without_read_permission_is_refused(cli, synth_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "recipe.toml"
    path.write_text("task = 'ae'\n")
    before = snapshot(tmp_path)
    unreadable(path)
    try:
        r = cli("warmstart", "--recipe", path, "--datasets", "shapes-1", "--run", tmp_path / "new",
                "--data-dir", synth_dir)
    finally:
        path.chmod(0o644)
    assert_refused(r, "cannot read recipe", "recipe.toml")
    assert changed(before, snapshot(tmp_path)) == []


# ---------------------------------------------------------------- prepare


def test_prepare_from_a_folder_of_non_images_is_refused(refused, tmp_path):
    src = tmp_path / "fake"
    src.mkdir()
    for k in range(4):
        (src / f"photo{k}.jpg").write_text(f"not a jpeg {k}\n")
    refused(["prepare", "fake", "--from", src, "--size", "16", "--train", "2", "--test", "1",
             "--data-dir", tmp_path / "data"], "no image", "could be decoded")


@pytest.mark.parametrize("name, words", [
    ("../escape", ["../escape", "single folder name"]),
    ("/abs", ["/abs", "single folder name"]),
    ("..", ["'..'"]),
    (".hidden", [".hidden"]),
])
def test_prepare_refuses_a_name_that_is_not_one_folder(refused, tmp_path, name, words):
    write_images(tmp_path / "photos", 6)
    refused(["prepare", name, "--from", tmp_path / "photos", "--size", "16", "--train", "2", "--test", "1",
             "--data-dir", tmp_path / "data"], *words)


def test_prepare_from_a_folder_without_read_permission_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "photos"
    write_images(src, 6)
    before = snapshot(tmp_path)
    unreadable(src)
    try:
        r = cli("prepare", "x", "--from", src, "--size", "16", "--train", "2", "--test", "1",
                "--data-dir", tmp_path / "data")
    finally:
        src.chmod(0o755)
    assert_refused(r, "photos")
    assert changed(before, snapshot(tmp_path)) == []


# ---------------------------------------------------------------- complete, sample, evaluate, baseline


def test_complete_with_a_dataset_the_run_does_not_have_is_refused(refused, run, tmp_path):
    write_images(tmp_path / "in", 1, size=32)
    refused(["complete", "--run", run, "--dataset", "blobs-1", "--device", "cpu", tmp_path / "in" / "img0.png"],
            "blobs-1", "shapes-1, stripes-1")


def test_sample_on_an_ae_run_is_refused(refused, run, tmp_path):
    refused(["sample", "--run", run, "--dataset", "shapes-1", "-n", "4", "--out", tmp_path / "grid.png",
             "--device", "cpu"], "task ae", "a gan run")


def test_evaluate_on_a_folder_that_is_not_a_run_is_refused(refused, synth_dir, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("train things\n")
    refused(["evaluate", "--run", tmp_path / "notes", "--data-dir", synth_dir, "--device", "cpu"],
            "no run at", "config.json missing")


@pytest.mark.parametrize("args, words", [
    (["l2-partial", "--fraction", "0"], ["--fraction", "(0, 1]"]),
    (["l2-partial", "--fraction", "1.5"], ["--fraction", "1.5"]),
    (["l2-partial", "--fraction", "-0.25"], ["--fraction"]),
    (["nosuchmethod"], ["nosuchmethod", "isolated"]),
    (["isolated", "--budget", "0"], ["--budget"]),
])
def test_a_bad_baseline_is_refused(refused, run, synth_dir, args, words):
    refused(["baseline", *args, "--run", run, "--data-dir", synth_dir, "--device", "cpu"], *words)
