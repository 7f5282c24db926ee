"""Planning a `complete` call before anything is written: the input files, each hole's place, each output's
path, and every problem with them (all found, then reported in one line)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from jointnet_cli.apply.complete.images import Decoded, can_write, decode_image, format_of
from jointnet_cli.errors import UserError

DEFAULT_OUT_DIR = Path("completed")       # where outputs go when --out is not given
SIDE_BY_SIDE_SUFFIX = "-side-by-side"     # x.png → x-side-by-side.png
CACHE_BYTES = 256 * 2**20                 # decoded inputs kept in memory between checking and completing
MAX_PROBLEMS_SHOWN = 5

Progress = Callable[[str, int, int], None]   # (phase "checking" | "completing", done, total)


def _image_suffixes() -> set[str]:
    from PIL import Image

    return set(Image.registered_extensions())


def expand_inputs(specs: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files named by IMAGE, DIR (its image files) or GLOB arguments, in order, each once; and the problems."""
    suffixes = None
    files: list[Path] = []
    problems: list[str] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            suffixes = suffixes or _image_suffixes()
            found = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                           and f.suffix.lower() in suffixes)
            if not found:
                problems.append(f"folder {p} holds no image files")
            files += found
        elif p.exists():
            files.append(p)
        elif glob.has_magic(str(spec)):
            suffixes = suffixes or _image_suffixes()
            found = sorted(Path(f) for f in glob.glob(str(spec), recursive=True)
                           if Path(f).is_file() and Path(f).suffix.lower() in suffixes)
            if not found:
                problems.append(f"no image file matches {spec}")
            files += found
        else:
            problems.append(f"{p}: no such file or folder")
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


def parse_box(text: str | None) -> tuple[int, int] | None:
    """`--box X,Y` → (x, y)."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        x, y = (int(v) for v in parts)
    except ValueError:
        raise UserError(f"--box must be X,Y (two whole numbers, the hole's top-left corner), got {text!r}") from None
    return x, y


def _place_square(width: int, height: int, box: tuple[int, int] | None, size: int) -> tuple[tuple[int, int, int] | None, str | None]:
    """(x, y, size) of a size×size square hole at `box` (centred when None), or the problem with it."""
    if size < 1:
        return None, f"the hole is empty (--hole {size})"
    if size > min(width, height):
        return None, f"the {size}×{size} hole is larger than the {width}×{height} image"
    x, y = box if box is not None else ((width - size) // 2, (height - size) // 2)
    if x < 0 or y < 0 or x + size > width or y + size > height:
        return None, (f"the {size}×{size} hole at {x},{y} does not fit inside the {width}×{height} image "
                      f"(x from 0 to {width - size}, y from 0 to {height - size})")
    return (x, y, size), None


@dataclass
class Job:
    """One input: what to read, the hole, where to write."""

    input: Path
    size: tuple[int, int]         # (width, height)
    mode: str
    output: Path
    strip: Path | None
    square: tuple[int, int, int] | None = None    # (x, y, side) of a square hole, or
    mask: np.ndarray | None = None                 # the --mask, shared by every input

    def hole(self) -> np.ndarray:
        """(H, W) bool, True in the hole (a square's is made when needed: many big inputs, little memory)."""
        if self.mask is not None:
            return self.mask
        x, y, side = self.square
        hole = np.zeros((self.size[1], self.size[0]), dtype=bool)
        hole[y:y + side, x:x + side] = True
        return hole

    def box(self) -> list[int]:
        """[x, y, width, height] of the hole's bounding box."""
        if self.square is not None:
            x, y, side = self.square
            return [x, y, side, side]
        ys, xs = np.nonzero(self.mask)
        return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def plan_outputs(inputs: list[Path], out: Path | None) -> tuple[list[Path], list[str]]:
    """Output path per input (see `complete_images`) and the problems with them."""
    problems = []
    if out is not None and len(inputs) == 1 and not out.is_dir() and out.suffix:
        if format_of(out) is None:
            problems.append(f"--out {out}: cannot tell an image format from the extension {out.suffix!r} "
                            "(use .png, .jpg, .webp, .bmp, .tif, …)")
        return [out], problems
    folder = out if out is not None else DEFAULT_OUT_DIR
    if folder.exists() and not folder.is_dir():
        return [], [f"--out {folder} is a file; with {len(inputs)} inputs give a folder"]
    if out is not None and out.suffix and format_of(out) is not None and not out.exists():
        return [], [f"--out {out} names one file, but {len(inputs)} inputs were given; give a folder"]
    parents = [str(p.resolve().parent) for p in inputs]
    common = Path(os.path.commonpath(parents)) if inputs else Path(".")
    paths = [folder / p.resolve().parent.relative_to(common) / f"{p.stem}.png" for p in inputs]
    return paths, problems


def check_inputs(inputs: list[Path], outputs: list[Path], *, box: tuple[int, int] | None, size: int,
           mask: np.ndarray | None, side_by_side: bool, force: bool,
           progress: Progress | None, cache: dict[int, Decoded], pool: Any) -> tuple[list[Job], list[str]]:
    """Decode every input, place every hole, check every output; returns the jobs and every problem."""
    jobs: list[Job] = []
    problems: list[str] = []
    writable: dict = {}
    cached = 0
    claimed: dict[Path, Path] = {}
    for i, (path, output, decoded) in enumerate(zip(inputs, outputs, _decode_all(inputs, pool))):
        if progress:
            progress("checking", i, len(inputs))
        if isinstance(decoded, str):
            problems.append(decoded)
            continue
        width, height = decoded.size
        square = None
        if mask is not None:
            if mask.shape != (height, width):
                problems.append(f"{path}: the mask is {mask.shape[1]}×{mask.shape[0]}, the image {width}×{height}")
                continue
            whole = bool(mask.all())
        else:
            square, problem = _place_square(width, height, box, size)
            if problem:
                problems.append(f"{path}: {problem}")
                continue
            whole = square[2] == width == height
        if whole:
            problems.append(f"{path}: the hole covers the whole image; nothing is left to complete it from")
            continue
        strip = output.with_name(f"{output.stem}{SIDE_BY_SIDE_SUFFIX}{output.suffix}") if side_by_side else None
        for target in [output] + ([strip] if strip else []):
            fmt = format_of(target)
            if target in claimed:
                problems.append(f"{claimed[target]} and {path} would both be written to {target}")
            elif target.is_dir():
                problems.append(f"{target} is a folder")
            elif target.exists() and not force:
                problems.append(f"{target} exists (use --force to overwrite it)")
            elif fmt is not None and not can_write(decoded.mode, fmt, writable):
                problems.append(f"{target}: {fmt} cannot store {decoded.mode} images like {path}; write .png")
            claimed.setdefault(target, path)
        jobs.append(Job(path, decoded.size, decoded.mode, output, strip, square, mask))
        if cached + decoded.pixels.nbytes <= CACHE_BYTES:
            cache[len(jobs) - 1] = decoded
            cached += decoded.pixels.nbytes
    if progress:
        progress("checking", len(inputs), len(inputs))
    return jobs, problems


def _try_decode(path: Path) -> Decoded | str:
    try:
        return decode_image(path)
    except UserError as e:
        return str(e)


def _decode_all(paths: Sequence[Path], pool: Any, chunk: int = 32) -> Iterable[Decoded | str]:
    """Decoded images (or the problem) in order, decoded in parallel a chunk at a time."""
    for start in range(0, len(paths), chunk):
        yield from pool.map(_try_decode, paths[start:start + chunk])


def one_line(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
    more = f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
    return f"{len(problems)} problems: {shown}{more}"
