"""Sanity run on real spectra: a classifier trained on synthetic Ondřejov-like spectra
classifies the real Ondřejov archive examples (gamma Cas, Vega, HD 208905) and LAMOST
files without error and with the right class where it is known."""

from pathlib import Path

import numpy as np
import pytest

import starlearn as sl
from starlearn.estimators import Classifier
from starlearn.preprocess import LineWindow
from starlearn.synth import generate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fits-samples"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")]


@pytest.fixture(scope="module")
def classifier():
    train = generate("ondrejov-halpha", 700, seed=12, snr=(30, 150),
                     class_fractions=(0.4, 0.4, 0.2))
    return Classifier(preprocess=LineWindow(rv_column=None, on_missing="mask"),
                      model_config={"blocks": [[8, 8], [16, 16]], "dense": [32],
                                    "dropout": 0.0},
                      epochs=30, progress=False, seed=0).fit(train)


@pytest.mark.parametrize(("name", "expected"), [
    ("gamma-cas-emission.fits", {"emission", "double-peak"}),
    ("alpha-lyr-absorption.fits", {"absorption"}),
    # HD 208905 (B1 V, raw counts) has a shallow H-alpha absorption (23 % deep) with
    # telluric lines beside it; the small test model is not sure of it, so only the two
    # clear cases have an expected class
    ("oe270005.fits", {"absorption", "emission", "double-peak"}),
])
def test_real_ondrejov_spectra(classifier, name, expected):
    table = classifier.predict(sl.read(SHARED / "ondrejov" / name))
    assert len(table) == 1 and table["flags"][0] & 4 == 0
    assert table["class"][0] in expected, dict(zip(table.colnames, table[0], strict=True))


def test_real_lamost_spectra_are_classified_or_flagged(classifier):
    for path in sorted((SHARED / "lamost").glob("*.fits"))[:6]:
        table = classifier.predict(sl.read(path))
        proba = np.array([table[f"prob_{c.replace('-', '_')}"][0] for c in classifier.classes_])
        assert np.isfinite(proba).all() and abs(proba.sum() - 1) < 1e-4


# ------------------------------------------------------------------ the training recipe
LAMOST_FOLDERS = ("lamost", "lamost-lrs-dr1", "lamost-lrs-dr8", "lamost-lrs-gz")


def _real_stars(folders):
    """Every spectrum of a star (header CLASS STAR or unknown) in ``folders``."""
    out = []
    for folder in folders:
        for path in sorted((SHARED / folder).glob("*.fit*")):
            s = sl.read(path)
            cls = str(s.meta["class"][0]).strip().upper() if "class" in s.meta.colnames \
                else "STAR"
            if cls in ("STAR", "UNKNOWN"):
                out.append((f"{folder}/{path.name}", s))
    return out


def test_recipe_model_reads_files_without_rv():
    """The ``build_classifier`` recipe trained on a synthetic set (rv column all zeros)
    classifies the Ondřejov files, which carry no radial velocity: at rest, flag 32."""
    from starlearn.estimators.classifier import FLAG_RV_ASSUMED
    from starlearn.jobs.training import build_classifier

    train = generate("ondrejov-halpha", 200, seed=5)
    model = build_classifier("vgg1d", train, settings={
        "model_config": {"blocks": [[8], [8]], "dense": [16]}, "epochs": 1,
        "progress": False}).fit(train)
    for name in ("gamma-cas-emission.fits", "alpha-lyr-absorption.fits", "oe270005.fits"):
        table = model.predict(sl.read(SHARED / "ondrejov" / name))
        assert table["flags"][0] & FLAG_RV_ASSUMED and not table["flags"][0] & 4


@pytest.fixture(scope="module")
def recipe():
    """Models of the default recipe (``build_classifier``, vgg1d defaults) on a default
    synthetic Ondřejov set, capped in size and time: unadapted, and blur-adapted to
    synthetic LAMOST and SDSS (segue) sets."""
    from starlearn.jobs.training import build_classifier

    train = generate("ondrejov-halpha", 2000, seed=0, n_jobs=2)
    settings = {"progress": False, "max_time": 150.0}
    models = {"ondrejov": None, "lamost": generate("lamost", 300, seed=3, n_jobs=2),
              "sdss": generate("segue", 300, seed=4, n_jobs=2)}
    return {k: build_classifier("vgg1d", train, target, settings=settings).fit(train)
            for k, target in models.items()}


@pytest.mark.slow
def test_recipe_classifies_the_real_ondrejov_stars(recipe):
    model = recipe["ondrejov"]
    for name, expected in (("gamma-cas-emission.fits", "emission"),
                           ("alpha-lyr-absorption.fits", "absorption")):
        table = model.predict(sl.read(SHARED / "ondrejov" / name))
        assert table["class"][0] == expected, (name, dict(zip(table.colnames, table[0],
                                                                strict=True)))


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "folders"), [
    pytest.param("lamost", LAMOST_FOLDERS, marks=pytest.mark.xfail(
        reason="22 of 23 with the full recipe (benchmarks/RESULTS.md); this capped "
               "fixture model, and the G5 star at S/N 7.6, may still miss one",
        strict=False)),
    ("sdss", ("sdss-spspec-dr7", "sdss-spec"))])
def test_recipe_calls_every_real_fgka_star_absorption(recipe, kind, folders):
    model = recipe[kind]
    stars = _real_stars(folders)
    assert stars
    wrong = {}
    for name, spectra in stars:
        table = model.predict(spectra)
        if table["class"][0] != "absorption":
            wrong[name] = str(table["class"][0])
    assert not wrong, f"{len(wrong)} of {len(stars)} real stars not absorption: {wrong}"
