"""The builtin synth8 collection, and resolving `--datasets` against a data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jointnet_cli.data import synth8
from jointnet_cli.data.collections import BUILTIN, resolve_datasets
from jointnet_cli.data.format import load_dataset, validate_name
from jointnet_cli.data.synth8 import DOMAINS, generate_domain, prepare_synth8
from jointnet_cli.errors import UserError


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synth8 prepared at 32 px with 40 train / 8 test images per domain."""
    data = tmp_path_factory.mktemp("data")
    prepare_synth8(data_dir=data, size=32, train=40, test=8, seed=0)
    return data


def test_eight_valid_domains_in_three_groups() -> None:
    names = [name for name, _ in DOMAINS]
    groups = [group for _, group in DOMAINS]
    assert len(names) == len(set(names)) == 8
    assert all(validate_name(n) == n for n in names)
    assert sorted(set(groups)) == ["blobs", "shapes", "stripes"]
    assert sorted(groups.count(g) for g in set(groups)) == [2, 3, 3]
    assert BUILTIN["synth8"].datasets == tuple(names)


@pytest.mark.parametrize("size", [32, 64])
def test_generate_domain_shapes_dtypes_and_balanced_labels(size: int) -> None:
    for index in range(8):
        images, labels = generate_domain(index, 20, size, seed=0)
        assert images.dtype == np.uint8 and images.shape == (20, 3, size, size)
        assert labels.dtype == np.int64 and labels.shape == (20,)
        assert np.bincount(labels, minlength=4).tolist() == [5, 5, 5, 5]  # 4 classes, all present


def test_generate_domain_is_deterministic_per_seed_and_stream() -> None:
    a, la = generate_domain(3, 12, 32, seed=1)
    b, lb = generate_domain(3, 12, 32, seed=1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, generate_domain(3, 12, 32, seed=2)[0])
    assert not np.array_equal(a, generate_domain(3, 12, 32, seed=1, stream=1)[0])
    assert not np.array_equal(a, generate_domain(4, 12, 32, seed=1)[0])


def test_prepare_writes_eight_labelled_datasets_with_their_group(synth_data: Path) -> None:
    for index, (name, group) in enumerate(DOMAINS):
        ds = load_dataset(synth_data, name)
        m = ds.manifest
        assert (m["source"], m["collection"], m["group"]) == ("builtin:synth8", "synth8", group)
        assert m["counts"] == {"train": 40, "test": 8} and m["skipped"] == [] and m["split_seed"] == 0
        assert ds.image_size == 32 and ds.num_classes == 4 and ds.group == group
        assert np.bincount(ds.train.labels, minlength=4).tolist() == [10, 10, 10, 10]
        # train and test come from different random streams: no image appears in both
        train = {img.tobytes() for img in ds.train.images}
        assert not any(img.tobytes() in train for img in ds.test.images)


def test_prepare_is_byte_identical_for_the_same_seed(synth_data: Path, tmp_path: Path) -> None:
    prepare_synth8(data_dir=tmp_path, size=32, train=40, test=8, seed=0)
    for name, _ in DOMAINS:
        for f in ("train.safetensors", "test.safetensors", "manifest.json"):
            assert (tmp_path / name / f).read_bytes() == (synth_data / name / f).read_bytes()


def low_level_statistics(images: np.ndarray) -> np.ndarray:
    """Mean R, G, B; luminance contrast; RMS gradient; RMS Laplacian (high frequencies). All in [0, 1] units."""
    x = images.astype(np.float64) / 255
    lum = x.mean(axis=1)
    gx, gy = np.diff(lum, axis=2), np.diff(lum, axis=1)
    lap = 4 * lum[:, 1:-1, 1:-1] - lum[:, :-2, 1:-1] - lum[:, 2:, 1:-1] - lum[:, 1:-1, :-2] - lum[:, 1:-1, 2:]
    return np.array([
        *x.mean(axis=(0, 2, 3)),
        lum.std(axis=(1, 2)).mean(),
        np.sqrt((gx**2).mean() + (gy**2).mean()),
        np.sqrt((lap**2).mean()),
    ])


@pytest.mark.parametrize("size", [32, 64])
def test_groups_are_real_in_low_level_statistics(size: int) -> None:
    stats = np.array([low_level_statistics(generate_domain(i, 100, size, seed=0)[0]) for i in range(8)])
    dist = np.linalg.norm(stats[:, None] - stats[None], axis=-1)
    group = np.array([g for _, g in DOMAINS])
    same = group[:, None] == group[None]
    within = dist[same & ~np.eye(8, dtype=bool)].max()
    across = dist[~same].min()
    assert within < 0.5 * across, (within, across)  # measured: ~0.09 vs ~0.36
    assert within > 0.01  # the domains of a group are shifted, not copies


def test_labels_are_drawn_as_documented() -> None:
    # stripes-1: horizontal stripes (label 0) vary along y, vertical ones (label 2) along x
    images, labels = generate_domain(3, 80, 32, seed=0)
    lum = images.astype(float).mean(axis=1)
    gx, gy = (np.diff(lum, axis=2) ** 2).mean(axis=(1, 2)), (np.diff(lum, axis=1) ** 2).mean(axis=(1, 2))
    assert (gy[labels == 0] > 3 * gx[labels == 0]).all()
    assert (gx[labels == 2] > 3 * gy[labels == 2]).all()
    # blobs-1: label k shows k + 1 bright blobs, so the bright area grows with the label
    images, labels = generate_domain(6, 80, 32, seed=0)
    bright = (images.astype(float).mean(axis=1) > 150).mean(axis=(1, 2))
    per_class = [bright[labels == k].mean() for k in range(4)]
    assert per_class == sorted(per_class) and per_class[3] > 2.5 * per_class[0]


def test_prepare_refuses_bad_arguments_and_existing_datasets(synth_data: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError) as e:
        prepare_synth8(data_dir=tmp_path, size=8, train=0, test=-1)
    assert all(part in str(e.value) for part in ["--size 8", "--train 0", "--test -1"])
    with pytest.raises(UserError, match=r"already exist in .* \(use --force to overwrite\)"):
        prepare_synth8(data_dir=synth_data, size=32, train=40, test=8)


def test_collection_resolves_to_its_datasets_in_order(synth_data: Path) -> None:
    assert resolve_datasets("@synth8", synth_data) == [name for name, _ in DOMAINS]
    assert resolve_datasets(" @synth8 ", synth_data) == [name for name, _ in DOMAINS]


def test_collection_needs_prepared_datasets(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run `jointnet prepare --builtin synth8"):
        resolve_datasets("@synth8", tmp_path)
    with pytest.raises(UserError, match=r"unknown collection '@nope' \(known: @synth8\)"):
        resolve_datasets("@nope", tmp_path)


def test_comma_list_keeps_order_and_trims(synth_data: Path) -> None:
    assert resolve_datasets("blobs-2, shapes-1 ,stripes-3", synth_data) == ["blobs-2", "shapes-1", "stripes-3"]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("shapes-1,shapes-1", "shapes-1 more than once"),
        ("shapes-1,wolf", "unknown dataset wolf in"),
        ("../x", "single folder name"),
        ("shapes-1,,blobs-1", "empty name"),
        ("", "--datasets is empty"),
    ],
)
def test_bad_dataset_lists_are_refused(synth_data: Path, spec: str, problem: str) -> None:
    with pytest.raises(UserError) as e:
        resolve_datasets(spec, synth_data)
    assert problem in str(e.value)


def test_unknown_dataset_message_lists_what_is_available(synth_data: Path) -> None:
    with pytest.raises(UserError, match=r"available: blobs-1, blobs-2, shapes-1"):
        resolve_datasets("wolf", synth_data)


def test_module_constants() -> None:
    assert synth8.COLLECTION == "synth8"
    assert set(synth8.CLASSES) == {g for _, g in DOMAINS}
