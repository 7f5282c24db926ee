"""The run configuration (runs.config.RunConfig) is the one source of the options: the recipe keys and
the config fields derive from it, and every field is a flag of the training commands (or a recipe key)."""

import subprocess
import sys
from pathlib import Path

import typer.main

from jointnet_cli.cli.options import CONFIG_FIELDS
from jointnet_cli.cli.recipe import RECIPE_KEYS
from jointnet_cli.cli.root import app
from jointnet_cli.runs.config import RunConfig, config_options

RECIPE_ONLY = {"augment", "crop_scale", "jitter", "flip", "gamma", "lambda_k"}     # fine settings without a flag
BASELINE_ONLY = {"pretrain_epochs", "groups"}                             # finetune and groupshare's own


def flags_of(command: str) -> set[str]:
    click_app = typer.main.get_command(app)
    cmd = click_app.commands[command]
    return {opt.lstrip("-").replace("-", "_") for p in cmd.params for opt in p.opts if opt.startswith("--")}


def test_the_recipe_keys_and_config_fields_are_derived_from_the_run_configuration():
    assert CONFIG_FIELDS == config_options()
    assert set(config_options()) <= set(RECIPE_KEYS)
    assert RECIPE_KEYS["lambda"] is float and RECIPE_KEYS["epochs"] is int and RECIPE_KEYS["datasets"] is str
    assert set(config_options().values()) == {f for f in RunConfig.__dataclass_fields__} - {"extra", "evaluate_on"}


def test_every_configuration_option_is_a_flag_of_the_training_commands():
    options = set(config_options()) - RECIPE_ONLY
    assert options - BASELINE_ONLY <= flags_of("irls")
    assert options - BASELINE_ONLY <= flags_of("warmstart")
    irls_stage = {"epochs", "epochs_per_iter", "tol", "max_iters"}   # a baseline's budget is --budget
    assert options - irls_stage <= flags_of("baseline")
    assert not (RECIPE_ONLY & (flags_of("irls") | flags_of("baseline")))


def test_a_script_that_only_loads_a_recipe_knows_every_command_table():
    """The benchmarks load recipes without the console script: the [prepare] table must still be known."""
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "bench-synth8-ae.toml"
    code = ("from jointnet_cli.cli.recipe import commands, load_recipe; "
            f"print(sorted(commands())); print(load_recipe({str(recipe)!r}, 'prepare')['train'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == str(sorted(["baseline", "complete", "evaluate", "irls", "prepare", "sample", "warmstart"]))
    assert out[1] == "200"


def test_the_flags_help_and_shown_defaults_come_from_the_run_configuration():
    click_app = typer.main.get_command(app)
    by_flag = {opt: p for name in ("baseline", "warmstart", "irls") for p in click_app.commands[name].params
               for opt in p.opts}                              # (baseline's --epochs is --budget's old name)
    checked = 0
    for option, name in config_options().items():
        flag = "--" + option.replace("_", "-")
        if flag not in by_flag:
            continue
        meta = RunConfig.__dataclass_fields__[name].metadata
        param = by_flag[flag]
        assert param.help == meta["help"], flag
        default = RunConfig.__dataclass_fields__[name].default
        assert param.show_default == (str(default) if meta["shown"] is None else meta["shown"]), flag
        assert param.default is None, flag                       # unset: the recipe and RunConfig's default apply
        checked += 1
    assert checked == len(config_options()) - len(RECIPE_ONLY)
