"""`complete`: fill a hole in images of any size with a run's trained auto-encoder (the `ae` task).

    from jointnet_cli.apply.complete import complete_images
    complete_images("runs/quickstart", "shapes-1", ["assets/shapes-1.png"], out="filled.png")

The network only ever saw S×S images (the run's `image_size`) with an h×h hole
(`hole`) zero-filled, so every hole is brought to that geometry:

    hole bounding box, side H = max(height, width) in input pixels
    context window: a square of side L = ⌈H·S/h⌉ centred on the hole, shifted to stay
                    inside the image (or padded by edge replication where the image is smaller)
    window → S×S (antialiased bilinear), hole → 0   the network input I ⊙ M
    G(I ⊙ M) → L×L (bilinear), pasted into the hole pixels only

A 22 px hole in a network trained with 22 px holes at 32 px thus sees exactly
a 32×32 crop, no resampling. Pixels outside the hole are never touched: they
are bit-identical to the decoded input when the output format is lossless
(PNG, the default; WebP is written lossless too; JPEG is not lossless).

Decoding ("the decoded input"): EXIF orientation is applied; RGB, RGBA, L
(grayscale) and LA stay as they are; 16-bit grayscale stays 16-bit (mode
I;16); 1-bit becomes L; palette images become RGB, or RGBA when they have
transparency; CMYK and the other colour spaces become RGB; 32-bit integer and
float images become L (or I;16 when their values fit 16 bits). The network
sees RGB with alpha composited over white, exactly as `prepare` fed it
during training; grayscale outputs receive the luminance of the prediction
(ITU-R 601, Pillow's weights) and alpha is kept unchanged everywhere.
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from jointnet_cli.data.decode import Unreadable, opened, to_native
from jointnet_cli.data.ingest import available_cores
from jointnet_cli.errors import UserError
from jointnet_cli.store.atomic import write_beside
from jointnet_cli.apply.trained import find_checkpoint

if TYPE_CHECKING:
    import torch

DEFAULT_OUT_DIR = Path("completed")       # where outputs go when --out is not given
SIDE_BY_SIDE_SUFFIX = "-side-by-side"     # x.png → x-side-by-side.png
CACHE_BYTES = 256 * 2**20                 # decoded inputs kept in memory between checking and completing
MAX_PROBLEMS_SHOWN = 5

# mode → (number of channels, value of full intensity)
MODES = {"L": (1, 255), "LA": (2, 255), "RGB": (3, 255), "RGBA": (4, 255), "I;16": (1, 65535)}

Progress = Callable[[str, int, int], None]   # (phase "checking" | "completing", done, total)


# ---------------------------------------------------------------- the network


@dataclass
class Network:
    """One dataset's trained auto-encoder, ready to complete images."""

    model: "torch.nn.Module"      # in eval mode, on `device`
    image_size: int               # S: the network's input side
    hole: int                     # h: the side of the holes it was trained on
    device: "torch.device"
    run: str = ""
    dataset: str = ""
    method: str = ""
    checkpoint: str = ""


def _load(ck, device: str) -> Network:
    from jointnet_cli.apply.trained import load_model

    model, dev = load_model(ck, device)
    cfg = ck.cfg
    return Network(model, cfg.image_size, cfg.hole, dev, run=str(ck.run), dataset=ck.dataset, method=ck.method,
                   checkpoint=str(ck.path))


def load_network(run_path: Path | str, dataset: str, method: str | None = None, *, device: str = "auto") -> Network:
    """The trained network of `dataset` in a run: `method` is "joint" (default) or a trained baseline."""
    from jointnet_cli.apply.trained import find_checkpoint

    return _load(find_checkpoint(run_path, dataset, method, task="ae"), device)


# ---------------------------------------------------------------- the geometry of a hole


def context_window(box: tuple[int, int, int, int], height: int, width: int, image_size: int,
                   hole: int) -> tuple[int, int, int]:
    """(top, left, side) of the square context window for a hole with bounding box (x0, y0, x1, y1).

    side = ⌈H·S/h⌉ with H the longer side of the box, so the hole fills the
    window as a trained hole fills the network's input; centred on the box,
    then shifted to stay inside the image. Where the image is smaller than
    the window, the window is centred on the image and top/left are negative.
    """
    x0, y0, x1, y1 = box
    side = max(math.ceil(max(x1 - x0, y1 - y0) * image_size / hole), 1)

    def place(lo: int, hi: int, extent: int) -> int:
        if side >= extent:
            return -((side - extent) // 2)
        start = (lo + hi - side) // 2
        return min(max(start, 0), extent - side)

    return place(y0, y1, height), place(x0, x1, width), side


def _crop(array: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """array[top:top+side, left:left+side] of an (H, W, …) array, edge-replicated where it leaves the image."""
    h, w = array.shape[:2]
    t, l = max(top, 0), max(left, 0)
    b, r = min(top + side, h), min(left + side, w)
    part = array[t:b, l:r]
    pad = ((t - top, top + side - b), (l - left, left + side - r)) + ((0, 0),) * (array.ndim - 2)
    return np.pad(part, pad, mode="edge") if any(p for pair in pad for p in pair) else part


def _network_rgb(pixels: np.ndarray, mode: str) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] as the network saw images in training: RGB, alpha over white."""
    channels, full = MODES[mode]
    x = pixels.astype(np.float32) * (1.0 / full)
    if mode in ("LA", "RGBA"):
        alpha = x[..., -1:]
        x = x[..., :-1] * alpha + (1.0 - alpha)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x


def _hole_values(rgb: np.ndarray, mode: str, dtype: np.dtype) -> np.ndarray:
    """Predicted RGB in [0, 1] (…, 3) → stored values of the mode's colour channels (…, C)."""
    channels, full = MODES[mode]
    if mode in ("L", "LA", "I;16"):
        rgb = rgb @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)   # luminance, Pillow's weights
    return np.rint(np.clip(rgb, 0.0, 1.0) * full).astype(dtype)


def inpaint_many(net: Network, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                 modes: Sequence[str] | None = None, *, batch_size: int = 64) -> list[np.ndarray]:
    """Fill the holes of many images; returns new arrays, each pixel outside its hole unchanged.

    images[i]: (H, W, C) uint8 (or uint16 for I;16) in the layout of `modes[i]` (default RGB);
    masks[i]: (H, W) bool, True in the hole.
    """
    import torch
    import torch.nn.functional as F

    modes = list(modes) if modes is not None else ["RGB"] * len(images)
    S = net.image_size
    windows = []
    inputs = torch.empty(len(images), 3, S, S)                                  # (N, 3, S, S)
    for i, (pixels, mask, mode) in enumerate(zip(images, masks, modes)):
        ys, xs = np.nonzero(mask)
        if ys.size == 0:
            raise UserError("the hole is empty")
        top, left, side = context_window((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                                         mask.shape[0], mask.shape[1], S, net.hole)
        win_mask = _crop(mask, top, left, side)                                 # (L, L) bool
        win = _network_rgb(_crop(pixels, top, left, side), mode)                # (L, L, 3)
        win[win_mask] = 0.0                                                     # nothing of the hole leaks in
        x = torch.from_numpy(np.ascontiguousarray(win.transpose(2, 0, 1)))[None]          # (1, 3, L, L)
        m = torch.from_numpy(win_mask.astype(np.float32))[None, None]                      # (1, 1, L, L)
        if side != S:
            x = F.interpolate(x, size=(S, S), mode="bilinear", antialias=True, align_corners=False)
            m = F.interpolate(m, size=(S, S), mode="bilinear", antialias=True, align_corners=False)
        inputs[i] = x[0] * (m[0] <= 1e-6)          # I ⊙ M: zero wherever a hole pixel contributes
        windows.append((top, left, side, win_mask))

    results = []
    with torch.inference_mode():
        outputs = [net.model(inputs[s:s + batch_size].to(net.device)).float().cpu()
                   for s in range(0, len(images), batch_size)]
    outputs = torch.cat(outputs) if outputs else inputs
    for (top, left, side, win_mask), pixels, mode, y in zip(windows, images, modes, outputs):
        if side != S:
            y = F.interpolate(y[None], size=(side, side), mode="bilinear", align_corners=False)[0]
        y = y.numpy().transpose(1, 2, 0)                                         # (L, L, 3)
        filled = pixels.copy()
        rows, cols = np.nonzero(win_mask)
        keep = (rows + top >= 0) & (rows + top < pixels.shape[0]) & (cols + left >= 0) & (cols + left < pixels.shape[1])
        rows, cols = rows[keep], cols[keep]
        colour = MODES[mode][0] - (1 if mode in ("LA", "RGBA") else 0)         # channels that are not alpha
        filled[rows + top, cols + left, :colour] = _hole_values(y[rows, cols], mode, pixels.dtype)
        results.append(filled)
    return results


def inpaint(net: Network, image: np.ndarray, mask: np.ndarray, mode: str = "RGB") -> np.ndarray:
    """Fill the hole (mask True) of one (H, W, C) image; every pixel outside the hole is returned unchanged."""
    if image.ndim == 2:
        image = image[..., None]
    return inpaint_many(net, [image], [np.asarray(mask, dtype=bool)], [mode])[0]


# ---------------------------------------------------------------- decoding and encoding


@dataclass
class Decoded:
    """An image as jointnet completes it: (H, W, C) pixels in one of MODES."""

    pixels: np.ndarray
    mode: str
    icc_profile: bytes | None = None

    @property
    def size(self) -> tuple[int, int]:                  # (width, height), as Pillow says it
        return self.pixels.shape[1], self.pixels.shape[0]


def decode_image(path: Path | str) -> Decoded:
    """Decode any image Pillow reads into one of MODES (see the module docstring); UserError if unreadable."""
    try:
        with opened(path) as im:
            icc = im.info.get("icc_profile")
            pixels, mode = to_native(im)
    except Unreadable as e:
        raise UserError(f"{path}: {e.reason}") from None
    return Decoded(pixels, mode, icc)


def _pil_image(pixels: np.ndarray):
    """(H, W, C) → a Pillow image: L or I;16 (C = 1, by dtype), LA, RGB, RGBA."""
    from PIL import Image

    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def _format_of(path: Path) -> str | None:
    from PIL import Image

    return Image.registered_extensions().get(path.suffix.lower())


def _save_options(fmt: str, icc: bytes | None) -> dict[str, Any]:
    # PNG: zlib's run-length strategy on Pillow's filtered rows encodes photos about 4× faster than the
    # default level 6, in files a few % larger at most (measured on skimage's photos)
    options: dict[str, Any] = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True, "exact": True},
                               "PNG": {"compress_level": 1, "compress_type": 3}}.get(fmt, {})
    if icc and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["icc_profile"] = icc
    return options


def _can_write(mode: str, fmt: str, cache: dict) -> bool:
    """Whether Pillow can write a `mode` image as `fmt` (tried on a 1×1 image in memory)."""
    import io

    if (mode, fmt) not in cache:
        channels, _ = MODES[mode]
        probe = _pil_image(np.zeros((1, 1, channels), np.uint16 if mode == "I;16" else np.uint8))
        try:
            probe.save(io.BytesIO(), format=fmt, **_save_options(fmt, None))
            cache[mode, fmt] = True
        except (OSError, ValueError, KeyError, TypeError):
            cache[mode, fmt] = False
    return cache[mode, fmt]


def _stage(path: Path, pixels: np.ndarray, icc: bytes | None) -> Path:
    """Encode an image into a temporary file beside `path` (fsync'ed); the caller renames it into place.

    Pillow encodes into a real file with the GIL released, so several of these run in parallel threads.
    """
    fmt = _format_of(path)
    return write_beside(path, lambda f: _pil_image(pixels).save(f, format=fmt, **_save_options(fmt, icc)))


STRIP_LABELS = ("input", "completed", "original")
LABEL_BAND = 12          # px of the white band above a strip that names its panels


def label_band(width: int, panel: int, like: np.ndarray) -> np.ndarray:
    """A white band naming the strip's three panels (black text, centred on each), in `like`'s mode:
    its channels, dtype and full scale (alpha opaque)."""
    from PIL import Image, ImageDraw

    band = Image.new("L", (width, LABEL_BAND), 255)
    draw = ImageDraw.Draw(band)
    for k, text in enumerate(STRIP_LABELS):
        left, _, right, _ = draw.textbbox((0, 0), text)
        if right - left > panel - 2:                   # a narrow panel: the first letters only
            text = text[:max(1, (panel - 2) // max(1, (right - left) // len(text)))]
            left, _, right, _ = draw.textbbox((0, 0), text)
        draw.text((k * panel + (panel - (right - left)) // 2, 1), text, fill=0)
    gray = np.asarray(band)
    full = 65535 if like.dtype == np.uint16 else 255
    values = (gray.astype(np.uint32) * full // 255).astype(like.dtype)
    channels = like.shape[-1]
    out = np.repeat(values[..., None], channels, axis=-1)
    if channels in (2, 4):
        out[..., -1] = full                             # opaque alpha
    return out


def side_by_side_strip(holed: np.ndarray, filled: np.ndarray, original: np.ndarray) -> np.ndarray:
    """input-with-hole | completed | original, left to right, in the images' own mode, under a band that
    names the three panels (the panels' pixels are the images' own, bit for bit)."""
    row = np.concatenate([holed, filled, original], axis=1)
    return np.concatenate([label_band(row.shape[1], holed.shape[1], row), row], axis=0)


# ---------------------------------------------------------------- inputs, holes, outputs


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


def _read_mask(path: Path) -> np.ndarray:
    """A binary mask image → (H, W) bool, True in the hole: white (gray ≥ 50 %; transparent counts as black)."""
    decoded = decode_image(path)
    channels, full = MODES[decoded.mode]
    x = decoded.pixels.astype(np.float32) / full                     # (H, W, C)
    if decoded.mode in ("LA", "RGBA"):
        x = x[..., :-1] * x[..., -1:]                                  # over black
    return x.mean(axis=-1) >= 0.5


@dataclass
class _Job:
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


def _outputs(inputs: list[Path], out: Path | None) -> tuple[list[Path], list[str]]:
    """Output path per input (see `complete_images`) and the problems with them."""
    problems = []
    if out is not None and len(inputs) == 1 and not out.is_dir() and out.suffix:
        if _format_of(out) is None:
            problems.append(f"--out {out}: cannot tell an image format from the extension {out.suffix!r} "
                            "(use .png, .jpg, .webp, .bmp, .tif, …)")
        return [out], problems
    folder = out if out is not None else DEFAULT_OUT_DIR
    if folder.exists() and not folder.is_dir():
        return [], [f"--out {folder} is a file; with {len(inputs)} inputs give a folder"]
    if out is not None and out.suffix and _format_of(out) is not None and not out.exists():
        return [], [f"--out {out} names one file, but {len(inputs)} inputs were given; give a folder"]
    parents = [str(p.resolve().parent) for p in inputs]
    common = Path(os.path.commonpath(parents)) if inputs else Path(".")
    paths = [folder / p.resolve().parent.relative_to(common) / f"{p.stem}.png" for p in inputs]
    return paths, problems


def _check(inputs: list[Path], outputs: list[Path], *, box: tuple[int, int] | None, size: int,
           mask: np.ndarray | None, side_by_side: bool, force: bool,
           progress: Progress | None, cache: dict[int, Decoded], pool: Any) -> tuple[list[_Job], list[str]]:
    """Decode every input, place every hole, check every output; returns the jobs and every problem."""
    jobs: list[_Job] = []
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
            fmt = _format_of(target)
            if target in claimed:
                problems.append(f"{claimed[target]} and {path} would both be written to {target}")
            elif target.is_dir():
                problems.append(f"{target} is a folder")
            elif target.exists() and not force:
                problems.append(f"{target} exists (use --force to overwrite it)")
            elif fmt is not None and not _can_write(decoded.mode, fmt, writable):
                problems.append(f"{target}: {fmt} cannot store {decoded.mode} images like {path}; write .png")
            claimed.setdefault(target, path)
        jobs.append(_Job(path, decoded.size, decoded.mode, output, strip, square, mask))
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


def _one_line(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
    more = f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
    return f"{len(problems)} problems: {shown}{more}"


# ---------------------------------------------------------------- the library entry point


def complete_images(run: Path | str, dataset: str, inputs: Sequence[str | Path], *, method: str | None = None,
                    box: tuple[int, int] | None = None, size: int | None = None, mask: Path | str | None = None,
                    out: Path | str | None = None, side_by_side: bool = False, force: bool = False,
                    device: str = "auto", batch_size: int = 64, progress: Progress | None = None,
                    network: Network | None = None) -> list[dict]:
    """Complete the hole of every input image with `dataset`'s network of the run; returns one record per output.

    inputs: image files, folders (their image files) and glob patterns.
    hole:   a `size`×`size` square (default: the run's trained hole) with its top-left corner at
            `box` = (x, y) in input pixels, centred when None; or `mask`, a binary image of the
            input's size, white = hole (any shape).
    out:    for one input, a file (format from its extension) or a folder; for several, a folder.
            Default: the folder `completed/`. In a folder, each output is `<input stem>.png`, below
            the same sub-folders as the input relative to the inputs' common folder.
    side_by_side: also write `<output stem>-side-by-side.<ext>`: input-with-hole | completed | original.
    network: a `load_network(...)` result to reuse across calls (then `run` and `method` are not read).
    progress: called as progress(phase, done, total), phase "checking" then "completing".

    Everything (run, inputs, holes, outputs) is checked before anything is written; then outputs
    are written to temporary files and renamed into place only once all are complete.
    Records: {"input", "output", "side_by_side", "box": [x, y, w, h], "size": [w, h], "mode",
    "dataset", "method"}.
    """
    if batch_size < 1:
        raise UserError(f"--batch-size must be a whole number ≥ 1 (got {batch_size})")
    if mask is not None and (box is not None or size is not None):
        raise UserError("--mask gives the hole; it cannot be combined with --box or --hole")
    ck = find_checkpoint(run, dataset, method, task="ae") if network is None else None
    size = size if size is not None else (ck.cfg.hole if ck else network.hole)
    files, problems = expand_inputs(inputs)
    if not inputs:
        problems.append("no input image given")
    hole_mask = None
    if mask is not None:
        try:
            hole_mask = _read_mask(Path(mask))
        except UserError as e:
            problems.append(f"--mask {e}")
        else:
            if not hole_mask.any():
                problems.append(f"--mask {mask} is empty: no white pixel marks a hole")
                hole_mask = None
    outputs, out_problems = _outputs(files, Path(out) if out is not None else None)
    problems += out_problems
    from concurrent.futures import ThreadPoolExecutor

    workers = min(8, available_cores())
    with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="jointnet-complete") as pool:
        # importing torch and loading the network (a second or two) overlaps with decoding the inputs
        # (always joined before returning or raising: no thread outlives the call)
        loading = _Background(lambda: network or _load(ck, device))
        try:
            cache: dict[int, Decoded] = {}
            jobs: list[_Job] = []
            if not out_problems and (mask is None or hole_mask is not None):
                jobs, more = _check(files, outputs, box=box, size=size, mask=hole_mask, side_by_side=side_by_side,
                                    force=force, progress=progress, cache=cache, pool=pool)
                problems += more
            if problems:
                raise UserError(_one_line(problems))
            net = loading.result()                      # a wrong checkpoint is still a UserError here
        finally:
            loading.join()
        return _run(net, jobs, cache, pool, batch_size=batch_size, progress=progress)


class _Background:
    """Run `fn` in a thread; `result()` waits and returns its value or raises its exception."""

    def __init__(self, fn: Callable[[], Any]):
        import threading

        self._value: Any = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = fn()
            except BaseException as e:          # handed to the caller of result()
                self._error = e

        self._thread = threading.Thread(target=target, name="jointnet-load")
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _run(net: Network, jobs: list[_Job], cache: dict[int, Decoded], pool: Any, *, batch_size: int,
         progress: Progress | None) -> list[dict]:
    """Complete every job: decode (threads), inpaint (a batch at a time), encode to temporary files (threads);
    once all are written, rename them into place."""
    import torch

    from jointnet_cli.errors import RunFailure
    from jointnet_cli.store.atomic import fsync_dir

    for folder in {p.parent for j in jobs for p in (j.output, j.strip) if p is not None}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFailure(f"cannot create the folder {folder}: {e.strerror or e}") from None
    for target in (p for j in jobs for p in (j.output, j.strip) if p is not None):
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):   # left by a killed complete
            if stale.is_file() and not stale.is_symlink():
                stale.unlink(missing_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)               # the network is small next to decoding and encoding, which use the cores
    writes: list[tuple[Any, Path]] = []    # (future of the temporary file, target)
    records = []
    submitted = [0]                        # len(writes) after each batch
    try:
        for start in range(0, len(jobs), batch_size):
            for future, _ in writes[:submitted[-2] if len(submitted) > 1 else 0]:
                future.result()            # the batch before the last is written: at most two wait in memory
            batch = jobs[start:start + batch_size]
            missing = [k for k in range(len(batch)) if start + k not in cache]
            for k, d in zip(missing, pool.map(decode_image, [batch[k].input for k in missing])):
                cache[start + k] = d
            decoded = [cache.pop(start + k) for k in range(len(batch))]
            for job, d in zip(batch, decoded):
                if (d.mode, d.size) != (job.mode, job.size):
                    raise RunFailure(f"{job.input} changed while jointnet was reading it")
            holes = [j.hole() for j in batch]
            filled = inpaint_many(net, [d.pixels for d in decoded], holes, [d.mode for d in decoded],
                                  batch_size=batch_size)
            for job, d, result, hole in zip(batch, decoded, filled, holes):
                writes.append((pool.submit(_stage, job.output, result, d.icc_profile), job.output))
                if job.strip is not None:
                    holed = d.pixels.copy()
                    colour = MODES[d.mode][0] - (1 if d.mode in ("LA", "RGBA") else 0)
                    holed[hole, :colour] = 0                       # the hole as the network sees it: zeros
                    strip = side_by_side_strip(holed, result, d.pixels)
                    writes.append((pool.submit(_stage, job.strip, strip, d.icc_profile), job.strip))
                records.append({"input": str(job.input), "output": str(job.output),
                                "side_by_side": str(job.strip) if job.strip else None, "box": job.box(),
                                "size": list(job.size), "mode": d.mode, "dataset": net.dataset, "method": net.method})
            submitted.append(len(writes))
            if progress:
                progress("completing", min(start + batch_size, len(jobs)), len(jobs))
        staged = [(future.result(), target) for future, target in writes]
        for tmp, target in staged:
            os.replace(tmp, target)
        writes = []
        for folder in {target.parent for _, target in staged}:
            fsync_dir(folder)
    except OSError as e:
        raise RunFailure(f"could not write the outputs: {e.strerror or e}") from e
    finally:
        torch.set_num_threads(threads)
        for future, _ in writes:                        # on failure: no temporary file stays behind
            future.cancel()
            if not future.cancelled() and future.exception() is None:
                future.result().unlink(missing_ok=True)
    return records
