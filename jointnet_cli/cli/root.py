"""The one Typer app every subcommand registers with."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
import typer.core

from jointnet_cli import __version__

def _no_bool_placeholder(params: list) -> list:
    """Flags take no value, so their help shows none (Typer would print `<bool>`)."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class Command(typer.core.TyperCommand):
    def get_params(self, ctx):
        return _no_bool_placeholder(super().get_params(ctx))


class Group(typer.core.TyperGroup):
    def get_params(self, ctx):
        return _no_bool_placeholder(super().get_params(ctx))


app = typer.Typer(
    name="jointnet",
    cls=Group,
    help=(
        "Jointly train one network per dataset; IRLS decides, layer by layer, which datasets share weights.\n\n"
        "Example (the whole pipeline on the builtin synth8 collection):\n\n"
        "  jointnet prepare --builtin synth8 --size 32\n\n"
        "  jointnet irls --task ae --datasets @synth8"
    ),
    no_args_is_help=True,
    add_completion=True,                              # `jointnet --install-completion` for bash, zsh, fish
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jointnet {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
) -> None:
    """Jointly train one network per dataset; IRLS decides which layers to share."""
