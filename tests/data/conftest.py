"""Fixtures for the data tests: small image folders written on the fly."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

# Colours chosen far apart so a test can tell each class from its decoded pixels.
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def solid(colour: tuple[int, int, int], size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A (width, height) image of `colour` with a little noise, so no two files are identical."""
    w, h = size
    noise = rng.integers(-12, 13, (h, w, 3))
    return Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def colour_folder(tmp_path: Path) -> Callable[..., Path]:
    """Factory: `colour_folder({"red": 10, "blue": 10})` writes DIR/<class>/<i>.png; `flat=True` drops the class level."""

    def make(counts: dict[str, int], *, flat: bool = False, name: str = "src") -> Path:
        root = tmp_path / name
        rng = np.random.default_rng(123)
        for cls, n in counts.items():
            folder = root if flat else root / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                solid(COLOURS[cls], (40, 30), rng).save(folder / f"{cls}-{i:03d}.png")
        return root

    return make

