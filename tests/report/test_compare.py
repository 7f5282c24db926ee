"""`jointnet compare`: runs that differ only in seed, summarized from their results files alone."""

import json
import statistics

import pytest

TINY = ["--task", "ae", "--datasets", "shapes-1,stripes-1", "--width", "4", "--epochs", "1", "--epochs-per-iter",
        "1", "--max-iters", "1", "--batch-size", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_dir):
    """Three evaluated runs: seeds 0 and 1 with λ 1, seed 0 with λ 3 (joint and isolated each)."""
    from jointnet_cli.cli.app import main

    def cli(*args):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            assert e.code in (0, None), args

    root = tmp_path_factory.mktemp("compare")
    made = {}
    for name, extra in (("s0", ["--seed", "0"]), ("s1", ["--seed", "1"]), ("l3", ["--seed", "0", "--lambda", "3"])):
        run = root / name
        cli("irls", "--run", run, "--data-dir", synth_dir, *TINY, *extra)
        cli("baseline", "isolated", "--run", run, "--data-dir", synth_dir, "--device", "cpu")
        cli("evaluate", "--run", run, "--device", "cpu")
        made[name] = run
    return made


def results(run):
    return json.loads((run / "report/results.json").read_text())


def test_seeds_are_averaged_per_dataset_method_and_on_average(cli, runs, tmp_path):
    r = cli("compare", runs["s0"], runs["s1"], "--json", "--csv", tmp_path / "t.csv", "--md", tmp_path / "t.md")
    assert r.code == 0, r.err
    s = r.json["summary"]
    assert len(r.json["groups"]) == 1 and r.json["groups"][0]["seeds"] == [0, 1]
    a, b = results(runs["s0"])["metrics"], results(runs["s1"])["metrics"]
    for method in ("joint", "isolated"):
        for d in ("shapes-1", "stripes-1"):
            values = [a[method][d]["mse"], b[method][d]["mse"]]
            assert s["table"][method][d]["mean"] == pytest.approx(statistics.fmean(values))
            assert s["table"][method][d]["std"] == pytest.approx(statistics.stdev(values))
        avg = [statistics.fmean(x[method][d]["mse"] for d in ("shapes-1", "stripes-1")) for x in (a, b)]
        assert s["table"][method]["average"]["mean"] == pytest.approx(statistics.fmean(avg))
    assert "isolated,average," in (tmp_path / "t.csv").read_text()
    assert "| method | shapes-1 | stripes-1 | average |" in (tmp_path / "t.md").read_text()


def test_other_settings_form_labelled_groups_and_globs_work(cli, runs):
    r = cli("compare", str(runs["s0"].parent / "*"), "--json")
    assert r.code == 0, r.err
    assert sorted(len(g["runs"]) for g in r.json["groups"]) == [1, 2]
    assert {"joint [lambda=1.0]", "joint [lambda=3.0]"} <= set(r.json["summary"]["table"])
    human = cli("compare", runs["s0"], runs["s1"])
    assert human.code == 0 and "mean ± std over 2 seeds" in human.out and "seeds 0, 1" in human.out
    assert "| joint |" in human.out                          # not a terminal: the whole table as Markdown


def test_runs_are_grouped_by_what_auto_resolved_to(cli, runs, tmp_path):
    """A run recorded with --sigma fixed --start groups ran what --sigma auto --start auto runs for ae."""
    import shutil

    spelled = tmp_path / "spelled"
    shutil.copytree(runs["s1"], spelled)
    config = json.loads((spelled / "config.json").read_text())
    assert (config["sigma"], config["start"]) == ("auto", "auto")
    (spelled / "config.json").write_text(json.dumps({**config, "sigma": "fixed", "start": "groups"}))
    r = cli("compare", runs["s0"], spelled, "--json")
    assert r.code == 0, r.err
    assert len(r.json["groups"]) == 1 and r.json["groups"][0]["seeds"] == [0, 1]


def test_runs_of_other_datasets_or_without_results_are_refused(cli, runs, synth_dir, tmp_path):
    other = tmp_path / "other"
    assert cli("baseline", "isolated", "--run", other, "--data-dir", synth_dir, "--task", "ae", "--datasets",
               "shapes-1,blobs-1", "--width", "4", "--budget", "1", "--device", "cpu").code == 0
    r = cli("compare", runs["s0"], other)
    assert r.code == 2 and "runs differ in datasets" in r.err and "shapes-1,blobs-1" in r.err
    r = cli("compare", other)
    assert r.code == 2 and "run `jointnet evaluate --run" in r.err
    r = cli("compare", str(tmp_path / "nothing*"))
    assert r.code == 2 and "no run directory matches" in r.err


def test_ae_runs_report_psnr_and_ssim_and_compare_tabulates_any_of_them(cli, runs):
    res = results(runs["s0"])
    assert res["higher_is_better_of"] == {"mse": False, "mse_hole": False, "psnr": True, "ssim": True,
                                          "psnr_hole": True, "ssim_hole": True}
    r = cli("compare", runs["s0"], runs["s1"], "--metric", "psnr_hole", "--json")
    assert r.code == 0, r.err
    s = r.json["summary"]
    assert s["metric"] == "psnr_hole" and s["higher_is_better"] is True
    values = [results(runs[k])["metrics"]["joint"]["shapes-1"]["psnr_hole"] for k in ("s0", "s1")]
    assert s["table"]["joint"]["shapes-1"]["mean"] == pytest.approx(statistics.fmean(values))
    assert "## psnr" in (runs["s0"] / "report/results.md").read_text()
    human = cli("compare", runs["s0"], runs["s1"])
    assert "also reported: mse_hole, psnr, psnr_hole, ssim, ssim_hole (--metric NAME)" in " ".join(human.out.split())
    bad = cli("compare", runs["s0"], "--metric", "fid")
    assert bad.code == 2 and "--metric 'fid': these runs report mse, mse_hole, psnr" in bad.err
