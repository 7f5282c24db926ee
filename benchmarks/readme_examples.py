"""Run every example command of README.md, as written, in a fresh folder at tiny size; print each result.

    python benchmarks/readme_examples.py                 # all of them (a few minutes on 2 cores)
    python benchmarks/readme_examples.py --keep /tmp/ex  # keep the folder to look at what they wrote

Which commands: every line of a ```bash block that starts with `jointnet` (or ends with `&& jointnet …`),
and every inline `jointnet …` of the README that has arguments. Usage templates are expanded: each
`[…]` group of optional flags is run with each of its `a | b` alternatives given (the bare form is the
same command with defaults, which tiny.toml sets here), `{a,b}` runs every alternative, and the
placeholders get values made here (NAME: bird, dog and wolf; DIR: a folder of photo crops from
scikit-image's sample images, or an output folder after --out; N: 2; X,Y: 4,4; M.png: a mask; F: a
file name of its own per run).

Tiny size: a command that prepares data or creates a run, and names no recipe, gets `--recipe tiny.toml`
appended (flags in the command still win over it): 16 training images per synth8 domain, width 4, 1
warm-start epoch, 2 IRLS iterations of 1 epoch. Later commands on that run get nothing appended: the run
remembers its settings and its data directory. Steps that are not in the README (the image folder, the mask, a GAN run for
`sample`) are printed as setup. The exit status is 1 if any command failed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TAKES_RECIPE = {"prepare", "warmstart", "irls", "baseline", "evaluate", "complete", "sample"}
TINY = """\
# benchmarks/readme_examples.py: tiny settings under every README example (its own flags win)
width = 4
epochs = 1
epochs-per-iter = 1
max-iters = 2
device = "cpu"

[prepare]
train = 16
test = 8
"""


def readme_commands(text: str) -> list[str]:
    """The README's example command lines, in order (comments stripped)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            cmd = line.split("  #")[0].strip()
            cmd = cmd.split("&& ", 1)[1] if "&& jointnet" in cmd else cmd
            if cmd.startswith("jointnet "):
                out.append(cmd)
        else:
            out += [m for m in re.findall(r"`(jointnet [^`]+)`", line) if len(m.split()) > 2 or "--" in m]
    return list(dict.fromkeys(out))


def variants(template: str) -> list[str]:
    """Concrete commands of a usage template: `{a,b}` → each; every `[x | y]` → x and y (the optional flags
    are run given: the bare form is the same command with the defaults, which the tiny recipe sets)."""
    out = []
    for cmd in expand_braces(template):
        groups = re.findall(r"\[([^\]]*)\]", cmd)
        if not groups:
            out.append(cmd)
            continue
        choices = [[alt.strip() for alt in g.split(" | ")] for g in groups]
        rows = [list(row) for row in itertools.product(*choices)]
        for row in rows:
            filled = cmd
            for part in row:
                filled = re.sub(r"\[[^\]]*\]", part.replace("\\", "\\\\"), filled, count=1)
            out.append(" ".join(filled.split()))
    return list(dict.fromkeys(out))


def expand_braces(cmd: str) -> list[str]:
    m = re.search(r"\{([^}]*)\}", cmd)
    if not m:
        return [cmd]
    return [x for alt in m.group(1).split(",") for x in expand_braces(cmd[:m.start()] + alt + cmd[m.end():])]


class Placeholders:
    """Values for a template's placeholders; F and the --out DIR are new for every command."""

    def __init__(self) -> None:
        self.count = 0

    def fill(self, args: list[str]) -> list[list[str]]:
        self.count += 1
        names = ["bird", "dog", "wolf"] if "NAME" in args else [None]
        runs = []
        for name in names:
            out, prev = [], ""
            for a in args:
                a = {"NAME": name, "N": "2", "X,Y": "4,4", "M.png": "mask.png",
                     "F": f"completed-{self.count}.png"}.get(a, a)
                if a == "DIR":
                    a = f"samples-{self.count}" if prev == "--out" else "images"
                out.append(a)
                prev = a
            runs.append(out)
        return runs


def setup(folder: Path) -> None:
    """What the examples assume exists and no README command makes: photos, a mask, a GAN run."""
    import numpy as np
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(0)
    for label, image in (("cat", data.chelsea()), ("coffee", data.coffee())):
        (folder / "images" / label).mkdir(parents=True)
        h, w = image.shape[:2]
        for k in range(110):                             # --test 100 per class by default, and some to train
            y, x = int(rng.integers(0, h - 72)), int(rng.integers(0, w - 72))
            Image.fromarray(image[y:y + 72, x:x + 72]).save(folder / "images" / label / f"{k:03d}.png")
    mask = np.zeros((128, 128), np.uint8)
    mask[40:70, 50:90] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    for src in ("assets", "recipes"):
        shutil.copytree(REPO / src, folder / src)
    (folder / "tiny.toml").write_text(TINY)


def creates(words: list[str], folder: Path) -> bool:
    """Does this command make data or a new run, and name no recipe? (It then gets tiny.toml; a command on
    an existing run gets none, since a recipe's run-wide keys must agree with the run's.)"""
    if words[1] not in TAKES_RECIPE or "--recipe" in words:
        return False
    if words[1] == "prepare":
        return True
    flag = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}
    if "--run" in flag:
        return not (folder / flag["--run"] / "config.json").exists()
    if "--task" in flag and "--datasets" in flag:
        from jointnet_cli.runs.rundir import default_run_path

        return not (folder / default_run_path(flag["--task"], flag["--datasets"]) / "config.json").exists()
    return False


def run(args: list[str], folder: Path) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(args, cwd=folder, capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "200"})
    lines = [line for line in (p.stderr + p.stdout).splitlines() if line.strip()]
    tail = next((line for line in lines if "error" in line), lines[-1] if lines else "")
    return p.returncode, time.perf_counter() - t0, tail.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--keep", type=Path, help="run in this (new) folder and keep it")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="readme-examples-"))
    if args.keep and folder.exists() and any(folder.iterdir()):
        sys.exit(f"--keep {folder}: give a new or empty folder (the examples need a fresh one)")
    folder.mkdir(parents=True, exist_ok=True)
    jointnet = shutil.which("jointnet")
    if jointnet is None:
        sys.exit("jointnet is not installed (pip install -e .)")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:                                   # pragma: no cover
        has_cuda = False

    print(f"fresh folder {folder}; setup (not in the README): images/ (2 classes × 110 crops of skimage's "
          "chelsea and coffee), mask.png, assets/ and recipes/ copied, tiny.toml", flush=True)
    setup(folder)
    templates = readme_commands((REPO / "README.md").read_text())
    templates.sort(key=lambda c: not c.startswith("jointnet prepare"))     # data first, then README order
    marks = Placeholders()
    failed, total, t_all = 0, 0, time.perf_counter()
    sample_ready = False
    for template in templates:
        for command in variants(template):
            words = shlex.split(command)
            if "--install-completion" in words:
                print(f"skip            {command}   (changes the shell's configuration files)")
                continue
            if "cuda" in words and not has_cuda:
                print(f"skip            {command}   (needs a GPU)")
                continue
            if words[1] == "sample" and not sample_ready:
                setup_gan = [jointnet, "irls", "--task", "gan", "--datasets", "shapes-1,stripes-1", "--run", "runs/gan",
                             "--recipe", "tiny.toml"]
                code, secs, tail = run(setup_gan, folder)
                print(f"setup {'ok ' if code == 0 else 'FAIL'} {secs:6.1f} s  {' '.join(setup_gan[1:])}   {tail}")
                sample_ready = True
            for concrete in marks.fill(words):
                extra = ["--recipe", "tiny.toml"] if creates(concrete, folder) else []
                code, secs, tail = run([jointnet, *concrete[1:], *extra], folder)
                total += 1
                failed += code != 0
                shown = " ".join(concrete) + (" --recipe tiny.toml" if extra else "")
                print(f"{'ok  ' if code == 0 else 'FAIL'} {code:3d} {secs:6.1f} s  {shown}"
                      + (f"\n               {tail}" if code != 0 else ""), flush=True)
    print(f"\n{total - failed} of {total} example commands succeeded ({failed} failed) in "
          f"{time.perf_counter() - t_all:.0f} s; folder {folder}" + ("" if args.keep else " (removed)"))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
