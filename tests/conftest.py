"""Shared fixtures: a tiny prepared synth8 collection and tiny training settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jointnet_cli.cli.app import main

# Small enough that a whole warm start + IRLS takes seconds on 2 CPU cores.
TINY = {"task": "ae", "epochs": 2, "epochs_per_iter": 1, "max_iters": 3, "batch_size": 8, "width": 4, "lr": 3e-3}


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """data/ holding all 8 synth8 domains at 32 px, 16 train / 8 test images each (made once per session)."""
    from jointnet_cli.data.synth8 import prepare_synth8

    data = tmp_path_factory.mktemp("synth8") / "data"
    prepare_synth8(data_dir=data, size=32, train=16, test=8, seed=0)
    return data


@pytest.fixture
def tiny() -> dict:
    return dict(TINY)


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys):
    """Run `jointnet ARGS…` in-process; returns exit code, stdout and stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
