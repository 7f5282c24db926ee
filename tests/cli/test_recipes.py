"""Recipes: every shipped recipe loads; unknown keys and wrong types are named; flags win."""

from pathlib import Path

import pytest

from jointnet_cli.cli.options import merge
from jointnet_cli.cli.recipe import load_recipe
from jointnet_cli.errors import UserError
from jointnet_cli.runs.config import validate

RECIPES = sorted((Path(__file__).parents[2] / "recipes").glob("*.toml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_loads_and_validates(path):
    for command in ("warmstart", "irls"):
        settings = load_recipe(path, command)
        assert settings
        from jointnet_cli.cli.options import CONFIG_FIELDS

        renamed = {CONFIG_FIELDS[k]: v for k, v in settings.items() if k in CONFIG_FIELDS and k != "datasets"}
        assert validate(renamed) == []


def test_command_tables_override_top_level_keys(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('epochs = 3\nbatch-size = 16\n[irls]\nmax-iters = 5\n[warmstart]\nepochs = 4\n')
    assert load_recipe(p, "irls") == {"epochs": 3, "batch_size": 16, "max_iters": 5}
    assert load_recipe(p, "warmstart") == {"epochs": 4, "batch_size": 16}


def test_flags_override_the_recipe(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('lr = 0.01\nepochs = 3\n')
    assert merge(load_recipe(p, "irls"), {"lr": 0.5, "epochs": None}) == {"lr": 0.5, "epochs": 3}


@pytest.mark.parametrize("text, message", [
    ("epoch = 3", "unknown key 'epoch'"),
    ("epochs = 'three'", "'epochs' must be int"),
    ("lr = true", "'lr' must be float"),
    ("[trian]\nepochs = 1", "unknown table [trian]"),
    ("epochs = ", "not valid TOML"),
])
def test_bad_recipes_name_the_problem(tmp_path, text, message):
    p = tmp_path / "r.toml"
    p.write_text(text)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_recipe(p, "irls")


def test_a_bad_recipe_from_the_command_line_is_exit_2(cli, tmp_path):
    p = tmp_path / "r.toml"
    p.write_text("colour = 'blue'\n")
    r = cli("irls", "--recipe", p)
    assert r.code == 2 and "unknown key 'colour'" in r.err


def test_the_quickstart_recipe_is_what_jointnet_quickstart_runs():
    from jointnet_cli.cli.options import CONFIG_FIELDS
    from jointnet_cli.apply.quickstart import SETTINGS

    recipe = load_recipe(Path(__file__).parents[2] / "recipes/quickstart.toml", "irls")
    assert {CONFIG_FIELDS[k]: v for k, v in recipe.items() if k in CONFIG_FIELDS} == SETTINGS
