"""The one image decoder: open any file Pillow reads, apply its EXIF orientation, and say in one
vocabulary why a file cannot be read.

Two conversions sit on top of it, one per use:

- `to_rgb8` — what a network sees (`prepare`, and `complete`'s network input): 8-bit RGB, alpha
  composited over white, 16-bit and 32-bit data scaled to 8 bits;
- `to_native` — what `complete` writes back: the image's own pixels in one of a few modes (RGB, RGBA,
  L, LA, 16-bit I;16), so every pixel outside a hole can be written back bit for bit.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np


class Unreadable(Exception):
    """A file that cannot be decoded; `reason` says why in a few words (no path)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


@contextmanager
def opened(path: Path | str, *, max_pixels: int | None = None, draft: int | None = None) -> Iterator:
    """The image at `path`, EXIF orientation applied, open for the body of the `with`.

    `max_pixels`: refuse images with more pixels (Pillow's warning becomes an error too); None keeps
    Pillow's own limit. `draft`: let a JPEG decode at 1/2, 1/4 or 1/8 scale when that still gives at
    least `draft`×`draft` pixels. Every failure — here or in the body, where lazy decoding happens —
    is raised as `Unreadable`.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            if max_pixels is not None:
                warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if max_pixels is not None and im.size[0] * im.size[1] > max_pixels:
                    w, h = im.size
                    raise Unreadable(f"decompression bomb refused: {w}x{h} pixels exceeds the limit of {max_pixels}")
                if draft is not None and im.format == "JPEG":
                    im.draft(None, (draft, draft))
                yield ImageOps.exif_transpose(im)
    except Unreadable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise Unreadable(f"decompression bomb refused: {e}") from None
    except UnidentifiedImageError:
        raise Unreadable("not an image Pillow can read") from None
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as e:
        raise Unreadable(f"cannot read file: {e.strerror or e}") from None
    except (OSError, EOFError) as e:
        raise Unreadable(f"truncated or corrupt image: {_first_line(e)}") from None
    except Exception as e:  # Pillow raises ValueError, SyntaxError, struct.error, … on malformed files
        raise Unreadable(f"cannot decode: {type(e).__name__}: {_first_line(e)}") from None


def to_rgb8(im):  # PIL.Image.Image -> PIL.Image.Image in mode RGB
    """Any Pillow mode as 8-bit RGB: alpha composited over white, 16-bit scaled, 32-bit data of unknown
    range stretched from its min to its max."""
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I") or mode == "F":
        a = np.asarray(im)
        if mode.startswith("I;16") or (mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535):
            a8 = np.rint(a.astype(np.float64) * (255.0 / 65535.0))
        elif mode == "F" and a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a8 = np.rint(a.astype(np.float64) * 255.0)
        else:
            lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
            a8 = np.rint((a.astype(np.float64) - lo) * (255.0 / max(hi - lo, 1e-12)))
        return Image.fromarray(np.clip(a8, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _stretch_to_l(a: np.ndarray) -> np.ndarray:
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
    if lo >= 0.0 and hi <= 1.0 and a.dtype.kind == "f":
        lo, hi = 0.0, 1.0
    return np.rint((a.astype(np.float64) - lo) * (255.0 / max(hi - lo, 1e-12))).clip(0, 255).astype(np.uint8)


def to_native(im) -> tuple[np.ndarray, str]:
    """(H, W, C) pixels and their mode, one of RGB, RGBA, L, LA, I;16, as close to the file as that allows:
    RGB/RGBA/L/LA unchanged; 16-bit grayscale stays 16-bit; 1-bit becomes L; palette images RGB (RGBA
    with transparency); other colour spaces RGB; 32-bit integer and float images L (I;16 when they fit)."""
    mode = im.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        pass
    elif mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im)
        if a.dtype.kind in "ui" and (a.size == 0 or (a.min() >= 0 and a.max() <= 65535)):
            return np.ascontiguousarray(a.astype(np.uint16)[..., None]), "I;16"
        return _stretch_to_l(a)[..., None], "L"
    elif mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode in ("P", "PA", "RGBa") and (mode != "P" or "transparency" in im.info):
        im = im.convert("RGBA")
    else:                                     # P without transparency, CMYK, YCbCr, LAB, HSV, RGBX
        im = im.convert("RGB")
    pixels = np.asarray(im)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return np.ascontiguousarray(pixels), im.mode
