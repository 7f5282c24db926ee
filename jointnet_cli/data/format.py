"""The prepared-dataset format (DESIGN §4): one folder per dataset.

    DATA_DIR/NAME/train.safetensors   images uint8 [N,C,H,W], labels int64 [N] (when labelled)
    DATA_DIR/NAME/test.safetensors    same layout
    DATA_DIR/NAME/manifest.json       format, source, classes, counts, image size,
                                      split seed, skipped files, group, sha256 of each file

Writing is atomic (a temporary folder inside DATA_DIR, fsync, rename) and
deterministic (sorted JSON, no timestamps), so the same inputs give the same
bytes. Replacing a dataset (`--force`) swaps the new folder in with one atomic
exchange where the system has one (Linux renameat2), so NAME always holds the
old or the new dataset; elsewhere it takes two renames, and a command killed
between them is finished by the next one that opens the data dir (`recover`). Only safetensors and JSON are read; nothing is unpickled. No torch here:
this module is imported by the command line before `--help`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from jointnet_cli.errors import UserError
from jointnet_cli.store.atomic import fsync_dir, json_bytes

FORMAT = "jointnet-data/1"
FORMAT_PREFIX = "jointnet-data/"
FORMAT_VERSION = 1

MANIFEST = "manifest.json"
SPLIT_FILES = ("train.safetensors", "test.safetensors")
# Keys every manifest must hold for `load_dataset` to trust it.
REQUIRED_KEYS = ("format", "name", "image_size", "channels", "counts", "labelled", "classes", "sha256")


@dataclass(frozen=True)
class Split:
    """One split of a prepared dataset."""

    images: np.ndarray  # uint8 [N, C, H, W]
    labels: np.ndarray | None  # int64 [N], None when unlabelled

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class PreparedDataset:
    """A dataset loaded from `DATA_DIR/NAME/`."""

    name: str
    train: Split
    test: Split | None          # None when loaded without it (`load_dataset(test=False)`)
    manifest: dict

    @property
    def labelled(self) -> bool:
        return bool(self.manifest["labelled"])

    @property
    def image_size(self) -> int:
        return int(self.manifest["image_size"])

    @property
    def num_classes(self) -> int:
        """Number of classes; 0 when unlabelled."""
        return len(self.manifest["classes"]) if self.labelled else 0

    @property
    def group(self) -> str | None:
        """Ground-truth domain group of a builtin collection, else None."""
        return self.manifest.get("group")


def validate_name(name: str) -> str:
    """Return `name` if it is a valid dataset name (one safe path component), else raise UserError."""
    if not isinstance(name, str) or name == "":
        raise UserError("dataset name is empty")
    if "/" in name or "\\" in name or os.path.isabs(name):
        raise UserError(f"dataset name {name!r} must be a single folder name, not a path")
    if ".." in name:
        raise UserError(f"dataset name {name!r} must not contain '..'")
    if name.startswith("."):
        raise UserError(f"dataset name {name!r} must not start with '.'")
    bad = sorted({ch for ch in name if not (ch.isalnum() or ch in "._-")})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        raise UserError(f"dataset name {name!r} has characters other than letters, digits, '.', '_', '-': {shown}")
    if len(name.encode("utf-8")) > 200:
        raise UserError(f"dataset name {name[:20]!r}... is too long (at most 200 bytes)")
    return name


# ---------------------------------------------------------------- writing


def _check_split(which: str, split: Split) -> None:
    """Programming errors in what a caller passes are ValueErrors, not UserErrors."""
    images = split.images
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"{which}.images must be a uint8 array [N,C,H,W]")
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"{which}.images must be square, got {images.shape[2]}x{images.shape[3]}")
    if split.labels is not None:
        labels = split.labels
        if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.shape != (images.shape[0],):
            raise ValueError(f"{which}.labels must be an int64 array [{images.shape[0]}]")


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _split_bytes(split: Split) -> bytes:
    tensors = {"images": np.ascontiguousarray(split.images)}
    if split.labels is not None:
        tensors["labels"] = np.ascontiguousarray(split.labels)
    return safetensors.numpy.save(tensors, metadata={"format": FORMAT})


def write_dataset(
    data_dir: Path,
    name: str,
    train: Split,
    test: Split,
    manifest: dict,
    *,
    force: bool = False,
) -> Path:
    """Write `DATA_DIR/NAME/` atomically and return its path.

    `manifest` holds the caller's keys ("source", "classes", "split_seed",
    "skipped", ...); the writer adds format, name, image_size, channels,
    counts, labelled and sha256. An existing dataset is refused unless `force`,
    and then replaced only once the new one is complete.
    """
    validate_name(name)
    data_dir = Path(data_dir)
    empty = [which for which, split in (("train", train), ("test", test)) if len(split) == 0]
    if empty:
        raise UserError(f"dataset '{name}': the {' and '.join(empty)} split would be empty; nothing written")
    _check_split("train", train)
    _check_split("test", test)
    if train.images.shape[1:] != test.images.shape[1:]:
        raise ValueError(f"train images {train.images.shape[1:]} and test images {test.images.shape[1:]} differ in shape")
    if (train.labels is None) != (test.labels is None):
        raise ValueError("train and test must both be labelled or both unlabelled")
    labelled = train.labels is not None
    classes = manifest.get("classes", [])
    if labelled:
        top = int(max(train.labels.max(), test.labels.max()))
        low = int(min(train.labels.min(), test.labels.min()))
        if low < 0 or top >= len(classes):
            raise ValueError(f"labels span {low}..{top} but manifest lists {len(classes)} classes")

    target = data_dir / name
    if (target.exists() or target.is_symlink()) and not force:
        raise UserError(f"dataset '{name}' already exists in {data_dir} (use --force to overwrite)")

    payloads = {fname: _split_bytes(split) for fname, split in zip(SPLIT_FILES, (train, test))}
    full = dict(manifest)
    full.update(
        {
            "format": FORMAT,
            "name": name,
            "image_size": int(train.images.shape[-1]),
            "channels": int(train.images.shape[1]),
            "counts": {"train": len(train), "test": len(test)},
            "labelled": labelled,
            "classes": list(classes),
            "sha256": {fname: hashlib.sha256(data).hexdigest() for fname, data in payloads.items()},
        }
    )
    try:
        text = json_bytes(full)
    except (TypeError, ValueError) as e:
        raise ValueError(f"manifest is not JSON-serialisable: {e}") from e

    data_dir.mkdir(parents=True, exist_ok=True)
    recover(data_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=data_dir))
    old: Path | None = None
    try:
        for fname, data in payloads.items():
            _write_file(tmp / fname, data)
        _write_file(tmp / MANIFEST, text)              # last: a temporary folder with a manifest is complete
        fsync_dir(tmp)
        if target.exists() or target.is_symlink():
            if not force:  # appeared while we were writing
                raise UserError(f"dataset '{name}' already exists in {data_dir} (use --force to overwrite)")
            if not exchange(tmp, target):              # one atomic swap: tmp now holds the old dataset
                old = Path(tempfile.mkdtemp(prefix=f".{name}.old-{os.getpid()}-", dir=data_dir))
                os.replace(target, old / "dataset")    # move aside; restored below if the swap fails
                try:
                    os.replace(tmp, target)
                except BaseException:
                    os.replace(old / "dataset", target)
                    raise
        else:
            os.replace(tmp, target)
        fsync_dir(data_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            _remove(old)
    return target


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`); False where the
    system or file system cannot (the caller then renames twice)."""
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _owner_alive(folder: Path, marker: str) -> bool:
    """Whether the process that made `.NAME.<marker>-<pid>-XXXX` still runs (folders of older versions,
    without a pid, count as orphans)."""
    rest = folder.name.rsplit(marker + "-", 1)[-1]
    pid = rest.split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(data_dir: Path) -> list[str]:
    """Finish what a killed `prepare --force` left half done, and remove temporary folders whose
    process is gone. A dataset moved aside (`.NAME.old-*`) with nothing under NAME is replaced by the
    complete new one (`.NAME.tmp-*` with a manifest) or, failing that, put back. Returns the names
    recovered."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    recovered = []
    for old in sorted(data_dir.glob(".*.old-*")):
        if not old.is_dir() or old.is_symlink() or _owner_alive(old, "old"):
            continue
        name = old.name[1:].rsplit(".old-", 1)[0]
        target, moved = data_dir / name, old / "dataset"
        if not (target.exists() or target.is_symlink()) and moved.is_dir():
            new = next((t for t in sorted(data_dir.glob(f".{name}.tmp-*"))
                        if t.is_dir() and (t / MANIFEST).is_file() and not _owner_alive(t, "tmp")), None)
            os.replace(new if new is not None else moved, target)
            recovered.append(name)
        _remove(old)
    for tmp in data_dir.glob(".*.tmp-*"):
        if tmp.is_dir() and not tmp.is_symlink() and not _owner_alive(tmp, "tmp"):
            _remove(tmp)
    if recovered:
        fsync_dir(data_dir)
    return recovered


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass


# ---------------------------------------------------------------- reading


def list_datasets(data_dir: Path) -> list[str]:
    """Names of the prepared datasets (folders with a manifest) in `data_dir`, sorted."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())


def _missing(data_dir: Path, name: str) -> UserError:
    available = list_datasets(data_dir)
    if available:
        return UserError(f"no dataset '{name}' in {data_dir} (available: {', '.join(available)})")
    return UserError(f"no dataset '{name}' in {data_dir} (no prepared datasets there; run `jointnet prepare` first)")


def read_manifest(data_dir: Path, name: str) -> dict:
    """Read and check `DATA_DIR/NAME/manifest.json` without loading tensors."""
    validate_name(name)
    data_dir = Path(data_dir)
    path = data_dir / name / MANIFEST
    if not path.is_file() and not (name in recover(data_dir) and path.is_file()):   # a killed --force, finished
        raise _missing(data_dir, name)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:       # ValueError covers JSON and UTF-8 errors
        raise UserError(f"cannot read {path}: {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path} is not a jointnet dataset manifest (not a JSON object)")
    fmt = manifest.get("format")
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        raise UserError(f"{path} is not a jointnet dataset manifest (format {fmt!r}, expected {FORMAT!r})")
    version = fmt[len(FORMAT_PREFIX):]
    if not (version.isascii() and version.isdigit() and len(version) <= 6):
        raise UserError(f"{path} has an unknown format {fmt!r} (expected {FORMAT!r})")
    if int(version) > FORMAT_VERSION:
        raise UserError(
            f"dataset '{name}' has format {fmt!r}, newer than this jointnet reads ({FORMAT!r}); upgrade jointnet"
        )
    if int(version) < FORMAT_VERSION:
        raise UserError(f"dataset '{name}' has old format {fmt!r}; prepare it again with --force")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise UserError(f"{path} lacks the keys {', '.join(missing)}; prepare the dataset again with --force")
    counts = manifest["counts"]
    sha = manifest["sha256"]
    if not (isinstance(counts, dict) and isinstance(sha, dict) and all(k in counts for k in ("train", "test"))
            and all(f in sha for f in SPLIT_FILES) and isinstance(manifest["classes"], list)):
        raise UserError(f"{path} has malformed counts, sha256 or classes; prepare the dataset again with --force")
    return manifest


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_split(folder: Path, which: str, manifest: dict, verify: bool) -> Split:
    fname = f"{which}.safetensors"
    path = folder / fname
    name = folder.name
    if not path.is_file():
        raise UserError(f"dataset '{name}' is incomplete: {path} is missing")
    if verify and _sha256_file(path) != manifest["sha256"][fname]:
        raise UserError(f"dataset '{name}': {fname} does not match the sha256 in its manifest (file changed or corrupt)")
    try:
        tensors: dict[str, Any] = safetensors.numpy.load_file(path)
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise UserError(f"dataset '{name}': cannot read {fname}: {e}") from e

    labelled = bool(manifest["labelled"])
    expected_keys = {"images", "labels"} if labelled else {"images"}
    if set(tensors) != expected_keys:
        raise UserError(f"dataset '{name}': {fname} holds {sorted(tensors)}, expected {sorted(expected_keys)}")
    n = manifest["counts"][which]
    size, channels = manifest["image_size"], manifest["channels"]
    images = tensors["images"]
    if images.dtype != np.uint8 or images.shape != (n, channels, size, size):
        raise UserError(
            f"dataset '{name}': {fname} images are {images.dtype} {list(images.shape)}, "
            f"expected uint8 {[n, channels, size, size]}"
        )
    labels = None
    if labelled:
        labels = tensors["labels"]
        if labels.dtype != np.int64 or labels.shape != (n,):
            raise UserError(f"dataset '{name}': {fname} labels are {labels.dtype} {list(labels.shape)}, expected int64 [{n}]")
        k = len(manifest["classes"])
        if n and (labels.min() < 0 or labels.max() >= k):
            raise UserError(f"dataset '{name}': {fname} has labels outside 0..{k - 1}")
    return Split(images=images, labels=labels)


def load_dataset(data_dir: Path, name: str, *, verify: bool = True, test: bool = True) -> PreparedDataset:
    """Load `DATA_DIR/NAME/`, checking format, sha256 (when `verify`), dtypes and shapes.

    `test=False` never opens the test split (its `test` is None): hyper-parameter searches use it."""
    manifest = read_manifest(data_dir, name)
    folder = Path(data_dir) / name
    train = _load_split(folder, "train", manifest, verify)
    test = _load_split(folder, "test", manifest, verify) if test else None
    return PreparedDataset(name=name, train=train, test=test, manifest=manifest)
