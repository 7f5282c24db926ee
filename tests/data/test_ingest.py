"""`prepare_folder`: decoding every kind of image file, skipping bad ones, seeded splits."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from jointnet_cli.data.format import PreparedDataset, load_dataset
from jointnet_cli.data.ingest import prepare_folder, split_indices
from jointnet_cli.errors import UserError

RED, BLUE = (220, 30, 30), (30, 40, 220)


def rgb(colour: tuple[int, int, int], w: int = 48, h: int = 36) -> Image.Image:
    return Image.new("RGB", (w, h), colour)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled folder with one file of each awkward kind."""
    root = tmp_path_factory.mktemp("src") / "zoo"
    for sub in ("red/deep", "blue", ".hidden"):
        (root / sub).mkdir(parents=True)
    # red/: the same red picture in every common format and a few awkward names
    rgb(RED).save(root / "red" / "photo.jpg", quality=95)
    rgb(RED).save(root / "red" / "deep" / "nested.webp")
    rgb(RED).save(root / "red" / "my photo 1.bmp")
    rgb(RED).save(root / "red" / "café-ü.tiff")
    rgb(RED).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(root / "red" / "palette.gif")
    Image.new("CMYK", (48, 36), (0, 255, 255, 0)).save(root / "red" / "cmyk.jpg")  # CMYK red
    # blue/: conversions whose result the tests check pixel by pixel
    rgb(BLUE).save(root / "blue" / "plain.png")
    rgba = np.zeros((32, 32, 4), np.uint8)  # left half transparent *black*, right half opaque blue
    rgba[:, 16:] = (*BLUE, 255)
    Image.fromarray(rgba, "RGBA").save(root / "blue" / "alpha.png")
    gray16 = np.zeros((32, 32), np.uint16)  # left half 65535, right half 32768
    gray16[:, :16], gray16[:, 16:] = 65535, 32768
    Image.fromarray(gray16).save(root / "blue" / "gray16.png")
    wide = np.zeros((32, 64, 3), np.uint8)  # stored wide: left red, right blue ...
    wide[:, :32], wide[:, 32:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # ... shown rotated 90 degrees clockwise: top red, bottom blue
    Image.fromarray(wide).save(root / "blue" / "rotated.jpg", exif=exif, quality=95)
    # files that must be skipped or ignored
    full = (root / "red" / "photo.jpg").read_bytes()
    (root / "blue" / "broken.jpg").write_bytes(full[: len(full) // 2])
    (root / "blue" / "notes.jpg").write_text("not a picture")
    (root / "blue" / ".DS_Store").write_bytes(b"\0\1\2")
    rgb(RED).save(root / ".hidden" / "ignored.png")
    (root / "README.txt").write_text("a file outside the class folders")
    return root


@pytest.fixture(scope="module")
def zoo_dataset(zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedDataset:
    """`zoo` prepared at 16 px, every decodable file kept (one per class in test)."""
    data = tmp_path_factory.mktemp("data")
    prepare_folder("zoo", zoo, data_dir=data, size=16, train=None, test=1, workers=2)
    return load_dataset(data, "zoo")


def image_of(ds: PreparedDataset, rel: str) -> np.ndarray:
    """The decoded image [3,H,W] of source file `rel`, found through the manifest's file lists."""
    for which in ("train", "test"):
        files = ds.manifest["files"][which]
        if rel in files:
            return getattr(ds, which).images[files.index(rel)].astype(int)
    raise KeyError(rel)


def test_every_format_is_decoded_and_bad_files_are_skipped(zoo: Path, zoo_dataset: PreparedDataset) -> None:
    ds = zoo_dataset

    assert ds.manifest["classes"] == ["blue", "red"]
    assert ds.manifest["class_counts"] == {"train": [3, 5], "test": [1, 1]}
    assert ds.manifest["source"] == str(zoo.resolve())
    assert ds.train.images.shape == (8, 3, 16, 16) and ds.test.images.shape == (2, 3, 16, 16)
    skipped = {s["path"]: s["reason"] for s in ds.manifest["skipped"]}
    assert sorted(skipped) == ["README.txt", "blue/broken.jpg", "blue/notes.jpg"]
    assert "outside any class folder" in skipped["README.txt"]
    assert "truncated" in skipped["blue/broken.jpg"]
    assert "not an image" in skipped["blue/notes.jpg"]

    for rel in ["red/photo.jpg", "red/deep/nested.webp", "red/my photo 1.bmp", "red/café-ü.tiff",
                "red/palette.gif", "red/cmyk.jpg"]:
        r, g, b = image_of(ds, rel).mean(axis=(1, 2))
        assert r > 190 and g < 60 and b < 60, (rel, r, g, b)
    assert image_of(ds, "blue/plain.png").mean(axis=(1, 2)) == pytest.approx(BLUE, abs=1)


def test_alpha_is_composited_over_white(zoo_dataset: PreparedDataset) -> None:
    img = image_of(zoo_dataset, "blue/alpha.png")
    assert (img[:, :, :4] == 255).all()  # transparent black became white (edge columns ring a little)
    assert (img[:, :, 12:] == np.array(BLUE)[:, None, None]).all()


def test_16_bit_grey_is_scaled_not_clipped(zoo_dataset: PreparedDataset) -> None:
    img = image_of(zoo_dataset, "blue/gray16.png")
    assert (img[:, :, :4] == 255).all()  # 65535 -> 255
    assert (img[:, :, 12:] == 128).all()  # 32768 -> 127.5 -> 128 (clipping would give 255)


def test_exif_orientation_is_applied(zoo_dataset: PreparedDataset) -> None:
    img = image_of(zoo_dataset, "blue/rotated.jpg")
    top, bottom = img[:, :6].mean(axis=(1, 2)), img[:, 10:].mean(axis=(1, 2))
    assert top[0] > 180 and top[2] < 70  # red on top: the stored image was turned upright
    assert bottom[2] > 180 and bottom[0] < 70


def test_flat_folder_is_unlabelled(colour_folder: Callable[..., Path], tmp_path: Path) -> None:
    src = colour_folder({"red": 5, "blue": 5}, flat=True)
    prepare_folder("flat", src, data_dir=tmp_path / "data", size=8, train=None, test=3)
    ds = load_dataset(tmp_path / "data", "flat")
    assert not ds.labelled and ds.train.labels is None and ds.manifest["classes"] == []
    assert (len(ds.train.images), len(ds.test.images)) == (7, 3)


def test_decompression_bombs_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name, side in [("small-a.png", 20), ("small-b.png", 30), ("big.png", 40), ("huge.png", 100)]:
        rgb(RED, side, side).save(src / name)
    # 40x40 = 1600 px trips Pillow's warning, 100x100 its error; both must become skips
    result = prepare_folder("b", src, data_dir=tmp_path / "data", size=8, train=None, test=1, max_pixels=1000)
    reasons = {s["path"]: s["reason"] for s in result.skipped}
    assert sorted(reasons) == ["big.png", "huge.png"]
    assert all("decompression bomb" in r for r in reasons.values())
    assert result.manifest["counts"] == {"train": 1, "test": 1}


def test_split_counts_per_class_and_labels_match_content(colour_folder: Callable[..., Path], tmp_path: Path) -> None:
    src = colour_folder({"red": 10, "green": 10, "blue": 10})
    result = prepare_folder("c", src, data_dir=tmp_path, size=8, train=6, test=2, seed=3)
    ds = load_dataset(tmp_path, "c")
    assert ds.manifest["classes"] == ["blue", "green", "red"]
    assert result.manifest["class_counts"] == {"train": [6, 6, 6], "test": [2, 2, 2]}
    assert ds.train.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6  # ordered by class
    for split in (ds.train, ds.test):
        dominant = split.images.astype(float).mean(axis=(2, 3)).argmax(axis=1)  # 0 = R, 1 = G, 2 = B
        assert (dominant == np.array([2, 1, 0])[split.labels]).all()
    train_files, test_files = set(ds.manifest["files"]["train"]), set(ds.manifest["files"]["test"])
    assert not train_files & test_files


def test_test_fraction_is_per_class(colour_folder: Callable[..., Path], tmp_path: Path) -> None:
    src = colour_folder({"red": 10, "blue": 5})
    result = prepare_folder("f", src, data_dir=tmp_path, size=8, train=None, test=0.2)
    # blue: 0.2 * 5 = 1, red: 0.2 * 10 = 2; the rest is train
    assert result.manifest["class_counts"] == {"train": [4, 8], "test": [1, 2]}


def dataset_bytes(path: Path) -> dict[str, bytes]:
    return {f: (path / f).read_bytes() for f in ("train.safetensors", "test.safetensors", "manifest.json")}


def test_same_seed_same_bytes_other_seed_other_split(colour_folder: Callable[..., Path], tmp_path: Path) -> None:
    src = colour_folder({"red": 12, "blue": 12})
    a = prepare_folder("d", src, data_dir=tmp_path / "a", size=8, train=5, test=3, seed=7)
    b = prepare_folder("d", src, data_dir=tmp_path / "b", size=8, train=5, test=3, seed=7)
    c = prepare_folder("d", src, data_dir=tmp_path / "c", size=8, train=5, test=3, seed=8)
    assert dataset_bytes(a.path) == dataset_bytes(b.path)
    assert a.manifest["files"]["test"] != c.manifest["files"]["test"]


def test_worker_count_does_not_change_the_bytes(colour_folder: Callable[..., Path], tmp_path: Path) -> None:
    src = colour_folder({"red": 15, "green": 15})
    one = prepare_folder("w", src, data_dir=tmp_path / "one", size=8, test=4, workers=1)
    three = prepare_folder("w", src, data_dir=tmp_path / "three", size=8, test=4, workers=3)
    assert dataset_bytes(one.path) == dataset_bytes(three.path)


def test_progress_reports_every_file(colour_folder: Callable[..., Path], tmp_path: Path) -> None:
    src = colour_folder({"red": 9, "blue": 9})
    calls: list[tuple[int, int]] = []
    prepare_folder("p", src, data_dir=tmp_path, size=8, test=2, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (18, 18)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_force_replaces_and_a_failed_prepare_keeps_the_old_dataset(
    colour_folder: Callable[..., Path], tmp_path: Path
) -> None:
    good = colour_folder({"red": 6, "blue": 6})
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_text("not an image")
    data = tmp_path / "data"
    before = dataset_bytes(prepare_folder("x", good, data_dir=data, size=8, test=1).path)

    calls: list[tuple[int, int]] = []
    with pytest.raises(UserError, match="already exists"):
        prepare_folder("x", good, data_dir=data, size=8, test=1, progress=lambda *a: calls.append(a))
    assert calls == []  # refused before any decoding
    with pytest.raises(UserError, match="could be decoded"):
        prepare_folder("x", junk, data_dir=data, size=8, test=1, force=True)
    assert dataset_bytes(data / "x") == before
    assert [p.name for p in data.iterdir()] == ["x"]  # no temporary folders left

    prepare_folder("x", good, data_dir=data, size=8, test=1, seed=1, force=True)
    assert dataset_bytes(data / "x") != before


def test_nothing_decodable_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (src / "b.txt").write_text("hello")
    with pytest.raises(UserError, match="no image .* could be decoded"):
        prepare_folder("e", src, data_dir=tmp_path / "data", size=8)
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []


def test_all_argument_problems_are_reported_together(tmp_path: Path) -> None:
    with pytest.raises(UserError) as e:
        prepare_folder("../x", tmp_path / "missing", data_dir=tmp_path, size=4, train=-1, test=1.5)
    message = str(e.value)
    assert "\n" not in message
    for part in ["'../x' must be a single folder name", "no such folder", "--size 4", "--train -1", "--test 1.5"]:
        assert part in message


def test_empty_source_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src" / "cls").mkdir(parents=True)
    with pytest.raises(UserError, match="holds no files"):
        prepare_folder("e", tmp_path / "src", data_dir=tmp_path / "data")


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 30), min_size=1, max_size=5),
    train=st.one_of(st.none(), st.integers(0, 40)),
    test=st.one_of(st.integers(0, 40), st.floats(0.01, 0.99)),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_indices_follow_the_documented_counts(sizes: list[int], train: int | None, test: int | float, seed: int) -> None:
    labels = np.repeat(np.arange(len(sizes)), sizes)
    train_idx, test_idx = split_indices(labels, len(sizes), train=train, test=test, seed=seed)
    assert not set(train_idx) & set(test_idx)
    for g, n in enumerate(sizes):
        n_test, n_train = (labels[test_idx] == g).sum(), (labels[train_idx] == g).sum()
        if isinstance(test, float):
            expected = min(max(int(np.floor(test * n + 0.5)), 1), n - 1) if n >= 2 else int(np.floor(test * n + 0.5))
        else:
            expected = min(test, n)
        assert n_test == expected
        assert n_train == (n - n_test if train is None else min(train, n - n_test))
    again = split_indices(labels, len(sizes), train=train, test=test, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip((train_idx, test_idx), again))
