"""The command line: one thin module per command over the library.

Importing this package registers every command with the Typer app of `cli/root.py`, the one command
registry; so a recipe's tables (`cli/recipe.commands`) are known however the package is entered: the
console script, `python -m jointnet_cli`, or a script that only loads a recipe.
"""

from jointnet_cli.cli import (baseline, compare, complete, evaluate, irls, prepare, quickstart,  # noqa: F401
                              sample, warmstart)                                # (each registers its command)
