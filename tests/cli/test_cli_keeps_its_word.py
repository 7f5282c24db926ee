"""The command line keeps its word: a run remembers its data, stage settings belong to their stage, every
flag is honoured or refused, choices are listed, messages are one line and files follow the umask.

Every test goes through the CLI and checks exit codes, messages and the files written.
"""

import json
import os
import stat

import pytest

TINY = ["--width", "4", "--batch-size", "8", "--device", "cpu"]
TWO = "shapes-1,stripes-1"


def files_of(folder):
    """Every file under `folder` with its bytes (to assert that a refusal wrote nothing)."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


def one_error_line(r, *words):
    assert r.code == 2, r.err
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("jointnet: error:"), r.err
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]}"
    return lines[0]


@pytest.fixture
def warm(cli, synth_dir, tmp_path):
    """A run with a finished warm start, created with --data-dir and --epochs-per-iter 3."""
    run = tmp_path / "R"
    r = cli("warmstart", "--task", "ae", "--datasets", TWO, "--run", run, "--data-dir", synth_dir, "--epochs", "1",
            "--epochs-per-iter", "3", "--max-iters", "1", "--start", "random", *TINY)   # IRLS right after it
    assert r.code == 0, r.err
    return run


# -- 1. a run remembers where its data came from ------------------------------------------------------------

def test_later_stages_use_the_data_dir_the_run_was_created_with(cli, warm, synth_dir, tmp_path, monkeypatch):
    config = json.loads((warm / "config.json").read_text())
    assert config["data_dir"] == {"given": str(synth_dir), "resolved": str(synth_dir.resolve())}
    monkeypatch.chdir(tmp_path)                       # no data/ here: only the run's record can find the data
    r = cli("irls", "--run", warm, "--epochs-per-iter", "1", "--device", "cpu")
    assert r.code == 0, r.err
    assert f"data {synth_dir.resolve()}" in r.err
    r = cli("baseline", "isolated", "--run", warm, "--budget", "1", "--device", "cpu")
    assert r.code == 0, r.err
    r = cli("evaluate", "--run", warm, "--device", "cpu", "--json")
    assert r.code == 0, r.err and set(r.json["metrics"]) == {"joint", "isolated"}


def test_another_data_dir_with_other_data_is_refused_naming_the_dataset(cli, warm, tmp_path):
    from jointnet_cli.data.synth8 import prepare_synth8

    other = tmp_path / "other"
    prepare_synth8(data_dir=other, size=32, train=16, test=8, seed=5)          # same names, other images
    before = files_of(warm)
    for command in (["irls"], ["evaluate"]):
        r = cli(*command, "--run", warm, "--data-dir", other, "--device", "cpu")
        one_error_line(r, "dataset shapes-1", "differs")
    assert files_of(warm) == before


# -- 2. stage settings belong to their stage ----------------------------------------------------------------

def test_irls_takes_its_own_settings_when_it_starts_and_records_them(cli, warm):
    r = cli("irls", "--run", warm, "--epochs-per-iter", "2", "--max-iters", "1", "--weight", "paper",
            "--device", "cpu")
    assert r.code == 0, r.err
    config = json.loads((warm / "config.json").read_text())
    state = json.loads((warm / "state.json").read_text())
    assert (config["epochs_per_iter"], config["weight"]) == (2, "paper")
    assert state["irls"]["iterations"][0]["epochs"] == 2 and state["irls"]["settings"]["weight"] == "paper"
    # the next iteration takes another --epochs-per-iter; the weight function is fixed by iteration 1
    assert cli("irls", "--run", warm, "--epochs-per-iter", "1", "--max-iters", "2", "--tol", "1e-9",
               "--device", "cpu").code == 0
    assert [it["epochs"] for it in json.loads((warm / "state.json").read_text())["irls"]["iterations"]] == [2, 1]
    before = files_of(warm)
    one_error_line(cli("irls", "--run", warm, "--weight", "gm", "--device", "cpu"),
                   "--weight gm", "IRLS iteration 1", "--weight paper")
    one_error_line(cli("irls", "--run", warm, "--epochs", "4", "--device", "cpu"),
                   "--epochs 4", "the warm start was trained with --epochs 1")
    assert files_of(warm) == before


def test_lowering_tol_or_raising_max_iters_continues_a_finished_run(cli, warm):
    r = cli("irls", "--run", warm, "--tol", "10", "--max-iters", "3", "--epochs-per-iter", "1", "--device", "cpu")
    assert r.code == 0 and "converged" in r.out
    state = json.loads((warm / "state.json").read_text())
    assert state["irls"]["converged"] is True and state["irls"]["iterations"] == []   # δ ≤ 10 at k = 1
    r = cli("irls", "--run", warm, "--tol", "1e-9", "--device", "cpu")
    assert r.code == 0, r.err
    assert "continuing IRLS" in r.err
    state = json.loads((warm / "state.json").read_text())
    assert [it["k"] for it in state["irls"]["iterations"]] == [1, 2, 3] and state["irls"]["converged"] is False
    r = cli("irls", "--run", warm, "--max-iters", "4", "--device", "cpu")
    assert r.code == 0 and len(json.loads((warm / "state.json").read_text())["irls"]["iterations"]) == 4


def test_a_finished_baseline_refuses_another_budget(cli, warm):
    assert cli("baseline", "isolated", "--run", warm, "--budget", "1", "--device", "cpu").code == 0
    before = files_of(warm)
    one_error_line(cli("baseline", "isolated", "--run", warm, "--budget", "2", "--device", "cpu"),
                   "baseline isolated was trained with --budget 1")
    assert files_of(warm) == before


def test_the_old_spelling_of_the_budget_still_works_and_warns(cli, warm):
    r = cli("baseline", "isolated", "--run", warm, "--epochs", "1", "--device", "cpu", "--json")
    assert r.code == 0 and r.json["epochs"] == 1
    assert "warning: `baseline --epochs` is deprecated; use --budget" in r.err
    r = cli("baseline", "l2", "--run", warm, "--budget", "2", "--epochs", "3", "--device", "cpu")
    assert r.code == 2 and "give --budget once (--epochs is its deprecated spelling)" in r.err


# -- 3. no flag is silently ignored -------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["irls", "--task", "ae", "--block", "step", "--schedule", "batched"], ["--block step", "--schedule bcd"]),
    (["irls", "--task", "ae", "--block", "step", "--sync-every", "4"], ["--block step", "--sync-every"]),
    (["irls", "--task", "ae", "--couple", "d"], ["--couple applies to --task gan only"]),
    (["irls", "--task", "ae", "--pretrained"], ["--pretrained applies to --task classify only"]),
    (["irls", "--task", "classify", "--hole", "8"], ["--hole applies to --task ae only"]),
    (["baseline", "isolated", "--task", "ae", "--fraction", "0.5"], ["--fraction applies to baseline l2-partial"]),
    (["baseline", "l2", "--task", "ae", "--groups", "a,b"], ["--groups applies to baseline groupshare"]),
    (["baseline", "isolated", "--task", "ae", "--pretrain-epochs", "1"], ["--pretrain-epochs"]),
    (["irls", "--task", "ae", "--anneal", "2"], ["--anneal applies with --sigma anneal only",
                                                 "(the run has --sigma auto, which is fixed for this run)"]),
    (["irls", "--task", "ae", "--lambda-grid", "1,3"], ["--lambda-grid applies with --lambda auto only"]),
    (["irls", "--task", "ae", "--start", "random", "--start-epochs", "2"],
     ["--start-epochs applies with --start shareall or groups only"]),
])
def test_a_flag_that_cannot_apply_is_refused_and_nothing_is_written(cli, synth_dir, tmp_path, args, words):
    run = tmp_path / "R"
    r = cli(*args, "--datasets", TWO, "--run", run, "--data-dir", synth_dir, *TINY)
    one_error_line(r, *words)
    assert not run.exists()


def test_an_existing_run_refuses_an_option_of_another_task(cli, warm):
    before = files_of(warm)
    one_error_line(cli("irls", "--run", warm, "--latent", "8", "--device", "cpu"), "--latent applies to --task gan")
    assert files_of(warm) == before


def test_auto_schedule_with_block_step_trains_bcd_and_says_so(cli, synth_dir, tmp_path):
    r = cli("warmstart", "--task", "ae", "--datasets", TWO, "--run", tmp_path / "R", "--data-dir", synth_dir,
            "--epochs", "1", "--block", "step", *TINY)
    assert r.code == 0, r.err
    assert "schedule bcd (auto)" in r.err
    history = json.loads((tmp_path / "R/state.json").read_text())["warmstart"]["history"]
    assert history[0]["schedule"] == "bcd"


# -- 4. choices are enums; one name, one meaning ------------------------------------------------------------

def test_help_lists_the_choices_and_shows_no_bool_placeholder(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")                  # one line per option: the choices are not wrapped
    r = cli("irls", "--help")
    text = " ".join(r.out.split())
    for listed in ("ae|classify|gan", "auto|bcd|batched", "epoch|step", "fixed|refit|anneal", "grad|prox",
                   "auto|cpu|cuda"):
        assert listed in text, listed
    assert "<bool>" not in r.out and "--threads" in text
    assert "isolated|shareall|l2|l2-partial|l2-groups|finetune|groupshare" in " ".join(cli("baseline", "--help").out.split())


@pytest.mark.parametrize("args, words", [
    (["irls", "--task", "classfy"], ["'classfy' is not one of", "did you mean 'classify'?"]),
    (["irls", "--schedule", "bacthed"], ["did you mean 'batched'?"]),
    (["baseline", "isolatd"], ["did you mean 'isolated'?"]),
    (["irls", "--lamda", "3"], ["--lamda", "--lambda"]),
])
def test_a_typo_is_refused_with_the_nearest_spelling(cli, args, words):
    one_error_line(cli(*args), *words)


def test_the_config_records_only_the_options_of_its_task(warm):
    config = json.loads((warm / "config.json").read_text())
    assert "hole" in config
    for other in ("augment", "crop_scale", "jitter", "flip", "pretrained", "init_weights", "latent", "couple", "gamma",
                  "lambda_k"):
        assert other not in config, other


def test_complete_takes_hole_and_warns_on_the_old_size(cli, synth_dir, tmp_path):
    from PIL import Image

    run = tmp_path / "R"
    assert cli("baseline", "isolated", "--task", "ae", "--datasets", "shapes-1", "--run", run, "--data-dir", synth_dir,
               "--budget", "1", *TINY).code == 0
    Image.new("RGB", (32, 32), (120, 30, 200)).save(tmp_path / "x.png")
    r = cli("complete", "--run", run, "--dataset", "shapes-1", "--method", "isolated", tmp_path / "x.png",
            "--hole", "8", "--out", tmp_path / "a.png", "--json")
    assert r.code == 0, r.err and r.json[0]["box"][2:] == [8, 8]
    r = cli("complete", "--run", run, "--dataset", "shapes-1", "--method", "isolated", tmp_path / "x.png",
            "--size", "6", "--out", tmp_path / "b.png", "--json")
    assert r.code == 0 and r.json[0]["box"][2:] == [6, 6]
    assert "`complete --size` is deprecated; use --hole" in r.err


def test_sample_reads_the_run_from_a_recipe(cli, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'run = "{tmp_path / "nope"}"\n')
    one_error_line(cli("sample", "--recipe", recipe, "--dataset", "shapes-1"), "nope")
    one_error_line(cli("sample", "--dataset", "shapes-1"), "give --run DIR")


# -- 5. the start line says what was resolved; --threads ----------------------------------------------------

def test_the_start_line_names_what_was_resolved(cli, synth_dir, tmp_path):
    run = tmp_path / "R"
    r = cli("warmstart", "--task", "ae", "--datasets", TWO, "--run", run, "--data-dir", synth_dir, "--epochs", "1",
            "--threads", "1", "--seed", "3", *TINY)
    assert r.code == 0, r.err
    start = r.err.splitlines()[0]
    for words in (f"jointnet warmstart: run {run} (new)", f"data {synth_dir}", "device cpu", "1 thread,", "seed 3",
                  "schedule bcd (auto)", "λ 1"):
        assert words in start, (words, start)
    one_error_line(cli("warmstart", "--run", run, "--threads", "0", "--device", "cpu"), "--threads")


# -- 6. messages, progress in a log file, file modes --------------------------------------------------------

def test_every_problem_of_a_recipe_is_named_at_once(cli, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('tsk = "ae"\nlamda = 3\n[irl]\nx = 1\n')
    line = one_error_line(cli("irls", "--recipe", recipe), "3 problems")
    for words in ("'tsk'; did you mean 'task'?", "'lamda'; did you mean 'lambda'?", "[irl]; did you mean [irls]?"):
        assert words in line


def test_progress_lines_in_a_log_have_no_source_paths_and_end_cleanly(cli, warm):
    r = cli("irls", "--run", warm, "--epochs-per-iter", "1", "--max-iters", "2", "--device", "cpu")
    assert r.code == 0, r.err
    assert "output.py" not in r.err
    lines = r.err.splitlines()
    assert any("IRLS k=1 epoch 1: data loss" in line for line in lines)           # a plain line per epoch
    assert any("IRLS iteration 2: δ" in line for line in lines)                   # and per iteration
    assert "1 epochs" not in r.err + r.out


def test_run_files_follow_the_umask(cli, synth_dir, tmp_path):
    old = os.umask(0o022)
    try:
        run = tmp_path / "R"
        assert cli("baseline", "isolated", "--task", "ae", "--datasets", TWO, "--run", run, "--data-dir", synth_dir,
                   "--budget", "1", *TINY).code == 0
        assert cli("evaluate", "--run", run, "--device", "cpu").code == 0
    finally:
        os.umask(old)
    for path in (run / "config.json", run / "state.json", run / "report/results.json",
                 run / "checkpoints/isolated.safetensors"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_the_shell_completes_an_options_choices():
    import subprocess
    import sys

    env = {**os.environ, "COMP_WORDS": "jointnet irls --schedule ", "COMP_CWORD": "3",
           "_JOINTNET_COMPLETE": "complete_bash"}
    out = subprocess.run([sys.executable, "-m", "jointnet_cli"], env=env, capture_output=True, text=True).stdout
    assert out.split() == ["auto", "bcd", "batched"]
