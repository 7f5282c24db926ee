"""`evaluate --html` / `compare --html`: one self-contained page that a real browser renders cleanly."""

import json
import re
import shutil
import subprocess

import pytest

TINY = ["--task", "ae", "--datasets", "shapes-1,stripes-1,blobs-1", "--width", "4", "--batch-size", "8",
        "--epochs", "1", "--epochs-per-iter", "1", "--max-iters", "2", "--tol", "1e-9", "--device", "cpu"]
CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)

# Injected into a copy of the page (never into the report): records load errors and, once the page has
# loaded, how many images decoded, on <body data-check=…> where --dump-dom shows it.
CHECKER = """<script>
window.__errors = [];
window.addEventListener('error', e => __errors.push(String(e.message || (e.target && e.target.tagName))), true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute('data-check', JSON.stringify({images: imgs.length, broken: broken, errors: __errors}));
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory, synth_dir):
    from jointnet_cli.cli.app import main

    def cli(*args):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            assert e.code in (0, None), args

    run = tmp_path_factory.mktemp("html") / "run"
    cli("irls", *TINY, "--run", run, "--data-dir", synth_dir)
    cli("baseline", "isolated", "--run", run)
    cli("evaluate", "--run", run, "--html")
    return run


def test_the_page_holds_every_table_plot_and_the_configuration_inside_it(report):
    page = (report / "report/index.html").read_text()
    results = json.loads((report / "report/results.json").read_text())
    pngs = [f for f in results["files"] if f.endswith(".png")]
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == len(pngs) > 0 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:|//|file:)', page)          # nothing fetched: works offline
    for metric in ("mse", "mse_hole", "psnr", "ssim", "psnr_hole", "ssim_hole"):
        assert f"test {metric} (" in page
    assert "completions-joint" not in page and "input, completed, original" in page
    assert "&quot;lambda&quot;: 1.0" in page and "Recovery of the known groups" in page
    v = results["metrics"]["joint"]["shapes-1"]["mse"]
    assert f"{v:.4f}" in page


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")
def test_a_headless_browser_renders_it_with_every_image_loaded_and_no_error(report, tmp_path):
    page = (report / "report/index.html").read_text()
    probe = tmp_path / "index.html"
    probe.write_text(page.replace("<head>", "<head>" + CHECKER, 1))
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r'data-check="([^"]*)"', done.stdout)
    assert found, done.stderr[-2000:]
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["images"] == page.count("<img ") and check["broken"] == 0 and check["errors"] == []
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == []


def test_compare_writes_its_table_as_a_page_too(cli, report, tmp_path):
    r = cli("compare", report, "--html", tmp_path / "c.html")
    assert r.code == 0, r.err
    page = (tmp_path / "c.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "mean ± std over seeds" in page
    assert "joint: 4 epochs per dataset" in page   # warm start 1 + groups 1 + IRLS 2 × 1


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")
def test_the_browser_check_itself_catches_a_broken_image_and_a_script_error(tmp_path):
    probe = tmp_path / "bad.html"
    probe.write_text("<!DOCTYPE html><html><head>" + CHECKER + "</head><body>"
                     '<img src="data:image/png;base64,AAAA"><script>undefinedFunction();</script></body></html>')
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    check = json.loads(re.search(r'data-check="([^"]*)"', done.stdout).group(1).replace("&quot;", '"'))
    assert check["images"] == 1 and check["broken"] == 1 and len(check["errors"]) >= 1
