"""Atomic file writes and the run-directory lock.

A file is written to a temporary name in the same folder, flushed and fsync'ed,
then renamed over the target, so a reader (or a rerun after SIGKILL) sees either
the old complete file or the new complete file, never a half-written one.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from jointnet_cli.errors import RunFailure, UserError


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=1)
def process_umask() -> int:
    """The process's umask (read once: reading it means setting it, which is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary file, fsync, rename)."""
    atomic_write(path, lambda f: f.write(data))


def write_beside(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(file)` on a new temporary file `.NAME.*.tmp` beside `path` (permissions from the
    umask), fsync it, and return its path; the caller renames it over `path` or removes it. Several of
    these may run at once in threads. On any error the temporary file is removed and the error raised."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~process_umask())          # as an ordinary new file (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(file)` on a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        tmp = write_beside(path, write)
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise RunFailure(f"could not write {path}: {e.strerror or e}") from e
    fsync_dir(path.parent)


def check_folder(path: Path | str, flag: str) -> None:
    """Refuse (UserError naming `flag`) a folder argument that is a file, or lies under a file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            where = "" if p == path else f" ({p} is a file)"
            raise UserError(f"{flag} {path} is not a folder{where}")


def json_bytes(obj: Any) -> bytes:
    """Stable JSON encoding used for every file jointnet writes."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, turning every failure into a one-line UserError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{what} {path} is not valid JSON (line {e.lineno}: {e.msg})") from None
    except (ValueError, RecursionError) as e:                 # absurdly large numbers, absurdly deep nesting
        raise UserError(f"{what} {path} cannot be read ({type(e).__name__}: {str(e)[:120]})") from None


class RunLock:
    """An exclusive OS lock on a run directory (dies with its process).

    `fcntl.flock` is released by the kernel when the holder exits, so a run
    killed with SIGKILL never blocks its rerun, while a second live process
    writing the same run directory is refused at once.
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError(
                f"run directory {self.path.parent} is in use by another jointnet process; "
                "wait for it to finish or use another --run"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
