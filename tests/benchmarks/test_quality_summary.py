"""The paper-style table (`jointnet compare`, benchmarks/quality.py) is the mean ± std over seeds of what
evaluate reported."""

from types import SimpleNamespace

import pytest

from jointnet_cli.report import compare


@pytest.fixture(scope="module")
def quality():
    return SimpleNamespace(summarize=compare.summarize, markdown=compare.markdown)


def evaluated(joint: dict, isolated: dict, recovery: list[float]) -> dict:
    """The part of `evaluate_run`'s result the summary reads, for two datasets."""
    return {"metric": "mse", "higher_is_better": False, "budgets": {"joint": {"epochs": 4}},
            "metrics": {"joint": {d: {"mse": v} for d, v in joint.items()},
                        "isolated": {d: {"mse": v} for d, v in isolated.items()}},
            "sharing": {"windows": ["w1", "w2"]}, "group_recovery": recovery}


def test_the_table_holds_mean_and_sample_std_over_seeds_per_dataset_and_for_the_average(quality):
    seeds = [evaluated({"a": 1.0, "b": 3.0}, {"a": 2.0, "b": 2.0}, [1.0, 0.0]),
             evaluated({"a": 3.0, "b": 5.0}, {"a": 2.0, "b": 4.0}, [0.5, 0.0])]
    s = quality.summarize("ae", seeds, ["joint", "isolated"])
    assert s["table"]["joint"]["a"] == {"mean": 2.0, "std": pytest.approx(2 ** 0.5)}
    assert s["table"]["joint"]["average"] == {"mean": 3.0, "std": pytest.approx(2 ** 0.5)}   # per seed: 2, 4
    assert s["table"]["isolated"]["b"]["mean"] == 3.0
    assert [r["mean"] for r in s["recovery"]] == [0.75, 0.0] and s["seeds"] == 2
    md = quality.markdown(s)
    assert "| joint | 2.0000 ± 1.4142 | 4.0000 ± 1.4142 | 3.0000 ± 1.4142 |" in md
    assert "| isolated | 2.0000 ± 0.0000 | 3.0000 ± 1.4142 | **2.5000 ± 0.7071** |" in md      # lower is better
    assert "w1: 0.75 ± 0.35" in md


def test_methods_missing_from_a_run_are_left_out(quality):
    s = quality.summarize("ae", [evaluated({"a": 1.0}, {"a": 2.0}, [1.0, 1.0])], ["joint", "shareall"])
    assert list(s["table"]) == ["joint"]
