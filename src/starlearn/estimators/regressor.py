"""Regressor: stellar labels from spectra with a StarNet-family network and honest errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from starlearn.estimators._common import prepare_fit_data, read_rows
from starlearn.estimators._labels import (
    FLAG_FAR_FROM_TRAINING,
    FLAG_FEW_GOOD_PIXELS,
    FLAG_OUTSIDE_RANGE,
    LabelEstimator,
)
from starlearn.estimators._validation import Boolean, Constraint, Integer, OneOf, Real
from starlearn.estimators.base import NetworkEstimator, TrainingPlan
from starlearn.models import model_names
from starlearn.noise import measure_snr, redraw_noise
from starlearn.spectra import SpectrumSet
from starlearn.train.data import FluxScaler, iterate_batches, to_tensor
from starlearn.train.losses import masked_gaussian_nll

__all__ = ["FLAG_FAR_FROM_TRAINING", "FLAG_FEW_GOOD_PIXELS", "FLAG_OUTSIDE_RANGE", "Regressor"]

class Regressor(LabelEstimator, NetworkEstimator):
    """Predict stellar labels (Teff, log g, [Fe/H], abundances) with uncertainties.

    Parameters
    ----------
    model : str
        Network name: ``shallow-nn``, ``deep-nn``, ``shallow-cnn``, ``starnet``,
        ``deep-cnn`` (the StarNet architecture table; any network registered for the
        "regress" task). The Cannon is its own estimator with the same interface:
        :class:`~starlearn.estimators.Cannon`.
    labels : list of str, optional
        Labels to predict; default all labels of the training set. Missing labels (NaN)
        in the training set are allowed: they do not enter the loss.
    model_config : dict, optional
        Overrides of the architecture (e.g. ``{"filters": [8, 32], "dense": [512, 256]}``).
    preprocess : Transform, optional
        A fitted-on-train preprocessing step or Pipeline (e.g. resampling to a grid and
        continuum normalisation) applied to every input; saved with the model.
{training_parameters}
        The best epoch is the one with the lowest mean squared error of the standardised
        label means on the validation set (at most 5,000 spectra held out).
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
    engine : str
        Prediction backend: "torch", "onnx" (ONNX Runtime on the CPU, exported once per
        fitted model) or "auto" (onnx on the CPU when onnxruntime is installed).

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
        (16 draws per spectrum) so that prediction needs no noise draws; None with
        ``mc_samples > 0``.
    valid_metrics_ : dict
        Accuracy on the calibration split and the calibration measured on it out of fold
        (each half's z-scores with the calibration fitted on the other half): an honest
        held-out figure, not 1.00 by construction.
    wave_ : ndarray (n_pixels,)
        The wavelength grid (vacuum Angstrom) the model was trained on.
    history_ : list of dict
        Per-epoch losses.
    """

    _parameter_constraints: ClassVar[dict[str, list[Constraint | type | None]]] = {
        "model": [OneOf(lambda: model_names("regress"))],
        "mask_channel": [Boolean()],
        "augment_noise": [Real(0.0, 1.0, closed="left")],
        "augment_mask": [Real(0.0, 1.0, closed="left")],
        "augment_rv": [Real(0.0)],
        "mc_samples": [Integer(0)],
        "epistemic": [OneOf(("none", "mc-dropout"))],
        "epistemic_samples": [Integer(2)],
    }

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
        if self.model == "cannon":
            raise ValueError("Regressor: The Cannon is its own estimator: use "
                             "starlearn.estimators.Cannon(labels) (the command line's "
                             "--model cannon builds it)")
        super()._validate()

    def _check_params(self) -> None:
        if self.epistemic == "mc-dropout" and not float(
                (self.model_config or {}).get("dropout", 0.0)) > 0:
            raise ValueError("Regressor: epistemic='mc-dropout' needs a network with dropout: "
                             "model_config={'dropout': 0.1} (or more)")

    # ------------------------------------------------------------------ fitting
    def fit(self, train: SpectrumSet | str | PathLike | Any,
            valid: SpectrumSet | str | PathLike | Any = None, *,
            checkpoint: str | PathLike | None = None, callbacks: Any = None) -> Regressor:
        """Train on ``train`` (SpectrumSet, data-set path or open data set); returns self.

        Without ``valid``, ``valid_fraction`` of ``train`` (a seeded random choice) is held
        out for early stopping; ``calib_fraction`` of ``train`` is always held out for
        calibrating the errors (it chooses nothing else). ``checkpoint``: a file where the
        training state is saved after every epoch; when it exists (same settings and data)
        the training resumes from it (see :mod:`starlearn.train.checkpoint`).
        ``callbacks``: training hooks (:mod:`starlearn.train.callbacks`).
        """
        return self._fit(train, valid, checkpoint=checkpoint, callbacks=callbacks)

    def _plan_training(self, train: Any, valid: Any, rng: np.random.Generator,
                       **data: Any) -> TrainingPlan:
        fit_data = prepare_fit_data("Regressor", train, valid, preprocess=self.preprocess,
                                    valid_fraction=self.valid_fraction, rng=rng)
        source, valid_set = fit_data.source, fit_data.valid
        pool = np.arange(len(source)) if fit_data.train_rows is None else fit_data.train_rows
        train_rows, calib_rows = self._calibration_split(pool, rng)
        self.wave_ = fit_data.wave
        label_idx = self._fit_labels(source, train_rows)
        calib_set = read_rows(source, calib_rows)
        scaler_rows = np.sort(rng.choice(train_rows, min(2000, train_rows.size), replace=False))
        self.flux_scaler_ = FluxScaler.fit(read_rows(source, scaler_rows), seed=self.seed)

        def train_batches(epoch: int):
            for batch in iterate_batches(source, batch_size=self.batch_size, shuffle=True,
                                         rng=rng, rows=train_rows):
                yield self._batch(batch, label_idx, rng, augment=True)

        valid_idx = [valid_set.label_names.index(n) for n in self.label_names_]
        valid_batches = [self._batch(b, valid_idx, rng, augment=False)
                         for b in iterate_batches(valid_set, batch_size=256, shuffle=False)]
        return TrainingPlan(
            train_batches, valid_batches, _nll, n_train=train_rows.size,
            outputs={"n_labels": len(self.label_names_)},
            network={**(self.model_config or {}), "in_channels": 2 if self.mask_channel else 1},
            valid_fn=_nll_and_mse,
            state={"source": source, "train_rows": train_rows, "calib": calib_set, "rng": rng})

    def _finish_training(self, plan: TrainingPlan) -> None:
        state = plan.state
        pool = state["train_rows"]
        sample = state["rng"].choice(pool, size=min(2000, pool.size), replace=False)
        self._calibrate(state["calib"], read_rows(state["source"], np.sort(sample)))

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

    def _noise_map_on(self, calib: SpectrumSet) -> np.ndarray | None:
        """How input noise reaches each label, as a smooth function of the labels: the
        spread over noise draws on the calibration spectra (here, once, not at each
        prediction) times their S/N, fitted as exp(quadratic) in the predicted labels
        (None with ``mc_samples > 0``: the draws are made at prediction)."""
        if int(self.mc_samples) > 0:
            return None
        draws = self._predict_arrays(calib, mc_override=_MAP_DRAWS)
        return _fit_noise_map((draws["mean"] - self.label_mean_) / self.label_std_,
                              draws["err_noise"] / draws["inv_snr"][:, None])

    # ------------------------------------------------------------------ prediction
    def _network_input(self, flux: np.ndarray, mask: np.ndarray,
                       ivar: np.ndarray) -> np.ndarray:
        """(n, channels, n_pixels) float32 network input: scaled flux [and bad-pixel mask]."""
        x, bad = self.flux_scaler_.transform(flux, mask, ivar)
        return np.stack([x, bad.astype(np.float32)] if self.mask_channel else [x], axis=1)

    def _input_arrays(self, spectra: SpectrumSet) -> np.ndarray:
        return self._network_input(spectra.flux, spectra.mask, spectra.ivar)

    def _onnx_spec(self) -> tuple[torch.nn.Module, torch.Tensor, list[str]]:
        example = self._example_input(2 if self.mask_channel else 1)
        return _LabelOutputs(self.module_), example, ["mean", "log_var", "features"]

    def _predict_arrays(self, spectra: SpectrumSet, batch_size: int = 256,
                        mc: bool = True, mc_override: int | None = None) -> dict[str, Any]:
        snr = measure_snr(spectra, step=4)  # every 4th pixel: as good a median, 4x faster
        inv_snr = np.divide(1.0, snr, out=np.full(snr.shape, np.nan), where=snr > 0)
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

    # ------------------------------------------------------------------ the model folder
    def _artifact_sections(self) -> dict[str, Any]:
        return {**super()._artifact_sections(),
                "flux_scaler": {"mean": self.flux_scaler_.mean,
                                "scale": self.flux_scaler_.scale}}

    @classmethod
    def _from_artifact(cls, config: Mapping[str, Any], tensors: dict[str, torch.Tensor],
                       path: Path) -> Any:
        if config["network"].get("name") == "cannon":  # saved by Regressor(model="cannon")
            from starlearn.estimators.cannon import Cannon

            return Cannon._from_artifact(config, tensors, path)
        return super()._from_artifact(config, tensors, path)

    def _restore_sections(self, config: Mapping[str, Any]) -> None:
        super()._restore_sections(config)
        scaler = config["flux_scaler"]
        self.flux_scaler_ = FluxScaler(np.asarray(scaler["mean"], np.float32),
                                       float(scaler["scale"]))


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
