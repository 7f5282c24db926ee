"""Multi-scale sliced Wasserstein distance: pyramid and descriptors by hand, then the distance's behaviour."""

import pytest
import torch
import torch.nn.functional as F

from jointnet_cli.tasks.swd import laplacian_pyramid, normalize, patch_descriptors, sliced_wasserstein, swd

FAST = dict(patches_per_image=32, directions=64, repeats=2)   # enough for these tests, ~10 ms per call on one core


def blobs(n, size=32, seed=0, cell=4):
    """n colour images of smooth random blobs: uniform noise on a (size/cell)² grid, bilinearly enlarged."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, size // cell, size // cell, generator=g)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def sides(levels):
    return [tuple(level.shape[2:]) for level in levels]


def test_pyramid_stops_at_16_px_and_caps_at_levels():
    assert sides(laplacian_pyramid(torch.rand(2, 3, 32, 32), levels=4)) == [(32, 32), (16, 16)]
    assert sides(laplacian_pyramid(torch.rand(2, 3, 64, 64), levels=4)) == [(64, 64), (32, 32), (16, 16)]
    assert sides(laplacian_pyramid(torch.rand(2, 3, 64, 64), levels=2)) == [(64, 64), (32, 32)]
    assert sides(laplacian_pyramid(torch.rand(2, 3, 8, 8), levels=4)) == [(8, 8)]   # too small: the image itself
    assert laplacian_pyramid(torch.rand(2, 3, 64, 64), levels=4)[0].shape == (2, 3, 64, 64)


def test_pyramid_of_a_flat_image_has_no_detail():
    """The binomial kernel sums to 1 and reflect padding adds no edge, so detail levels are 0 and the coarsest is the colour."""
    flat = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1).expand(2, 3, 64, 64)
    fine, middle, coarse = laplacian_pyramid(flat, levels=4)
    assert fine.abs().max() < 1e-6 and middle.abs().max() < 1e-6
    assert torch.allclose(coarse, flat[:, :, :16, :16])


def test_patch_descriptors_are_7x7_windows_channel_major():
    n, c, h, w = 2, 3, 16, 16
    # each pixel holds its own address: image·1024 + channel·256 + row·16 + column
    level = (1024 * torch.arange(n).view(n, 1, 1, 1) + 256 * torch.arange(c).view(1, c, 1, 1)
             + 16 * torch.arange(h).view(1, 1, h, 1) + torch.arange(w).view(1, 1, 1, w)).float()
    desc = patch_descriptors(level, patches_per_image=5, gen=torch.Generator().manual_seed(0))
    assert desc.shape == (n * 5, c * 49)
    window = 16 * torch.arange(7).view(7, 1) + torch.arange(7).view(1, 7)       # offsets inside a 7×7 window
    corner = desc[:, :1]                                                         # top-left pixel of channel 0
    assert torch.equal(desc[:, :49] - corner, window.flatten().float().expand(n * 5, 49))
    assert torch.equal(desc[:, 49:98] - desc[:, :49], torch.full((n * 5, 49), 256.0))  # next block: channel 1
    assert (corner[:5] < 1024).all() and (corner[5:] >= 1024).all()             # 5 patches of image 0, then image 1
    assert ((corner % 256) // 16).max() <= 16 - 7 and (corner % 16).max() <= 16 - 7   # windows stay inside


def test_normalize_per_channel_over_descriptors_and_positions():
    # 2 channels of 2 values each; channel 0 holds 0, 2, 4, 6 (mean 3, population std √5), channel 1 is constant
    desc = torch.tensor([[0.0, 2.0, 7.0, 7.0],
                         [4.0, 6.0, 7.0, 7.0]])
    out = normalize(desc, channels=2)
    assert torch.allclose(out[:, :2], (torch.tensor([[0.0, 2.0], [4.0, 6.0]]) - 3) / 5 ** 0.5)
    assert torch.equal(out[:, 2:], torch.zeros(2, 2))                           # constant channel: 0, not NaN


def test_sliced_wasserstein_of_a_shift_in_one_dimension_is_the_shift():
    """In 1-D every unit direction is ±1, so the sorted projections differ by exactly the shift."""
    a = torch.tensor([[0.0], [2.0], [1.0]])
    gen = torch.Generator().manual_seed(0)
    assert sliced_wasserstein(a, a + 0.5, directions=8, repeats=3, gen=gen) == pytest.approx(0.5)
    assert sliced_wasserstein(a, a.flip(0), directions=8, repeats=3, gen=gen) == 0.0   # order does not matter


def test_swd_of_a_set_with_itself_is_exactly_zero():
    x = blobs(16)
    assert swd(x, x.clone(), **FAST) == {"swd": 0.0, "swd_levels": [0.0, 0.0]}


def test_swd_is_deterministic_for_a_seed():
    x, y = blobs(16, seed=0), blobs(16, seed=1)
    first = swd(x, y, seed=3, **FAST)
    assert swd(x, y, seed=3, **FAST) == first
    other = swd(x, y, seed=4, **FAST)
    assert other != first and other["swd"] == pytest.approx(first["swd"], rel=0.3)   # another sample, same scale
    assert len(first["swd_levels"]) == 2 and first["swd"] == pytest.approx(sum(first["swd_levels"]) / 2)


def increasing(values):
    return all(a < b for a, b in zip(values, values[1:]))


def test_swd_grows_with_the_strength_of_added_noise():
    x = blobs(16)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    values = [swd(x + s * noise, x, **FAST)["swd"] for s in (0.0, 0.02, 0.05, 0.1, 0.2)]
    assert values[0] == 0.0
    assert increasing(values) and values[1] > 5            # about 0, 27, 46, 66, 81 (×1e3 units)


def test_swd_grows_with_blur():
    x = blobs(16, cell=2)
    blurred, values = x, []
    for _ in range(3):
        blurred = F.avg_pool2d(blurred, 3, stride=1, padding=1, count_include_pad=False)
        values.append(swd(blurred, x, **FAST)["swd"])
    assert increasing(values) and values[0] > 5            # about 44, 62, 76


def test_swd_ignores_global_brightness_because_each_set_is_normalised():
    """Per-channel normalisation of each set (Karras et al.) removes offsets: SWD compares patch shapes, not levels."""
    x = blobs(16)
    assert swd(x + 0.2, x, **FAST)["swd"] < 0.01
    assert swd(0.5 * x, x, **FAST)["swd"] < 0.01


def test_same_distribution_is_closer_than_a_different_one():
    x = blobs(128, seed=0)
    same = swd(x, blobs(128, seed=1), **FAST)["swd"]               # fresh draw of the same kind of image
    coarser = swd(x, blobs(128, seed=2, cell=8), **FAST)["swd"]    # blobs twice as large
    assert same < 0.5 * coarser


def test_swd_refuses_sets_of_different_sizes():
    with pytest.raises(ValueError, match="same number of images, got 4 fake and 3 real"):
        swd(blobs(4), blobs(3))


@pytest.mark.gpu
def test_swd_on_cuda_matches_cpu():
    x, y = blobs(16, seed=0), blobs(16, seed=1)
    on_gpu = swd(x.cuda(), y.cuda(), **FAST)
    assert on_gpu["swd_levels"] == pytest.approx(swd(x, y, **FAST)["swd_levels"], rel=1e-4)
