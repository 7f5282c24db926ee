"""Entry point of the `jointnet` console script: run the Typer app, map failures to exit codes.

A user mistake (UserError, or a usage error Typer detects) prints one line on
stderr and exits 2; a runtime failure (RunFailure) one line and exits 1;
Ctrl-C exits 130 with a note on how to resume. No traceback for any of these.
"""

from __future__ import annotations

import os
import re
import signal
import sys

import typer
import typer.main

from jointnet_cli.cli.root import app     # every command is registered with it by the package's __init__
from jointnet_cli.errors import RunFailure, UserError, leave_to_rank_0


def _fail(message: str, code: int) -> None:
    print(f"jointnet: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    # Ctrl-C (SIGINT) always interrupts, also when the process was started with SIGINT ignored
    # (as background jobs of non-interactive shells are); the last completed epoch is kept.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    command = typer.main.get_command(app)
    try:
        # outside standalone mode Typer returns the code of an Exit it met (130 for Ctrl-C) instead of exiting
        code = command.main(args=argv, prog_name="jointnet", standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted; rerun the same command to resume from the last completed epoch", 130)
    except UserError as e:
        _fail(str(e), 2)
    except RunFailure as e:
        _fail(str(e), 1)
    except Exception as e:
        if not _is_usage_error(e):
            if os.environ.get("JOINTNET_DEBUG"):
                raise
            _fail(f"{type(e).__name__}: {e} (set JOINTNET_DEBUG=1 for the traceback)", 1)
        if os.environ.get("RANK", "0") != "0":        # under torchrun every rank parses the same command line:
            leave_to_rank_0()                          # rank 0 says what is wrong (without importing torch here)
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(usage_message(e) + hint, 2)
    if code == 130:
        _fail("interrupted; rerun the same command to resume from the last completed epoch", 130)
    sys.exit(code if isinstance(code, int) else 0)


def usage_message(e: Exception) -> str:
    """A usage error on one line; a value outside an option's choices gets the nearest allowed spelling."""
    text = " ".join(e.format_message().split()).replace("Value error, ", "")
    wrong = re.search(r"'([^']*)' is not one of ((?:'[^']*'(?:, )?)+)", text)
    if wrong:
        from jointnet_cli.runs.config import did_you_mean

        text = text.rstrip(".") + did_you_mean(wrong.group(1), re.findall(r"'([^']*)'", wrong.group(2)))
    return text


def _is_usage_error(e: Exception) -> bool:
    """Click's (or Typer's vendored click's) parse errors: they carry format_message and exit_code."""
    return callable(getattr(e, "format_message", None)) and hasattr(e, "exit_code")
