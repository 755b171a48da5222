"""Domain adaptation and few-shot fine-tuning of the Regressor on toy domains: the target
has a continuum slope (and, for noise matching, a lower S/N and a masked block) the
labelled source lacks."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from starlearn import SpectrumSet
from starlearn.estimators import Regressor
from starlearn.evaluate.transfer import (
    coral_distance,
    domain_distance,
    mmd_distance,
    plot_bias_vs_label,
    plot_feature_maps,
    residual_spectra,
)

N_PIX = 96
QUICK = {"model_config": {"hidden": [32]}, "epochs": 12, "progress": False,
         "engine": "torch", "seed": 0}


def toy(n: int, *, slope: float = 0.0, snr: float = 80.0, seed: int = 0,
        masked: slice | None = None) -> SpectrumSet:
    """Line depths set by labels a (three lines) and b (one line); ``slope`` tilts the
    continuum (fractional change across the window)."""
    rng = np.random.default_rng(seed)
    wave = np.geomspace(5000.0, 5300.0, N_PIX)
    a, b = rng.uniform(0, 1, n), rng.uniform(-1, 1, n)
    flux = np.ones((n, N_PIX))
    for centre, width in ((5040.0, 3.0), (5120.0, 3.5), (5250.0, 4.0)):
        flux -= (0.2 + 0.5 * a)[:, None] * np.exp(-0.5 * ((wave - centre) / width) ** 2)
    flux -= (0.15 * (b + 1))[:, None] * np.exp(-0.5 * ((wave - 5180.0) / 3.0) ** 2)
    flux *= 1 + slope * (wave - 5150.0)[None] / 150.0
    flux += rng.normal(0, 1 / snr, flux.shape)
    mask = np.zeros(flux.shape, dtype=bool)
    if masked is not None:
        mask[:, masked] = True
    return SpectrumSet(wave=wave, flux=flux, ivar=np.full(flux.shape, snr**2), mask=mask,
                       labels=np.c_[a, b], label_names=["a", "b"],
                       meta={"snr": np.full(n, snr)})


@pytest.fixture(scope="module")
def domains():
    return {"source": toy(400, seed=0), "target": toy(200, slope=0.15, seed=1),
            "test": toy(150, slope=0.15, seed=2)}


@pytest.fixture(scope="module")
def fitted(domains):
    out = {}
    for method in ("none", "coral", "mmd", "adversarial", "cycle", "match+coral"):
        extra = {"cycle_epochs": 8, "cycle_hidden": 32, "cycle_latent": 8}
        out[method] = Regressor("shallow-nn", adapt=method, **QUICK, **extra).fit(
            domains["source"], target=domains["target"])
    return out


def rms(model, test) -> float:
    table = model.predict(test)
    return float(np.sqrt(np.nanmean([(np.asarray(table[n]) - test.label(n)) ** 2
                                  for n in ("a", "b")])))


@pytest.mark.parametrize("method", ["none", "coral", "mmd", "adversarial", "cycle",
                                    "match+coral"])
def test_each_method_trains_and_predicts(fitted, domains, method):
    model = fitted[method]
    assert model.adapt_ == method
    table = model.predict(domains["test"])
    assert np.all(np.isfinite(np.asarray(table["a"])))
    domain = model.valid_metrics_["domain"]
    assert domain["method"] == method and 0.0 <= domain["auc"] <= 1.0


def test_feature_alignment_shrinks_the_domain_distance(fitted):
    none = fitted["none"].valid_metrics_["domain"]
    assert fitted["mmd"].valid_metrics_["domain"]["mmd"] < 0.5 * none["mmd"]
    assert fitted["coral"].valid_metrics_["domain"]["coral"] < none["coral"]


def test_adaptation_reduces_the_target_error_on_a_slope_gap(fitted, domains):
    # the continuum slope moves the label-b line; aligned features keep it off the labels
    baseline = rms(fitted["none"], domains["test"])
    assert min(rms(fitted[m], domains["test"]) for m in ("coral", "mmd", "adversarial")) \
        < baseline


def test_match_takes_the_target_mask_and_noise():
    from starlearn.estimators._regressor_training import _TargetPool

    source = toy(300, snr=200.0, seed=3)
    target = toy(150, snr=15.0, seed=4, masked=slice(10, 20))
    test = toy(150, snr=15.0, seed=5, masked=slice(10, 20))
    flux, mask, ivar = _TargetPool.of(target).match(source.flux, source.mask, source.ivar,
                                                    np.random.default_rng(0))
    assert mask[:, 10:20].all() and not mask[:, 30:].any()
    np.testing.assert_allclose(np.sqrt(ivar[:, 30:]), 15.0, rtol=0.05)
    assert 0.8 / 15 < np.std(flux - source.flux) < 1.2 / 15
    none = Regressor("shallow-nn", adapt="none", **QUICK).fit(source, target=target)
    match = Regressor("shallow-nn", adapt="match", **QUICK).fit(source, target=target)
    assert match._target_pool is None  # dropped after the fit
    assert rms(match, test) < 1.2 * rms(none, test)


def test_a_method_without_target_is_refused(domains):
    with pytest.raises(ValueError, match="target"):
        Regressor("shallow-nn", adapt="coral", **QUICK).fit(domains["source"])
    with pytest.raises(ValueError, match="adapt"):
        Regressor("shallow-nn", adapt="dann", **QUICK).fit(domains["source"])
    # auto without a target: no adaptation
    assert Regressor("shallow-nn", **QUICK).fit(domains["source"]).adapt_ == "none"


def test_target_on_another_grid_is_refused(domains):
    other = domains["target"].replace(wave=domains["target"].wave * 1.01)
    with pytest.raises(ValueError, match="target spectra are on another wavelength grid"):
        Regressor("shallow-nn", adapt="coral", **QUICK).fit(domains["source"], target=other)


@pytest.mark.parametrize("method", ["cycle", "adversarial"])
def test_adapted_model_round_trips(fitted, domains, tmp_path, method):
    model = fitted[method]
    model.save(tmp_path / method)
    loaded = Regressor.load(tmp_path / method)
    assert loaded.adapt_ == method
    assert (loaded.translator_ is not None) == (method == "cycle")
    a, b = model.predict(domains["test"]), loaded.predict(domains["test"])
    for col in ("a", "a_err", "b", "flags"):
        np.testing.assert_allclose(np.asarray(a[col]), np.asarray(b[col]), rtol=1e-5,
                                   atol=1e-6)


def test_far_flag_knows_the_target(fitted, domains):
    # the model was shown these (unlabelled) spectra: they are not far from what it knows
    flags = np.asarray(fitted["coral"].predict(domains["target"])["flags"])
    assert np.mean((flags & 2) > 0) < 0.05


def test_fine_tune_improves_on_the_few_and_refuses_another_grid(fitted, domains, tmp_path):
    fitted["none"].save(tmp_path / "pre")
    pre = Regressor.load(tmp_path / "pre")
    tuned = Regressor.load(tmp_path / "pre")
    few = toy(100, slope=0.15, seed=6)
    tuned.fine_tune(few, epochs=30)
    assert rms(tuned, domains["test"]) < rms(pre, domains["test"])
    info = tuned.valid_metrics_["fine_tune"]
    assert info["n_calib"] >= 25 and info["frozen_parameters"] >= 0
    assert tuned.label_mean_ == pytest.approx(pre.label_mean_)
    tuned.save(tmp_path / "tuned")
    assert Regressor.load(tmp_path / "tuned").fine_tune_["n_spectra"] == 100
    with pytest.raises(ValueError, match="another wavelength grid"):
        pre.fine_tune(few.replace(wave=few.wave * 1.01))
    with pytest.raises(ValueError, match="labels"):
        pre.fine_tune(few.replace(labels=few.labels[:, :1], label_names=["a"]))


def test_distances_and_figures(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(150, 4)), rng.normal(size=(150, 4))
    assert mmd_distance(a, b + 1) > mmd_distance(a, b)
    assert coral_distance(a, b * 2) > coral_distance(a, b)
    d = domain_distance(a, b + 1)
    assert d["auc"] > 0.8 and d["n_source"] == 150
    plot_feature_maps({"m": {"source": a, "target": b}}, tmp_path / "map.png")
    plot_bias_vs_label(a[:, :2], {"m": a[:, :2] + 0.1}, ["teff", "logg"], tmp_path / "b.png")
    resid, counts = residual_spectra(a + 1, np.ones_like(a, bool), a, a[:, 0], (-3, 0, 3))
    assert resid.shape == (2, 4) and counts.sum() == 150
    assert (tmp_path / "map.png").exists() and (tmp_path / "b.png").exists()


def test_cli_adapt_and_init(domains, tmp_path):
    from starlearn.cli import main

    domains["source"].write(tmp_path / "source.h5")
    domains["target"].write(tmp_path / "target.h5")
    toy(60, slope=0.15, seed=7).write(tmp_path / "few.h5")

    def run(*args, code=0):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == code, result.output + repr(result.exception)
        return result.output

    out = run("train", "--task", "regress", "--model", "shallow-nn", "--data",
              tmp_path / "source.h5", "--adapt-to", tmp_path / "target.h5", "--adapt", "mmd",
              "--epochs", "6", "--param", "model_config={hidden = [16]}", "-o",
              tmp_path / "model", "--quiet")
    assert "adapted to" in out and "(mmd)" in out and "domain AUC" in out
    out = run("train", "--init", tmp_path / "model", "--data", tmp_path / "few.h5",
              "--epochs", "6", "-o", tmp_path / "tuned", "--quiet")
    assert "fine-tuned" in out and "z spread" in out
    out = run("train", "--task", "regress", "--data", tmp_path / "source.h5", "--adapt",
              "coral", "-o", tmp_path / "x", code=1)
    assert "--adapt-to" in out
    out = run("train", "--init", tmp_path / "model", "--data", tmp_path / "few.h5",
              "--adapt-to", tmp_path / "target.h5", "-o", tmp_path / "y", code=2)
    assert "only --epochs and --lr" in out
