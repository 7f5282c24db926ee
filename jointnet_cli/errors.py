"""The two kinds of failure the command line distinguishes.

`UserError` is a mistake in what the user asked for (bad flag, missing file, an
incompatible run directory): the CLI prints its message as one line and exits 2.
`RunFailure` is something going wrong while doing valid work (a NaN loss, a full
disk): one line, exit 1. Library code raises these; only the CLI turns them
into exit codes.
"""


class UserError(Exception):
    """Bad usage or bad input; exit code 2."""


class RunFailure(Exception):
    """A runtime failure while doing valid work; exit code 1."""


def leave_to_rank_0() -> None:
    """End a torchrun rank other than 0 that has found the same mistake rank 0 finds, silently and with
    exit code 0: rank 0 prints the one line and carries the failing code. Exiting first with a failure
    would let torchrun stop rank 0 before it has printed anything."""
    raise SystemExit(0)
