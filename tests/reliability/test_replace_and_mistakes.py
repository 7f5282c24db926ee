"""`prepare --force` never leaves a name without a dataset; temporary files of killed commands are cleaned;
user mistakes (a file given as a folder, a dataset without training images, a link out of the run) are one
line and exit 2, with nothing written."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from jointnet_cli.data.format import MANIFEST, Split, exchange, read_manifest, recover, write_dataset

TINY = ["--task", "ae", "--datasets", "shapes-1,stripes-1", "--width", "4", "--batch-size", "8", "--epochs", "1",
        "--epochs-per-iter", "1", "--max-iters", "1", "--device", "cpu"]


def split(value: int, n: int = 3) -> Split:
    return Split(np.full((n, 3, 8, 8), value, np.uint8), None)


def dataset(data: Path, name: str, value: int, **kw) -> Path:
    return write_dataset(data, name, split(value), split(value, 2), {"source": "test", "classes": []}, **kw)


def first_pixel(data: Path, name: str) -> int:
    from jointnet_cli.data.format import load_dataset

    return int(load_dataset(data, name).train.images[0, 0, 0, 0])


def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("A")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("B")
    if not exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this system has no atomic exchange; prepare --force takes two renames and `recover`")
    assert (tmp_path / "a" / "x").read_text() == "B" and (tmp_path / "b" / "x").read_text() == "A"


def test_force_replaces_the_dataset_and_leaves_no_temporary_folder(tmp_path):
    dataset(tmp_path, "d", 1)
    dataset(tmp_path, "d", 2, force=True)
    assert first_pixel(tmp_path, "d") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def killed_between_the_renames(data: Path, name: str, new_value: int) -> None:
    """What two renames leave when killed between them: the old dataset moved aside, the complete new one
    still in its temporary folder, nothing under NAME (made by a process that no longer runs: pid 0x7fffffff)."""
    dataset(data, name, 1)
    old = data / f".{name}.old-2147483647-abc"
    old.mkdir()
    os.replace(data / name, old / "dataset")
    tmp_root = data / "staging"
    dataset(tmp_root, name, new_value)
    os.replace(tmp_root / name, data / f".{name}.tmp-2147483647-xyz")
    tmp_root.rmdir()


def test_a_replacement_killed_between_its_renames_is_finished_by_the_next_command(cli, tmp_path):
    killed_between_the_renames(tmp_path, "d", 7)
    assert not (tmp_path / "d").exists()
    assert read_manifest(tmp_path, "d")["name"] == "d"             # any command that reads it recovers it
    assert first_pixel(tmp_path, "d") == 7                          # the complete new dataset won
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_without_a_complete_new_dataset_the_old_one_is_put_back_and_partial_folders_removed(tmp_path):
    killed_between_the_renames(tmp_path, "d", 7)
    (tmp_path / ".d.tmp-2147483647-xyz" / MANIFEST).unlink()        # the new one was not finished
    (tmp_path / ".e.tmp-2147483647-q").mkdir()                        # a first write killed early
    assert recover(tmp_path) == ["d"]
    assert first_pixel(tmp_path, "d") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_a_live_prepare_keeps_its_temporary_folder(tmp_path):
    mine = tmp_path / f".d.tmp-{os.getpid()}-abc"
    mine.mkdir()
    recover(tmp_path)
    assert mine.is_dir()


@pytest.fixture
def trained(cli, synth_dir, tmp_path) -> Path:
    run = tmp_path / "R"
    assert cli("irls", *TINY, "--run", run, "--data-dir", synth_dir).code == 0
    return run


def test_evaluate_removes_the_temporary_files_of_a_killed_evaluate(cli, trained):
    stale = trained / "report" / ".results.json.abc123.tmp"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"half")
    assert cli("evaluate", "--run", trained).code == 0
    assert not stale.exists() and (trained / "report" / "results.json").is_file()


def test_complete_removes_the_temporary_files_of_a_killed_complete(cli, trained, tmp_path):
    from PIL import Image

    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8)).save(image)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".in.png.k2j3.tmp"
    stale.write_bytes(b"half")
    r = cli("complete", "--run", trained, "--dataset", "shapes-1", image, "--out", out, "--hole", "6")
    assert r.code == 0, r.err
    assert not stale.exists() and (out / "in.png").is_file()


def assert_one_line_refusal(r, *words):
    assert r.code == 2, r.err
    assert len(r.err.strip().splitlines()) == 1 and all(w in r.err for w in words), r.err


def test_a_file_given_as_run_or_data_dir_is_refused(cli, synth_dir, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_one_line_refusal(cli("irls", *TINY, "--run", afile, "--data-dir", synth_dir), "--run", "not a folder")
    assert_one_line_refusal(cli("irls", *TINY, "--run", afile / "sub", "--data-dir", synth_dir), "--run",
                            "afile is a file")
    assert_one_line_refusal(cli("irls", *TINY, "--run", tmp_path / "r2", "--data-dir", afile), "--data-dir")
    assert_one_line_refusal(cli("prepare", "x", "--from", synth_dir, "--data-dir", afile), "--data-dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"] and afile.read_text() == "x"


def test_a_dataset_without_training_images_is_refused_before_anything_is_written(cli, synth_dir, tmp_path):
    data = Path(shutil.copytree(synth_dir / "shapes-1", tmp_path / "data" / "shapes-1")).parent
    dataset(data, "empty", 3)
    manifest = json.loads((data / "empty" / MANIFEST).read_text())
    manifest["counts"]["train"] = 0                                  # as a damaged or hand-made dataset says
    (data / "empty" / MANIFEST).write_text(json.dumps(manifest))
    r = cli("irls", "--task", "ae", "--datasets", "shapes-1,empty", "--run", tmp_path / "r", "--data-dir", data,
            "--device", "cpu")
    assert_one_line_refusal(r, "empty", "no training images")
    assert not (tmp_path / "r").exists()


def test_evaluate_does_not_write_through_a_report_link_that_leaves_the_run(cli, trained, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.rmtree(trained / "report", ignore_errors=True)
    (trained / "report").symlink_to(outside)
    assert_one_line_refusal(cli("evaluate", "--run", trained), "report", "outside the run")
    assert list(outside.iterdir()) == []
    (trained / "report").unlink()
    (trained / "metrics.csv").unlink()
    (trained / "metrics.csv").symlink_to(outside / "m.csv")
    assert_one_line_refusal(cli("irls", "--run", trained, "--max-iters", "2"), "metrics.csv", "outside the run")
    assert list(outside.iterdir()) == []
