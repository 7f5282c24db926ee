"""Human output (rich, on stderr) and machine output (--json, on stdout)."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from jointnet_cli.joint.reporter import Reporter


def console(quiet: bool = False) -> Console:
    """Human output goes to stderr so stdout stays clean for results and --json."""
    con = Console(stderr=True, quiet=quiet, highlight=False, log_path=False)
    if not con.is_terminal:
        con.soft_wrap = True                              # a log file gets whole lines, not 80-column wraps
    return con


def stdout() -> Console:
    """Results (the final lines and tables a user or script reads) go to stdout."""
    return Console(highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextmanager
def phase_bars(con: Console) -> Iterator[Callable[[str, int, int], None]]:
    """A `progress(phase, done, total)` callback drawing one transient bar per phase on a terminal
    (nothing in a log file, where the command's own lines say what happened)."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=con, transient=True) if con.is_terminal else None
    bars: dict[str, int] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if bar is not None:
            if phase not in bars:
                bars[phase] = bar.add_task(phase, total=total)
            bar.update(bars[phase], completed=done, total=total)

    if bar is None:
        yield progress
        return
    with bar:
        yield progress


def _mean(d: dict) -> float:
    return sum(d.values()) / max(len(d), 1)


def primary(metrics: dict[str, dict]) -> tuple[str, float]:
    """The task's first (primary) metric and its mean over datasets: mse for ae, accuracy for classify."""
    name = next(k for k, v in next(iter(metrics.values())).items() if isinstance(v, (int, float)))
    return name, _mean({d: m[name] for d, m in metrics.items()})


class RichReporter(Reporter):
    """A progress bar for the epochs in flight and a live table of finished stages/iterations.

    Notes (the command's header, "already done" messages) are held back until training starts or the
    command ends well, so a command that fails before any work prints its one error line alone. When
    stderr is not a terminal (a log file, a batch job) there is no live display: one plain line per
    epoch and per IRLS iteration, printed as it ends.
    """

    def __init__(self, con: Console):
        self.con = con
        self.pending: list[str] = []
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=con,
        )
        self.table = Table(title="IRLS", title_justify="left")
        for col in ("k", "δ", "data loss", "test metric (mean)", "seconds"):
            self.table.add_column(col, justify="right")
        self.live: Live | None = None
        self.started = False                          # has work begun (notes are then shown at once)?
        self._task = None

    def __enter__(self) -> "RichReporter":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if self.live is not None:
            self.live.__exit__(kind, value, tb)
            self.con.line()                           # what follows starts below the table, not on its border
        elif kind is None:
            self._flush()

    def _log(self, text: str) -> None:
        """A timestamped line: rich's log on a terminal, one unwrapped plain line in a log file."""
        if self.con.is_terminal:
            self.con.log(text)
        else:
            self.con.print(f"[{time.strftime('%H:%M:%S')}] {text}", markup=False, soft_wrap=True)

    def note(self, text: str) -> None:
        """A line to show once work starts (or at a successful end)."""
        self.pending.append(text)

    def _flush(self) -> None:
        for text in self.pending:
            self.con.print(text)
        self.pending.clear()

    def __rich__(self) -> Group:
        return Group(self.table, self.progress) if self.table.row_count else Group(self.progress)

    def start(self, title: str, total: int) -> None:
        self._flush()
        self.started = True
        if not self.con.is_terminal:
            return
        if self.live is None:
            self.live = Live(self, console=self.con, refresh_per_second=4, transient=False)
            self.live.__enter__()
        self._task = self.progress.add_task(title, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self.progress.advance(self._task, steps)

    def finish(self) -> None:
        if self._task is not None:
            self.progress.remove_task(self._task)
            self._task = None

    def epoch(self, stage: str, info: dict) -> None:
        label = {"irls": f"IRLS k={info['k']}", "warmstart": "warm start"}.get(stage, stage)
        scored = ""
        if "metrics" in info:
            name, value = primary(info["metrics"])
            scored = f", test {name} {value:.5f}"
        self._log(f"{label} epoch {info['epoch']}: data loss {_mean(info['data_loss']):.5f}{scored} "
                     f"({info['seconds']:.1f} s)")

    def iteration(self, entry: dict) -> None:
        name, value = primary(entry["metrics"])
        if not self.con.is_terminal:
            self._log(f"IRLS iteration {entry['k']}: δ {entry['delta']:.4f}, data loss "
                         f"{_mean(entry['objective']['data_loss']):.5f}, test {name} {value:.5f} ({entry['seconds']:.1f} s)")
            return
        self.table.add_row(str(entry["k"]), f"{entry['delta']:.4f}",
                           f"{_mean(entry['objective']['data_loss']):.5f}", f"{name} {value:.5f}", f"{entry['seconds']:.1f}")

    def message(self, text: str) -> None:
        if self.live is None and not self.started:
            self.note(text)
        else:
            self._log(text)
