"""The report page (starlearn.jobs.report): each kind of run folder, made by the real jobs
on tiny data; every number shown comes from the files, every image is an embedded PNG,
nothing external, every string escaped."""

import base64
import io
import json
import shutil
import subprocess
import sys
from html import escape
from html.parser import HTMLParser

import numpy as np
import pytest
from astropy.table import Table

from starlearn import SpectrumSet
from starlearn.estimators import Autoencoder, Cannon, Classifier, Regressor
from starlearn.evaluate.regression import evaluate_regressor
from starlearn.jobs import evaluate, read_catalogue, run_archive, save_model
from starlearn.jobs.report import (
    FLAG_BITS,
    flag_counts,
    grid_summary,
    identify,
    read_history,
    training_curve,
    write_report,
)

from ..test_regression import toy_set

PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """The tags of a page that matter here: images, links, scripts, figures, ids."""

    def __init__(self, text):
        super().__init__()
        self.images, self.links, self.tags, self.ids = [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for name in ("href", "src", "action", "srcset", "poster"):
            if name in attrs and tag != "img":
                self.links.append(attrs[name])


def text(value):
    """A number as the page writes it."""
    return f"{value:.4g}"


def check_self_contained(html):
    """Every <img> a PNG data URI, no script, no external reference; returns the page."""
    page = Page(html)
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert all(link.startswith("#") for link in page.links), page.links
    assert "://" not in html  # no URL at all (":" is not a base64 character)
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG)
        from PIL import Image

        Image.open(io.BytesIO(data)).verify()
    return page


def toy_classes(n=150, seed=0):
    """Spectra around H-alpha: absorption, emission or no line."""
    rng = np.random.default_rng(seed)
    wave = np.linspace(6500.0, 6620.0, 120)
    kind = rng.integers(0, 3, n)
    depth = np.array([-0.5, 0.6, 0.0])[kind]
    flux = 1 + depth[:, None] * np.exp(-0.5 * ((wave - 6562.8) / 2.0) ** 2)
    flux += rng.normal(0, 0.02, flux.shape)
    return SpectrumSet(wave=wave, flux=flux, ivar=np.full(flux.shape, 2500.0), classes=kind,
                       class_names=["absorption", "emission", "flat"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A model folder, its evaluation (plots and --json copy) and a prediction run with
    its parts folder and a rejected input: what train, evaluate and predict write."""
    root = tmp_path_factory.mktemp("report")
    train, test = toy_set(n=250).split((0.8, 0.2), seed=0)
    test.meta["snr"] = np.linspace(15.0, 150.0, len(test))  # S/N bins in the evaluation
    test.write(root / "test.h5")
    model = Regressor("shallow-nn", ["a", "b"], model_config={"hidden": [16]}, epochs=3,
                      progress=False, seed=0).fit(train)
    save_model(model, root / "model")
    result = evaluate(model, test, plots=root / "eval")
    (root / "eval" / "results.json").write_text(json.dumps(result, indent=1))
    (root / "notes.fits").write_text("not a FITS file\n")
    run_archive(root / "model", [root / "test.h5", root / "notes.fits"],
                root / "run" / "catalogue.fits", progress=False)
    return root


def test_model_folder_page_shows_config_metrics_and_training_curve(runs, tmp_path):
    out = write_report(runs / "model", tmp_path / "model.html")
    assert out == tmp_path / "model.html" and identify(runs / "model") == "model"
    html = out.read_text()
    page = check_self_contained(html)
    config = json.loads((runs / "model" / "config.json").read_text())
    metrics = json.loads((runs / "model" / "metrics.json").read_text())
    for section in ("provenance", "data", "metrics", "calibration", "training"):
        assert section in page.ids
    for value in ("starlearn.estimators.Regressor", "shallow-nn", "a, b", "model.onnx",
                  config["versions"]["torch"], "256", "5000.00 – 5300.00", "log-uniform"):
        assert value in html, value
    for label in ("a", "b"):
        m, c = metrics["metrics"][label], metrics["calibration"][label]
        for value in (m["bias"], m["sigma"], m["robust_sigma"], c["z_spread"],
                      config["labels"]["max"][config["labels"]["names"].index(label)]):
            assert f">{text(value)}<" in html, (label, value)
    # the training curve from history.csv, and the evaluation plots kept in the folder
    assert "training-curve" in page.ids and len(page.images) == 1
    assert f"({len(read_history(runs / 'model' / 'history.csv'))} epochs)" in html


def test_evaluation_folder_page_has_every_number_and_plot(runs, tmp_path):
    html = write_report(runs / "eval", tmp_path / "eval.html").read_text()
    page = check_self_contained(html)
    result = json.loads((runs / "eval" / "results.json").read_text())
    pngs = sorted(p.name for p in (runs / "eval").glob("*.png"))
    assert pngs and len(page.images) == len(pngs)
    assert all(f"<figcaption>{name}</figcaption>" in html for name in pngs)
    for label in ("a", "b"):
        m, c = result["metrics"][label], result["calibration"][label]
        for value in (m["bias"], m["sigma"], m["robust_sigma"], m["rmse"], c["z_spread"],
                      c["frac_within_1sigma"]):
            assert f">{text(value)}<" in html, (label, value)
    bins = result["metrics"]["snr_bins"]
    assert len(bins) >= 2
    for b in bins:
        assert f"{b['lo']:g} – {b['hi']:g}" in html
        assert f">{text(b['a']['sigma'])}<" in html
    assert f">{result['n_test']}<" in html and f">{result['n_flagged']}<" in html
    # metrics.json and the --json copy hold the same numbers: shown once
    assert html.count("the test spectra</caption>") == 1
    # the JSON file alone: its numbers, not the plots beside it
    alone = write_report(runs / "eval" / "results.json", tmp_path / "json.html").read_text()
    assert f">{text(result['metrics']['a']['sigma'])}<" in alone
    assert "<img" not in alone


def _flag_rows(table, column, bit):
    return int(np.sum((np.asarray(table[column]) & bit) > 0))


def test_prediction_run_page_counts_each_flag_bit(runs, tmp_path):
    catalogue = read_catalogue(runs / "run" / "catalogue.fits")
    plan = json.loads((runs / "run" / "catalogue.fits.parts" / "plan.json").read_text())
    pages = [write_report(src, tmp_path / f"{i}.html").read_text()
             for i, src in enumerate([runs / "run" / "catalogue.fits",
                                      runs / "run" / "catalogue.fits.parts", runs / "run"])]
    flag_tables = [p.split('id="calibration"', 1)[1].split("</table>", 1)[0] for p in pages]
    assert flag_tables[0] == flag_tables[1] == flag_tables[2]  # the same run, three ways
    html = pages[0]
    check_self_contained(html)
    assert "starlearn predict" in html and plan["model_identity"]["weights_sha256"] in html
    assert f">{len(catalogue)}<" in html and "test.h5" in html
    assert "shallow-nn" in html  # the model, found again and checked by SHA-256
    assert all(f"{bit}: {escape(meaning)}" in html for bit, meaning in FLAG_BITS.items())
    for column in ("flags", "a_flag", "b_flag"):
        counts = flag_counts(catalogue)[column]
        assert counts[1] == _flag_rows(catalogue, column, 1)
        assert counts[0] == int(np.sum(np.asarray(catalogue[column]) == 0))
    row = html.split(f"1: {escape(FLAG_BITS[1])}</th>", 1)[1].split("</tr>")[0]
    expected = [_flag_rows(catalogue, c, 1) for c in ("flags", "a_flag", "b_flag")]
    assert row.count("<td") == 3 and all(f">{n}<" in row for n in expected)
    # the rejected input and its reason
    assert "notes.fits" in html and "Rejected inputs" in html
    # the model's held-out calibration comes along
    calibration = json.loads((runs / "model" / "metrics.json").read_text())["calibration"]
    assert f">{text(calibration['a']['z_spread'])}<" in html


def test_an_unfinished_run_shows_its_finished_parts(runs, tmp_path):
    shutil.copytree(runs / "run" / "catalogue.fits.parts", tmp_path / "cat.fits.parts")
    html = write_report(tmp_path / "cat.fits.parts", tmp_path / "r.html").read_text()
    assert "the run did not finish" in html
    n = len(read_catalogue(runs / "run" / "catalogue.fits"))
    assert f"of {n}</caption>" in html


def test_demo_folder_page_compares_the_models(runs, tmp_path):
    """A folder laid out as run_demo writes it (results.json, model-*/, eval-*/, PNGs),
    from a network and The Cannon trained on the toy set (run_demo itself takes minutes)."""
    from matplotlib.figure import Figure

    train, test = toy_set(n=250).split((0.8, 0.2), seed=0)
    demo = tmp_path / "demo"
    results = {}
    for name, estimator in (("shallow-nn", Regressor("shallow-nn", ["a", "b"], epochs=2,
                                                     model_config={"hidden": [8]},
                                                     progress=False)),
                            ("cannon", Cannon(["a", "b"], progress=False))):
        estimator.fit(train)
        estimator.save(demo / f"model-{name}")
        results[name] = evaluate_regressor(estimator, test, output=demo / f"eval-{name}")
        results[name]["train_seconds"] = 1.5
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot(test.wave, test.flux[0])
    fig.savefig(demo / "spectra.png")
    test.write(demo / "test.h5")
    (demo / "results.json").write_text(json.dumps(
        {"n_train": len(train), "n_test": len(test), "labels": ["a", "b"],
         "seconds": {"generate": 0.5, "total": 9.0}, "results": results}))
    html = write_report(demo, tmp_path / "demo.html").read_text()
    page = check_self_contained(html)
    assert identify(demo) == "demo"
    pngs = sorted(demo.rglob("*.png"))
    assert len(pngs) == 3  # spectra.png, eval-*/residuals.png (no teff, logg: no Kiel)
    assert "training-shallow-nn" in page.ids  # the network's curve; The Cannon has none
    assert len(page.images) == len(pngs) + 1
    assert "fitted in closed form" in html
    for r in results.values():
        for label in ("a", "b"):
            assert f">{text(r['metrics'][label]['sigma'])}<" in html
            assert f">{text(r['calibration'][label]['z_spread'])}<" in html
    assert f">{len(train)}<" in html
    assert "data set test.h5" in html and f">{len(test)}<" in html


def test_classifier_and_autoencoder_folders(tmp_path):
    data = toy_classes()
    classifier = Classifier(model_config={"blocks": [[4], [8]], "dense": [16],
                                          "dropout": 0.0}, epochs=2, progress=False,
                            seed=0).fit(data[:120])
    classifier.save(tmp_path / "classifier")
    evaluate(classifier, data[120:], plots=tmp_path / "confusion")  # a PNG, no JSON
    html = write_report(tmp_path / "classifier", tmp_path / "c.html").read_text()
    check_self_contained(html)
    metrics = json.loads((tmp_path / "classifier" / "metrics.json").read_text())
    held_out = html.split('id="metrics"', 1)[1]
    for name, m in metrics["per_class"].items():
        row = held_out.split(f"<th scope=\"row\">{name}</th>", 1)[1].split("</tr>")[0]
        assert all(f">{text(m[k])}<" in row for k in ("precision", "recall", "f1"))
    assert "confusion matrix" in html and "outside the range" not in html
    evaluation = write_report(tmp_path / "confusion", tmp_path / "e.html").read_text()
    assert len(Page(evaluation).images) == 1 and "no JSON results" in evaluation

    train, _ = toy_set(n=150).split((0.8, 0.2), seed=0)
    Autoencoder("dense-ae", 4, epochs=2, progress=False).fit(train).save(tmp_path / "ae")
    html = write_report(tmp_path / "ae", tmp_path / "a.html").read_text()
    ae = json.loads((tmp_path / "ae" / "metrics.json").read_text())
    assert f">{text(ae['recon_rms_median'])}<" in html and "median reconstruction RMS" in html


def test_every_string_from_the_files_is_escaped(runs, tmp_path):
    evil = "<script>alert('x')</script>&\""
    folder = tmp_path / "eval"
    shutil.copytree(runs / "eval", folder)
    result = json.loads((folder / "results.json").read_text())
    result["labels"] = [evil, "b"]
    result["metrics"][evil] = result["metrics"].pop("a")
    result["calibration"][evil] = result["calibration"].pop("a")
    (folder / "results.json").write_text(json.dumps(result))
    (folder / "metrics.json").unlink()
    shutil.copy(folder / "residuals.png", folder / "<b>plot&.png")
    html = write_report(folder, tmp_path / "evil.html").read_text()
    check_self_contained(html)
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;&quot;" in html
    assert "&lt;b&gt;plot&amp;.png" in html

    model = tmp_path / "model"
    shutil.copytree(runs / "model", model)
    config = json.loads((model / "config.json").read_text())
    config["labels"]["names"][0] = evil
    (model / "config.json").write_text(json.dumps(config))
    html = write_report(model, tmp_path / "evil-model.html").read_text()
    assert "<script" not in html and "&lt;script&gt;" in html


def test_unknown_empty_or_missing_sources_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: is empty; expected a model folder"):
        write_report(tmp_path / "empty", tmp_path / "r.html")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    (tmp_path / "other" / "table.csv").write_text("x,y\n1,2\n")  # a table, no flags
    with pytest.raises(ValueError, match=r"other: holds no file a report can be made from; "
                                         r"expected .*prediction run"):
        write_report(tmp_path / "other", tmp_path / "r.html")
    with pytest.raises(ValueError, match=r"notes.txt: not a file a report can be made from"):
        write_report(tmp_path / "other" / "notes.txt", tmp_path / "r.html")
    with pytest.raises(FileNotFoundError, match="nowhere: does not exist"):
        write_report(tmp_path / "nowhere", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_existing_output_is_kept_unless_overwrite_and_a_failure_leaves_it(runs, tmp_path):
    out = tmp_path / "report.html"
    out.write_text("earlier")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_report(runs / "eval", out)
    model = tmp_path / "model"
    shutil.copytree(runs / "model", model)
    (model / "history.csv").write_text("epoch,train_loss\n0,not-a-number\n")
    with pytest.raises(ValueError, match="history.csv: not a training history"):
        write_report(model, out, overwrite=True)
    assert out.read_text() == "earlier"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    write_report(runs / "eval", out, overwrite=True)
    assert out.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(FileNotFoundError):
        write_report(runs / "eval", tmp_path / "missing" / "report.html")


def test_flag_counts_know_each_bit_and_agree_with_the_estimators():
    from starlearn.estimators._labels import (
        FLAG_FAR_FROM_TRAINING,
        FLAG_FAR_OUTSIDE_RANGE,
        FLAG_FEW_GOOD_PIXELS,
        FLAG_OUTSIDE_RANGE,
        FLAG_UNPHYSICAL,
    )
    from starlearn.estimators.classifier import FLAG_RV_ASSUMED

    assert set(FLAG_BITS) == {FLAG_OUTSIDE_RANGE, FLAG_FAR_FROM_TRAINING, FLAG_FEW_GOOD_PIXELS,
                              FLAG_UNPHYSICAL, FLAG_FAR_OUTSIDE_RANGE, FLAG_RV_ASSUMED}
    table = Table({"teff_flag": [0, 1, 3, 4, 8], "flags": [0, 1, 3, 5, 8]})
    counts = flag_counts(table)
    assert counts["teff_flag"] == {0: 1, 1: 2, 2: 1, 4: 1, 8: 1, 16: 0, 32: 0}
    assert counts["flags"] == {0: 1, 1: 3, 2: 1, 4: 1, 8: 1, 16: 0, 32: 0}


def test_grid_summary_names_the_spacing():
    resolution = 100 / np.log(5300.0 / 5000.0)  # 100 equal steps in ln(wavelength)
    assert dict(grid_summary(np.geomspace(5000.0, 5300.0, 101)))["spacing"] == \
        f"log-uniform, λ/Δλ = {resolution:.0f} per pixel"
    assert dict(grid_summary(np.linspace(4000.0, 5000.0, 11)))["spacing"] == \
        "linear, Δλ = 100 Å"
    assert dict(grid_summary([1.0, 2.0, 2.5, 4.0]))["spacing"].startswith("irregular")


def test_training_curve_uses_no_pyplot(tmp_path):
    """Drawn with matplotlib.figure.Figure: pyplot is never imported (its backend and
    global state stay the caller's)."""
    code = ("import sys\nfrom starlearn.jobs.report import training_curve\n"
            "png = training_curve([{'epoch': 0, 'train_loss': 2.0, 'valid_loss': 3.0, "
            "'lr': 1e-3}, {'epoch': 1, 'train_loss': 1.0, 'valid_loss': 1.5, 'lr': 5e-4}])\n"
            "assert png.startswith(b'\\x89PNG')\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    with pytest.raises(ValueError, match="no epoch"):
        training_curve([])
