"""Helpers shared by the estimators: inputs, grid checks, splits, error calibration."""

from __future__ import annotations

import io
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from starlearn.io.dataset import DatasetStore, open_dataset
from starlearn.spectra import SpectrumSet

if TYPE_CHECKING:
    import torch

__all__ = [
    "FitData",
    "as_source",
    "calibrate_errors",
    "check_grid",
    "fit_checkpoint",
    "fit_novelty",
    "history_csv",
    "make_trainer",
    "novelty_distance",
    "novelty_threshold",
    "params_from_config",
    "prepare_fit_data",
    "preprocess_from_config",
    "preprocess_to_config",
    "read_rows",
    "reset_fitted",
    "split_rows",
]


def as_source(data: SpectrumSet | DatasetStore | str | PathLike) -> SpectrumSet | DatasetStore:
    """A SpectrumSet or a lazily read data set from a SpectrumSet, store or file path."""
    if isinstance(data, (SpectrumSet, DatasetStore)):
        return data
    if isinstance(data, (str, PathLike)):
        return open_dataset(data)
    raise TypeError(f"expected a SpectrumSet or a data-set path, got {type(data).__name__}")


def read_rows(source: SpectrumSet | DatasetStore, rows: np.ndarray | None) -> SpectrumSet:
    """The selected rows (all when None) in memory."""
    if isinstance(source, SpectrumSet):
        return source if rows is None else source[np.asarray(rows)]
    return source.read(None if rows is None else np.sort(np.asarray(rows)))


def too_few_usable(spectra: SpectrumSet, min_usable: float) -> np.ndarray:
    """(n,) bool: spectra with fewer than ``min_usable`` of their pixels usable (the mask
    after the model's preprocessing: not covered, flagged, non-finite or ivar = 0), which
    an estimator must not predict."""
    if not 0.0 <= float(min_usable) <= 1.0:
        raise ValueError(f"min_usable must be in [0, 1], got {min_usable!r}")
    return (~spectra.mask).mean(axis=1) < float(min_usable)


MAX_VALID = 5000
"""Most spectra held out for validation (it is kept in memory)."""


def split_rows(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Seeded random split of ``range(n)`` into (train rows, validation rows).

    The validation part is ``fraction`` of ``n``, at least 2 and at most
    :data:`MAX_VALID` spectra.
    """
    if n < 4:
        raise ValueError(f"need at least 4 training spectra to hold out a validation set, "
                         f"got {n}")
    n_valid = int(np.clip(round(n * fraction), 2, min(n - 2, MAX_VALID)))
    perm = rng.permutation(n)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


def check_grid(spectra: SpectrumSet, wave: np.ndarray, what: str) -> None:
    """Raise a clear error when ``spectra`` are not on the model's wavelength grid."""
    ok = spectra.shared_wave and spectra.wave.shape == wave.shape and np.allclose(
        spectra.wave, wave, rtol=1e-7, atol=0)
    if not ok:
        got = (f"{spectra.n_pix} pixels, {float(np.min(spectra.wave)):.1f}-"
               f"{float(np.max(spectra.wave)):.1f} A"
               + ("" if spectra.shared_wave else ", per-spectrum wavelengths"))
        raise ValueError(f"{what} are on another wavelength grid ({got}) than the model "
                         f"({wave.size} pixels, {wave[0]:.1f}-{wave[-1]:.1f} A); resample "
                         "them first, e.g. starlearn.preprocess.Resample(grid=...), or give "
                         "the model a preprocess step")


CALIBRATION_FORMS: tuple[tuple[str, ...], ...] = (
    ("scale",), ("scatter",), ("scale", "scatter"), ("noise",), ("scale", "noise"),
    ("noise", "scatter"), ("scale", "noise", "scatter"))
"""The error models :func:`calibrate_errors` compares (terms added in quadrature)."""


def calibrate_errors(true: np.ndarray, pred: np.ndarray, err: np.ndarray,
                     noise: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-label error model fitted on a held-out set: a scale, a noise term, a scatter.

    The calibrated error is ``sqrt((scale * err)**2 + (noise_scale * noise)**2
    + scatter**2)``: the statistical error ``err`` (e.g. a network's predicted sigma)
    scaled, the first-order propagation of the input noise ``noise`` (1 / (S/N) times how
    sensitive the label is to noise: it gives the error the dependence on S/N that a
    predicted sigma may not have learnt) scaled, and an intrinsic scatter. Every
    combination of the three terms (:data:`CALIBRATION_FORMS`) is fitted by maximum
    likelihood of Gaussian residuals (residuals beyond 4 sigma left out, three rounds)
    and scaled so that the z-scores have unit spread (the biweight
    scale, :func:`starlearn.evaluate.metrics.z_spread`); the form with the lowest
    Akaike criterion is kept, so that a term enters only where the data ask for it.

    Parameters
    ----------
    true, pred, err : arrays (n, n_labels)
    noise : array (n,) or (n, n_labels), optional
        The first-order noise error of each spectrum (label units up to the fitted
        factor), e.g. 1 / (median S/N per pixel); without it no noise term is used.

    Returns
    -------
    dict of (n_labels,) arrays ``scale``, ``noise_scale``, ``scatter`` (label units).
    """
    from scipy.optimize import minimize

    from starlearn.evaluate.metrics import robust_sigma, z_spread

    n_labels = true.shape[1]
    out = {"scale": np.ones(n_labels), "noise_scale": np.zeros(n_labels),
           "scatter": np.zeros(n_labels)}
    for j in range(n_labels):
        ok = np.isfinite(true[:, j]) & np.isfinite(pred[:, j]) & np.isfinite(err[:, j])
        if noise is None:
            q = np.zeros(int(ok.sum()))
        else:
            qa = np.asarray(noise, dtype=np.float64)
            q = (qa[:, j] if qa.ndim == 2 else qa)[ok]
        use = np.isfinite(q) & (q >= 0)
        r, e, q = (pred[ok, j] - true[ok, j])[use], np.maximum(err[ok, j], 1e-12)[use], q[use]
        if r.size < 5:
            continue
        level = float(robust_sigma(r)) + 1e-30
        q_level = float(np.median(q[q > 0])) if np.any(q > 0) else 0.0
        r, e, qn = r / level, e / level, (q / q_level if q_level > 0 else q)
        best = None
        for form in CALIBRATION_FORMS:
            if "noise" in form and q_level == 0:
                continue
            params = _fit_form(form, r, e, qn, minimize)
            total = _form_sigma(params, e, qn)
            spread = z_spread(r / total)
            if np.isfinite(spread) and spread > 0:
                params = {k: v * spread for k, v in params.items()}
                total = total * spread
            inside = np.abs(r) < 4 * total
            aic = float(np.sum(np.log(total[inside] ** 2) + (r[inside] / total[inside]) ** 2)
                        + 16.0 * np.sum(~inside) + 2 * len(form))
            if best is None or aic < best[0]:
                best = (aic, params)
        params = best[1]
        out["scale"][j] = params.get("scale", 0.0)
        out["noise_scale"][j] = params.get("noise", 0.0) * level / (q_level or 1.0)
        out["scatter"][j] = params.get("scatter", 0.0) * level
    return out


def _form_sigma(params: dict[str, float], e: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sqrt((params.get("scale", 0.0) * e) ** 2 + (params.get("noise", 0.0) * q) ** 2
                   + params.get("scatter", 0.0) ** 2)


def _fit_form(form: tuple[str, ...], r: np.ndarray, e: np.ndarray, q: np.ndarray,
              minimize: Any) -> dict[str, float]:
    """Maximum-likelihood coefficients of one error form (log-parametrised, clipped)."""
    keep = np.ones(r.size, bool)
    theta = np.zeros(len(form)) + np.log(0.5)

    def params(t: np.ndarray) -> dict[str, float]:
        return {k: float(np.exp(v)) for k, v in zip(form, t, strict=True)}

    def nll(t: np.ndarray) -> float:
        v = _form_sigma(params(t), e[keep], q[keep]) ** 2 + 1e-300
        return float(np.sum(np.log(v) + r[keep] ** 2 / v))

    for _ in range(3):
        theta = minimize(nll, theta, method="Nelder-Mead",
                         options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000}).x
        keep = np.abs(r) < 4 * _form_sigma(params(theta), e, q)
        if keep.sum() < 5:
            keep[:] = True
    return params(theta)


def calibrated_error(calibration: dict[str, np.ndarray], err: np.ndarray,
                     noise: np.ndarray) -> np.ndarray:
    """The calibrated errors (n, n_labels) of :func:`calibrate_errors` for statistical
    errors ``err`` (n, n_labels) and noise terms ``noise`` (n,) or (n, n_labels) (NaN:
    infinite error where the noise term is used)."""
    q = np.nan_to_num(np.asarray(noise, dtype=np.float64), nan=np.inf)
    q = q[:, None] if q.ndim == 1 else q
    g = np.asarray(calibration["noise_scale"], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        noise_term = np.where(g > 0, g * q, 0.0)
    return np.sqrt((calibration["scale"] * err) ** 2 + noise_term**2
                   + calibration["scatter"] ** 2)


def novelty_distance(features: np.ndarray, mean: np.ndarray, icov: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of each row of ``features`` from the training distribution."""
    diff = features - mean
    return np.sqrt(np.maximum(((diff @ icov) * diff).sum(axis=1), 0))


def novelty_threshold(distances: np.ndarray) -> float:
    """Flag threshold: 1.5 times the 99.5th percentile of held-out distances."""
    d = distances[np.isfinite(distances)]
    return float(np.quantile(d, 0.995) * 1.5) if d.size else np.inf


NOVELTY_PREFIX = "novelty."
"""Names of the far-from-training statistics in weights.safetensors (not network weights)."""


def novelty_tensors(est: Any) -> dict[str, torch.Tensor]:
    """The feature mean and inverse covariance of ``est`` (when it has them) as tensors
    for the artifact's safetensors file: exact, and 2 MB of floats kept out of
    config.json (whose parsing dominated loading a classifier)."""
    import torch

    if not hasattr(est, "feature_mean_"):
        return {}
    return {f"{NOVELTY_PREFIX}mean": torch.as_tensor(np.asarray(est.feature_mean_)),
            f"{NOVELTY_PREFIX}icov": torch.as_tensor(np.asarray(est.feature_icov_))}


def restore_novelty(est: Any, config: dict[str, Any],
                    tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Set ``est``'s novelty threshold, mean and inverse covariance from an artifact (the
    arrays from the tensors, or from config.json as artifacts before 2026-12 kept them);
    returns the tensors without them (the network's weights)."""
    novelty = config["novelty"]
    est.novelty_threshold_ = float(novelty["threshold"])
    mean, icov = f"{NOVELTY_PREFIX}mean", f"{NOVELTY_PREFIX}icov"
    if mean in tensors:
        est.feature_mean_ = tensors[mean].numpy()
        est.feature_icov_ = tensors[icov].numpy()
    elif "mean" in novelty:
        est.feature_mean_ = np.asarray(novelty["mean"])
        est.feature_icov_ = np.asarray(novelty["icov"])
    return {k: v for k, v in tensors.items() if not k.startswith(NOVELTY_PREFIX)}


def fit_novelty(train_features: np.ndarray,
                valid_features: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, inverse covariance, threshold) of the far-from-training check: a shrunk
    (Ledoit-Wolf) covariance of the training features, the threshold from the validation
    features (:func:`novelty_threshold`)."""
    from sklearn.covariance import LedoitWolf

    shrunk = LedoitWolf().fit(train_features)
    d = novelty_distance(valid_features, shrunk.location_, shrunk.precision_)
    return shrunk.location_, shrunk.precision_, novelty_threshold(d)


def history_csv(history: list[dict[str, float]]) -> str:
    """The training history as CSV text."""
    if not history:
        return ""
    buffer = io.StringIO()
    keys = list(history[0])
    buffer.write(",".join(keys) + "\n")
    for row in history:
        buffer.write(",".join(f"{row[k]:.6g}" for k in keys) + "\n")
    return buffer.getvalue()


def preprocess_to_config(step: Any) -> dict[str, Any] | None:
    """A preprocessing Transform as its JSON dictionary (None stays None)."""
    return None if step is None else step.to_dict()


def preprocess_from_config(config: dict[str, Any] | None) -> Any:
    """Rebuild a preprocessing Transform (fitted state included) from its dictionary."""
    if config is None:
        return None
    from starlearn.preprocess import transform_from_dict

    return transform_from_dict(config)


@dataclass
class FitData:
    """Training data as an estimator's ``fit`` uses it (after the preprocessing step)."""

    source: SpectrumSet | DatasetStore
    """Training spectra (in memory, or a lazily read data set)."""
    train_rows: np.ndarray | None
    """Rows of ``source`` to train on (None = all)."""
    valid: SpectrumSet | None
    """Validation spectra, in memory (None when none was held out)."""
    wave: np.ndarray
    """The shared wavelength grid, vacuum Angstrom (n_pixels,)."""


def prepare_fit_data(name: str, train: Any, valid: Any, *, preprocess: Any,
                     valid_fraction: float, rng: np.random.Generator,
                     hold_out: bool = True) -> FitData:
    """Open the training data, fit and apply ``preprocess``, and hold out a validation
    set (``valid_fraction`` of train, a seeded choice) unless ``valid`` is given or
    ``hold_out`` is False (then ``valid`` of the result is None)."""
    source = as_source(train)
    if preprocess is not None:
        source = preprocess.fit_transform(read_rows(source, None))
    if source.wave is None or np.ndim(source.wave) != 1:
        raise ValueError(f"{name}.fit: training spectra must share one wavelength grid; "
                         "resample them first (starlearn.preprocess.Resample)")
    if valid is None and not hold_out:
        return FitData(source, None, None, np.asarray(source.wave, dtype=np.float64))
    if valid is None:
        train_rows, valid_rows = split_rows(len(source), valid_fraction, rng)
        valid_set = read_rows(source, valid_rows)
    else:
        train_rows = None
        valid_set = read_rows(as_source(valid), None)
        if preprocess is not None:
            valid_set = preprocess.transform(valid_set)
    wave = np.asarray(source.wave, dtype=np.float64)
    check_grid(valid_set, wave, "validation set")
    return FitData(source, train_rows, valid_set, wave)


def make_trainer(estimator: Any, module: Any) -> Any:
    """A Trainer for ``module`` with the estimator's optimisation settings (epochs, lr,
    weight_decay, optimizer, scheduler, patience, max_time, progress, device_)."""
    from starlearn.train.trainer import Trainer, TrainerConfig

    return Trainer(module, TrainerConfig(
        epochs=estimator.epochs, lr=estimator.lr, weight_decay=estimator.weight_decay,
        optimizer=getattr(estimator, "optimizer", "adam"), scheduler=estimator.scheduler,
        patience=estimator.patience, max_time=estimator.max_time,
        progress=estimator.progress), estimator.device_)


# settings that stop or show a training but do not change its steps: a checkpoint may be
# resumed with other values (e.g. more epochs, or a time limit for a batch system)
_RESUMABLE_WITH_OTHER = ("epochs", "patience", "max_time", "progress", "device")


def fit_checkpoint(estimator: Any, path: str | PathLike | None, *, n_train: int,
                   wave: np.ndarray, rngs: Any) -> Any:
    """The training checkpoint of ``estimator.fit`` at ``path`` (None without a path),
    keyed by the estimator's settings and the training data's size and grid; an existing
    checkpoint of the same training is resumed."""
    import hashlib
    import json

    from starlearn.train.checkpoint import Checkpoint

    if path is None:
        return None

    def text(value: Any) -> str:  # stable across processes; arrays in full
        if isinstance(value, np.ndarray):
            return hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        if hasattr(value, "get_params"):  # preprocessing steps, adapters
            inner = sorted(value.get_params(deep=False).items())
            return f"{type(value).__name__}({', '.join(f'{k}={text(v)}' for k, v in inner)})"
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(text(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {text(v)}" for k, v in sorted(value.items())) + "}"
        return repr(value)

    params = {k: text(v) for k, v in estimator.get_params(deep=False).items()
              if k not in _RESUMABLE_WITH_OTHER}
    wave = np.asarray(wave, dtype=np.float64)
    ident = json.dumps({"estimator": type(estimator).__name__, "params": params,
                        "n_train": int(n_train), "n_pix": int(wave.size),
                        "wave": [round(float(wave.min()), 6), round(float(wave.max()), 6)]},
                       sort_keys=True)
    return Checkpoint(path, hashlib.sha256(ident.encode()).hexdigest(), rngs=tuple(rngs))


def reset_fitted(estimator: Any) -> None:
    """Remove the fitted state (attributes ending in ``_``) before a new ``fit``."""
    for attr in [a for a in vars(estimator) if a.endswith("_") and not a.startswith("_")]:
        delattr(estimator, attr)


def params_from_config(config: dict[str, Any], path: Any, task: str) -> dict[str, Any]:
    """Constructor arguments saved in an artifact (preprocessing rebuilt), after checking
    that the artifact is a ``task`` model."""
    if config.get("task") != task:
        raise ValueError(f"{path}: artifact is a '{config.get('task')}' model, not a "
                         f"'{task}' model")
    params = dict(config["params"])
    params["preprocess"] = preprocess_from_config(params.get("preprocess"))
    return params
