"""TOML recipes: defaults < recipe < flags.

A recipe's top-level keys apply to every command that takes them; a table
named after a command (`[irls]`, `[prepare]`, …) applies to that command
alone. Keys are option names (`batch-size` or `batch_size`). A key that no
command knows, or a value of the wrong type, is an error naming the key.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

from jointnet_cli.errors import UserError
from jointnet_cli.runs.config import option_types

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Options a recipe may set, with their types: every run-configuration option (from RunConfig, the one
# source), and the options of commands that are not run configuration.
COMMAND_KEYS: dict[str, type] = {"data_dir": str, "device": str, "run": str, "threads": int, "paper": bool,
                                 "logger": str,
                                 "train": int, "test": float, "builtin": str, "force": bool,   # prepare
                                 "fraction": float, "budget": int}                           # baseline
RECIPE_KEYS: dict[str, type] = {**option_types(), **COMMAND_KEYS}


def commands() -> tuple[str, ...]:
    """The commands a recipe may hold a table for: those registered with the Typer app (the one registry)
    that read a --recipe."""
    import inspect

    from jointnet_cli.cli.root import app

    return tuple(c.name or c.callback.__name__ for c in app.registered_commands
                 if "recipe" in inspect.signature(c.callback).parameters)


def _check(key: str, value: Any, where: str, problems: list[str]) -> Any:
    """`value` checked against the key's type; a problem is appended (naming the key) instead of raised,
    so that every problem of a recipe is reported at once."""
    norm = key.replace("-", "_")
    if norm not in RECIPE_KEYS:
        near = difflib.get_close_matches(norm, list(RECIPE_KEYS), n=1)
        hint = f"; did you mean {near[0].replace('_', '-')!r}?" if near else ""
        problems.append(f"{where}: unknown key {key!r}{hint}")
        return None
    want = RECIPE_KEYS[norm]
    if norm == "lambda" and value == "auto":
        return value
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if norm == "datasets" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        problems.append(f"{where}: {key!r} must be {want.__name__}, got {type(value).__name__} {value!r}")
        return None
    return value


def load_recipe(path: Path | None, command: str, *, own: tuple[str, ...] = ()) -> dict[str, Any]:
    """Settings from a recipe file for `command`, keyed by option name with underscores.

    Keys named in `own` are the command's own options: they are taken from its table only, returned
    under "<command>.<key>", and a top-level key of the same name keeps its run-wide meaning. Every
    unknown key, table or wrong type is reported at once, in one line.
    """
    if path is None:
        return {}
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"recipe not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"recipe {path} is a directory, not a TOML file") from None
    except OSError as e:
        raise UserError(f"cannot read recipe {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"recipe {path} is not valid TOML ({type(e).__name__}: {str(e)[:200]})") from None
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in data.items():                           # run-wide keys first: a command's table wins
        if not isinstance(value, dict):
            checked = _check(key, value, str(path), problems)
            if checked is not None:
                out[key.replace("-", "_")] = checked
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        if key not in commands():
            near = difflib.get_close_matches(key, commands(), n=1)
            hint = f"; did you mean [{near[0]}]?" if near else " (tables are named after commands)"
            problems.append(f"{path}: unknown table [{key}]{hint}")
            continue
        for sub, v in value.items():                          # every table is checked, not only this command's
            checked = _check(sub, v, f"{path} [{key}]", problems)
            if key == command and checked is not None:
                norm = sub.replace("-", "_")
                out[f"{command}.{norm}" if norm in own else norm] = checked
    if problems:
        raise UserError(f"recipe: {len(problems)} problem{'s' if len(problems) > 1 else ''}: " + "; ".join(problems))
    return out
