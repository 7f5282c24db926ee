"""The run directory (DESIGN §4): config.json, state.json, checkpoints/, report/.

This module is the only place that knows the layout. It is torch-free; the
checkpoint tensors themselves are read and written by `runs.checkpoint`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from jointnet_cli.errors import UserError
from jointnet_cli.runs.state_check import check_state
from jointnet_cli.store.atomic import RunLock, atomic_write_json, read_json

STATE_FORMAT = "jointnet-state/1"


class RunDir:
    """Paths and JSON files of one run directory."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    # -- paths -----------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def report(self) -> Path:
        return self.path / "report"

    def checkpoint(self, name: str) -> Path:
        """`checkpoints/NAME.safetensors`."""
        return self.checkpoints / f"{name}.safetensors"

    def relative(self, path: Path) -> str:
        return Path(path).relative_to(self.path).as_posix()

    def resolve(self, relative: str) -> Path:
        """A path stored in state.json, checked to stay inside the run directory."""
        p = (self.path / relative).resolve()
        if self.path.resolve() not in p.parents:
            raise UserError(f"state.json names a file outside the run directory: {relative!r}")
        return p

    def lock(self) -> RunLock:
        return RunLock(self.path)

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete the temporary files (`.NAME.*.tmp`) that killed training commands left in the run directory
        and its checkpoints/. Call it holding the run's lock: no live training writer then owns one
        (report/ is `evaluate`'s, which takes no lock)."""
        gone = []
        for folder in (self.path, self.checkpoints):
            if folder.is_dir() and not folder.is_symlink():
                for p in folder.glob(".*.tmp"):
                    if p.is_file() and not p.is_symlink():
                        p.unlink(missing_ok=True)
                        gone.append(p)
        return gone

    # -- files -----------------------------------------------------------------
    def exists(self) -> bool:
        return self.config_path.is_file()

    OWN = ("config.json", "state.json", "metrics.csv", "checkpoints", "report", "tb")

    def check_contained(self) -> None:
        """Refuse a run whose own files or folders are links that lead outside it: jointnet's writes never
        follow a link out of the run directory."""
        root = self.path.resolve()
        for name in self.OWN:
            p = self.path / name
            if p.is_symlink() or p.exists():
                target = p.resolve()
                if target != root and root not in target.parents:
                    raise UserError(f"{p} leads outside the run directory (to {target}); jointnet does not write "
                                    "through it: replace the link with a folder or file of the run")

    def read_config(self) -> dict[str, Any]:
        return read_json(self.config_path, "run configuration")

    def write_config(self, config: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config_path, config)

    def read_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {"format": STATE_FORMAT}
        state = read_json(self.state_path, "run state")
        if not isinstance(state, dict):
            raise UserError(f"{self.state_path} is not a JSON object")
        if state.get("format") != STATE_FORMAT:
            raise UserError(
                f"{self.state_path} has format {state.get('format')!r}; this jointnet reads {STATE_FORMAT!r}"
            )
        return check_state(state, where=self.state_path, run=self.path, **self._shape())

    def _shape(self) -> dict[str, Any]:
        """What config.json says state.json's arrays must measure: n datasets, W windows, epochs per iteration."""
        if not self.config_path.is_file():
            return {}
        config = self.read_config()
        if not isinstance(config, dict):                  # (reported by the configuration's own checks)
            return {}
        datasets, layers, chains = config.get("datasets"), config.get("layers"), config.get("chains")
        if not isinstance(chains, list) and isinstance(layers, list):
            chains = [len(layers)]
        ok = isinstance(chains, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in chains)
        epi = config.get("epochs_per_iter")
        return {"n": len(datasets) if isinstance(datasets, list) else None,
                "windows": sum(max(c - 1, 0) for c in chains) if ok else None,
                "epochs_per_iter": epi if isinstance(epi, int) and not isinstance(epi, bool) else None}

    def write_state(self, state: dict[str, Any]) -> None:
        atomic_write_json(self.state_path, {**state, "format": STATE_FORMAT})


def data_dir_record(data_dir: Path | str) -> dict[str, str]:
    """config.json["data_dir"]: the --data-dir a run was created with, as given and resolved."""
    return {"given": str(data_dir), "resolved": str(Path(data_dir).resolve())}


def run_data_dir(run_path: Path | str, given: Path | str | None = None) -> Path:
    """Where a run's prepared datasets live: `given` (--data-dir) when set, else the directory the run was
    created with (its resolved path, or the path as given when the resolved one is gone, e.g. a project
    moved to another machine), else `data`."""
    if given is not None:
        return Path(given)
    run = RunDir(run_path)
    if run.exists():
        try:
            record = run.read_config().get("data_dir")
        except (UserError, AttributeError):
            record = None                               # the run's own checks report a broken config.json
        if isinstance(record, dict):
            resolved, as_given = record.get("resolved"), record.get("given")
            for candidate in (resolved, as_given):
                if isinstance(candidate, str) and candidate and Path(candidate).is_dir():
                    return Path(candidate)
            if isinstance(resolved, str) and resolved:
                return Path(resolved)
    return Path("data")


def default_run_path(task: str, datasets_spec: str, root: Path = Path("runs")) -> Path:
    """`runs/<task>-<datasets>`: the collection name for `@name`, else the names joined by '+'."""
    spec = datasets_spec.strip()
    if spec.startswith("@"):
        slug = spec[1:]
    else:
        names = [s.strip() for s in spec.split(",") if s.strip()]
        slug = "+".join(names)
        if len(slug) > 60:
            digest = hashlib.sha256(slug.encode()).hexdigest()[:8]
            slug = f"{'+'.join(names[:3])}+{len(names) - 3}more-{digest}"
    slug = re.sub(r"[^\w.+-]", "_", slug)
    return root / f"{task}-{slug}"
