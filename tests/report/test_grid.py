"""Sample grids: tile layout by hand, and PNGs that are byte-identical for the same pixels."""

import numpy as np
import pytest
from PIL import Image

from jointnet_cli.report.grid import grid_shape, make_grid, save_png


@pytest.mark.parametrize("n, shape", [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (4, (2, 2)), (5, (2, 3)),
                                      (10, (3, 4)), (16, (4, 4)), (17, (4, 5)), (64, (8, 8)), (65, (8, 9))])
def test_grid_shape(n, shape):
    assert grid_shape(n) == shape


def test_grid_shape_refuses_zero():
    with pytest.raises(ValueError):
        grid_shape(0)


def numbered_tiles(n, c=3, h=4, w=5):
    """Tile k is filled with the value 10·k + channel, so every pixel says where it came from."""
    values = 10 * np.arange(n)[:, None] + np.arange(c)[None, :]            # (N, C)
    return np.broadcast_to(values[:, :, None, None], (n, c, h, w)).astype(np.uint8)


def test_make_grid_places_tile_k_row_major():
    grid = make_grid(numbered_tiles(10), pad=2, background=255)           # 3 rows × 4 cols of 4×5 tiles
    assert grid.shape == (3 * 4 + 4 * 2, 4 * 5 + 5 * 2, 3) == (20, 30, 3)
    assert grid.dtype == np.uint8
    # tile k at row k // 4, column k % 4: top-left pixel (2 + row·6, 2 + col·7)
    assert grid[2, 2].tolist() == [0, 1, 2]                               # tile 0
    assert grid[2, 2 + 3 * 7].tolist() == [30, 31, 32]                    # tile 3, end of the first row
    assert grid[2 + 6, 2].tolist() == [40, 41, 42]                        # tile 4 starts the second row
    assert grid[2 + 2 * 6 + 3, 2 + 7 + 4].tolist() == [90, 91, 92]        # tile 9, its bottom-right pixel
    assert (grid[2 + 2 * 6:, 2 + 2 * 7:] == 255).all()                    # tiles 10, 11 are empty
    assert (grid[:2] == 255).all() and (grid[:, 7:9] == 255).all()        # border and the gap after column 0


def test_make_grid_grey_tiles_become_rgb_with_no_padding():
    grid = make_grid(numbered_tiles(3, c=1, h=2, w=2), pad=0, background=0)   # 2×2 grid of 2×2 tiles
    assert grid.shape == (4, 4, 3)
    assert grid[:, :, 0].tolist() == [[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 0, 0], [20, 20, 0, 0]]
    assert (grid[..., 0] == grid[..., 2]).all()


def test_make_grid_rejects_wrong_input_with_every_problem():
    with pytest.raises(ValueError, match="uint8.*pad"):
        make_grid(np.zeros((2, 3, 4, 4), dtype=np.float32), pad=-1)
    with pytest.raises(ValueError, match="C 1 or 3"):
        make_grid(np.zeros((2, 4, 4, 4), dtype=np.uint8))


def test_save_png_is_byte_identical_and_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    grid = make_grid(rng.integers(0, 256, size=(5, 3, 8, 8), dtype=np.uint8))
    first = save_png(grid, tmp_path / "samples" / "epoch-1" / "grid.png")   # folders are created
    second = save_png(grid.copy(), tmp_path / "again.png")
    assert first == tmp_path / "samples" / "epoch-1" / "grid.png"
    assert first.read_bytes() == second.read_bytes()
    with Image.open(first) as im:
        assert im.mode == "RGB" and im.size == (grid.shape[1], grid.shape[0])
        assert (np.asarray(im) == grid).all()
    assert sorted(p.name for p in first.parent.iterdir()) == ["grid.png"]  # no temporary file left behind
