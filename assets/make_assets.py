"""Regenerate the example images in assets/ (deterministic; see assets/README.md).

    python assets/make_assets.py

Photos are crops of scikit-image's bundled sample images (`skimage.data`,
"no copyright restrictions" per their docstrings: CC0 or NASA), resized with
Pillow's Lanczos filter; the synthetic images come from jointnet's own synth8
generator; the mask is drawn with numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from jointnet_cli.data.synth8 import DOMAINS, generate_domain

HERE = Path(__file__).resolve().parent


def _photo(array: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> Image.Image:
    """Crop `box` (left, top, right, bottom) of an skimage photo and resize it to `size` (width, height)."""
    return Image.fromarray(array).crop(box).resize(size, Image.Resampling.LANCZOS)


def _synth(name: str, size: int) -> Image.Image:
    """One synth8 image of domain `name` from stream 7 (neither the train nor the test stream)."""
    index = [d for d, _ in DOMAINS].index(name)
    images, _ = generate_domain(index, 1, size, seed=0, stream=7)
    return Image.fromarray(images[0].transpose(1, 2, 0))


def main() -> None:
    # synth8 domains at 128 px: what a quickstart run (trained on synth8) completes well
    _synth("shapes-1", 128).save(HERE / "shapes-1.png", optimize=True)
    _synth("blobs-1", 128).save(HERE / "blobs-1.png", optimize=True)

    # an RGB photo of odd size (257 x 131): the cat's face from skimage's chelsea
    _photo(data.chelsea(), (60, 20, 430, 209), (257, 131)).save(HERE / "chelsea-257x131.png", optimize=True)

    # a grayscale photo (mode L), odd size: skimage's camera
    _photo(data.camera(), (80, 20, 480, 420), (121, 121)).save(HERE / "camera-gray.png", optimize=True)

    # an RGBA photo: skimage's coffee with a radial alpha fade to transparent at the corners
    rgb = _photo(data.coffee(), (60, 0, 540, 360), (120, 90))
    yy, xx = np.mgrid[0:90, 0:120]
    r = np.hypot((xx - 59.5) / 60.0, (yy - 44.5) / 45.0)
    alpha = np.clip((1.3 - r) / 0.4, 0.0, 1.0)
    rgba = np.dstack([np.asarray(rgb), np.rint(alpha * 255).astype(np.uint8)])
    Image.fromarray(rgba).save(HERE / "coffee-rgba.png", optimize=True)

    # a JPEG: skimage's astronaut, head and shoulders
    _photo(data.astronaut(), (120, 0, 400, 280), (128, 128)).save(HERE / "astronaut.jpg", quality=90)

    # a free-form hole for chelsea-257x131.png: an ellipse (white = hole, black = keep)
    yy, xx = np.mgrid[0:131, 0:257]
    inside = ((xx - 150) / 22.0) ** 2 + ((yy - 70) / 14.0) ** 2 <= 1.0
    Image.fromarray(np.where(inside, 255, 0).astype(np.uint8)).convert("1").save(HERE / "chelsea-mask.png", optimize=True)


if __name__ == "__main__":
    main()
