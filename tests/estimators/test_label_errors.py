"""Training labels with their own uncertainties (meta ``<label>_err``): the
heteroscedastic label-noise term of the Regressor's loss."""

import math

import numpy as np
import pytest
import torch

from starlearn.estimators import Regressor
from starlearn.train.losses import masked_gaussian_nll
from tests.test_regression import toy_set


def test_the_loss_adds_the_label_variance_to_the_predicted_one():
    mean = torch.tensor([[0.0, 1.0]])
    log_var = torch.log(torch.tensor([[0.5, 2.0]]))
    target = torch.tensor([[1.0, float("nan")]])
    target_var = torch.tensor([[1.5, 7.0]])
    got = masked_gaussian_nll(mean, log_var, target, target_var=target_var)
    v = 0.5 + 1.5  # the missing label counts neither its value nor its variance
    assert got.item() == pytest.approx(0.5 * (math.log(v) + 1.0 / v + math.log(2 * math.pi)))
    # unknown errors (NaN, 0) leave the plain likelihood
    plain = masked_gaussian_nll(mean, log_var, target)
    for unknown in (float("nan"), 0.0):
        same = masked_gaussian_nll(mean, log_var, target,
                                   target_var=torch.tensor([[unknown, unknown]]))
        assert same.item() == pytest.approx(plain.item())


def _noisy_labels(seed: int = 3):
    """Training spectra whose label ``a`` is badly known for 40% of them (off by 0.3 on a
    0-1 range, the catalogue saying ``a_err`` 0.5); the others are known to 0.01."""
    train = toy_set(n=1200, seed=seed)
    rng = np.random.default_rng(seed)
    bad = rng.random(len(train)) < 0.4
    train.labels[bad, 0] += 0.3 + rng.normal(0.0, 0.1, int(bad.sum()))
    train.meta["a_err"] = np.where(bad, 0.5, 0.01)
    return train


def test_label_errors_keep_the_catalogue_noise_out_of_the_predicted_error_and_help():
    train, test = _noisy_labels(), toy_set(n=300, seed=8)
    kwargs = dict(model="shallow-nn", labels=["a", "b"], epochs=30, progress=False,
                  engine="torch", seed=0, model_config={"hidden": [64]})
    used = Regressor(**kwargs).fit(train)
    ignored = Regressor(**kwargs, label_errors=False).fit(train)

    def bias(model):
        return abs(float(np.median(np.asarray(model.predict(test)["a"])
                                   - test.labels[:, 0])))

    # the network's own sigma: without the label errors it must learn the catalogue's
    # offsets of 40 % of the labels; with them it need not
    sigma_used = used._predict_arrays(test, mc=False)["err_model"][:, 0]
    sigma_ignored = ignored._predict_arrays(test, mc=False)["err_model"][:, 0]
    assert np.median(sigma_used) < 0.5 * np.median(sigma_ignored)
    # and the badly known labels pull the labels less: ignoring them gives about the
    # 0.4 * 0.3 = 0.12 offset (measured 0.11), using them 0.07
    assert bias(used) < 0.8 * bias(ignored)


def test_label_errors_change_nothing_without_error_columns():
    train = toy_set(n=300, seed=2)
    kwargs = dict(model="shallow-nn", labels=["a", "b"], epochs=2, progress=False,
                  engine="torch", seed=0, model_config={"hidden": [8]})
    a = Regressor(**kwargs).fit(train).predict(train[:30])
    b = Regressor(**kwargs, label_errors=False).fit(train).predict(train[:30])
    assert np.array_equal(np.asarray(a["a"]), np.asarray(b["a"]))
