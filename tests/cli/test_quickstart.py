"""`jointnet quickstart` end to end, with the pipeline's sizes shrunk so it runs in seconds."""

import json

import pytest

from jointnet_cli.apply import quickstart


@pytest.fixture
def tiny_quickstart(monkeypatch):
    monkeypatch.setattr(quickstart, "SETTINGS", {**quickstart.SETTINGS, "width": 4, "epochs": 1, "start_epochs": 1,
                                                 "epochs_per_iter": 1, "max_iters": 1, "batch_size": 16})
    monkeypatch.setattr(quickstart, "TRAIN", 16)
    monkeypatch.setattr(quickstart, "TEST", 8)


@pytest.mark.slow                      # end to end twice, every plot drawn both times: about 20 s
def test_quickstart_prepares_trains_every_method_and_reports(cli, tmp_path, tiny_quickstart):
    r = cli("quickstart", "--run", tmp_path / "qs", "--data-dir", tmp_path / "data", "--device", "cpu")
    assert r.code == 0, r.err
    for stage in ("1/5 preparing synth8", "2/5 joint learning", "3/5 baseline 3/3: l2", "4/5 evaluating", "5/5 filling a hole"):
        assert stage in r.err
    assert "average" in r.out and "curves-mse.png" in r.out
    results = json.loads((tmp_path / "qs/report/results.json").read_text())
    assert set(results["metrics"]) == {"joint", "isolated", "shareall", "l2"}
    assert len(results["group_recovery"]) == 8
    assert (tmp_path / "qs/report/complete-shapes-1.png").is_file()

    # a second call finds every stage done and only evaluates again
    r = cli("quickstart", "--run", tmp_path / "qs", "--data-dir", tmp_path / "data", "--device", "cpu")
    assert r.code == 0 and "1/5 synth8 already prepared" in r.err and "already" in r.err
