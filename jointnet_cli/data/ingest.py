"""`jointnet prepare NAME --from DIR`: turn a folder of images into a prepared dataset.

    DIR/<class>/**/*   labelled, classes = sorted sub-folder names
    DIR/*              no sub-folders: unlabelled

Every image is decoded in a process pool, oriented by its EXIF tag, converted
to 8-bit RGB, resized so its shorter side is `size` and centre-cropped to a
square. Files that cannot be decoded are skipped and listed in the manifest
with a reason. The split is seeded, per class, and independent of the number
of workers, so the same folder and seed give byte-identical files.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from jointnet_cli.data.decode import Unreadable, opened, to_rgb8
from jointnet_cli.data.format import Split, validate_name, write_dataset
from jointnet_cli.errors import UserError
from jointnet_cli.store.atomic import check_folder

MIN_SIZE, MAX_SIZE = 8, 1024
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default limit


@dataclass
class PrepareResult:
    """What `prepare_folder` / `prepare_synth8` wrote."""

    name: str
    path: Path
    manifest: dict
    skipped: list[dict] = field(default_factory=list)

    @property
    def counts(self) -> dict:
        return dict(self.manifest["counts"])


# ---------------------------------------------------------------- decoding (runs in workers)


def _decode_one(path: str, size: int, max_pixels: int) -> tuple[np.ndarray | None, str | None]:
    """Decode one file to uint8 [size, size, 3] (centre square, Lanczos), or return (None, reason)."""
    from PIL import Image

    try:
        with opened(path, max_pixels=max_pixels, draft=size) as im:
            im = to_rgb8(im)
            w, h = im.size
            m = min(w, h)
            box = ((w - m) / 2, (h - m) / 2, (w + m) / 2, (h + m) / 2)  # centred square
            im = im.resize((size, size), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
            return np.asarray(im, dtype=np.uint8), None
    except Unreadable as e:
        return None, e.reason


def _init_worker(max_pixels: int) -> None:
    from PIL import Image

    # Pillow's own check runs inside Image.open; make it agree with ours (this is the worker's copy).
    Image.MAX_IMAGE_PIXELS = max_pixels


def _decode_chunk(paths: list[str], size: int, max_pixels: int) -> list[tuple[np.ndarray | None, str | None]]:
    return [_decode_one(p, size, max_pixels) for p in paths]


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork starts in milliseconds on Linux and the workers only use Pillow and numpy;
    # elsewhere (macOS, Windows) spawn is the safe default.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def decode_files(
    paths: list[Path],
    size: int,
    *,
    workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, list[str | None]]:
    """Decode `paths` in a process pool.

    Returns images uint8 [len(paths), 3, size, size] (zeros where a file failed)
    and, per path, None or the reason it was skipped.
    """
    total = len(paths)
    images = np.zeros((total, 3, size, size), dtype=np.uint8)
    reasons: list[str | None] = [None] * total
    if total == 0:
        return images, reasons
    workers = max(1, workers or available_cores())
    chunk = max(1, min(32, math.ceil(total / (workers * 8))))  # small chunks: steady progress, even load
    starts = list(range(0, total, chunk))
    workers = min(workers, len(starts))
    done = 0
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(),
                               initializer=_init_worker, initargs=(max_pixels,))
    try:
        futures = {
            pool.submit(_decode_chunk, [str(p) for p in paths[s:s + chunk]], size, max_pixels): s for s in starts
        }
        for future in as_completed(futures):
            s = futures[future]
            results = future.result()
            for i, (array, reason) in enumerate(results):
                if array is None:
                    reasons[s + i] = reason
                else:
                    images[s + i] = array.transpose(2, 0, 1)  # HWC -> CHW
            done += len(results)
            if progress is not None:
                progress(done, total)
    except BaseException:  # Ctrl-C or a failing callback: do not wait for the remaining chunks
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return images, reasons


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; all cores where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------- scanning and splitting


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _scan(source: Path) -> tuple[list[str], list[tuple[Path, int]], list[dict]]:
    """Find the class folders and image candidates under `source`, sorted.

    Returns (classes, [(file, label or -1)], skipped-before-decoding).
    """
    top_dirs = sorted(e.name for e in os.scandir(source) if _visible(e.name) and e.is_dir())
    top_files = sorted(e.name for e in os.scandir(source) if _visible(e.name) and not e.is_dir())
    if not top_dirs:
        return [], [(source / f, -1) for f in top_files], []
    skipped = [{"path": f, "reason": "file outside any class folder"} for f in top_files]
    files: list[tuple[Path, int]] = []
    for label, cls in enumerate(top_dirs):
        found = []
        for root, dirs, names in os.walk(source / cls):
            dirs[:] = [d for d in dirs if _visible(d)]
            found += [Path(root) / n for n in names if _visible(n)]
        files += [(p, label) for p in sorted(found, key=lambda p: p.relative_to(source).as_posix())]
    return top_dirs, files, skipped


def _has_any_file(source: Path) -> bool:
    for root, dirs, names in os.walk(source):
        dirs[:] = [d for d in dirs if _visible(d)]
        if any(_visible(n) for n in names):
            return True
    return False


def _test_count(test: int | float, n: int) -> int:
    """How many of a group's `n` images go to the test split."""
    if isinstance(test, float):
        k = math.floor(test * n + 0.5)  # round half up
        if n >= 2:
            k = min(max(k, 1), n - 1)
        return min(k, n)
    return min(test, n)


def split_indices(
    labels: np.ndarray, num_groups: int, *, train: int | None, test: int | float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-group split of positions 0..len(labels)-1 into (train, test).

    Each group (class, or everything when `num_groups` is 1) is shuffled by its
    own generator seeded from (seed, group); its first `test` images go to test,
    the next `train` (None: all the rest) to train. Each split is ordered by
    group, then by position, so output order does not depend on the shuffle.
    """
    train_idx, test_idx = [], []
    for g in range(num_groups):
        members = np.flatnonzero(labels == g) if num_groups > 1 else np.arange(len(labels))
        order = np.random.default_rng([seed, g]).permutation(members)
        k = _test_count(test, len(order))
        rest = order[k:] if train is None else order[k:k + train]
        test_idx.append(np.sort(order[:k]))
        train_idx.append(np.sort(rest))
    return np.concatenate(train_idx).astype(np.int64), np.concatenate(test_idx).astype(np.int64)


# ---------------------------------------------------------------- the command


def _check_arguments(
    name: str, source: Path, data_dir: Path, size: int, train: int | None, test: int | float,
    seed: int, force: bool, workers: int | None, max_pixels: int,
) -> None:
    check_folder(data_dir, "--data-dir")
    problems = []
    try:
        validate_name(name)
    except UserError as e:
        problems.append(str(e))
    else:
        if not force and (data_dir / name).exists():
            problems.append(f"dataset '{name}' already exists in {data_dir} (use --force to overwrite)")
    if not source.exists():
        problems.append(f"--from {source}: no such folder")
    elif not source.is_dir():
        problems.append(f"--from {source}: not a folder")
    elif not _has_any_file(source):
        problems.append(f"--from {source}: the folder holds no files")
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        problems.append(f"--size {size}: must be an integer from {MIN_SIZE} to {MAX_SIZE}")
    if train is not None and (isinstance(train, bool) or not isinstance(train, int) or train < 0):
        problems.append(f"--train {train}: must be a count >= 0 (or all)")
    if isinstance(test, bool) or not isinstance(test, (int, float)):
        problems.append(f"--test {test!r}: must be a count >= 0 or a fraction in (0, 1)")
    elif isinstance(test, float) and not 0.0 < test < 1.0:
        problems.append(f"--test {test}: a fraction must be between 0 and 1 (exclusive)")
    elif isinstance(test, int) and test < 0:
        problems.append(f"--test {test}: must be a count >= 0")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.append(f"--seed {seed}: must be an integer >= 0")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        problems.append(f"--workers {workers}: must be >= 1")
    if not isinstance(max_pixels, int) or max_pixels < 1:
        problems.append(f"max_pixels {max_pixels}: must be >= 1")
    if problems:
        raise UserError("; ".join(problems))


def prepare_folder(
    name: str,
    source: Path,
    *,
    data_dir: Path,
    size: int = 64,
    train: int | None = 500,
    test: int | float = 100,
    seed: int = 0,
    force: bool = False,
    workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> PrepareResult:
    """Decode the images under `source` and write the prepared dataset `DATA_DIR/NAME/`.

    `train`/`test` are per class (per dataset when unlabelled): `test` images
    first (a count, or a fraction of the class), then up to `train` (None: all
    the rest). `progress(done, total)` is called as files are decoded.
    """
    source, data_dir = Path(source), Path(data_dir)
    _check_arguments(name, source, data_dir, size, train, test, seed, force, workers, max_pixels)
    source = source.resolve()

    classes, candidates, skipped = _scan(source)
    paths = [p for p, _ in candidates]
    images, reasons = decode_files(paths, size, workers=workers, max_pixels=max_pixels, progress=progress)

    rel = [p.relative_to(source).as_posix() for p in paths]
    skipped += [{"path": r, "reason": why} for r, why in zip(rel, reasons) if why is not None]
    skipped.sort(key=lambda s: s["path"])
    ok = np.array([why is None for why in reasons], dtype=bool)
    if not ok.any():
        raise UserError(f"no image in {source} could be decoded ({len(skipped)} files skipped); nothing written")

    kept = np.flatnonzero(ok)
    labels = np.array([label for _, label in candidates], dtype=np.int64)[kept]
    labelled = bool(classes)
    train_pos, test_pos = split_indices(labels, max(len(classes), 1), train=train, test=test, seed=seed)
    for which, pos in (("train", train_pos), ("test", test_pos)):
        if len(pos) == 0:
            raise UserError(
                f"the {which} split of '{name}' would be empty ({int(ok.sum())} decodable images, "
                f"--train {train}, --test {test} per class); lower --test; nothing written"
            )

    def make(pos: np.ndarray) -> Split:
        return Split(images=np.ascontiguousarray(images[kept[pos]]), labels=labels[pos] if labelled else None)

    def per_class(pos: np.ndarray) -> list[int]:
        return np.bincount(labels[pos], minlength=len(classes)).tolist() if labelled else [len(pos)]

    manifest = {
        "source": str(source),
        "classes": classes,
        "split_seed": seed,
        "skipped": skipped,
        "requested": {"size": size, "train": train, "test": test},
        "class_counts": {"train": per_class(train_pos), "test": per_class(test_pos)},
        "files": {"train": [rel[kept[i]] for i in train_pos], "test": [rel[kept[i]] for i in test_pos]},
    }
    path = write_dataset(data_dir, name, make(train_pos), make(test_pos), manifest, force=force)
    written = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return PrepareResult(name=name, path=path, manifest=written, skipped=skipped)
