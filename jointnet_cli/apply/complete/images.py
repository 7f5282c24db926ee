"""The image side of `complete`: decoding into one of MODES (the package docstring says how), encoding
outputs to temporary files, the labelled side-by-side strips, and mask images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jointnet_cli.data.decode import Unreadable, opened, to_native
from jointnet_cli.errors import UserError
from jointnet_cli.store.atomic import write_beside

# mode → (number of channels, value of full intensity)
MODES = {"L": (1, 255), "LA": (2, 255), "RGB": (3, 255), "RGBA": (4, 255), "I;16": (1, 65535)}


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


def format_of(path: Path) -> str | None:
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


def can_write(mode: str, fmt: str, cache: dict) -> bool:
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


def stage_file(path: Path, pixels: np.ndarray, icc: bytes | None) -> Path:
    """Encode an image into a temporary file beside `path` (fsync'ed); the caller renames it into place.

    Pillow encodes into a real file with the GIL released, so several of these run in parallel threads.
    """
    fmt = format_of(path)
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


def read_mask(path: Path) -> np.ndarray:
    """A binary mask image → (H, W) bool, True in the hole: white (gray ≥ 50 %; transparent counts as black)."""
    decoded = decode_image(path)
    channels, full = MODES[decoded.mode]
    x = decoded.pixels.astype(np.float32) / full                     # (H, W, C)
    if decoded.mode in ("LA", "RGBA"):
        x = x[..., :-1] * x[..., -1:]                                  # over black
    return x.mean(axis=-1) >= 0.5
