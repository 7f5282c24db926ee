"""state.json checked against what jointnet writes, on every read (DESIGN §4).

A value of the wrong type, out of range or of the wrong shape (an edited or damaged file) is refused with
one line naming its key, before any of it is used: weights are `[W][n][n]` numbers in [0, 1], σ has W
finite numbers ≥ 0, epoch counts are whole numbers within their stage's epochs, and every checkpoint a
finished stage names exists inside the run directory. Keys jointnet does not write are left alone, and
missing keys are allowed (older runs, stages not yet started). Torch-free.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jointnet_cli.errors import UserError


class _Checker:
    def __init__(self, where: Path, run: Path, n: int | None, windows: int | None, epochs_per_iter: int | None) -> None:
        self.where, self.run, self.n, self.windows = where, run, n, windows
        self.epochs_per_iter = epochs_per_iter

    def fail(self, key: str, problem: str) -> None:
        raise UserError(f"{self.where}: {key} {problem} (the file was edited or damaged; restore it, or start a "
                        "new --run)")

    def obj(self, v: Any, key: str) -> dict:
        if not isinstance(v, dict):
            self.fail(key, f"must be an object, not {type(v).__name__}")
        return v

    def lst(self, v: Any, key: str, length: int | None = None) -> list:
        if not isinstance(v, list):
            self.fail(key, f"must be a list, not {type(v).__name__}")
        if length is not None and len(v) != length:
            self.fail(key, f"must have {length} entries, not {len(v)}")
        return v

    def whole(self, v: Any, key: str, lo: int = 0, hi: int | None = None) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(key, f"must be a whole number, not {v!r}")
        if v < lo or (hi is not None and v > hi):
            self.fail(key, f"is {v}, outside {lo}…{'' if hi is None else hi}")
        return v

    def number(self, v: Any, key: str, lo: float = 0.0, hi: float | None = None) -> float:
        try:
            finite = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
        except OverflowError:                               # an int too large for a float
            finite = False
        if not finite:
            self.fail(key, f"must be a finite number, not {str(v)[:40]}")
        if v < lo or (hi is not None and v > hi):
            self.fail(key, f"is {v}, outside [{lo}, {'∞' if hi is None else hi}]")
        return float(v)

    def checkpoint(self, v: Any, key: str) -> None:
        if not isinstance(v, str) or not v:
            self.fail(key, f"must be a checkpoint path, not {v!r}")
        path = (self.run / v).resolve()
        if self.run.resolve() not in path.parents:
            self.fail(key, f"points outside the run directory ({v})")
        if not path.is_file():
            self.fail(key, f"names {v}, which does not exist")

    def history(self, v: Any, key: str, epochs: int | None) -> None:
        previous = 0
        for i, h in enumerate(self.lst(v, key)):
            h = self.obj(h, f"{key}[{i}]")
            epoch = self.whole(h.get("epoch"), f"{key}[{i}].epoch", previous + 1, epochs)
            previous = epoch
            for name, loss in self.obj(h.get("data_loss", {}), f"{key}[{i}].data_loss").items():
                if not isinstance(loss, (int, float)) or isinstance(loss, bool):
                    self.fail(f"{key}[{i}].data_loss.{name}", f"must be a number, not {loss!r}")

    def stage(self, entry: Any, key: str) -> None:
        """An entry trained by `Session.train_resumable` (warm start, shareall start, a baseline, an IRLS iteration)."""
        entry = self.obj(entry, key)
        epochs = self.whole(entry["epochs"], f"{key}.epochs", 1) if "epochs" in entry else None
        if "epochs_done" in entry:
            self.whole(entry["epochs_done"], f"{key}.epochs_done", 0, epochs)
        if "history" in entry:
            self.history(entry["history"], f"{key}.history", epochs)
        for name in ("checkpoint", "progress"):
            if entry.get(name) is not None:
                self.checkpoint(entry[name], f"{key}.{name}")

    def group_names(self, v: Any, key: str) -> None:
        """One non-empty group name per dataset (learned groups' labels, l2-groups' and groupshare's groups)."""
        for i, label in enumerate(self.lst(v, key, self.n)):
            if not isinstance(label, str) or not label:
                self.fail(f"{key}[{i}]", f"must be a group name, not {label!r}")

    def sigma(self, v: Any, key: str) -> None:
        for w, s in enumerate(self.lst(v, key, self.windows)):
            self.number(s, f"{key}[{w}]")

    def weights(self, v: Any, key: str) -> None:
        for w, matrix in enumerate(self.lst(v, key, self.windows)):
            for i, row in enumerate(self.lst(matrix, f"{key}[{w}]", self.n)):
                for j, x in enumerate(self.lst(row, f"{key}[{w}][{i}]", self.n)):
                    self.number(x, f"{key}[{w}][{i}][{j}]", 0.0, 1.0)


def check_state(state: dict[str, Any], *, where: Path, run: Path, n: int | None = None,
                 windows: int | None = None, epochs_per_iter: int | None = None) -> dict[str, Any]:
    """`state` if it is what jointnet writes (n datasets, W windows, epochs per IRLS iteration, when known);
    else UserError naming the key."""
    c = _Checker(where, run, n, windows, epochs_per_iter)
    if "start" in state:
        c.stage(state["start"], "start")
        for name, part in c.obj(state["start"].get("parts", {}), "start.parts").items():
            c.stage(part, f"start.parts.{name}")
        if "labels" in state["start"]:
            c.group_names(state["start"]["labels"], "start.labels")
    if "warmstart" in state:
        c.stage(state["warmstart"], "warmstart")
        if "sigma" in state["warmstart"]:
            c.sigma(state["warmstart"]["sigma"], "warmstart.sigma")
    if "irls" in state:
        irls = c.obj(state["irls"], "irls")
        if "max_iters" in irls:
            c.whole(irls["max_iters"], "irls.max_iters", 1)
        if "tol" in irls:
            c.number(irls["tol"], "irls.tol")
        for k, it in enumerate(c.lst(irls.get("iterations", []), "irls.iterations")):
            key = f"irls.iterations[{k}]"
            c.stage(it, key)
            c.whole(c.obj(it, key).get("k"), f"{key}.k", k + 1, k + 1)
            if it.get("delta") is not None:
                c.number(it["delta"], f"{key}.delta")
            if "weights" in it:
                c.weights(it["weights"], f"{key}.weights")
            if "sigma" in it:
                c.sigma(it["sigma"], f"{key}.sigma")
        if irls.get("current") is not None:
            current = c.obj(irls["current"], "irls.current")
            c.stage({"epochs": c.epochs_per_iter, **current} if c.epochs_per_iter else current, "irls.current")
            if "weights" in irls["current"]:
                c.weights(irls["current"]["weights"], "irls.current.weights")
    for name, entry in c.obj(state.get("baselines", {}), "baselines").items():
        c.stage(entry, f"baselines.{name}")
        if "groups" in entry:                                                  # l2-groups
            c.group_names(entry["groups"], f"baselines.{name}.groups")
        if "pretrained" in entry and "groups" in c.obj(entry["pretrained"], f"baselines.{name}.pretrained"):
            c.group_names(entry["pretrained"]["groups"], f"baselines.{name}.pretrained.groups")   # groupshare
    for i, change in enumerate(c.lst(state.get("lr_changes", []), "lr_changes")):
        c.number(c.obj(change, f"lr_changes[{i}]").get("lr"), f"lr_changes[{i}].lr")
    return state
