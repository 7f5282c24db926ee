"""Fuzzing every reader of a file a user (or a crash, or another program) may have damaged.

Contract: a reader either returns normally or raises `UserError` (one line, exit 2 at the CLI). Any other
exception — TypeError, AttributeError, RecursionError, a bare ValueError — would reach the user as
"jointnet: error: TypeError: …" with exit 1, or as a traceback. Inputs are arbitrary bytes, arbitrary JSON
values, and near-valid files with one part mutated, which is where real damage lands.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jointnet_cli.cli.recipe import RECIPE_KEYS, load_recipe
from jointnet_cli.data.format import FORMAT, MANIFEST, REQUIRED_KEYS, read_manifest
from jointnet_cli.errors import UserError
from jointnet_cli.store.atomic import read_json
from jointnet_cli.store.tensors import CKPT_FORMAT, load_tensors
from jointnet_cli.runs.config import RUN_FORMAT, RunConfig
from jointnet_cli.runs.rundir import STATE_FORMAT, RunDir

FUZZ = settings(max_examples=150, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder, reused by every example (each example overwrites its files)."""
    return tmp_path_factory.mktemp("fuzz")


def only_user_errors(read, *args):
    """Call `read(*args)`; return its result, or None when it raised UserError. Anything else fails the test."""
    try:
        return read(*args)
    except UserError as e:
        assert "\n" not in str(e), f"a UserError is one line: {e!r}"
        return None


# ---------------------------------------------------------------- JSON: read_json, config.json, state.json


@FUZZ
@given(data=st.binary(max_size=300))
@example(data=b"\xef\xbb\xbf{}")           # a UTF-8 byte-order mark
def test_read_json_of_arbitrary_bytes(folder, data):
    path = folder / "any.json"
    path.write_bytes(data)
    only_user_errors(read_json, path, "thing")


def config_dicts():
    """config.json objects: mostly the current format, with fields of arbitrary JSON type."""
    field_names = ["task", "arch", "datasets", "image_size", "seed", "lambda", "lam", "lr", "batch_size", "epochs",
                   "epochs_per_iter", "max_iters", "tol", "block", "schedule", "hole", "width", "pretrained",
                   "init_weights", "augment", "crop_scale", "jitter", "flip", "latent", "couple", "gamma", "lambda_k", "extra",
                   "layers", "data", "chains", "window_names", "other"]
    good = {"task": st.sampled_from(["ae", "classify", "gan"]),
            "datasets": st.lists(st.sampled_from(["bird", "dog", "wolf"]), min_size=1, max_size=3)}
    return st.fixed_dictionaries(
        {"format": st.sampled_from([RUN_FORMAT, "jointnet-run/2"]) | json_values,
         **{k: s | json_values for k, s in good.items()}},
    ).flatmap(lambda base: st.dictionaries(st.sampled_from(field_names), json_values, max_size=5)
              .map(lambda more: {**base, **more}))


@FUZZ
@given(config=config_dicts() | json_values)
@example(config={"format": RUN_FORMAT, "task": "ae", "datasets": 5})
@example(config={"format": RUN_FORMAT, "task": ["ae"], "datasets": ["bird"]})
@example(config={"format": RUN_FORMAT, "task": "ae", "datasets": ["bird"], "extra": {}})
def test_config_json_with_arbitrary_values(folder, config):
    run = RunDir(folder / "config-run")         # its own folder: the state.json tests read no config.json of it
    run.path.mkdir(exist_ok=True)
    run.config_path.write_text(json.dumps(config))
    cfg = only_user_errors(lambda: RunConfig.from_json(run.read_config(), where=str(run.config_path)))
    if cfg is not None:                        # what is accepted is a usable configuration
        assert cfg.task in ("ae", "classify", "gan") and all(isinstance(d, str) for d in cfg.datasets)


@FUZZ
@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | json_values.map(lambda v: json.dumps({"format": STATE_FORMAT, "irls": v}).encode()))
def test_state_json_of_arbitrary_content(folder, data):
    run = RunDir(folder / "run")
    run.path.mkdir(exist_ok=True)
    run.state_path.write_bytes(data)
    state = only_user_errors(run.read_state)
    if state is not None:
        assert isinstance(state, dict) and state["format"] == STATE_FORMAT


@pytest.mark.parametrize("baselines, key", [
    ({"l2-groups": {"method": "l2-groups", "groups": [1, 2]}}, "baselines.l2-groups.groups[0]"),
    ({"groupshare": {"method": "groupshare", "pretrained": {"groups": ["a", ""]}}},
     "baselines.groupshare.pretrained.groups[1]"),
    ({"groupshare": {"method": "groupshare", "pretrained": 3}}, "baselines.groupshare.pretrained"),
])
def test_state_json_refuses_edited_group_names_naming_the_key(tmp_path, baselines, key):
    run = RunDir(tmp_path / "run")              # a fresh folder: no config.json left by the fuzzed examples
    run.path.mkdir()
    run.state_path.write_text(json.dumps({"format": STATE_FORMAT, "baselines": baselines}))
    with pytest.raises(UserError, match=re.escape(key) + " must be"):
        run.read_state()


# ---------------------------------------------------------------- manifest.json of a prepared dataset


def manifests():
    """Manifests that are valid but for a few keys, which get arbitrary JSON values (or go missing)."""
    valid = {"format": FORMAT, "name": "ds", "image_size": 32, "channels": 3, "counts": {"train": 4, "test": 2},
             "labelled": True, "classes": ["a", "b"],
             "sha256": {"train.safetensors": "0" * 64, "test.safetensors": "0" * 64}}
    formats = st.sampled_from(["jointnet-data/1", "jointnet-data/2", "jointnet-data/0", "jointnet-data/²",
                               "jointnet-data/١", "jointnet-data/" + "9" * 5000, "jointnet-data/", "data/1"])
    mutated = st.fixed_dictionaries({}, optional={k: json_values for k in REQUIRED_KEYS}) \
        .map(lambda changes: {**valid, **changes})
    dropped = st.sampled_from(REQUIRED_KEYS).map(lambda k: {x: v for x, v in valid.items() if x != k})
    reformatted = formats.map(lambda f: {**valid, "format": f})
    return mutated | dropped | reformatted


@FUZZ
@given(content=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | manifests().map(lambda m: json.dumps(m).encode()))
@example(content=json.dumps({"format": "jointnet-data/²"}).encode())
def test_read_manifest_of_arbitrary_content(folder, content):
    (folder / "data" / "ds").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "ds" / MANIFEST).write_bytes(content)
    manifest = only_user_errors(read_manifest, folder / "data", "ds")
    if manifest is not None:
        assert set(REQUIRED_KEYS) <= set(manifest)


# ---------------------------------------------------------------- TOML recipes


@FUZZ
@given(text=st.text(max_size=200))
@example(text="[irls]\n[irls.inner]\nepochs = 1\n")
@example(text="irls = 5\n")
def test_load_recipe_of_arbitrary_text(folder, text):
    path = folder / "recipe.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    only_user_errors(load_recipe, path, "irls")


toml_strings = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x7f"), max_size=12)
toml_scalars = (st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | toml_strings)
toml_values = toml_scalars | st.lists(toml_scalars, max_size=3)


def toml_literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)   # a JSON string is a TOML basic string
    return "[" + ", ".join(toml_literal(v) for v in value) + "]"


known_keys = st.sampled_from(sorted(RECIPE_KEYS) + sorted(k.replace("_", "-") for k in RECIPE_KEYS if "_" in k))


@FUZZ
@given(top=st.dictionaries(known_keys, toml_values, max_size=5),
       table=st.dictionaries(known_keys, toml_values, max_size=5))
def test_load_recipe_of_known_keys_with_arbitrary_values(folder, top, table):
    lines = [f"{k} = {toml_literal(v)}" for k, v in top.items()]
    lines += ["[irls]"] + [f"{k} = {toml_literal(v)}" for k, v in table.items()]
    path = folder / "recipe.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    recipe = only_user_errors(load_recipe, path, "irls")
    if recipe is not None:                     # what a recipe hands on has the option's type
        for key, value in recipe.items():
            want = RECIPE_KEYS[key]
            assert isinstance(value, want) and not (want is int and isinstance(value, bool)), (key, value)


# ---------------------------------------------------------------- checkpoints (safetensors)


def with_header(header: bytes, body: bytes = b"") -> bytes:
    return len(header).to_bytes(8, "little") + header + body


def checkpoint_headers():
    """Headers of arbitrary JSON, and near-valid checkpoint headers with one tensor entry of arbitrary shape."""
    entry = st.fixed_dictionaries({"dtype": st.sampled_from(["F32", "U8", "I64", "X9"]) | json_values,
                                   "shape": st.lists(st.integers(-2, 4), max_size=3) | json_values,
                                   "data_offsets": st.lists(st.integers(-1, 32), min_size=2, max_size=2) | json_values})
    meta = st.fixed_dictionaries({"format": st.just(CKPT_FORMAT) | json_values}) | json_values
    near = st.fixed_dictionaries({"__metadata__": meta, "a/w": entry})
    return (json_values | near).map(lambda h: json.dumps(h).encode())


@FUZZ
@given(data=st.binary(max_size=200) | st.builds(with_header, checkpoint_headers(), st.binary(max_size=32)))
@example(data=with_header(b"[]"))
@example(data=with_header(b'"text"'))
@example(data=with_header(b"\xff\xfe"))
@example(data=(2**64 - 1).to_bytes(8, "little"))
def test_load_tensors_of_arbitrary_bytes(folder, data):
    path = folder / "ckpt.safetensors"
    path.write_bytes(data)
    loaded = only_user_errors(load_tensors, path)
    if loaded is not None:
        _, meta = loaded
        assert meta["format"] == CKPT_FORMAT


# ---------------------------------------------------------------- pathological files, one reader at a time


DEEP = "[" * 100_000                       # nesting far deeper than Python's recursion limit
HUGE_INT = "1" * 5000                      # more digits than int() converts by default (Python ≥ 3.11)


def _json_file(folder: Path, text: str) -> Path:
    path = folder / "file.json"
    path.write_text(text)
    return path


def _state(folder: Path, text: str):
    (folder / "run").mkdir(exist_ok=True)
    (folder / "run" / "state.json").write_text(text)
    return RunDir(folder / "run").read_state()


def _manifest(folder: Path, text: str):
    (folder / "data" / "ds").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "ds" / MANIFEST).write_text(text)
    return read_manifest(folder / "data", "ds")


def _recipe(folder: Path, text: str):
    path = folder / "recipe.toml"
    path.write_text(text)
    return load_recipe(path, "irls")


def _checkpoint_header(folder: Path, text: str):
    path = folder / "ckpt.safetensors"
    path.write_bytes(with_header(text.encode()))
    return load_tensors(path)


@pytest.mark.parametrize("read, text", [
    (lambda f, t: read_json(_json_file(f, t), "thing"), DEEP),
    (lambda f, t: read_json(_json_file(f, t), "thing"), HUGE_INT),
    (_state, DEEP),
    (_state, '{"format": "%s", "n": %s}' % (STATE_FORMAT, HUGE_INT)),
    (_manifest, DEEP),
    (_manifest, HUGE_INT),
    (_manifest, json.dumps({"format": "jointnet-data/" + "9" * 5000})),
    (_recipe, "x = " + "[" * 5000),
    (_checkpoint_header, DEEP),
    (_checkpoint_header, '{"__metadata__": {"format": %s}}' % HUGE_INT),
], ids=["read_json-deep", "read_json-huge-int", "state-deep", "state-huge-int", "manifest-deep", "manifest-huge-int",
        "manifest-huge-version", "recipe-deep", "checkpoint-deep", "checkpoint-huge-int"])
def test_pathological_files_are_user_errors(folder, read, text):
    try:
        read(folder, text)
    except UserError:
        return
    except Exception as e:                     # a full traceback of 1000 recursive frames helps nobody
        pytest.fail(f"raised {type(e).__name__}: {str(e)[:200]}", pytrace=False)
