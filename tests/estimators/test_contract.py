"""The contract every starlearn estimator keeps (scikit-learn's and the house's): clone,
get/set_params, NotFittedError, fit returns self, declarative parameter checks, callbacks,
the model-folder round trip, sklearn's task tags and ``score``."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError

import starlearn as sl
from starlearn import SpectrumSet
from starlearn.estimators import Autoencoder, Cannon, Classifier, Regressor
from starlearn.train.callbacks import Callback

from ..test_regression import toy_set


def _classes_set(n: int = 240, n_pix: int = 96, seed: int = 0) -> SpectrumSet:
    """Two classes: an absorption or an emission line at the centre, S/N 40."""
    rng = np.random.default_rng(seed)
    wave = np.linspace(6500.0, 6620.0, n_pix)
    y = rng.integers(0, 2, n)
    depth = np.where(y == 0, -0.4, 0.6) * rng.uniform(0.6, 1.0, n)
    flux = 1 + depth[:, None] * np.exp(-0.5 * ((wave - 6562.8) / 2.5) ** 2)
    flux += rng.normal(0, 1 / 40, flux.shape)
    return SpectrumSet(wave=wave, flux=flux, ivar=np.full(flux.shape, 1600.0), classes=y,
                       class_names=["absorption", "emission"])


QUICK = {"epochs": 6, "progress": False, "engine": "torch"}
CASES = {
    "regressor": (lambda: Regressor("shallow-nn", model_config={"hidden": [32]},
                                    **{**QUICK, "epochs": 20}),
                  lambda: toy_set(n=360, n_pix=96)),
    "cannon": (lambda: Cannon(progress=False), lambda: toy_set(n=360, n_pix=96)),
    "classifier": (lambda: Classifier(model_config={"blocks": [[8]], "dense": [16]},
                                      **{**QUICK, "epochs": 30, "lr": 3e-3}),
                   _classes_set),
    "autoencoder": (lambda: Autoencoder("dense-ae", 4, model_config={"hidden": [32, 16, 8]},
                                        epochs=6, progress=False),
                    lambda: toy_set(n=240, n_pix=96)),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    make, data = CASES[request.param]
    spectra = data()
    return request.param, make, spectra, make().fit(spectra)


def test_clone_gives_the_same_parameters_unfitted(case):
    name, make, _, fitted = case
    twin = clone(fitted)
    assert twin.get_params() == make().get_params()
    assert not hasattr(twin, "wave_")
    with pytest.raises(NotFittedError):
        (twin.encode if name == "autoencoder" else twin.predict)(toy_set(n=8, n_pix=96))


def test_set_params_round_trips(case):
    _, make, _, _ = case
    est = make()
    params = est.get_params()
    est.set_params(seed=3)
    assert est.get_params()["seed"] == 3
    est.set_params(**params)
    assert est.get_params() == params


def test_fit_returns_self_and_sets_the_grid(case):
    _, make, spectra, fitted = case
    assert isinstance(fitted, type(make()))
    assert_allclose(fitted.wave_, spectra.wave)
    assert isinstance(fitted.valid_metrics_, dict) and fitted.valid_metrics_


def test_a_bad_parameter_is_refused_by_name_before_any_work(case):
    _, make, spectra, _ = case
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got -1"):
        make().set_params(seed=-1).fit(spectra)


def test_the_model_folder_round_trips_exactly(case, tmp_path):
    name, _, spectra, fitted = case
    fitted.save(tmp_path / "m")
    again = sl.load(tmp_path / "m")
    assert type(again) is type(fitted)
    assert again.get_params().keys() == fitted.get_params().keys()
    if name == "autoencoder":
        assert_allclose(again.encode(spectra[:20]), fitted.encode(spectra[:20]), atol=1e-6)
        assert (tmp_path / "m" / "metrics.json").exists()
        return
    a, b = fitted.predict(spectra[:20]), again.predict(spectra[:20])
    assert a.colnames == b.colnames
    for col in a.colnames:
        if a[col].dtype.kind == "f":
            assert_allclose(np.asarray(b[col]), np.asarray(a[col]), rtol=1e-5, atol=1e-6)
        else:
            assert list(b[col]) == list(a[col])


def test_sklearn_knows_the_task(case):
    name, make, _, _ = case
    assert is_regressor(make()) == (name in ("regressor", "cannon"))
    assert is_classifier(make()) == (name == "classifier")


def test_score_is_higher_for_a_fitted_model_than_for_chance(case):
    name, _, spectra, fitted = case
    if name == "autoencoder":
        pytest.skip("an autoencoder's score() is the per-spectrum odd-spectrum table")
    score = fitted.score(spectra)
    assert isinstance(score, float)
    # R^2 of 0 is predicting the mean; accuracy 0.5 is guessing between two classes
    assert score > (0.5 if name != "classifier" else 0.8)


class _Counter(Callback):
    def __init__(self, stop_after: int | None = None) -> None:
        self.epochs: list[int] = []
        self.began = self.ended = 0
        self.stop_after = stop_after

    def on_train_begin(self, trainer):
        self.began += 1

    def on_epoch_end(self, epoch, row):
        self.epochs.append(epoch)
        assert {"train_loss", "valid_loss", "lr", "seconds"} <= set(row)
        return self.stop_after is not None and len(self.epochs) >= self.stop_after

    def on_train_end(self, history):
        self.ended = len(history)


def test_callbacks_see_every_epoch_and_can_stop_the_training(case):
    name, make, spectra, _ = case
    if name == "cannon":
        pytest.skip("The Cannon's fit is closed-form: no epochs")
    counter = _Counter()
    est = make().fit(spectra, callbacks=[counter])
    assert counter.began == 1 and counter.epochs == list(range(len(est.history_)))
    assert counter.ended == len(est.history_)
    stopper = _Counter(stop_after=2)
    est = make().fit(spectra, callbacks=stopper)
    assert len(est.history_) == 2
    plain = []
    make().fit(spectra, callbacks=lambda epoch, row: plain.append(epoch))
    assert plain
    with pytest.raises(TypeError, match="neither a Callback nor a function"):
        make().fit(spectra, callbacks=[42])


def test_the_cannon_is_no_longer_a_regressor_model():
    with pytest.raises(ValueError, match="starlearn.estimators.Cannon"):
        Regressor("cannon").fit(toy_set(n=40, n_pix=32))


def test_a_model_folder_of_regressor_cannon_still_loads(tmp_path):
    """Folders written by Regressor(model="cannon") before The Cannon had its own class
    (class Regressor, the Regressor's parameters) load as a Cannon."""
    import json

    spectra = toy_set(n=300, n_pix=64)
    cannon = Cannon(progress=False).fit(spectra)
    folder = cannon.save(tmp_path / "c")
    config = json.loads((folder / "config.json").read_text())
    config["class"] = "starlearn.estimators.Regressor"
    config["params"] = {**Regressor("starnet").get_params(), **config["params"],
                        "model": "cannon", "preprocess": None}
    (folder / "config.json").write_text(json.dumps(config))
    again = sl.load(folder)
    assert isinstance(again, Cannon)
    assert_allclose(np.asarray(again.predict(spectra[:10])["a"]),
                    np.asarray(cannon.predict(spectra[:10])["a"]), rtol=1e-6)
