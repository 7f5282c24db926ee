"""Kill a run with SIGKILL at several moments, rerun it, and get exactly the uninterrupted numbers."""

import pytest
import json

import torch

from jointnet_cli.store.tensors import load_tensors
from subprocess_runs import FLAGS, jointnet, kill_when, numbers    # helper module beside this file


@pytest.mark.slow
def test_sigkill_anywhere_then_rerun_equals_uninterrupted(synth_dir, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    p = jointnet("irls", "--run", clean, "--data-dir", synth_dir, *FLAGS)
    assert p.wait() == 0, p.stderr.read().decode()

    moments = [
        lambda s: s.get("warmstart", {}).get("epochs_done", 0) >= 1,          # during the warm start
        lambda s: "current" in s.get("irls", {}),                              # after a weighting step
        lambda s: s.get("irls", {}).get("current", {}).get("epochs_done", 0) >= 1 or
                  len(s.get("irls", {}).get("iterations", [])) >= 1,          # inside / after an IRLS iteration
    ]
    kills = 0
    for ready in moments:
        kills += kill_when(jointnet("irls", "--run", killed, "--data-dir", synth_dir, *FLAGS), killed, ready)
        for f in killed.rglob("*.json"):
            json.loads(f.read_text())                    # never half-written
    assert kills >= 2
    p = jointnet("irls", "--run", killed, "--data-dir", synth_dir, *FLAGS)
    assert p.wait() == 0, p.stderr.read().decode()

    assert numbers(killed) == numbers(clean)
    files = lambda run: sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert files(killed) == files(clean)                 # no temporary or stale snapshot files left behind
    a, _ = load_tensors(clean / "checkpoints/irls-002.safetensors")
    b, _ = load_tensors(killed / "checkpoints/irls-002.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
