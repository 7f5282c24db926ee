"""The prepared-dataset format: names, atomic deterministic writes, checked loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from jointnet_cli.data.format import (
    FORMAT,
    Split,
    list_datasets,
    load_dataset,
    read_manifest,
    validate_name,
    write_dataset,
)
from jointnet_cli.errors import UserError


def tiny_split(n: int, seed: int, *, labelled: bool = True) -> Split:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, n).astype(np.int64) if labelled else None
    return Split(images=images, labels=labels)


CALLER_KEYS = {"source": "test", "classes": ["a", "b", "c"], "split_seed": 0, "skipped": []}


def write_tiny(data_dir: Path, name: str = "tiny", *, seed: int = 0, force: bool = False) -> Path:
    return write_dataset(data_dir, name, tiny_split(6, seed), tiny_split(2, seed + 100), dict(CALLER_KEYS), force=force)


@pytest.mark.parametrize("name", ["bird", "dog_2", "ae-8.v1", "café", "猫", "A1"])
def test_valid_names_pass_through(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        (".hidden", "start with '.'"),
        ("../x", "single folder name"),
        ("a/b", "single folder name"),
        ("a\\b", "single folder name"),
        ("/abs", "single folder name"),
        ("x..y", "'..'"),
        ("two words", "characters other than"),
        ("semi;colon", "characters other than"),
    ],
)
def test_bad_names_are_refused_with_the_reason(name: str, problem: str) -> None:
    with pytest.raises(UserError) as e:
        validate_name(name)
    assert problem in str(e.value)


def test_round_trip_keeps_arrays_and_fills_the_manifest(tmp_path: Path) -> None:
    train, test = tiny_split(6, 0), tiny_split(2, 1)
    path = write_dataset(tmp_path, "tiny", train, test, dict(CALLER_KEYS, group="g1"))

    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "test.safetensors", "train.safetensors"]
    ds = load_dataset(tmp_path, "tiny")
    np.testing.assert_array_equal(ds.train.images, train.images)
    np.testing.assert_array_equal(ds.train.labels, train.labels)
    np.testing.assert_array_equal(ds.test.images, test.images)
    m = ds.manifest
    assert m["format"] == FORMAT and m["name"] == "tiny" and m["source"] == "test"
    assert (m["image_size"], m["channels"], m["labelled"]) == (8, 3, True)
    assert m["counts"] == {"train": 6, "test": 2}
    assert set(m["sha256"]) == {"train.safetensors", "test.safetensors"}
    assert (ds.labelled, ds.image_size, ds.num_classes, ds.group) == (True, 8, 3, "g1")


def test_manifest_json_is_sorted_indented_and_ends_with_newline(tmp_path: Path) -> None:
    text = (write_tiny(tmp_path) / "manifest.json").read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_same_inputs_give_byte_identical_files(tmp_path: Path) -> None:
    a, b = write_tiny(tmp_path / "a"), write_tiny(tmp_path / "b")
    for f in ("train.safetensors", "test.safetensors", "manifest.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_unlabelled_split_has_no_labels_tensor(tmp_path: Path) -> None:
    path = write_dataset(
        tmp_path, "flat", tiny_split(4, 0, labelled=False), tiny_split(1, 1, labelled=False), dict(CALLER_KEYS, classes=[])
    )
    assert set(safetensors.numpy.load_file(path / "train.safetensors")) == {"images"}
    ds = load_dataset(tmp_path, "flat")
    assert ds.train.labels is None and not ds.labelled and ds.num_classes == 0


def test_empty_split_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="test split would be empty"):
        write_dataset(tmp_path, "tiny", tiny_split(3, 0), tiny_split(0, 1), dict(CALLER_KEYS))
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_existing_dataset_needs_force_and_is_replaced_whole(tmp_path: Path) -> None:
    first = (write_tiny(tmp_path, seed=0) / "train.safetensors").read_bytes()
    with pytest.raises(UserError, match=r"dataset 'tiny' already exists in .* \(use --force to overwrite\)"):
        write_tiny(tmp_path, seed=5)
    assert (tmp_path / "tiny" / "train.safetensors").read_bytes() == first

    write_tiny(tmp_path, seed=5, force=True)
    assert (tmp_path / "tiny" / "train.safetensors").read_bytes() != first
    assert load_dataset(tmp_path, "tiny").train.images.shape == (6, 3, 8, 8)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no temporary or old folders left


def test_missing_dataset_lists_what_is_there(tmp_path: Path) -> None:
    write_tiny(tmp_path, "bird")
    write_tiny(tmp_path, "dog")
    (tmp_path / ".tiny.tmp-abc").mkdir()  # a crashed write's leftovers are not datasets
    (tmp_path / "notes").mkdir()
    assert list_datasets(tmp_path) == ["bird", "dog"]
    with pytest.raises(UserError, match=r"no dataset 'wolf' in .* \(available: bird, dog\)"):
        load_dataset(tmp_path, "wolf")


def test_tampered_file_fails_the_sha256_check(tmp_path: Path) -> None:
    path = write_tiny(tmp_path)
    data = bytearray((path / "train.safetensors").read_bytes())
    data[-1] ^= 0xFF  # one pixel changes; the file still parses
    (path / "train.safetensors").write_bytes(bytes(data))
    with pytest.raises(UserError, match="train.safetensors does not match the sha256"):
        load_dataset(tmp_path, "tiny")
    assert load_dataset(tmp_path, "tiny", verify=False).train.images.shape == (6, 3, 8, 8)


def edit_manifest(path: Path, **changes: object) -> None:
    m = json.loads((path / "manifest.json").read_text())
    m.update(changes)
    (path / "manifest.json").write_text(json.dumps(m))


def test_newer_format_is_refused(tmp_path: Path) -> None:
    edit_manifest(write_tiny(tmp_path), format="jointnet-data/2")
    with pytest.raises(UserError, match="newer than this jointnet reads"):
        read_manifest(tmp_path, "tiny")
    with pytest.raises(UserError, match="newer than this jointnet reads"):
        load_dataset(tmp_path, "tiny")


def test_foreign_manifest_and_missing_keys_are_refused(tmp_path: Path) -> None:
    path = write_tiny(tmp_path)
    edit_manifest(path, format="something-else/1")
    with pytest.raises(UserError, match="not a jointnet dataset"):
        load_dataset(tmp_path, "tiny")
    m = json.loads((path / "manifest.json").read_text())
    del m["sha256"]
    m["format"] = FORMAT
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="lacks the keys sha256"):
        load_dataset(tmp_path, "tiny")


def test_wrong_dtype_is_refused_even_with_a_matching_sha(tmp_path: Path) -> None:
    path = write_tiny(tmp_path)
    safetensors.numpy.save_file(
        {"images": np.zeros((6, 3, 8, 8), np.float32), "labels": np.zeros(6, np.int64)}, path / "train.safetensors"
    )
    with pytest.raises(UserError, match=r"images are float32 \[6, 3, 8, 8\], expected uint8"):
        load_dataset(tmp_path, "tiny", verify=False)
