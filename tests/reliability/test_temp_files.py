"""Temporary files of a killed training command do not outlive its rerun."""


def test_a_rerun_removes_the_temp_files_a_killed_run_left(cli, synth_dir, tmp_path):
    run = tmp_path / "R"
    flags = ["--task", "ae", "--datasets", "shapes-1", "--run", run, "--data-dir", synth_dir, "--width", "4",
             "--epochs", "1", "--batch-size", "8", "--device", "cpu"]
    assert cli("warmstart", *flags).code == 0
    stale = [run / ".state.json.k3j9.tmp", run / "checkpoints/.warmstart.safetensors.x81q.tmp"]
    for p in stale:
        p.write_bytes(b"half written")
    kept = run / "checkpoints/notes.txt"                     # not a temp file of ours: left alone
    kept.write_text("mine")
    assert cli("warmstart", "--run", run, "--device", "cpu").code == 0
    assert not any(p.exists() for p in stale) and kept.read_text() == "mine"
