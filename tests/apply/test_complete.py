"""`jointnet complete`: holes filled, every other pixel untouched, any size and mode, every bad input refused."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jointnet_cli.apply.complete import LABEL_BAND, context_window, decode_image, inpaint, load_network

ASSETS = Path(__file__).resolve().parents[2] / "assets"
DATASET = "shapes-1"


@pytest.fixture(scope="module")
def run(synth_dir, tmp_path_factory) -> Path:
    """A tiny trained run: the isolated baseline on shapes-1, width 4, one epoch (32 px, hole 22)."""
    from jointnet_cli.joint.stages import baseline

    path = tmp_path_factory.mktemp("complete") / "run"
    baseline(path, {"task": "ae", "datasets": DATASET, "width": 4, "batch_size": 8}, method="isolated", epochs=1,
             data_dir=synth_dir, device="cpu")
    return path


@pytest.fixture
def complete(cli, run):
    """`jointnet complete --run RUN --dataset shapes-1 --method isolated ARGS… --json`."""
    def call(*args):
        return cli("complete", "--run", run, "--dataset", DATASET, "--method", "isolated", "--device", "cpu",
                   *args, "--json")
    return call


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def square(width: int, height: int, x: int, y: int, size: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[y:y + size, x:x + size] = True
    return mask


# ---------------------------------------------------------------- what is written


@pytest.mark.parametrize("name, mode, box, size", [
    ("chelsea-257x131.png", "RGB", None, None),           # odd size, centred default hole
    ("chelsea-257x131.png", "RGB", (0, 0), 30),           # at a corner: the window shifts to stay inside
    ("chelsea-257x131.png", "RGB", (150, 20), 100),       # window (146 px) taller than the image: padded
    ("camera-gray.png", "L", (3, 90), 22),                # grayscale stays grayscale
    ("coffee-rgba.png", "RGBA", (70, 50), 17),            # alpha kept
    ("astronaut.jpg", "RGB", None, 40),                   # JPEG in, PNG out
])
def test_only_the_hole_changes_and_the_size_is_the_inputs(complete, tmp_path, name, mode, box, size):
    src = ASSETS / name
    out = tmp_path / "out.png"
    args = [src, "--out", out] + (["--box", f"{box[0]},{box[1]}"] if box else []) + (["--size", size] if size else [])
    r = complete(*args)
    assert r.code == 0, r.err
    before, after = decode_image(src).pixels, pixels(out).reshape(decode_image(src).pixels.shape)
    with Image.open(out) as im:
        assert im.mode == mode and im.size == Image.open(src).size
    h, w = before.shape[:2]
    side = size or 22
    x, y = box if box else ((w - side) // 2, (h - side) // 2)
    hole = square(w, h, x, y, side)
    assert np.array_equal(after[~hole], before[~hole])                     # bit-identical outside the hole
    assert not np.array_equal(after[hole], before[hole])                   # the hole was filled
    if mode == "RGBA":
        assert np.array_equal(after[..., 3], before[..., 3])               # alpha untouched, even in the hole
    [record] = r.json
    assert record["box"] == [x, y, side, side] and record["size"] == [w, h] and record["mode"] == mode
    assert record["output"] == str(out) and record["method"] == "isolated"


@pytest.mark.parametrize("kind", ["I;16", "P", "LA", "tiny"])
def test_other_modes_and_tiny_images(complete, tmp_path, kind):
    rng = np.random.default_rng(0)
    src = tmp_path / ("in.gif" if kind == "P" else "in.png")
    if kind == "I;16":
        Image.fromarray(rng.integers(0, 65536, (41, 57), dtype=np.uint16)).save(src)
    elif kind == "P":
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).convert("P").save(src)
    elif kind == "LA":
        Image.fromarray(rng.integers(0, 255, (33, 35, 2), dtype=np.uint8), mode="LA").save(src)
    else:                                                      # smaller than the network's 32 px input
        Image.fromarray(rng.integers(0, 255, (15, 20, 3), dtype=np.uint8)).save(src)
    out = tmp_path / "out.png"
    r = complete(src, "--out", out, "--size", "6")
    assert r.code == 0, r.err
    decoded = decode_image(src)
    expected_mode = {"I;16": "I;16", "P": "RGB", "LA": "LA", "tiny": "RGB"}[kind]
    assert decoded.mode == expected_mode
    after = pixels(out).reshape(decoded.pixels.shape)
    h, w = after.shape[:2]
    hole = square(w, h, (w - 6) // 2, (h - 6) // 2, 6)
    assert after.dtype == decoded.pixels.dtype and np.array_equal(after[~hole], decoded.pixels[~hole])


def test_a_mask_gives_a_hole_of_any_shape(complete, tmp_path):
    src, mask_file = ASSETS / "chelsea-257x131.png", ASSETS / "chelsea-mask.png"
    r = complete(src, "--mask", mask_file, "--out", tmp_path / "out.png")
    assert r.code == 0, r.err
    mask = np.asarray(Image.open(mask_file).convert("L")) >= 128
    before, after = pixels(src), pixels(tmp_path / "out.png")
    assert np.array_equal(after[~mask], before[~mask]) and not np.array_equal(after[mask], before[mask])
    ys, xs = np.nonzero(mask)
    assert r.json[0]["box"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_folders_and_globs_in_one_call_with_side_by_side(complete, tmp_path):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    for name in ("shapes-1.png", "blobs-1.png"):
        shutil.copy(ASSETS / name, inputs / name)
    shutil.copy(ASSETS / "astronaut.jpg", inputs / "sub" / "astronaut.jpg")
    (inputs / "notes.txt").write_text("not an image, and not picked from a folder")
    out = tmp_path / "out"
    r = complete(inputs, str(inputs / "sub" / "*.jpg"), "--out", out, "--side-by-side")
    assert r.code == 0, r.err
    assert files_in(out) == {"blobs-1.png", "blobs-1-side-by-side.png", "shapes-1.png", "shapes-1-side-by-side.png",
                             "sub/astronaut.png", "sub/astronaut-side-by-side.png"}
    assert [Path(rec["input"]).name for rec in r.json] == ["blobs-1.png", "shapes-1.png", "astronaut.jpg"]
    strip, original = pixels(out / "shapes-1-side-by-side.png"), pixels(ASSETS / "shapes-1.png")
    w, band = original.shape[1], LABEL_BAND                                    # a band naming the panels on top
    assert strip.shape == (band + original.shape[0], 3 * w, 3)
    assert (strip[:band] == 255).mean() > 0.7 and (strip[:band] < 128).any()    # white, with dark text
    strip = strip[band:]
    assert np.array_equal(strip[:, 2 * w:], original)                         # original
    assert np.array_equal(strip[:, w:2 * w], pixels(out / "shapes-1.png"))    # completed
    assert (strip[53:75, 53:75] == 0).all()                                   # input with the hole zero-filled

    # a second run refuses to overwrite, then --force does
    r = complete(inputs, "--out", out)
    assert r.code == 2 and "exists (use --force" in r.err
    assert complete(inputs, "--out", out, "--force").code == 0


def test_default_output_folder(cli, run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ASSETS / "astronaut.jpg", tmp_path / "a.jpg")
    r = cli("complete", "--run", run, "--dataset", DATASET, "--method", "isolated", "a.jpg")
    assert r.code == 0, r.err
    assert files_in(tmp_path / "completed") == {"a.png"} and "completed/a.png" in r.out


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written


def _bad_inputs(tmp: Path, run: Path) -> dict[str, tuple[list, str]]:
    (tmp / "text.png").write_text("hello")
    (tmp / "truncated.png").write_bytes((ASSETS / "shapes-1.png").read_bytes()[:3000])
    Image.new("L", (10, 10), 255).save(tmp / "small-mask.png")
    Image.new("L", (257, 131), 0).save(tmp / "black-mask.png")
    Image.new("RGB", (40, 40), (9, 9, 9)).save(tmp / "existing.png")
    untrained = tmp / "untrained"
    untrained.mkdir()
    shutil.copy(run / "config.json", untrained / "config.json")
    wider = tmp / "wider"
    shutil.copytree(run, wider)
    config = json.loads((wider / "config.json").read_text())
    (wider / "config.json").write_text(json.dumps({**config, "width": 8}))
    img = ASSETS / "chelsea-257x131.png"
    return {
        "unreadable": ([tmp / "text.png"], "not an image Pillow can read"),
        "truncated": ([tmp / "truncated.png"], "truncated or corrupt"),
        "missing": ([tmp / "nope.png"], "no such file"),
        "empty folder": ([tmp / "untrained"], "holds no image files"),
        "no glob match": ([str(tmp / "*.webp")], "no image file matches"),
        "hole outside": ([img, "--box", "250,0"], "does not fit inside the 257×131 image"),
        "hole negative": ([img, "--box", "-1,5"], "does not fit inside"),
        "hole too big": ([img, "--size", "140"], "larger than the 257×131 image"),
        "empty hole": ([img, "--size", "0"], "the hole is empty"),
        "mask size": ([img, "--mask", tmp / "small-mask.png"], "the mask is 10×10, the image 257×131"),
        "mask empty": ([img, "--mask", tmp / "black-mask.png"], "is empty"),
        "mask and box": ([img, "--mask", tmp / "small-mask.png", "--box", "1,1"], "cannot be combined"),
        "bad box": ([img, "--box", "3;4"], "--box must be X,Y"),
        "unknown dataset": ([img, "--dataset", "wolves"], "unknown dataset 'wolves'"),
        "untrained method": ([img, "--method", "joint"], "no trained 'joint' network (trained: isolated)"),
        "no auto-encoder": ([img, "--run", untrained], "has no trained auto-encoder"),
        "no run": ([img, "--run", tmp / "nowhere"], "no run at"),
        "shape mismatch": ([img, "--run", wider], "does not hold a ae9 network"),
        "output exists": ([img, "--out", tmp / "existing.png"], "exists (use --force"),
        "one file, many inputs": ([img, ASSETS / "shapes-1.png", "--out", tmp / "x.png"], "names one file"),
        "unknown extension": ([img, "--out", tmp / "x.xyz"], "cannot tell an image format"),
        "alpha as JPEG": ([ASSETS / "coffee-rgba.png", "--out", tmp / "x.jpg"], "JPEG cannot store RGBA"),
        "one bad among good": ([img, ASSETS / "shapes-1.png", tmp / "text.png"], "not an image"),
    }


def test_every_bad_input_is_one_line_exit_2_and_nothing_written(cli, run, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    cases = _bad_inputs(bad, run)
    before = files_in(tmp_path)
    for case, (args, message) in cases.items():
        out = [] if any(str(a) == "--out" for a in args) else ["--out", tmp_path / "out"]
        extra = [] if "--run" in map(str, args) else ["--run", run]
        extra += [] if "--dataset" in map(str, args) else ["--dataset", DATASET]
        extra += [] if "--method" in map(str, args) else ["--method", "isolated"]
        r = cli("complete", *extra, *args, *out, "--device", "cpu")
        assert r.code == 2, (case, r.err)
        assert message in r.err, (case, r.err)
        errors = [line for line in r.err.splitlines() if "error" in line.lower() or "Traceback" in line]
        assert len(errors) == 1 and errors[0].startswith("jointnet: error: "), (case, r.err)   # one line
        assert files_in(tmp_path) == before, case                    # nothing written, no temporary file


# ---------------------------------------------------------------- the library


def test_context_window_keeps_the_trained_ratio_and_stays_inside():
    assert context_window((5, 5, 27, 27), 64, 64, 32, 22) == (0, 0, 32)                 # trained geometry: 32 px
    top, left, side = context_window((100, 40, 144, 84), 131, 257, 32, 22)              # a 44 px hole
    assert side == math.ceil(44 * 32 / 22) and top + side <= 131 and left <= 100 and left + side >= 144
    assert context_window((0, 0, 10, 10), 200, 200, 32, 22)[:2] == (0, 0)               # shifted to the corner
    assert context_window((1, 2, 9, 10), 12, 10, 32, 22) == (0, -1, 12)                  # wider than the image: padded


def test_inpaint_pastes_exactly_the_networks_output_at_trained_geometry(run):
    """A 22 px hole in a 32 px image: the window is the image, no resampling, so the hole holds G(I ⊙ M)."""
    net = load_network(run, DATASET, "isolated", device="cpu")
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = square(32, 32, 4, 6, 22)
    filled = inpaint(net, image, mask)
    x = torch.from_numpy(image.transpose(2, 0, 1)).float()[None] / 255 * torch.from_numpy(~mask).float()
    with torch.no_grad():
        expected = (net.model(x)[0].numpy().transpose(1, 2, 0).clip(0, 1) * 255).round().astype(np.uint8)
    assert np.array_equal(filled[mask], expected[mask]) and np.array_equal(filled[~mask], image[~mask])


def test_importing_complete_does_not_import_torch():
    code = ("import sys, jointnet_cli.apply.complete, jointnet_cli.cli.complete; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_a_method_family_name_finds_its_one_numbered_member_and_nothing_else(run, tmp_path):
    """`--method l2-partial` is the run's one l2-partial-NN; `--method l2` is never l2-groups."""
    from jointnet_cli.apply.trained import find_checkpoint
    from jointnet_cli.errors import UserError

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = json.loads((copy / "state.json").read_text())
    trained = state["baselines"]["isolated"]
    state["baselines"]["l2-groups"] = {**trained, "method": "l2-groups", "groups": ["shapes"]}
    (copy / "state.json").write_text(json.dumps(state))
    with pytest.raises(UserError, match="no trained 'l2' network"):
        find_checkpoint(copy, DATASET, "l2", task="ae")
    assert find_checkpoint(copy, DATASET, "l2-groups", task="ae").method == "l2-groups"
    state["baselines"]["l2-partial-25"] = {**trained, "method": "l2-partial"}
    (copy / "state.json").write_text(json.dumps(state))
    assert find_checkpoint(copy, DATASET, "l2-partial", task="ae").method == "l2-partial-25"
