"""`synth8`: the builtin collection of 8 labelled image domains in 3 known groups.

Every test and benchmark of the joint-learning method stands on this
collection, so its structure is deliberate:

    group    domains               looks like                                   label (4 classes)
    shapes   shapes-1, -2, -3      bright pastel gradient, one flat dark shape  shape: circle/square/triangle/cross
    stripes  stripes-1, -2, -3     saturated two-colour grating, mid grey       stripe direction: 0/45/90/135 deg
    blobs    blobs-1, -2           dark noisy texture, bright soft blobs        number of blobs: 1..4

Groups differ strongly in low-level statistics (brightness, contrast, colour,
texture frequency, how the label is drawn), so sharing early layers across
groups hurts. Inside a group, domains share one generative process up to a
small shift (tint, scale, frequency, position), so sharing helps. Each image
draws its own position, size, colours and noise, so a few hundred images per
domain is a small-data regime. Everything is vectorised numpy; coordinates are
in units of the image side, so any size from 16 to 128 shows the same content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from jointnet_cli.data.format import Split, read_manifest, write_dataset
from jointnet_cli.data.ingest import PrepareResult
from jointnet_cli.errors import UserError
from jointnet_cli.store.atomic import check_folder

COLLECTION = "synth8"
MIN_SIZE, MAX_SIZE = 16, 128

CLASSES = {
    "shapes": ["circle", "square", "triangle", "cross"],
    "stripes": ["horizontal", "rising", "vertical", "falling"],
    "blobs": ["one", "two", "three", "four"],
}


@dataclass(frozen=True)
class _Domain:
    """The small per-domain shift of its group's generative process."""

    name: str
    group: str
    hue: float  # main hue (background / bright stripe / background tint), in turns
    scale: float = 1.0  # shapes: size; stripes: frequency; blobs: blob width
    shift: tuple[float, float] = (0.0, 0.0)  # shapes: centre offset (x, y), in image sides
    accent: float = 0.0  # blobs: hue of the blobs


_DOMAINS = (
    _Domain("shapes-1", "shapes", hue=0.08, scale=1.00, shift=(0.00, 0.00)),
    _Domain("shapes-2", "shapes", hue=0.11, scale=0.90, shift=(0.04, 0.00)),
    _Domain("shapes-3", "shapes", hue=0.05, scale=1.10, shift=(0.00, 0.04)),
    _Domain("stripes-1", "stripes", hue=0.58, scale=4.0),
    _Domain("stripes-2", "stripes", hue=0.61, scale=4.4),
    _Domain("stripes-3", "stripes", hue=0.555, scale=3.7),
    _Domain("blobs-1", "blobs", hue=0.40, scale=0.070, accent=0.12),
    _Domain("blobs-2", "blobs", hue=0.44, scale=0.062, accent=0.15),
)

DOMAINS: list[tuple[str, str]] = [(d.name, d.group) for d in _DOMAINS]
GROUPS: list[str] = ["shapes", "stripes", "blobs"]


# ---------------------------------------------------------------- helpers


def _hsv(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV (each [n], hue in turns) -> RGB [n, 3, 1, 1] in [0, 1]."""
    h6 = (np.asarray(h, np.float32) % 1.0) * 6.0
    out = []
    for n in (5.0, 3.0, 1.0):  # R, G, B
        k = (n + h6) % 6.0
        out.append(v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))
    return np.stack(out, axis=1).astype(np.float32)[:, :, None, None]


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates x, y in [0, 1], each [1, 1, size, size]; y points down."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[None, None, None, :], c[None, None, :, None]


def _u(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """n uniform draws, shaped [n, 1, 1, 1] to broadcast over images [n, C, H, W]."""
    return rng.uniform(lo, hi, n).astype(np.float32)[:, None, None, None]


def _balanced_labels(rng: np.random.Generator, count: int, k: int) -> np.ndarray:
    return rng.permutation(np.arange(count) % k).astype(np.int64)


def _upsample(coarse: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of [n, g, g] to [n, size, size]."""
    g = coarse.shape[-1]
    pos = np.clip((np.arange(size) + 0.5) * g / size - 0.5, 0, g - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, g - 1)
    m = np.zeros((size, g), np.float32)
    m[np.arange(size), lo] += 1 - (pos - lo)
    m[np.arange(size), hi] += pos - lo
    return np.einsum("hi,nij,wj->nhw", m, coarse, m)


# ---------------------------------------------------------------- the three groups


def _shapes(d: _Domain, rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pastel linear gradient, one flat dark shape; label = shape type."""
    x, y = _grid(size)
    labels = _balanced_labels(rng, n, 4)
    # background: two light colours of nearby hue, blended along a random direction
    h1 = d.hue + rng.uniform(-0.06, 0.06, n)
    c1 = _hsv(h1, rng.uniform(0.15, 0.35, n), rng.uniform(0.82, 0.97, n))
    c2 = _hsv(h1 + rng.uniform(0.05, 0.15, n), rng.uniform(0.15, 0.35, n), rng.uniform(0.82, 0.97, n))
    theta = _u(rng, 0, 2 * np.pi, n)
    t = np.clip(0.5 + ((x - 0.5) * np.cos(theta) + (y - 0.5) * np.sin(theta)) * _u(rng, 0.8, 1.2, n), 0, 1)
    bg = c1 + (c2 - c1) * t  # [n,3,H,W]
    # shape: centre, radius, rotation; signed distance (> 0 outside) in image sides
    cx = 0.5 + d.shift[0] + _u(rng, -0.16, 0.16, n)
    cy = 0.5 + d.shift[1] + _u(rng, -0.16, 0.16, n)
    r = d.scale * _u(rng, 0.17, 0.27, n)
    rho = _u(rng, -0.4, 0.4, n)
    u = np.cos(rho) * (x - cx) + np.sin(rho) * (y - cy)  # [n,1,H,W]
    v = -np.sin(rho) * (x - cx) + np.cos(rho) * (y - cy)
    au, av = np.abs(u), np.abs(v)
    normals = [(float(np.cos(a)), float(np.sin(a))) for a in np.deg2rad([-90.0, 30.0, 150.0])]  # upright triangle
    dist = np.stack([
        np.sqrt(u * u + v * v) - r,  # circle
        np.maximum(au, av) - 0.82 * r,  # square
        np.max([nu * u + nv * v for nu, nv in normals], axis=0) - 0.7 * r,  # triangle
        np.minimum(np.maximum(au - r, av - 0.35 * r), np.maximum(au - 0.35 * r, av - r)),  # cross
    ])[labels, np.arange(n)]
    mask = np.clip(0.5 - dist * size, 0, 1)  # one-pixel antialiased edge
    fg = _hsv(d.hue + 0.5 + rng.uniform(-0.08, 0.08, n), rng.uniform(0.55, 0.85, n), rng.uniform(0.35, 0.6, n))
    img = bg + (fg - bg) * mask
    img += rng.normal(0, 0.015, img.shape).astype(np.float32)
    return img, labels


def _stripes(d: _Domain, rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-colour soft square-wave grating under a light ramp; label = stripe direction."""
    x, y = _grid(size)
    labels = _balanced_labels(rng, n, 4)
    alpha = (labels.astype(np.float32) * np.pi / 4)[:, None, None, None] + _u(rng, -0.1, 0.1, n)
    w = -np.sin(alpha) * x - np.cos(alpha) * y  # across the stripes (y points down, so 45 deg rises)
    freq = d.scale * _u(rng, 0.9, 1.1, n)  # cycles per image side
    wave = np.sin(2 * np.pi * freq * w + _u(rng, 0, 2 * np.pi, n))
    q = 0.5 + 0.5 * np.tanh(2.5 * wave) / np.tanh(2.5)
    a = _hsv(d.hue + rng.uniform(-0.04, 0.04, n), rng.uniform(0.6, 0.9, n), rng.uniform(0.75, 0.95, n))
    b = _hsv(d.hue + 0.5 + rng.uniform(-0.04, 0.04, n), rng.uniform(0.5, 0.8, n), rng.uniform(0.15, 0.35, n))
    img = b + (a - b) * q
    beta = _u(rng, 0, 2 * np.pi, n)  # illumination ramp in a random direction
    img *= 1 + _u(rng, 0.0, 0.3, n) * ((x - 0.5) * np.cos(beta) + (y - 0.5) * np.sin(beta))
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    return img, labels


def _blobs(d: _Domain, rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Dark grainy texture with 1-4 bright Gaussian blobs on a jittered 3x3 grid; label = count - 1."""
    x, y = _grid(size)
    labels = _balanced_labels(rng, n, 4)
    base = _hsv(d.hue + rng.uniform(-0.03, 0.03, n), rng.uniform(0.4, 0.7, n), rng.uniform(0.10, 0.20, n))
    grain = rng.normal(0, 0.06, (n, 1, size, size)).astype(np.float32)  # fine, grey
    blotch = 0.05 * _upsample(rng.normal(0, 1, (n, 6, 6)).astype(np.float32), size)[:, None]  # coarse
    bg = base * (1 + 2.5 * blotch) + grain + rng.normal(0, 0.02, (n, 3, size, size)).astype(np.float32)
    # blob j is shown when j < count; distinct grid cells keep blobs apart
    cells = np.argsort(rng.random((n, 9)), axis=1)[:, :4]  # [n,4]
    bx = ((cells % 3 + 0.5) / 3 + rng.uniform(-0.06, 0.06, (n, 4))).astype(np.float32)
    by = ((cells // 3 + 0.5) / 3 + rng.uniform(-0.06, 0.06, (n, 4))).astype(np.float32)
    sigma = (d.scale * rng.uniform(0.85, 1.15, (n, 4))).astype(np.float32)
    shown = (np.arange(4)[None, :] <= labels[:, None]).astype(np.float32)
    sq = (x[:, :, None] - bx[:, None, :, None, None]) ** 2 + (y[:, :, None] - by[:, None, :, None, None]) ** 2
    peaks = np.exp(-sq / (2 * sigma[:, None, :, None, None] ** 2)) * shown[:, None, :, None, None]  # [n,1,4,H,W]
    mask = np.clip(1.2 * peaks.sum(axis=2), 0, 1)  # [n,1,H,W]
    fg = _hsv(d.accent + rng.uniform(-0.03, 0.03, n), rng.uniform(0.5, 0.8, n), rng.uniform(0.9, 1.0, n))
    img = bg + (fg - bg) * mask
    return img, labels


_GENERATORS = {"shapes": _shapes, "stripes": _stripes, "blobs": _blobs}


# ---------------------------------------------------------------- public API


def generate_domain(index: int, count: int, size: int, seed: int, *, stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate `count` images of domain `index`: uint8 [count,3,size,size] and int64 labels [count].

    Deterministic in (seed, index, stream); different streams are independent
    (`prepare_synth8` draws train from stream 0 and test from stream 1).
    """
    if not 0 <= index < len(_DOMAINS):
        raise ValueError(f"domain index {index} out of range 0..{len(_DOMAINS) - 1}")
    if count < 0 or size < 1 or seed < 0 or stream < 0:
        raise ValueError("count, size, seed and stream must be non-negative (size >= 1)")
    d = _DOMAINS[index]
    rng = np.random.default_rng([seed, index, stream])
    img, labels = _GENERATORS[d.group](d, rng, count, size)
    images = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(images), labels


def _check_arguments(data_dir: Path, size: int, train: int, test: int, seed: int, force: bool) -> None:
    problems = []
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        problems.append(f"--size {size}: synth8 needs an integer from {MIN_SIZE} to {MAX_SIZE}")
    for flag, value in (("--train", train), ("--test", test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{flag} {value}: synth8 needs a count >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.append(f"--seed {seed}: must be an integer >= 0")
    if not force:
        existing = [name for name, _ in DOMAINS if (Path(data_dir) / name).exists()]
        if existing:
            problems.append(
                f"datasets {', '.join(existing)} already exist in {data_dir} (use --force to overwrite)"
            )
    if problems:
        raise UserError("; ".join(problems))


def prepare_synth8(
    *,
    data_dir: Path,
    size: int = 32,
    train: int = 500,
    test: int = 100,
    seed: int = 0,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[PrepareResult]:
    """Generate and write the 8 synth8 datasets to `data_dir`, in collection order.

    `train`/`test` are images per domain (balanced over its 4 classes); train
    and test come from independent random streams. `progress(done, 8)` is
    called after each domain is written.
    """
    data_dir = Path(data_dir)
    check_folder(data_dir, "--data-dir")
    _check_arguments(data_dir, size, train, test, seed, force)
    results = []
    for index, d in enumerate(_DOMAINS):
        train_images, train_labels = generate_domain(index, train, size, seed, stream=0)
        test_images, test_labels = generate_domain(index, test, size, seed, stream=1)
        manifest = {
            "source": f"builtin:{COLLECTION}",
            "collection": COLLECTION,
            "group": d.group,
            "domain_index": index,
            "classes": list(CLASSES[d.group]),
            "split_seed": seed,
            "skipped": [],
        }
        path = write_dataset(
            data_dir, d.name, Split(train_images, train_labels), Split(test_images, test_labels), manifest, force=force
        )
        results.append(PrepareResult(name=d.name, path=path, manifest=read_manifest(data_dir, d.name), skipped=[]))
        if progress is not None:
            progress(index + 1, len(_DOMAINS))
    return results
