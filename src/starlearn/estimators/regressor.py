"""Regressor: stellar labels from spectra with a StarNet-family network and honest errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from astropy.table import Table
from sklearn.utils.validation import check_is_fitted

from starlearn.artifact import write_artifact
from starlearn.estimators._common import (
    SavedEstimator,
    calibrate_errors,
    calibrated_error,
    epoch_callback,
    fit_checkpoint,
    fit_novelty,
    history_csv,
    make_trainer,
    novelty_distance,
    novelty_tensors,
    novelty_threshold,
    params_from_config,
    prepare_fit_data,
    preprocess_to_config,
    read_rows,
    reset_fitted,
    restore_novelty,
    split_rows,
    too_few_usable,
)
from starlearn.infer.engine import ENGINES
from starlearn.models import build_model
from starlearn.noise import measure_snr, redraw_noise
from starlearn.spectra import SpectrumSet
from starlearn.train.data import FluxScaler, iterate_batches, to_tensor
from starlearn.train.losses import masked_gaussian_nll
from starlearn.train.trainer import resolve_device

__all__ = ["FLAG_FAR_FROM_TRAINING", "FLAG_FEW_GOOD_PIXELS", "FLAG_OUTSIDE_RANGE", "Regressor"]

FLAG_OUTSIDE_RANGE = 1
"""Flag bit: the predicted label lies outside the range of the training labels."""
FLAG_FAR_FROM_TRAINING = 2
"""Flag bit: the spectrum's network features are far from those of the training spectra."""
FLAG_FEW_GOOD_PIXELS = 4
"""Flag bit: fewer than ``min_usable`` (half by default) of the model's pixels are usable:
the spectrum is not predicted (NaN)."""


class Regressor(SavedEstimator):
    """Predict stellar labels (Teff, log g, [Fe/H], abundances) with uncertainties.

    Parameters
    ----------
    model : str
        Network name: ``shallow-nn``, ``deep-nn``, ``shallow-cnn``, ``starnet``,
        ``deep-cnn`` (the StarNet architecture table), or ``cannon`` for The Cannon
        (quadratic data-driven model, :mod:`starlearn.cannon`) with the same interface.
    labels : list of str, optional
        Labels to predict; default all labels of the training set. Missing labels (NaN)
        in the training set are allowed: they do not enter the loss.
    model_config : dict, optional
        Overrides of the architecture (e.g. ``{"filters": [8, 32], "dense": [512, 256]}``).
    preprocess : Transform, optional
        A fitted-on-train preprocessing step or Pipeline (e.g. resampling to a grid and
        continuum normalisation) applied to every input; saved with the model.
    epochs, batch_size, lr, weight_decay, optimizer, scheduler, patience, max_time
        Optimisation (``optimizer`` "adam", "adamw", "rmsprop" or "sgd"; ``scheduler``
        "cosine" or "plateau"; the best epoch is the one
        with the lowest mean squared error of the standardised label means on the validation
        set, and training stops after ``patience`` epochs without a better one; ``max_time``
        in seconds).
    valid_fraction : float
        Share of the training set held out for early stopping when ``fit`` gets no
        ``valid`` set (at most 5,000 spectra).
    calib_fraction : float
        Share of the training set held out for calibrating the errors (at least 200
        spectra, or a quarter of a smaller set; at most 5,000): spectra that chose nothing
        else (neither the weights nor the best epoch).
    mask_channel : bool
        Give the bad-pixel mask to the network as a second input channel.
    augment_noise : float
        Probability that a training spectrum gets an extra noise realisation drawn from
        its error spectrum (1/sqrt(ivar)).
    augment_mask : float
        Fraction of pixels masked at random in each training spectrum ("missing data").
    augment_rv : float
        Standard deviation (km/s) of a random Doppler jitter applied by shifting pixels
        (rounded to whole pixels on log-uniform grids).
    mc_samples : int
        Noise realisations per spectrum for propagating the error spectrum at prediction.
        0 (the default): the network's predicted variance, trained on noisy spectra,
        already carries the noise; use > 0 only for a model trained on noiseless spectra,
        whose head cannot have learnt it.
    epistemic : {"none", "mc-dropout"}
        Model uncertainty added to the head's: "mc-dropout" runs ``epistemic_samples``
        passes with dropout on (the network needs ``model_config={"dropout": p}``, p > 0)
        and adds the spread of their means in quadrature.
    epistemic_samples : int
        Passes for ``epistemic="mc-dropout"``.
    min_usable : float
        Least fraction of the model's pixels that must be usable (covered, unmasked, ivar >
        0 after the model's preprocessing) for a spectrum to be predicted; below it the
        spectrum's outputs are NaN and flag 4 (``FLAG_FEW_GOOD_PIXELS``) is set, never
        numbers for pixels the model cannot see. 0.5 by default; settable after loading
        (``model.min_usable = 0.3``) and with ``starlearn predict --min-usable``.
    device : str
        "auto" (CUDA when present), "cpu", "cuda", ...
    engine : str
        Prediction backend: "torch", "onnx" (ONNX Runtime on the CPU, exported once per
        fitted model) or "auto" (onnx on the CPU when onnxruntime is installed).
    seed : int
        Seed of the weights, splits, shuffling and augmentation.
    progress : bool
        Show progress bars.

    Attributes
    ----------
    module_ : torch.nn.Module
    label_names_ : list of str
    label_mean_, label_std_ : ndarray (n_labels,)
        Label standardisation.
    label_min_, label_max_ : ndarray (n_labels,)
        Range of the training labels (predictions outside are flagged).
    error_scale_, noise_scale_, scatter_ : ndarray (n_labels,)
        Error calibration fitted on the calibration split: the reported error is
        ``sqrt((error_scale_ * statistical error)**2 + (noise_scale_ * noise)**2
        + scatter_**2)`` (scatter_ in label units), the statistical error being the head's
        predicted sigma (plus the noise propagation and the epistemic spread where asked)
        and ``noise`` the first-order noise error: 1 / (the spectrum's median S/N per
        pixel) times ``noise_map_`` at the predicted labels; see
        :func:`starlearn.estimators._common.calibrate_errors`.
    noise_map_ : ndarray (n_terms, n_labels) or None
        How input noise reaches each label, ``log(spread over noise draws x S/N)`` as a
        quadratic in the standardised labels, measured once on the calibration split
        (16 draws per spectrum) so that prediction needs no noise draws; None for The
        Cannon (its errors propagate the noise) and with ``mc_samples > 0``.
    valid_metrics_ : dict
        Accuracy on the calibration split and the calibration measured on it out of fold
        (each half's z-scores with the calibration fitted on the other half): an honest
        held-out figure, not 1.00 by construction.
    wave_ : ndarray (n_pixels,)
        The wavelength grid (vacuum Angstrom) the model was trained on.
    history_ : list of dict
        Per-epoch losses.
    """

    def __init__(self, model: str = "starnet", labels: list[str] | None = None, *,
                 model_config: dict[str, Any] | None = None, preprocess: Any = None,
                 epochs: int = 16, batch_size: int = 64, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam",
                 scheduler: str = "cosine", patience: int = 8,
                 max_time: float | None = None, valid_fraction: float = 0.1,
                 calib_fraction: float = 0.1,
                 mask_channel: bool = False, augment_noise: float = 0.0,
                 augment_mask: float = 0.0, augment_rv: float = 0.0, mc_samples: int = 0,
                 epistemic: str = "none", epistemic_samples: int = 8,
                 min_usable: float = 0.5, device: str = "auto", engine: str = "auto",
                 seed: int = 0,
                 progress: bool = True) -> None:
        self.model = model
        self.labels = labels
        self.model_config = model_config
        self.preprocess = preprocess
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.patience = patience
        self.max_time = max_time
        self.valid_fraction = valid_fraction
        self.calib_fraction = calib_fraction
        self.mask_channel = mask_channel
        self.augment_noise = augment_noise
        self.augment_mask = augment_mask
        self.augment_rv = augment_rv
        self.mc_samples = mc_samples
        self.epistemic = epistemic
        self.epistemic_samples = epistemic_samples
        self.min_usable = min_usable
        self.device = device
        self.engine = engine
        self.seed = seed
        self.progress = progress

    # ------------------------------------------------------------------ checks
    def _validate(self) -> None:
        from starlearn.models import model_names

        allowed = [*model_names("regress"), "cannon"]
        if self.model not in allowed:
            raise ValueError(f"Regressor: model must be one of {allowed}, got {self.model!r}")
        for name, low in (("epochs", 1), ("batch_size", 1), ("patience", 1),
                          ("mc_samples", 0), ("epistemic_samples", 2)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"Regressor: {name} must be an integer >= {low}, got {value!r}")
        for name in ("valid_fraction", "augment_noise", "augment_mask"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"Regressor: {name} must be in [0, 1), got {value!r}")
        if not 0.0 < self.calib_fraction < 0.5:
            raise ValueError(f"Regressor: calib_fraction must be in (0, 0.5), got "
                             f"{self.calib_fraction!r}")
        if self.epistemic not in ("none", "mc-dropout"):
            raise ValueError(f"Regressor: epistemic must be 'none' or 'mc-dropout', got "
                             f"{self.epistemic!r}")
        if self.epistemic == "mc-dropout" and (
                self.model == "cannon"
                or not float((self.model_config or {}).get("dropout", 0.0)) > 0):
            raise ValueError("Regressor: epistemic='mc-dropout' needs a network with dropout: "
                             "model_config={'dropout': 0.1} (or more)")
        if self.engine not in ENGINES:
            raise ValueError(f"Regressor: engine must be one of {ENGINES}, got {self.engine!r}")
        if not self.lr > 0:
            raise ValueError(f"Regressor: lr must be > 0, got {self.lr!r}")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_") or hasattr(self, "cannon_")

    # ------------------------------------------------------------------ fitting
    def fit(self, train: SpectrumSet | str | PathLike | Any,
            valid: SpectrumSet | str | PathLike | Any = None, *,
            checkpoint: str | PathLike | None = None) -> Regressor:
        """Train on ``train`` (SpectrumSet, data-set path or open data set); returns self.

        Without ``valid``, ``valid_fraction`` of ``train`` (a seeded random choice) is held
        out for early stopping; ``calib_fraction`` of ``train`` is always held out for
        calibrating the errors (it chooses nothing else). ``checkpoint``: a file where the
        training state is saved after every epoch; when it exists (same settings and data)
        the training resumes from it (see :mod:`starlearn.train.checkpoint`).
        """
        self._validate()
        reset_fitted(self)
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        data = prepare_fit_data("Regressor", train, valid, preprocess=self.preprocess,
                                valid_fraction=self.valid_fraction, rng=rng)
        source, train_rows, valid_set = data.source, data.train_rows, data.valid
        pool = np.arange(len(source)) if train_rows is None else train_rows
        # at least 200 calibration spectra where the set allows (a quarter of it at most)
        fraction = max(self.calib_fraction, min(200, pool.size // 4) / max(pool.size, 1))
        rest, calib_part = split_rows(pool.size, fraction, rng)
        train_rows, calib_rows = pool[rest], pool[calib_part]
        names = list(self.labels) if self.labels else list(source.label_names)
        missing = [n for n in names if n not in source.label_names]
        if not names or missing:
            raise ValueError(f"Regressor.fit: labels {missing or names} not in the training "
                             f"set (it has {source.label_names})")
        label_idx = [source.label_names.index(n) for n in names]
        all_labels = (source.labels if isinstance(source, SpectrumSet)
                      else source.labels())[:, label_idx].astype(np.float64)
        train_labels = all_labels[train_rows]
        present = np.isfinite(train_labels)
        if not present.any(axis=0).all():
            empty = [n for n, p in zip(names, present.any(axis=0), strict=True) if not p]
            raise ValueError(f"Regressor.fit: no training spectrum has labels {empty}")
        self.label_names_ = names
        self.wave_ = data.wave
        self.label_mean_ = np.nanmean(train_labels, axis=0)
        std = np.nanstd(train_labels, axis=0)
        self.label_std_ = np.where(std > 0, std, 1.0)
        self.label_min_ = np.nanmin(train_labels, axis=0)
        self.label_max_ = np.nanmax(train_labels, axis=0)
        calib_set = read_rows(source, calib_rows)
        if self.model == "cannon":
            self._fit_cannon(read_rows(source, train_rows), label_idx, calib_set)
            return self
        pool = train_rows  # the rows the network trains on
        scaler_rows = np.sort(rng.choice(pool, min(2000, pool.size), replace=False))
        self.flux_scaler_ = FluxScaler.fit(read_rows(source, scaler_rows), seed=self.seed)
        self.device_ = resolve_device(self.device)
        config = {**(self.model_config or {}), "in_channels": 2 if self.mask_channel else 1}
        self.network_config_ = {"name": self.model, "n_pix": int(self.wave_.size),
                                "n_labels": len(names), **config}
        self.module_ = build_model(self.model, n_pix=self.wave_.size, n_labels=len(names),
                                   **config)
        self._label_idx = label_idx
        trainer = make_trainer(self, self.module_)

        def train_batches(epoch: int):
            for batch in iterate_batches(source, batch_size=self.batch_size, shuffle=True,
                                         rng=rng, rows=train_rows):
                yield self._batch(batch, label_idx, rng, augment=True)

        valid_tensors = [self._batch(b, [valid_set.label_names.index(n) for n in names],
                                     rng, augment=False)
                         for b in iterate_batches(valid_set, batch_size=256, shuffle=False)]
        self.history_ = trainer.fit(train_batches, lambda: valid_tensors, _nll,
                                    valid_fn=_nll_and_mse, on_epoch=epoch_callback(self),
                                    checkpoint=fit_checkpoint(self, checkpoint, n_train=pool.size,
                                                              wave=self.wave_, rngs=[rng]))
        del self._label_idx
        sample = rng.choice(pool, size=min(2000, pool.size), replace=False)
        self._calibrate(calib_set, read_rows(source, np.sort(sample)))
        return self

    def _fit_cannon(self, train: SpectrumSet, label_idx: list[int],
                    calib: SpectrumSet) -> None:
        from starlearn.cannon import CannonModel, complete_rows

        rows = complete_rows(train, label_idx)
        if rows.size < 2 * len(label_idx) ** 2:
            raise ValueError(f"Regressor(model='cannon'): only {rows.size} training spectra "
                             "have all labels; The Cannon needs complete labels")
        self.cannon_ = CannonModel().fit(train.flux[rows], train.ivar[rows],
                                         train.labels[np.ix_(rows, label_idx)])
        self.network_config_ = {"name": "cannon", "n_pix": int(self.wave_.size),
                                "n_labels": len(label_idx)}
        self.history_ = []
        self._calibrate(calib)

    def _batch(self, spectra: SpectrumSet, label_idx: list[int], rng: np.random.Generator,
               augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        flux, mask = spectra.flux.astype(np.float64), spectra.mask.copy()
        if augment:
            flux, mask = self._augment(flux, mask, spectra.ivar, rng)
        x, bad = self.flux_scaler_.transform(flux, mask, spectra.ivar)
        x = to_tensor(x, bad if self.mask_channel else None, self.device_)
        y = (spectra.labels[:, label_idx] - self.label_mean_) / self.label_std_
        return x, torch.as_tensor(y, dtype=torch.float32, device=self.device_)

    def _augment(self, flux: np.ndarray, mask: np.ndarray, ivar: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.augment_noise > 0:
            flux, _ = redraw_noise(flux, ivar, rng, fraction=self.augment_noise)
        if self.augment_mask > 0:
            mask = mask | (rng.random(mask.shape) < self.augment_mask)
        if self.augment_rv > 0:
            dlog = np.median(np.diff(np.log(self.wave_)))
            shifts = np.rint(rng.normal(0, self.augment_rv, len(flux)) / 299792.458
                             / dlog).astype(int)
            for i, k in enumerate(shifts):
                if k:
                    flux[i] = np.roll(flux[i], k)
                    mask[i] = np.roll(mask[i], k)
                    if k > 0:
                        mask[i, :k] = True  # pixels rolled in from the other end
                    else:
                        mask[i, k:] = True
        return flux, mask

    def _calibrate(self, calib: SpectrumSet, train: SpectrumSet | None = None) -> None:
        """Fit the error calibration on ``calib`` (spectra that chose nothing else) and the
        novelty check on ``train`` (a sample of training spectra) and ``calib``; measure the
        calibration out of fold (each half with the calibration of the other)."""
        names = self.label_names_
        idx = [calib.label_names.index(n) for n in names]
        self.noise_map_ = None
        if hasattr(self, "module_") and int(self.mc_samples) == 0:
            # how input noise reaches each label, as a smooth function of the labels: the
            # spread over noise draws on the calibration spectra (here, once, not at each
            # prediction) times their S/N, fitted as exp(quadratic) in the predicted labels
            draws = self._predict_arrays(calib, mc_override=_MAP_DRAWS)
            self.noise_map_ = _fit_noise_map(
                (draws["mean"] - self.label_mean_) / self.label_std_,
                draws["err_noise"] / draws["inv_snr"][:, None])
        pred = self._predict_arrays(calib)
        true = calib.labels[:, idx].astype(np.float64)
        self._set_calibration(calibrate_errors(true, pred["mean"], pred["err_stat"],
                                               pred["noise"]))
        if pred["features"] is not None and train is not None:
            # feature distribution of (a sample of) the training spectra, shrunk covariance
            self.feature_mean_, self.feature_icov_, _ = fit_novelty(
                self._predict_arrays(train, mc=False)["features"], pred["features"])
        self.novelty_threshold_ = novelty_threshold(self._novelty(pred))
        from starlearn.evaluate.metrics import calibration, regression_metrics

        self.valid_metrics_ = {
            "metrics": regression_metrics(true, pred["mean"], names),
            "calibration": calibration(true, pred["mean"], _out_of_fold_errors(
                true, pred["mean"], pred["err_stat"], pred["noise"], self.seed), names),
            "calibration_note": ("held out: the calibration split chose neither the weights "
                                 "nor the best epoch; each half's z-scores use the error "
                                 "calibration fitted on the other half")}

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

    def _set_calibration(self, calibration: dict[str, np.ndarray]) -> None:
        self.error_scale_ = calibration["scale"]
        self.noise_scale_ = calibration["noise_scale"]
        self.scatter_ = calibration["scatter"]

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
    def _network_input(self, flux: np.ndarray, mask: np.ndarray,
                       ivar: np.ndarray) -> np.ndarray:
        """(n, channels, n_pixels) float32 network input: scaled flux [and bad-pixel mask]."""
        x, bad = self.flux_scaler_.transform(flux, mask, ivar)
        return np.stack([x, bad.astype(np.float32)] if self.mask_channel else [x], axis=1)

    def _network_batch(self, spectra: SpectrumSet) -> np.ndarray:
        spectra = self._prepared_inputs(spectra)
        return self._network_input(spectra.flux, spectra.mask, spectra.ivar)

    def _onnx_spec(self) -> tuple[torch.nn.Module, torch.Tensor, list[str]]:
        n_in = 2 if self.mask_channel else 1
        example = torch.randn(4, n_in, self.wave_.size,
                              generator=torch.Generator().manual_seed(0))
        return _LabelOutputs(self.module_), example, ["mean", "log_var", "features"]

    def _predict_arrays(self, spectra: SpectrumSet, batch_size: int = 256,
                        mc: bool = True, mc_override: int | None = None) -> dict[str, Any]:
        snr = measure_snr(spectra, step=4)  # every 4th pixel: as good a median, 4x faster
        inv_snr = np.divide(1.0, snr, out=np.full(snr.shape, np.nan), where=snr > 0)
        if hasattr(self, "cannon_"):
            out = self.cannon_.infer(spectra.flux, spectra.ivar)
            zeros = np.zeros_like(out["errors"])
            return {"mean": out["labels"], "err_model": zeros, "err_noise": out["errors"],
                    "err_stat": out["errors"], "features": None, "chi2": out["chi2"],
                    "inv_snr": inv_snr, "noise": self._noise_term(out["labels"], inv_snr)}
        rng = np.random.default_rng(self.seed + 1)
        k = (int(self.mc_samples) if mc else 0) if mc_override is None else int(mc_override)
        engine = self._get_engine(work=len(spectra) * (k + 1))
        means, aleatoric, spread, feats = [], [], [], []
        for batch, x in _prefetched(_array_batches(spectra, batch_size),
                                    lambda b: self._network_input(b.flux, b.mask, b.ivar)):
            mean, log_var, features = engine.run(x)
            feats.append(features)
            means.append(mean)
            aleatoric.append(np.exp(0.5 * log_var))
            if k > 0:
                # the input already carries one noise realisation: the spread of the means
                # over K further ones estimates the propagated error spectrum
                # (float64 draws: the same noise stream as earlier versions, so that a saved
                # model gives the same errors)
                n_pix = batch.flux.shape[1]
                noisy = redraw_noise(batch.flux, batch.ivar, rng,
                                     n_draws=k)[0].reshape(-1, n_pix)
                mask = np.broadcast_to(batch.mask, (k, *batch.mask.shape)).reshape(-1, n_pix)
                ivar = np.broadcast_to(batch.ivar, (k, *batch.ivar.shape)).reshape(-1, n_pix)
                mk = engine.run(self._network_input(noisy, mask, ivar))[0]
                spread.append(mk.reshape(k, len(batch.flux), -1).std(axis=0))
        mean = np.concatenate(means) * self.label_std_ + self.label_mean_
        ale = np.concatenate(aleatoric) * self.label_std_
        prop = (np.concatenate(spread) * self.label_std_) if k > 0 else np.zeros_like(ale)
        epi = (self._dropout_spread(spectra, batch_size) * self.label_std_
               if self.epistemic == "mc-dropout" and mc else np.zeros_like(ale))
        return {"mean": mean, "err_model": ale, "err_noise": prop, "err_epistemic": epi,
                "err_stat": np.sqrt(ale**2 + prop**2 + epi**2),
                "features": np.concatenate(feats), "chi2": None, "inv_snr": inv_snr,
                "noise": self._noise_term(mean, inv_snr)}

    def _dropout_spread(self, spectra: SpectrumSet, batch_size: int) -> np.ndarray:
        """Spread (standardised units) of the predicted means over ``epistemic_samples``
        passes with the dropout layers on (MC dropout; torch, seeded)."""
        from torch import nn

        dropouts = [m for m in self.module_.modules() if isinstance(m, nn.Dropout)]
        generator = torch.random.get_rng_state()
        torch.manual_seed(self.seed + 2)
        out = []
        try:
            for m in dropouts:
                m.train()
            with torch.no_grad():
                for batch in _array_batches(spectra, batch_size):
                    x = torch.as_tensor(self._network_input(batch.flux, batch.mask, batch.ivar),
                                        device=self.device_)
                    draws = torch.stack([self.module_(x)[0]
                                         for _ in range(int(self.epistemic_samples))])
                    out.append(draws.std(dim=0).cpu().numpy())
        finally:
            for m in dropouts:
                m.eval()
            torch.random.set_rng_state(generator)
        return np.concatenate(out)

    def predict(self, spectra: SpectrumSet | str | PathLike) -> Table:
        """Labels with errors and flags for each spectrum.

        Returns
        -------
        astropy Table: ``id``; per label ``<label>`` (mean), ``<label>_err`` (total error:
        the network's predicted sigma, plus the propagated error spectrum and the MC-dropout
        spread where asked, calibrated with a scale, a noise term in 1/(S/N) and an
        intrinsic scatter in quadrature),
        ``<label>_flag`` (bits: 1 outside the training range, 2 far from the training
        data, 4 fewer than ``min_usable`` of the pixels usable: then the label and its
        error are NaN); ``flags`` (OR of all).

        Raises
        ------
        ValueError
            When the spectra are on another wavelength grid than the model's.
        """
        spectra = self._prepared_inputs(spectra)
        pred = self._predict_arrays(spectra)
        err = self._total_error(pred["err_stat"], pred["noise"])
        far = ~(self._novelty(pred) <= self.novelty_threshold_)
        few = too_few_usable(spectra, self.min_usable)
        table = Table({"id": np.asarray(spectra.ids, dtype=str)})
        overall = np.zeros(len(spectra), dtype=np.int32)
        for j, name in enumerate(self.label_names_):
            value = pred["mean"][:, j]
            flag = np.where((value < self.label_min_[j]) | (value > self.label_max_[j]),
                            FLAG_OUTSIDE_RANGE, 0)
            flag = flag | np.where(far, FLAG_FAR_FROM_TRAINING, 0) | np.where(
                few, FLAG_FEW_GOOD_PIXELS, 0)
            table[name] = np.where(few, np.nan, value).astype(np.float32)
            table[f"{name}_err"] = np.where(few, np.nan, err[:, j]).astype(np.float32)
            table[f"{name}_flag"] = flag.astype(np.int32)
            overall |= flag.astype(np.int32)
        table["flags"] = overall
        return table

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | PathLike) -> Path:
        """Write the artifact folder (config.json, weights.safetensors, metrics, history)."""
        check_is_fitted(self)
        params = self.get_params(deep=False)
        params["preprocess"] = preprocess_to_config(self.preprocess)
        config = {
            "class": f"{type(self).__module__.rsplit('.', 1)[0]}.{type(self).__name__}",
            "task": "regress", "params": params, "network": self.network_config_,
            "grid": {"wave": self.wave_},
            "labels": {"names": self.label_names_, "mean": self.label_mean_,
                       "std": self.label_std_, "min": self.label_min_,
                       "max": self.label_max_, "scatter": self.scatter_,
                       "error_scale": self.error_scale_, "noise_scale": self.noise_scale_,
                       "noise_map": getattr(self, "noise_map_", None)},
            "flux_scaler": ({"mean": self.flux_scaler_.mean, "scale": self.flux_scaler_.scale}
                            if hasattr(self, "flux_scaler_") else None),
            "novelty": {"threshold": self.novelty_threshold_},  # arrays: in the tensors
            "training": {"epochs_run": len(self.history_),
                         "best_valid_loss": min((h["valid_loss"] for h in self.history_),
                                                default=None),
                         "seconds": self.history_[-1]["seconds"] if self.history_ else 0.0},
        }
        tensors = (self.module_.state_dict() if hasattr(self, "module_") else
                   {k: torch.as_tensor(v) for k, v in self.cannon_.state().items()})
        tensors = {**tensors, **novelty_tensors(self)}
        return write_artifact(path, config=config, tensors=tensors,
                              extra={"metrics.json": self.valid_metrics_,
                                     "history.csv": history_csv(self.history_)})

    @classmethod
    def _from_artifact(cls, config: dict[str, Any], tensors: dict[str, torch.Tensor],
                       path: Path) -> Regressor:
        params = params_from_config(config, path, "regress")
        est = cls(**params)
        net = dict(config["network"])
        name, n_pix, n_labels = net.pop("name"), net.pop("n_pix"), net.pop("n_labels")
        est.network_config_ = config["network"]
        est.device_ = resolve_device(est.device)
        tensors = restore_novelty(est, config, tensors)
        if name == "cannon":
            from starlearn.cannon import CannonModel

            est.cannon_ = CannonModel.from_state({k: v.numpy() for k, v in tensors.items()})
        else:
            est.module_ = build_model(name, n_pix=n_pix, n_labels=n_labels, **net)
            est.module_.load_state_dict(tensors)
            est.module_.eval()
        labels = config["labels"]
        est.label_names_ = list(labels["names"])
        for key in ("mean", "std", "min", "max", "scatter", "error_scale"):
            attr = {"scatter": "scatter_", "error_scale": "error_scale_"}.get(
                key, f"label_{key}_")
            setattr(est, attr, np.asarray(labels[key], dtype=np.float64))
        # artifacts before the S/N term: none (their errors stay as they were calibrated)
        n = len(est.scatter_)
        est.noise_scale_ = np.asarray(labels.get("noise_scale", np.zeros(n)), np.float64)
        noise_map = labels.get("noise_map")
        est.noise_map_ = None if noise_map is None else np.asarray(noise_map, np.float64)
        est.wave_ = np.asarray(config["grid"]["wave"], dtype=np.float64)
        scaler = config.get("flux_scaler")
        if scaler is not None:
            est.flux_scaler_ = FluxScaler(np.asarray(scaler["mean"], np.float32),
                                          float(scaler["scale"]))
        metrics = path / "metrics.json"
        est.valid_metrics_ = json.loads(metrics.read_text()) if metrics.exists() else {}
        est.history_ = []
        return est


class _LabelOutputs(torch.nn.Module):
    """A regression network's mean, log-variance and last hidden layer in one pass (what
    prediction needs: the features feed the far-from-training check)."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.network.embed(x)
        mean, log_var = self.network.head(features)
        return mean, log_var, features


def _nll(module: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    mean, log_var = module(x)
    return masked_gaussian_nll(mean, log_var, y)


def _nll_and_mse(module: torch.nn.Module,
                 batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation loss (Gaussian NLL) and score: the mean squared error of the predicted
    means over the labels present (standardised units), which picks the best epoch and
    drives the schedule. The NLL on held-out data jumps whenever a few spectra get an
    over-confident variance, which stops training early; the accuracy of the means is what
    the StarNet table measures."""
    x, y = batch
    mean, log_var = module(x)
    present = ~torch.isnan(y)
    err = torch.where(present, mean - torch.nan_to_num(y), torch.zeros_like(mean))
    mse = (err**2).sum() / present.sum().clamp(min=1)
    return masked_gaussian_nll(mean, log_var, y, present), mse


class _Rows(NamedTuple):
    flux: np.ndarray
    mask: np.ndarray
    ivar: np.ndarray


def _array_batches(spectra: SpectrumSet, batch_size: int) -> Iterator[_Rows]:
    """Consecutive row blocks of an in-memory set's arrays (views: no copies and none of
    the checks a new SpectrumSet would repeat)."""
    for start in range(0, len(spectra), batch_size):
        rows = slice(start, start + batch_size)
        yield _Rows(spectra.flux[rows], spectra.mask[rows], spectra.ivar[rows])


def _prefetched(items: Iterator[Any], prepare: Any) -> Iterator[tuple[Any, Any]]:
    """(item, prepare(item)) pairs, preparing the next item in a thread while the caller
    works on the current one (numpy and the inference engines release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        item = next(items, None)
        pending = pool.submit(prepare, item) if item is not None else None
        while pending is not None:
            current, ready = item, pending.result()
            item = next(items, None)
            pending = pool.submit(prepare, item) if item is not None else None
            yield current, ready


_MAP_DRAWS = 16
"""Noise draws per calibration spectrum for the noise sensitivity map (at fit time only)."""


def _fit_noise_map(x: np.ndarray, sensitivity: np.ndarray) -> np.ndarray | None:
    """Coefficients (n_terms, n_labels) of ``log(sensitivity) = design_matrix(x) @ coef``
    (quadratic in the standardised labels ``x``, ridge-regularised least squares), the
    sensitivity being a label's spread over noise draws times the spectrum's S/N."""
    from starlearn.cannon import design_matrix

    ok = np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(sensitivity) & (sensitivity > 0),
                                                 axis=1)
    if ok.sum() < 20:
        return None
    v = design_matrix(np.clip(x[ok], -4.0, 4.0))
    a = v.T @ v + 1e-3 * len(v) * np.eye(v.shape[1])
    return np.linalg.solve(a, v.T @ np.log(sensitivity[ok]))


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
