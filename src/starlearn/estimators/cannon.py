"""Cannon: The Cannon (Ness et al. 2015) as a starlearn estimator, the baseline StarNet is
compared with, with the same predictions, errors, flags and model folder as the
Regressor."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any, ClassVar

import numpy as np

from starlearn.estimators._common import prepare_fit_data, read_rows, reset_fitted
from starlearn.estimators._labels import LabelEstimator
from starlearn.estimators._validation import Boolean, Constraint, Integer
from starlearn.noise import measure_snr
from starlearn.spectra import SpectrumSet

__all__ = ["Cannon"]


class Cannon(LabelEstimator):
    """Predict stellar labels with The Cannon: each pixel's flux a quadratic polynomial of
    the labels (:class:`starlearn.cannon.CannonModel`), labels by chi-square minimisation,
    errors from its curvature, then calibrated as the Regressor's are.

    Parameters
    ----------
    labels : list of str, optional
        Labels to fit; default all labels of the training set. Training spectra with a
        missing label (NaN) are left out (The Cannon needs complete labels).
    preprocess : Transform, optional
        A preprocessing step or Pipeline (resampling, continuum normalisation: The Cannon
        models normalised flux) fitted on the training set and saved with the model.
    calib_fraction : float
        Share of the training set held out for calibrating the errors (at least 200
        spectra, or a quarter of a smaller set).
    min_usable : float
        Least fraction of usable pixels for a spectrum to be predicted (NaN and flag 4
        below it).
    seed : int
        Seed of the calibration split.
    progress : bool
        Kept for the interface of the other estimators (The Cannon shows no bar).

    Attributes
    ----------
    cannon_ : CannonModel
        The fitted model (theta, scatter, label scaling).
    label_names_, label_mean_, label_std_, label_min_, label_max_, wave_
        As for :class:`~starlearn.estimators.Regressor`.
    error_scale_, noise_scale_, scatter_ : ndarray (n_labels,)
        The error calibration (see :func:`starlearn.estimators._common.calibrate_errors`).
    novelty_threshold_ : float
        Reduced chi-square above which a spectrum is flagged far from the training set.
    valid_metrics_ : dict
        Accuracy and the out-of-fold calibration on the calibration split.
    """

    model: ClassVar[str] = "cannon"
    """The model name the command line and ``compare_models`` use."""
    _parameter_constraints: ClassVar[dict[str, list[Constraint | type | None]]] = {
        "seed": [Integer(0)],
        "progress": [Boolean()],
    }

    def __init__(self, labels: list[str] | None = None, *, preprocess: Any = None,
                 calib_fraction: float = 0.1, min_usable: float = 0.5, seed: int = 0,
                 progress: bool = True) -> None:
        self.labels = labels
        self.preprocess = preprocess
        self.calib_fraction = calib_fraction
        self.min_usable = min_usable
        self.seed = seed
        self.progress = progress

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "cannon_")

    def fit(self, train: SpectrumSet | str | PathLike | Any, valid: Any = None, *,
            checkpoint: str | PathLike | None = None, callbacks: Any = None) -> Cannon:
        """Fit on ``train`` (SpectrumSet, data-set path or open data set); returns self.

        ``calib_fraction`` of ``train`` is held out for the error calibration, unless
        ``valid`` (labelled spectra) is given: then it calibrates the errors. The fit is
        closed-form per pixel: ``checkpoint`` and ``callbacks`` are accepted for the
        interface of the network estimators and not used.
        """
        from starlearn.cannon import CannonModel, complete_rows

        self._validate()
        reset_fitted(self)
        rng = np.random.default_rng(self.seed)
        if valid is None:
            data = prepare_fit_data("Cannon", train, None, preprocess=self.preprocess,
                                    valid_fraction=0.0, rng=rng, hold_out=False)
            pool = np.arange(len(data.source))
            train_rows, calib_rows = self._calibration_split(pool, rng)
            calib = read_rows(data.source, calib_rows)
        else:
            data = prepare_fit_data("Cannon", train, valid, preprocess=self.preprocess,
                                    valid_fraction=0.0, rng=rng)
            train_rows, calib = np.arange(len(data.source)), data.valid
        self.wave_ = data.wave
        idx = self._fit_labels(data.source, train_rows)
        train_set = read_rows(data.source, train_rows)
        rows = complete_rows(train_set, idx)
        if rows.size < 2 * len(idx) ** 2:
            raise ValueError(f"Cannon.fit: only {rows.size} training spectra have all labels "
                             f"{self.label_names_}; The Cannon needs complete labels "
                             f"(at least {2 * len(idx) ** 2})")
        self.cannon_ = CannonModel().fit(train_set.flux[rows], train_set.ivar[rows],
                                         train_set.labels[np.ix_(rows, idx)])
        self.network_config_ = {"name": "cannon", "n_pix": int(self.wave_.size),
                                "n_labels": len(idx)}
        self.history_: list[dict[str, float]] = []
        self._calibrate(calib)
        return self

    def _predict_arrays(self, spectra: SpectrumSet, mc: bool = True) -> dict[str, Any]:
        snr = measure_snr(spectra, step=4)
        inv_snr = np.divide(1.0, snr, out=np.full(snr.shape, np.nan), where=snr > 0)
        out = self.cannon_.infer(spectra.flux, spectra.ivar)
        return {"mean": out["labels"], "err_model": np.zeros_like(out["errors"]),
                "err_noise": out["errors"], "err_stat": out["errors"], "features": None,
                "chi2": out["chi2"], "inv_snr": inv_snr,
                "noise": self._noise_term(out["labels"], inv_snr)}

    def model_flux(self, labels: np.ndarray) -> np.ndarray:
        """The model spectra (n, n_pixels) on ``wave_`` at ``labels`` (n, n_labels) in
        label units, in ``label_names_`` order."""
        return self.cannon_.model_flux(np.atleast_2d(np.asarray(labels, dtype=np.float64)))

    # ------------------------------------------------------------------ the model folder
    def _artifact_tensors(self) -> dict[str, Any]:
        import torch

        return {k: torch.as_tensor(v) for k, v in self.cannon_.state().items()}

    def _restore_state(self, config: Mapping[str, Any], tensors: dict[str, Any]) -> None:
        from starlearn.cannon import CannonModel
        from starlearn.estimators._common import restore_novelty

        self.network_config_ = dict(config["network"])
        tensors = restore_novelty(self, config, tensors)
        self.cannon_ = CannonModel.from_state({k: v.numpy() for k, v in tensors.items()})
        super()._restore_state(config, tensors)

    @classmethod
    def _params_from_saved(cls, params: dict[str, Any]) -> dict[str, Any]:
        """A model folder that ``Regressor(model="cannon")`` wrote (before The Cannon had
        its own estimator) holds the Regressor's parameters: its network-only ones are
        left out (any other unknown one is refused)."""
        import inspect

        from starlearn.estimators.regressor import Regressor

        own = set(inspect.signature(cls).parameters)
        network_only = set(inspect.signature(Regressor).parameters) - own
        return {k: v for k, v in params.items() if k not in network_only}
