"""Radial velocities measured from the line itself (LineWindow(missing_rv="measure"))."""

import numpy as np
import pytest

from starlearn.preprocess import LineWindow
from starlearn.preprocess.doppler import line_velocity
from starlearn.synth import generate


def _shifted(survey: str, n: int, seed: int = 0, **kwargs):
    """Synthetic spectra at radial velocities of -300..300 km/s (the generator's), with the
    velocities returned apart and no velocity column left."""
    spectra = generate(survey, n, seed=seed, rv=(-300.0, 300.0), **kwargs)
    rv = np.asarray(spectra.meta["rv"], dtype=float)
    meta = spectra.meta.copy()
    meta.remove_columns([c for c in meta.colnames if c.startswith("rv")])
    return rv, spectra.replace(meta=meta)


def test_the_line_centroid_gives_the_velocity_of_absorption_and_emission_stars():
    rv, spectra = _shifted("ondrejov-halpha", 60, seed=2, snr=(60, 120),
                          class_fractions=(0.5, 0.3, 0.2))
    good = ~spectra.mask & (spectra.ivar > 0)
    found = line_velocity(spectra.wave, spectra.flux, good, 6564.61)
    assert np.isfinite(found).mean() > 0.9
    ok = np.isfinite(found)
    assert np.median(np.abs(found[ok] - rv[ok])) < 15.0  # km/s, at R 13,000


def test_pure_noise_gives_no_velocity():
    rng = np.random.default_rng(0)
    wave = np.linspace(6480.0, 6650.0, 2000)
    flux = 1.0 + rng.normal(0.0, 0.02, (20, wave.size))
    found = line_velocity(wave, flux, np.ones(flux.shape, bool), 6564.61)
    assert np.isnan(found).mean() > 0.9


def test_a_window_with_a_measured_velocity_matches_the_one_with_the_true_velocity():
    rv, spectra = _shifted("lamost", 12, seed=5, snr=(50, 80),
                           prior={"teff": (5000.0, 8000.0)})
    known = spectra.replace(meta={**{c: spectra.meta[c] for c in spectra.meta.colnames},
                                  "rv": rv})
    window = dict(rv_column="rv", on_missing="mask", continuum="linear")
    truth = LineWindow(**window).transform(known)
    measured = LineWindow(**window, missing_rv="measure").transform(spectra)
    at_rest = LineWindow(**window, missing_rv="rest").transform(spectra)
    got = np.asarray(measured.meta["rv_measured"], dtype=bool)
    assert got.sum() >= 10  # a weak line may give none: at rest, flagged
    assert np.array_equal(np.asarray(measured.meta["rv_assumed"], dtype=bool), ~got)
    assert at_rest.meta["rv_assumed"].all()
    # the window's shift is in rv_removed (its rv column is 0: at rest now)
    shift = np.asarray(measured.meta["rv_removed"])
    assert np.median(np.abs(shift[got] - rv[got])) < 15.0  # km/s; LAMOST pixels are 69
    core = slice(55, 85)  # the line's pixels
    off = np.abs(measured.flux[:, core] - truth.flux[:, core]).mean()
    off_rest = np.abs(at_rest.flux[:, core] - truth.flux[:, core]).mean()
    assert off < 0.3 * off_rest


def test_the_option_is_checked():
    with pytest.raises(ValueError, match="'raise', 'rest' or 'measure'"):
        LineWindow(missing_rv="guess").transform(generate("lamost", 2, seed=0))


def test_the_training_recipe_takes_the_choice():
    from starlearn.jobs.training import build_classifier

    train = generate("ondrejov-halpha", 30, seed=1, class_fractions=(0.4, 0.4, 0.2))
    for choice, expected in ((None, "rest"), ("measure", "measure")):
        settings = {} if choice is None else {"missing_rv": choice}
        clf = build_classifier("vgg1d", train, settings=settings)
        assert clf.preprocess.missing_rv == expected
