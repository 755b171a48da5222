"""What every label estimator shares (the StarNet-family Regressor and The Cannon): label
standardisation and range, the calibration split, the error calibration, the
far-from-training threshold, the prediction table with flags, ``score`` and the labels'
part of the model folder."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any, ClassVar

import numpy as np
from astropy.table import Table

from starlearn.estimators._common import (
    as_source,
    calibrate_errors,
    calibrated_error,
    novelty_distance,
    novelty_threshold,
    read_rows,
    split_rows,
    too_few_usable,
)
from starlearn.estimators._validation import Constraint, Real
from starlearn.estimators.base import ArtifactEstimator
from starlearn.spectra import SpectrumSet

__all__ = ["FAR_OUTSIDE_MARGIN", "FLAG_FAR_FROM_TRAINING", "FLAG_FAR_OUTSIDE_RANGE",
           "FLAG_FEW_GOOD_PIXELS", "FLAG_OUTSIDE_RANGE", "FLAG_UNPHYSICAL", "LabelEstimator"]

FLAG_OUTSIDE_RANGE = 1
"""Flag bit: the predicted label lies outside the range of the training labels."""
FLAG_FAR_FROM_TRAINING = 2
"""Flag bit: the spectrum is far from the training spectra (network features, or The
Cannon's chi-square)."""
FLAG_FEW_GOOD_PIXELS = 4
"""Flag bit: fewer than ``min_usable`` (half by default) of the model's pixels are usable:
the spectrum is not predicted (NaN)."""
FLAG_UNPHYSICAL = 8
"""Flag bit: the predicted label lies outside the physical range of such labels
(:func:`starlearn.units.physical_range`, e.g. Teff below 2,000 K or above 60,000 K): the
label and its error are NaN."""
FLAG_FAR_OUTSIDE_RANGE = 16
"""Flag bit: the predicted label lies more than :data:`FAR_OUTSIDE_MARGIN` of the training
range's width beyond it (set together with bit 1): an extrapolation, not a measurement;
the label and its error are NaN."""
FAR_OUTSIDE_MARGIN = 0.5
"""How far beyond the training range a prediction is still written (with bit 1), as a
fraction of the range's width (``label_max_ - label_min_``): a model trained on Teff
4,000-7,000 K writes 2,500-8,500 K and masks what lies beyond (bit 16)."""


class LabelEstimator(ArtifactEstimator):
    """Base of the estimators that predict stellar labels with calibrated errors.

    A subclass provides ``_predict_arrays(spectra) -> dict`` with ``mean``, ``err_stat``,
    ``noise``, ``inv_snr``, ``features`` (or None) and ``chi2`` (or None)."""

    _task: ClassVar[str] = "regress"
    _estimator_type = "regressor"  # scikit-learn before 1.6
    _parameter_constraints: ClassVar[dict[str, list[Constraint | type | None]]] = {
        "labels": [list, tuple, None],
        "calib_fraction": [Real(0.0, 0.5, closed="neither")],
        "min_usable": [Real(0.0, 1.0)],
    }

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import RegressorTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags()
        return tags

    # ------------------------------------------------------------------ fitting
    def _calibration_split(self, pool: np.ndarray, rng: np.random.Generator
                           ) -> tuple[np.ndarray, np.ndarray]:
        """(training rows, calibration rows) of ``pool``: ``calib_fraction`` held out for
        the error calibration, at least 200 spectra where the set allows (a quarter of it
        at most)."""
        fraction = max(self.calib_fraction, min(200, pool.size // 4) / max(pool.size, 1))
        rest, calib = split_rows(pool.size, fraction, rng)
        return pool[rest], pool[calib]

    def _fit_labels(self, source: Any, rows: np.ndarray) -> list[int]:
        """Set ``label_names_`` and the labels' mean, spread and range from the training
        ``rows``; returns the labels' columns in ``source``."""
        name = type(self).__name__
        names = list(self.labels) if self.labels else list(source.label_names)
        missing = [n for n in names if n not in source.label_names]
        if not names or missing:
            raise ValueError(f"{name}.fit: labels {missing or names} not in the training "
                             f"set (it has {source.label_names})")
        idx = [source.label_names.index(n) for n in names]
        labels = (source.labels if isinstance(source, SpectrumSet)
                  else source.labels())[:, idx].astype(np.float64)[rows]
        present = np.isfinite(labels)
        if not present.any(axis=0).all():
            empty = [n for n, p in zip(names, present.any(axis=0), strict=True) if not p]
            raise ValueError(f"{name}.fit: no training spectrum has labels {empty}")
        self.label_names_ = names
        self.label_mean_ = np.nanmean(labels, axis=0)
        std = np.nanstd(labels, axis=0)
        self.label_std_ = np.where(std > 0, std, 1.0)
        self.label_min_ = np.nanmin(labels, axis=0)
        self.label_max_ = np.nanmax(labels, axis=0)
        return idx

    def _noise_map_on(self, calib: SpectrumSet) -> np.ndarray | None:
        """How input noise reaches each label (see the Regressor); None: 1/(S/N) alone."""
        return None

    def _calibrate(self, calib: SpectrumSet, train: SpectrumSet | None = None, *,
                   known_features: np.ndarray | None = None) -> np.ndarray | None:
        """Fit the error calibration on ``calib`` (spectra that chose nothing else) and the
        far-from-training check on ``train`` (a sample of training spectra), ``calib``
        and ``known_features`` (features of other spectra the model is meant to know,
        e.g. the unlabelled target spectra of a domain adaptation); measure the
        calibration out of fold (each half with the calibration of the other). Returns
        the network features of ``train`` (None without a network or ``train``)."""
        from starlearn.evaluate.metrics import calibration, regression_metrics

        names = self.label_names_
        idx = [calib.label_names.index(n) for n in names]
        self.noise_map_ = None  # measuring the map predicts without one
        self.noise_map_ = self._noise_map_on(calib)
        pred = self._predict_arrays(calib)
        true = calib.labels[:, idx].astype(np.float64)
        self._set_calibration(calibrate_errors(true, pred["mean"], pred["err_stat"],
                                               pred["noise"]))
        train_features = None
        if pred["features"] is not None and train is not None:
            train_features = self._predict_arrays(train, mc=False)["features"]
            self._fit_novelty(train_features if known_features is None else
                              np.concatenate([train_features, known_features]),
                              pred["features"])
        self.novelty_threshold_ = novelty_threshold(self._novelty(pred))
        self.valid_metrics_ = {
            "metrics": regression_metrics(true, pred["mean"], names),
            "calibration": calibration(true, pred["mean"], _out_of_fold_errors(
                true, pred["mean"], pred["err_stat"], pred["noise"], self.seed), names),
            "calibration_note": ("held out: the calibration split chose neither the weights "
                                 "nor the best epoch; each half's z-scores use the error "
                                 "calibration fitted on the other half")}
        return train_features

    def _set_calibration(self, calibration: dict[str, np.ndarray]) -> None:
        self.error_scale_ = calibration["scale"]
        self.noise_scale_ = calibration["noise_scale"]
        self.scatter_ = calibration["scatter"]

    # ------------------------------------------------------------------ errors and flags
    def _noise_term(self, mean: np.ndarray, inv_snr: np.ndarray) -> np.ndarray:
        """(n, n_labels) first-order noise error at unit scale: 1/(S/N) times the noise
        sensitivity map at the predicted labels (1/(S/N) alone without a map)."""
        q = np.asarray(inv_snr, dtype=np.float64)[:, None]
        noise_map = getattr(self, "noise_map_", None)
        if noise_map is None:
            return np.broadcast_to(q, mean.shape).copy()
        from starlearn.cannon import design_matrix

        x = np.clip((mean - self.label_mean_) / self.label_std_, -4.0, 4.0)
        return q * np.exp(design_matrix(x) @ np.asarray(noise_map))

    def _total_error(self, err_stat: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return calibrated_error({"scale": self.error_scale_, "noise_scale": self.noise_scale_,
                                 "scatter": self.scatter_}, err_stat, noise)

    def _novelty(self, pred: dict[str, Any]) -> np.ndarray:
        """How far each spectrum is from the training data: the Mahalanobis distance of
        the network's last hidden layer, or The Cannon's reduced chi-square."""
        if pred["features"] is None:
            return pred["chi2"]
        return novelty_distance(pred["features"], self.feature_mean_, self.feature_icov_)

    # ------------------------------------------------------------------ prediction
    def predict(self, spectra: SpectrumSet | str | PathLike) -> Table:
        """Labels with errors and flags for each spectrum.

        Returns
        -------
        astropy Table: ``id``; per label ``<label>`` (mean) and ``<label>_err`` (total
        error: the model's statistical error, calibrated with a scale, a noise term in
        1/(S/N) and an intrinsic scatter in quadrature), both with the label's unit
        (:func:`starlearn.units.label_unit`: K, dex, km/s) where starlearn knows it, and
        ``<label>_flag``; ``flags`` (OR of all). Flag bits:

        - 1: outside the range of the training labels (written);
        - 2: far from the training data (network features, or The Cannon's chi-square);
        - 4: fewer than ``min_usable`` of the pixels usable;
        - 8: outside the physical range of the label
          (:func:`starlearn.units.physical_range`);
        - 16: more than :data:`FAR_OUTSIDE_MARGIN` (half) of the training range's width
          beyond it (with bit 1).

        With bit 4, 8 or 16 the label and its error are NaN, not numbers.

        Raises
        ------
        ValueError
            When the spectra are on another wavelength grid than the model's (see
            :meth:`prepare_inputs` for resampling).
        """
        from starlearn.units import label_unit, physical_range

        spectra = self.prepare_inputs(spectra)
        pred = self._predict_arrays(spectra)
        err = self._total_error(pred["err_stat"], pred["noise"])
        far = ~(self._novelty(pred) <= self.novelty_threshold_)
        few = too_few_usable(spectra, self.min_usable)
        table = Table({"id": np.asarray(spectra.ids, dtype=str)})
        overall = np.zeros(len(spectra), dtype=np.int32)
        for j, name in enumerate(self.label_names_):
            value = pred["mean"][:, j]
            low, high = self.label_min_[j], self.label_max_[j]
            margin = FAR_OUTSIDE_MARGIN * (high - low if high > low else self.label_std_[j])
            with np.errstate(invalid="ignore"):
                outside = (value < low) | (value > high)
                beyond = (value < low - margin) | (value > high + margin)
                bounds = physical_range(name)
                unphysical = (np.zeros(len(value), dtype=bool) if bounds is None
                              else (value < bounds[0]) | (value > bounds[1]))
            flag = (np.where(outside, FLAG_OUTSIDE_RANGE, 0)
                    | np.where(far, FLAG_FAR_FROM_TRAINING, 0)
                    | np.where(few, FLAG_FEW_GOOD_PIXELS, 0)
                    | np.where(unphysical & ~few, FLAG_UNPHYSICAL, 0)
                    | np.where(beyond & ~few, FLAG_FAR_OUTSIDE_RANGE, 0))
            masked = few | unphysical | beyond
            unit = label_unit(name)
            table[name] = np.where(masked, np.nan, value).astype(np.float32)
            table[f"{name}_err"] = np.where(masked, np.nan, err[:, j]).astype(np.float32)
            table[name].unit = table[f"{name}_err"].unit = unit
            table[f"{name}_flag"] = flag.astype(np.int32)
            overall |= flag.astype(np.int32)
        table["flags"] = overall
        return table

    def score(self, spectra: SpectrumSet | str | PathLike) -> float:
        """Mean over the labels of the coefficient of determination R^2 of the predicted
        labels against the spectra's own (spectra without a label, or not predicted,
        left out of that label): 1 is perfect, 0 is as good as predicting the mean.
        Higher is better, as scikit-learn's model selection expects."""
        spectra = read_rows(as_source(spectra), None)
        missing = [n for n in self.label_names_ if n not in spectra.label_names]
        if missing:
            raise ValueError(f"{type(self).__name__}.score: the spectra have no labels "
                             f"{missing}")
        table = self.predict(spectra)
        r2 = []
        for name in self.label_names_:
            true = spectra.labels[:, spectra.label_names.index(name)].astype(np.float64)
            pred = np.asarray(table[name], dtype=np.float64)
            ok = np.isfinite(true) & np.isfinite(pred)
            if ok.sum() < 2:
                continue
            total = np.sum((true[ok] - true[ok].mean()) ** 2)
            r2.append(1.0 - np.sum((true[ok] - pred[ok]) ** 2) / total if total > 0
                      else np.nan)
        return float(np.nanmean(r2)) if r2 else float("nan")

    # ------------------------------------------------------------------ the model folder
    def _artifact_sections(self) -> dict[str, Any]:
        return {**super()._artifact_sections(),
                "labels": {"names": self.label_names_, "mean": self.label_mean_,
                           "std": self.label_std_, "min": self.label_min_,
                           "max": self.label_max_, "scatter": self.scatter_,
                           "error_scale": self.error_scale_, "noise_scale": self.noise_scale_,
                           "noise_map": getattr(self, "noise_map_", None)},
                "novelty": {"threshold": self.novelty_threshold_}}  # arrays: in the tensors

    def _restore_sections(self, config: Mapping[str, Any]) -> None:
        super()._restore_sections(config)
        labels = config["labels"]
        self.label_names_ = list(labels["names"])
        for key in ("mean", "std", "min", "max"):
            setattr(self, f"label_{key}_", np.asarray(labels[key], dtype=np.float64))
        self.scatter_ = np.asarray(labels["scatter"], dtype=np.float64)
        self.error_scale_ = np.asarray(labels["error_scale"], dtype=np.float64)
        # artifacts before the S/N term: none (their errors stay as they were calibrated)
        n = len(self.scatter_)
        self.noise_scale_ = np.asarray(labels.get("noise_scale", np.zeros(n)), np.float64)
        noise_map = labels.get("noise_map")
        self.noise_map_ = None if noise_map is None else np.asarray(noise_map, np.float64)


def _out_of_fold_errors(true: np.ndarray, pred: np.ndarray, err_stat: np.ndarray,
                        inv_snr: np.ndarray, seed: int) -> np.ndarray:
    """Calibrated errors of each half of a set with the calibration fitted on the other
    half (two-fold cross-fitting): z-scores from them measure the calibration honestly."""
    n = len(true)
    out = np.full(err_stat.shape, np.nan)
    if n < 10:
        return out
    order = np.random.default_rng([seed, 7]).permutation(n)
    halves = (order[: n // 2], order[n // 2:])
    for fit_on, apply_to in (halves, halves[::-1]):
        calibration = calibrate_errors(true[fit_on], pred[fit_on], err_stat[fit_on],
                                       inv_snr[fit_on])  # noise terms (n, n_labels)
        out[apply_to] = calibrated_error(calibration, err_stat[apply_to], inv_snr[apply_to])
    return out
