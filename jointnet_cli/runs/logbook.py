"""A run's scalars over training, as `metrics.csv` and (optionally) TensorBoard event files.

Both are derived from state.json, which every training stage writes atomically after each epoch and
each IRLS iteration and which holds every number: so a rerun after a kill never duplicates or loses a
row, and the files can be rebuilt from the run directory alone.

One row is (method, stage, step, tag, value). `step` counts the epochs per dataset the method has
trained so far (joint: a shareall start, then the warm start, then IRLS iteration after iteration;
finetune and groupshare: pretraining, then their own epochs), so curves of every method share one
x-axis. Tags, one scheme for every method:

    loss/<dataset>               the epoch's mean data loss f_i
    test/<metric>/<dataset>      test metric after the epoch (when scored: --eval-every)
    test/<metric>/mean           its mean over datasets
    time/epoch_seconds           seconds of the epoch (all networks)
    irls/delta                   δ of the iteration (eq. 8), at the step where it started (its
    irls/sigma/<window>          σ_w the iteration weighted with    weights are computed from the
    irls/weight/<window>         mean off-diagonal weight w_ijw     parameters there)
    irls/<term>                  eq. 4's terms (robust_objective, …) at the end of the warm start
                                 and of each iteration

TensorBoard: `RUN/tb/<method>/` holds one run of events per method, so `tensorboard --logdir runs/`
overlays every method of every run. The events of a method are rewritten from state.json once per
process (old event files removed first) and then appended to epoch by epoch.
"""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from jointnet_cli.errors import UserError
from jointnet_cli.store.atomic import atomic_write_bytes

LOGGERS = ("csv", "tensorboard")
INSTALL = "pip install -e '.[tensorboard]' (or: pip install tensorboard)"


class Row(NamedTuple):
    method: str
    stage: str
    step: int
    tag: str
    value: float


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _epoch_rows(method: str, stage: str, history: list[dict], offset: int) -> Iterator[Row]:
    for h in history:
        step = offset + int(h["epoch"])
        for name, v in (h.get("data_loss") or {}).items():
            if _number(v):
                yield Row(method, stage, step, f"loss/{name}", float(v))
        per_metric: dict[str, list[float]] = {}
        for name, scores in (h.get("metrics") or {}).items():
            for metric, v in scores.items():
                if _number(v):
                    yield Row(method, stage, step, f"test/{metric}/{name}", float(v))
                    per_metric.setdefault(metric, []).append(float(v))
        for metric, values in per_metric.items():
            yield Row(method, stage, step, f"test/{metric}/mean", statistics.fmean(values))
        if _number(h.get("seconds")):
            yield Row(method, stage, step, "time/epoch_seconds", float(h["seconds"]))


def _objective_rows(entry: dict, stage: str, step: int) -> Iterator[Row]:
    """Eq. 4's terms a finished warm start or IRLS iteration recorded (robust_objective, …)."""
    for term, v in (entry.get("objective") or {}).items():
        if _number(v):
            yield Row("joint", stage, step, f"irls/{term}", float(v))


def _iteration_rows(it: dict, step: int, windows: list[str]) -> Iterator[Row]:
    """What an IRLS iteration computed before training (δ, σ, w), at the step where it started."""
    if _number(it.get("delta")):
        yield Row("joint", "irls", step, "irls/delta", float(it["delta"]))
    for w, s in enumerate(it.get("sigma") or []):
        if _number(s):
            yield Row("joint", "irls", step, f"irls/sigma/{_window(windows, w)}", float(s))
    for w, matrix in enumerate(it.get("weights") or []):
        n = len(matrix)
        off = [float(matrix[i][j]) for i in range(n) for j in range(n) if i != j and _number(matrix[i][j])]
        if off:
            yield Row("joint", "irls", step, f"irls/weight/{_window(windows, w)}", statistics.fmean(off))


def _group_tag(tag: str, label: str) -> str:
    """A learned group's own tags: its network's loss and epoch time, its members' mean metric."""
    if tag.startswith("loss/"):
        return f"loss/{label}"
    if tag.startswith("time/") or tag.endswith("/mean"):
        return f"{tag}/{label}"
    return tag


def _window(windows: list[str], w: int) -> str:
    return (windows[w] if w < len(windows) else f"w{w + 1}").replace(" ", "_")


def rows(state: dict, windows: list[str]) -> list[Row]:
    """Every scalar state.json holds, in training order per method."""
    out: list[Row] = []
    step = 0
    start = state.get("start") or {}
    learned = start.get("method") == "groups"                 # the learned groups train after the warm start
    if not learned:
        out += _epoch_rows("joint", "start", start.get("history") or [], step)
        step += int(start.get("epochs_done", 0) or 0)
    ws = state.get("warmstart") or {}
    out += _epoch_rows("joint", "warmstart", ws.get("history") or [], step)
    step += int(ws.get("epochs_done", 0) or 0)
    if ws.get("checkpoint"):
        out += _objective_rows(ws, "warmstart", step)
    if learned:                                               # each group's network, side by side in epochs
        parts = (start.get("parts") or {}).values()
        for label, part in (start.get("parts") or {}).items():    # tags a group's shared network by its label
            out += [r._replace(tag=_group_tag(r.tag, label))
                    for r in _epoch_rows("joint", "start", part.get("history") or [], step)]
        step += max((int(p.get("epochs_done", 0) or 0) for p in parts), default=0)
    for it in (state.get("irls") or {}).get("iterations") or []:
        out += _iteration_rows(it, step, windows)
        history = it.get("history") or []
        out += _epoch_rows("joint", "irls", history, step)
        step += int(history[-1]["epoch"]) if history else 0
        if it.get("checkpoint"):
            out += _objective_rows(it, "irls", step)
    for key, entry in (state.get("baselines") or {}).items():
        offset = 0
        pre = entry.get("pretrained") or {}
        parts = pre.get("parts") or ({"": pre} if "history" in pre else {})
        for part in parts.values():
            out += _epoch_rows(key, "pretrain", part.get("history") or [], 0)
        if pre:
            offset = int(pre.get("epochs", 0) or 0)
        out += _epoch_rows(key, key, entry.get("history") or [], offset)
    return out


def csv_text(table: list[Row]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(Row._fields)
    for r in table:
        w.writerow([r.method, r.stage, r.step, r.tag, repr(r.value)])
    return buf.getvalue()


def check_logger(logger: str | None) -> str:
    """`--logger`: csv (metrics.csv only, the default) or tensorboard (also event files); one line if
    TensorBoard is asked for and not installed."""
    logger = logger or "csv"
    if logger not in LOGGERS:
        raise UserError(f"--logger must be csv or tensorboard (got {logger!r})")
    if logger == "tensorboard":
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise UserError(f"--logger tensorboard needs the tensorboard package: {INSTALL}")
    return logger


class Logbook:
    """Keeps `metrics.csv` (and with TensorBoard the event files) in step with state.json."""

    def __init__(self, run_path: Path, windows: list[str], logger: str = "csv") -> None:
        self.path = Path(run_path)
        self.windows = windows
        self.tensorboard = check_logger(logger) == "tensorboard"
        self.writers: dict[str, Any] = {}        # method → SummaryWriter, opened once per process
        self.logged: set[tuple[str, str, int]] = set()     # (method, tag, step) already in the events

    def update(self, state: dict) -> None:
        table = rows(state, self.windows)
        atomic_write_bytes(self.path / "metrics.csv", csv_text(table).encode())
        if self.tensorboard:
            self._tensorboard(table)

    def _tensorboard(self, table: list[Row]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        touched = set()
        for r in table:
            if (r.method, r.tag, r.step) in self.logged:
                continue
            if r.method not in self.writers:
                folder = self.path / "tb" / r.method
                if folder.is_dir():                      # rewritten from state.json: no duplicate or stale events
                    for old in folder.glob("events.out.tfevents.*"):
                        old.unlink()
                self.writers[r.method] = SummaryWriter(log_dir=str(folder))
            self.writers[r.method].add_scalar(r.tag, r.value, global_step=r.step)
            self.logged.add((r.method, r.tag, r.step))
            touched.add(r.method)
        for method in touched:
            self.writers[method].flush()

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        self.writers.clear()
