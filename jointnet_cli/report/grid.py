"""Sample grids: many small images tiled into one PNG.

`make_grid` lays N images of one size out row by row on a background, with
`pad` pixels between tiles and around the border; `save_png` writes the
result so that the same pixels always give the same bytes (no timestamps or
other metadata, fixed compression settings), atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image

from jointnet_cli.store.atomic import atomic_write_bytes


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) for n tiles: cols = ⌈√n⌉, rows = ⌈n / cols⌉ (64 → 8×8, 10 → 3×4, 1 → 1×1)."""
    if n < 1:
        raise ValueError(f"a grid needs at least one image, got {n}")
    cols = math.isqrt(n - 1) + 1          # ⌈√n⌉ in exact integer arithmetic
    rows = -(-n // cols)                  # ⌈n / cols⌉
    return rows, cols


def make_grid(images: np.ndarray, *, pad: int = 2, background: int = 255) -> np.ndarray:
    """One (H', W', 3) uint8 image tiling N (C, H, W) uint8 images row-major, C = 3 or 1 (grey).

    With (rows, cols) = grid_shape(N): H' = rows·H + (rows + 1)·pad and
    W' = cols·W + (cols + 1)·pad. Tile k sits at row k // cols, column
    k % cols, its top-left pixel at (pad + row·(H + pad), pad + col·(W + pad)).
    Gaps, border and unused tiles are `background` in every channel.
    """
    problems = []
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] < 1:
        problems.append(f"images must be (N, C, H, W) with N ≥ 1 and C 1 or 3, got shape {images.shape}")
    if images.dtype != np.uint8:
        problems.append(f"images must be uint8, got {images.dtype}")
    if pad < 0:
        problems.append(f"pad must be ≥ 0, got {pad}")
    if not 0 <= background <= 255:
        problems.append(f"background must be 0..255, got {background}")
    if problems:
        raise ValueError("; ".join(problems))

    n, _, h, w = images.shape
    rows, cols = grid_shape(n)
    tiles = np.broadcast_to(images.transpose(0, 2, 3, 1), (n, h, w, 3))   # (N, H, W, 3), grey repeated
    grid = np.full((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, 3), background, dtype=np.uint8)
    for k in range(n):
        top = pad + (k // cols) * (h + pad)
        left = pad + (k % cols) * (w + pad)
        grid[top:top + h, left:left + w] = tiles[k]
    return grid


def save_png(array: np.ndarray, path: Path) -> Path:
    """Write a (H, W, 3) or (H, W) uint8 array as a PNG at `path`; returns `path`.

    Deterministic: PIL adds no timestamp or text chunk unless asked, and the
    compression settings are fixed, so the same array gives a byte-identical
    file. Atomic: written to a temporary file in the same folder, fsync'ed,
    then renamed over `path` (parent folders are created).
    """
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"a PNG needs a uint8 (H, W, 3) or (H, W) array, got {array.dtype} {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=False, compress_level=6)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path
