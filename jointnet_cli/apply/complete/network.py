"""The network side of `complete`: a run's trained auto-encoder, the geometry that brings any hole to the
network's S×S input with an h×h hole, and the fill itself (`inpaint_many`; the package docstring has the
geometry)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from jointnet_cli.apply.complete.images import MODES
from jointnet_cli.apply.trained import TrainedCheckpoint, find_checkpoint, load_model
from jointnet_cli.errors import UserError

if TYPE_CHECKING:
    import torch


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


def network_from(ck: TrainedCheckpoint, device: str) -> Network:
    """A checkpoint's network, loaded for completing images on `device`."""
    model, dev = load_model(ck, device)
    cfg = ck.cfg
    return Network(model, cfg.image_size, cfg.hole, dev, run=str(ck.run), dataset=ck.dataset, method=ck.method,
                   checkpoint=str(ck.path))


def load_network(run_path: Path | str, dataset: str, method: str | None = None, *, device: str = "auto") -> Network:
    """The trained network of `dataset` in a run: `method` is "joint" (default) or a trained baseline."""
    return network_from(find_checkpoint(run_path, dataset, method, task="ae"), device)


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
