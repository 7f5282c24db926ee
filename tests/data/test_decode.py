"""One image decoder: `prepare` and `complete` open files the same way and give the same reasons."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import jointnet_cli
from jointnet_cli.apply.complete import decode_image
from jointnet_cli.data.decode import Unreadable, opened, to_native, to_rgb8
from jointnet_cli.data.ingest import _decode_one
from jointnet_cli.errors import UserError
from jointnet_cli.store.atomic import write_beside


def test_only_the_decoder_opens_images_and_only_the_store_makes_temporary_files():
    package = Path(jointnet_cli.__file__).parent
    opens = {p.relative_to(package).as_posix() for p in package.rglob("*.py") if "Image.open(" in p.read_text()}
    temps = {p.relative_to(package).as_posix() for p in package.rglob("*.py") if "mkstemp(" in p.read_text()}
    assert opens == {"data/decode.py"}
    assert temps == {"store/atomic.py"}


@pytest.mark.parametrize("content, reason", [(b"not an image at all", "not an image Pillow can read"),
                                             (None, "truncated or corrupt image")])
def test_prepare_and_complete_give_the_same_reason(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content is None:                                  # a real PNG cut in half
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    _, from_prepare = _decode_one(str(path), 16, 10**8)
    with pytest.raises(UserError) as from_complete:
        decode_image(path)
    assert from_prepare.startswith(reason)
    assert str(from_complete.value) == f"{path}: {from_prepare}"


def test_exif_orientation_is_applied_before_either_conversion(tmp_path):
    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[0, 0] = (255, 0, 0)                           # red top-left of a 3-wide, 2-high image
    exif = Image.Exif()
    exif[0x0112] = 6                                     # "rotate 90° clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "r.png", exif=exif)
    with opened(tmp_path / "r.png") as im:
        native, mode = to_native(im)
        rgb = np.asarray(to_rgb8(im))
    assert mode == "RGB" and native.shape == (3, 2, 3)
    assert native.tolist() == np.rot90(pixels, k=-1).tolist() == rgb.tolist()


def test_a_sixteen_bit_image_stays_sixteen_bit_natively_and_scales_to_eight_for_the_network(tmp_path):
    a = np.array([[0, 65535], [257, 32896]], np.uint16)
    Image.fromarray(a).save(tmp_path / "g.png")
    with opened(tmp_path / "g.png") as im:
        native, mode = to_native(im)
        rgb = np.asarray(to_rgb8(im))
    assert mode == "I;16" and native[..., 0].tolist() == a.tolist()
    assert rgb[..., 0].tolist() == np.rint(a / 257).astype(int).tolist()


def test_a_bomb_is_refused_by_the_limit_given(tmp_path):
    Image.new("RGB", (40, 40)).save(tmp_path / "big.png")
    with pytest.raises(Unreadable, match="decompression bomb refused: 40x40"):
        with opened(tmp_path / "big.png", max_pixels=1000) as im:
            im.load()
    with opened(tmp_path / "big.png", max_pixels=1600) as im:          # at the limit it opens
        assert im.size == (40, 40)


def test_write_beside_leaves_a_finished_file_or_nothing(tmp_path):
    target = tmp_path / "out.bin"
    tmp = write_beside(target, lambda f: f.write(b"abc"))
    assert tmp.parent == tmp_path and tmp.name.startswith(".out.bin.") and tmp.read_bytes() == b"abc"

    def fail(f):
        f.write(b"half")
        raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError):
        write_beside(target, fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == [tmp.name]
