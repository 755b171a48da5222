"""``starlearn report``: the command over what train, evaluate and predict wrote, and the
page opened in a real headless browser (Debian's chromium; skipped without it)."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from starlearn.cli import main

from ..test_regression import toy_set

BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
"""Chromium offline and quiet: no network of its own, no updates, no sync."""

CHECK_IMAGES = """<script>
window.addEventListener("load", () => {
  const seen = [...document.images].map(i => [i.closest("figure").id, i.complete,
                                              i.naturalWidth, i.naturalHeight]);
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
});
</script>"""
"""Appended to a copy of the page (the page itself has no script): what the browser
decoded of each image once the page loaded."""


def run(args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, result.output + repr(result.exception)
    return result.output


def make_runs(folder: Path) -> Path:
    """train, evaluate (plots inside the model folder, and --json) and predict (parts
    kept) on the toy set, through the command line; returns ``folder``."""
    train, test = toy_set(n=250).split((0.8, 0.2), seed=0)
    test.meta["snr"] = np.linspace(15.0, 150.0, len(test))
    train.write(folder / "train.h5")
    test.write(folder / "test.h5")
    run(["train", "--model", "shallow-nn", "--data", folder / "train.h5", "--labels", "a,b",
         "-o", folder / "model", "--epochs", "3", "--param", "model_config={hidden=[16]}",
         "--quiet"])
    run(["evaluate", folder / "model", folder / "test.h5", "--plots",
         folder / "model" / "eval", "--json", folder / "model" / "eval" / "results.json"])
    run(["predict", folder / "model", folder / "test.h5", "-o", folder / "run" / "cat.parquet",
         "--keep-parts", "--quiet"])
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("cli-report"))


def chromium_binary():
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def browse(binary, page: Path, work: Path, *args: str) -> subprocess.CompletedProcess:
    """Open ``page`` in headless chromium with ``args`` (--screenshot=..., --dump-dom),
    console messages logged to stderr."""
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(work)}
    return subprocess.run([binary, *BROWSER_FLAGS, f"--user-data-dir={work / 'profile'}",
                           "--enable-logging=stderr", "--v=0", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, env=env)


def screenshot(binary, page: Path, png: Path, work: Path, size=(1200, 3000)):
    """Screenshot of ``page`` (``size`` in CSS pixels); returns the browser's console
    lines about the page."""
    done = browse(binary, page, work, f"--screenshot={png}",
                  f"--window-size={size[0]},{size[1]}", "--hide-scrollbars")
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line]


def test_report_command_for_each_run(runs, tmp_path):
    out = run(["report", runs / "model", "-o", tmp_path / "model.html"])
    assert f"report of {runs / 'model'} written to {tmp_path / 'model.html'}" in out
    html = (tmp_path / "model.html").read_text()
    for title in ("Configuration and provenance", "Held-out metrics", "Calibration and flags",
                  "Training curve", "Plots"):
        assert f">{title}</h2>" in html, title
    assert "<figcaption>eval/residuals.png</figcaption>" in html
    # the evaluation kept in the model folder: its numbers, per S/N bin too, shown once
    result = json.loads((runs / "model" / "eval" / "results.json").read_text())
    assert ">Evaluations kept in the folder</h2>" in html and "<h3>eval/results.json</h3>" in html
    assert "eval/metrics.json" not in html
    for b in result["metrics"]["snr_bins"]:
        assert f">{b['lo']:g} – {b['hi']:g}<" in html and f">{b['a']['sigma']:.4g}<" in html

    run(["report", runs / "model" / "eval", "-o", tmp_path / "eval.html"])
    html = (tmp_path / "eval.html").read_text()
    result = json.loads((runs / "model" / "eval" / "results.json").read_text())
    assert f">{result['metrics']['a']['sigma']:.4g}<" in html and "residuals.png" in html

    for source in (runs / "run" / "cat.parquet", runs / "run"):
        run(["report", source, "-o", tmp_path / "run.html", "--overwrite"])
        html = (tmp_path / "run.html").read_text()
        assert "starlearn predict" in html and "rows with each flag bit set, of 50" in html


def test_report_refuses_an_existing_output_without_overwrite(runs, tmp_path):
    (tmp_path / "r.html").write_text("kept")
    out = run(["report", runs / "model", "-o", tmp_path / "r.html"], code=1)
    assert "r.html exists; pass --overwrite" in out
    assert (tmp_path / "r.html").read_text() == "kept"
    run(["report", runs / "model", "-o", tmp_path / "r.html", "--overwrite"])
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_report_of_an_unknown_or_empty_folder_names_it(tmp_path):
    (tmp_path / "empty").mkdir()
    out = run(["report", tmp_path / "empty", "-o", tmp_path / "r.html"], code=1)
    assert f"Error: {tmp_path / 'empty'}: is empty; expected a model folder" in out
    (tmp_path / "empty" / "notes.txt").write_text("x")
    out = run(["report", tmp_path / "empty", "-o", tmp_path / "r.html"], code=1)
    assert "holds no file a report can be made from" in out and "starlearn predict" in out
    out = run(["report", tmp_path / "nowhere", "-o", tmp_path / "r.html"], code=2)
    assert "does not exist" in out
    assert not (tmp_path / "r.html").exists()


def test_the_page_loads_in_a_headless_browser(runs, tmp_path):
    """Chromium opens the page from file: with no console message (no script error, and
    the page's Content-Security-Policy would log any load from elsewhere), draws every
    figure (each image decoded, non-zero size) and the screenshot is not blank."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run "
                    "installs it)")
    from PIL import Image

    page = tmp_path / "report.html"
    run(["report", runs / "model", "-o", page])
    html = page.read_text()
    figures = re.findall(r'<figure id="([^"]+)">', html)
    assert len(figures) == 2  # the training curve and eval/residuals.png

    console = screenshot(binary, page, tmp_path / "shot.png", tmp_path / "browser")
    assert console == []
    shot = Image.open(tmp_path / "shot.png")
    assert shot.format == "PNG" and shot.size == (1200, 3000)
    grey = np.asarray(shot.convert("L"), dtype=float)
    assert grey.std() > 10 and np.mean(grey < 200) > 0.01  # text and figures, not blank
    assert len(np.unique(grey)) > 50

    checked = tmp_path / "checked.html"
    csp = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', html).group(0)
    checked.write_text(html.replace(csp, "").replace("</body>", CHECK_IMAGES + "</body>"))
    done = browse(binary, checked, tmp_path / "browser", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert all(f'<figure id="{key}">' in dom for key in figures)
    for key in ("provenance", "data", "metrics", "calibration", "evaluation", "training",
                "plots"):
        assert f'<section id="{key}">' in dom
    seen = json.loads(re.search(r'<pre id="image-check">(.*?)</pre>', dom).group(1))
    assert [s[0] for s in seen] == figures
    assert all(complete and width > 100 and height > 100 for _, complete, width, height in seen)
