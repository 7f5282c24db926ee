"""Result tables: best per row, averages, and the CSV / Markdown / JSON / rich renderings."""

import csv
import io

import pytest

from jointnet_cli.errors import UserError
from jointnet_cli.report.tables import results_table, table_csv, table_json, table_markdown, table_rich

MSE = {
    "joint": {"bird": 0.010, "dog": 0.020, "wolf": 0.030},
    "isolated": {"bird": 0.015, "dog": 0.020, "wolf": 0.040},
    "l2": {"bird": 0.012, "dog": 0.025},  # no result for wolf
}


def test_lower_is_better_picks_the_minimum_and_keeps_ties():
    t = results_table(MSE, higher_is_better=False)
    assert t.datasets == ["bird", "dog", "wolf"]
    assert t.methods == ["joint", "isolated", "l2"]
    assert t.best == {"bird": ["joint"], "dog": ["joint", "isolated"], "wolf": ["joint"]}
    assert t.values["l2"]["wolf"] is None


def test_higher_is_better_picks_the_maximum():
    acc = {"joint": {"a": 0.8, "b": 0.6}, "shareall": {"a": 0.7, "b": 0.9}}
    t = results_table(acc, higher_is_better=True)
    assert t.best == {"a": ["joint"], "b": ["shareall"]}
    assert t.average == {"joint": pytest.approx(0.7), "shareall": pytest.approx(0.8)}
    assert t.best_average() == ["shareall"]


def test_average_only_for_methods_with_every_dataset():
    t = results_table(MSE, higher_is_better=False)
    assert t.average["joint"] == pytest.approx(0.02)
    assert t.average["isolated"] == pytest.approx(0.025)
    assert t.average["l2"] is None


def test_methods_order_comes_first_and_unknown_methods_are_skipped():
    t = results_table(MSE, higher_is_better=False, methods_order=["l2", "finetune", "joint"])
    assert t.methods == ["l2", "joint", "isolated"]
    with pytest.raises(UserError):
        results_table({}, higher_is_better=True)


def test_markdown_bolds_the_best_of_each_row_and_has_an_avg_row():
    md = table_markdown(results_table(MSE, higher_is_better=False)).splitlines()
    assert md[0] == "| dataset | joint | isolated | l2 |"
    assert md[2] == "| bird | **0.0100** | 0.0150 | 0.0120 |"
    assert md[3] == "| dog | **0.0200** | **0.0200** | 0.0250 |"
    assert md[4] == "| wolf | **0.0300** | 0.0400 | – |"
    assert md[5] == "| Avg | **0.0200** | 0.0250 | – |"


def test_csv_parses_back_to_the_same_numbers():
    t = results_table(MSE, higher_is_better=False)
    rows = list(csv.reader(io.StringIO(table_csv(t))))
    assert rows[0] == ["dataset", "joint", "isolated", "l2"]
    parsed = {r[0]: {m: (float(v) if v else None) for m, v in zip(rows[0][1:], r[1:])} for r in rows[1:]}
    for d in t.datasets:
        for m in t.methods:
            assert parsed[d][m] == t.values[m][d]
    assert rows[-1][0] == "average"
    assert parsed["average"] == t.average


def test_json_and_rich_renderings():
    t = results_table(MSE, higher_is_better=False)
    j = table_json(t)
    assert j["rows"][1] == {"dataset": "dog", "values": {"joint": 0.02, "isolated": 0.02, "l2": 0.025},
                            "best": ["joint", "isolated"]}
    assert j["average"]["l2"] is None

    from rich.console import Console

    console = Console(record=True, width=100)
    console.print(table_rich(t, "test MSE"))
    text = console.export_text()
    assert "test MSE" in text and "average" in text and "0.0150" in text
