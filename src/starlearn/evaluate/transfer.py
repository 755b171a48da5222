"""Diagnostics of the gap between a training domain (e.g. synthetic spectra) and a target
survey: distances between feature distributions, feature maps, the mean residual spectrum
per label bin, bias against label, and scores in S/N bins with the error calibration.

Figures are :class:`matplotlib.figure.Figure` objects (no pyplot); pass ``path`` to write a
PNG.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np

from starlearn.evaluate.embedding import embed_2d
from starlearn.evaluate.metrics import calibration, regression_metrics
from starlearn.evaluate.plots import _finish, _new_figure, axis_label

__all__ = ["coral_distance", "domain_auc", "domain_distance", "mmd_distance",
           "plot_bias_vs_label", "plot_feature_maps", "plot_residual_spectra",
           "residual_spectra", "transfer_scores"]

SNR_EDGES = (0.0, 30.0, 50.0, 80.0, 120.0, np.inf)
"""Default S/N bin edges (median S/N per pixel) of :func:`transfer_scores`."""


def _standardised(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets z-scored with the source's mean and spread; constant features dropped."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mean, std = source.mean(axis=0), source.std(axis=0)
    keep = std > 1e-12 * max(float(np.abs(source).max()), 1e-300)
    if not keep.any():
        keep = np.ones(source.shape[1], dtype=bool)
        std = np.ones_like(std)
    return ((source - mean) / np.where(keep, std, 1.0))[:, keep], (
        (target - mean) / np.where(keep, std, 1.0))[:, keep]


def mmd_distance(source: np.ndarray, target: np.ndarray,
                 scales: Sequence[float] = (0.5, 1.0, 2.0)) -> float:
    """Squared maximum mean discrepancy (biased, >= 0) between two feature sets (n, d),
    z-scored with the source's statistics, with a sum of Gaussian kernels of widths
    ``scales`` times the median pairwise distance: 0 for the same distribution.

    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    >>> mmd_distance(a, b) < 0.05 < mmd_distance(a, b + 1.0)
    True
    """
    from scipy.spatial.distance import cdist

    s, t = _standardised(source, target)
    pooled = np.concatenate([s, t])
    d2 = cdist(pooled, pooled, "sqeuclidean")
    width2 = max(float(np.median(d2[~np.eye(len(pooled), dtype=bool)])), 1e-12)
    kernel = sum(np.exp(-d2 / (2.0 * c * c * width2)) for c in scales)
    n = len(s)
    return float(kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean())


def coral_distance(source: np.ndarray, target: np.ndarray) -> float:
    """CORAL distance ``||C_s - C_t||_F**2 / (4 d**2)`` of the covariances of the two
    feature sets, z-scored with the source's statistics (so that the source's covariance
    is a correlation matrix): 0 for equal covariances."""
    s, t = _standardised(source, target)
    d = s.shape[1]
    return float(np.sum((np.cov(s, rowvar=False) - np.cov(t, rowvar=False)) ** 2)
                 / (4.0 * d * d))


def domain_auc(source: np.ndarray, target: np.ndarray, *, seed: int = 0) -> float:
    """How well a linear classifier tells the two feature sets apart: the 3-fold
    cross-validated ROC AUC of a logistic regression on the z-scored features (0.5:
    indistinguishable, 1: separable)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    s, t = _standardised(source, target)
    x = np.concatenate([s, t])
    y = np.r_[np.zeros(len(s)), np.ones(len(t))]
    folds = StratifiedKFold(3, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(LogisticRegression(C=0.1, max_iter=500), x, y,
                                         cv=folds, scoring="roc_auc")))


def domain_distance(source: np.ndarray, target: np.ndarray, *, seed: int = 0,
                    max_n: int = 1000) -> dict[str, float]:
    """``mmd``, ``coral`` and ``auc`` (:func:`mmd_distance`, :func:`coral_distance`,
    :func:`domain_auc`) of source and target features, on at most ``max_n`` of each
    (a seeded sample)."""
    rng = np.random.default_rng(seed)

    def sample(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x[np.sort(rng.choice(len(x), max_n, replace=False))] if len(x) > max_n else x

    s, t = sample(source), sample(target)
    return {"mmd": mmd_distance(s, t), "coral": coral_distance(s, t),
            "auc": domain_auc(s, t, seed=seed), "n_source": len(s), "n_target": len(t)}


def transfer_scores(true: np.ndarray, pred: np.ndarray, err: np.ndarray | None,
                    names: Sequence[str], snr: np.ndarray | None = None,
                    snr_edges: Sequence[float] = SNR_EDGES) -> dict[str, Any]:
    """Accuracy (sigma, robust sigma, bias ...) and, with errors, the calibration (z
    spread) of predictions on target spectra, overall and in S/N bins: ``{"all":
    {"metrics", "calibration"}, "snr_bins": [{"lo", "hi", "n", "metrics",
    "calibration"}, ...]}``."""
    true = np.asarray(true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)

    def block(sel: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"n": int(sel.sum()),
                               "metrics": regression_metrics(true[sel], pred[sel], names)}
        if err is not None:
            out["calibration"] = calibration(true[sel], pred[sel], np.asarray(err)[sel],
                                             names)
        return out

    result: dict[str, Any] = {"all": block(np.ones(len(true), dtype=bool)), "snr_bins": []}
    if snr is not None:
        snr = np.asarray(snr, dtype=np.float64)
        for lo, hi in itertools.pairwise(snr_edges):
            sel = (snr >= lo) & (snr < hi)
            if sel.sum() >= 5:
                result["snr_bins"].append({"lo": float(lo), "hi": float(hi), **block(sel)})
    return result


def plot_feature_maps(features: Mapping[str, Mapping[str, np.ndarray]],
                      path: str | PathLike | None = None, *, method: str = "pca",
                      max_points: int = 1000, seed: int = 0) -> Any:
    """One panel per model (``{"no adaptation": {"source": f_s, "target": f_t}, ...}``):
    a 2-D map (:func:`~starlearn.evaluate.embedding.embed_2d`, "pca" or "tsne") of the
    model's features, each domain in its own colour (at most ``max_points`` each)."""
    rng = np.random.default_rng(seed)
    fig = _new_figure(4.0 * len(features), 3.8)
    axes = fig.subplots(1, len(features), squeeze=False)[0]
    for ax, (title, sets) in zip(axes, features.items(), strict=True):
        names = list(sets)
        parts = []
        for name in names:
            x = np.asarray(sets[name], dtype=np.float64)
            if len(x) > max_points:
                x = x[rng.choice(len(x), max_points, replace=False)]
            parts.append(x)
        scaled = [_standardised(parts[0], p)[1] for p in parts]
        xy = embed_2d(np.concatenate(scaled), method=method, seed=seed)
        start = 0
        for k, (name, p) in enumerate(zip(names, parts, strict=True)):
            ax.scatter(*xy[start:start + len(p)].T, s=4, alpha=0.5, color=f"C{k}",
                       label=f"{name} ({len(p)})", rasterized=True)
            start += len(p)
        ax.set_title(title)
        ax.set_xlabel(f"{method.upper()} 1")
        ax.set_ylabel(f"{method.upper()} 2")
        ax.legend(loc="best", fontsize=8, markerscale=3)
    return _finish(fig, path)


def residual_spectra(flux: np.ndarray, good: np.ndarray, model_flux: np.ndarray,
                     label: np.ndarray, edges: Sequence[float]) -> tuple[np.ndarray,
                                                                        np.ndarray]:
    """Mean residual spectrum (observed - model) per bin of ``label`` (``edges``): arrays
    (n_bins, n_pix) of the mean residual over the good pixels (NaN where none) and (n_bins,)
    of the spectra per bin. ``model_flux`` is a model spectrum per star (e.g. The Cannon's
    :meth:`~starlearn.estimators.Cannon.model_flux` at the true labels)."""
    resid = np.where(good, np.asarray(flux, np.float64) - model_flux, np.nan)
    n_bins = len(edges) - 1
    out = np.full((n_bins, resid.shape[1]), np.nan)
    counts = np.zeros(n_bins, dtype=int)
    for b, (lo, hi) in enumerate(itertools.pairwise(edges)):
        sel = (label >= lo) & (label < hi)
        counts[b] = int(sel.sum())
        if counts[b]:
            n_good = np.sum(np.isfinite(resid[sel]), axis=0)
            total = np.nansum(resid[sel], axis=0)
            out[b] = np.where(n_good > 0, total / np.maximum(n_good, 1), np.nan)
    return out, counts


def plot_residual_spectra(wave: np.ndarray, residuals: np.ndarray, counts: np.ndarray,
                          edges: Sequence[float], label: str,
                          path: str | PathLike | None = None, *, offset: float = 0.05) -> Any:
    """The mean residual spectra of :func:`residual_spectra`, one line per label bin,
    offset by ``offset`` (flux units) each."""
    fig = _new_figure(10.0, 1.2 + 0.5 * len(counts))
    ax = fig.subplots()
    for b, (lo, hi) in enumerate(itertools.pairwise(edges)):
        if counts[b]:
            ax.plot(wave, residuals[b] + b * offset, lw=0.5, color=f"C{b}",
                    label=f"{lo:g} - {hi:g} ({counts[b]})")
            ax.axhline(b * offset, color="0.6", lw=0.4)
    ax.set_xlabel(r"vacuum wavelength [$\AA$]")
    ax.set_ylabel(f"observed - model (+{offset:g} per bin)")
    ax.legend(title=axis_label(label), fontsize=7, loc="upper left", ncols=2)
    return _finish(fig, path)


def plot_bias_vs_label(true: np.ndarray, preds: Mapping[str, np.ndarray],
                       names: Sequence[str], path: str | PathLike | None = None, *,
                       n_bins: int = 8) -> Any:
    """Median residual (pred - true) against the true label, per label (columns) and per
    model (``{"no adaptation": pred, ...}``, lines), in ``n_bins`` quantile bins."""
    true = np.asarray(true, dtype=np.float64)
    fig = _new_figure(3.6 * len(names), 3.2)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for j, (ax, name) in enumerate(zip(axes, names, strict=True)):
        t = true[:, j]
        ok = np.isfinite(t)
        edges = np.unique(np.quantile(t[ok], np.linspace(0, 1, n_bins + 1)))
        centres = 0.5 * (edges[1:] + edges[:-1])
        for k, (model, pred) in enumerate(preds.items()):
            r = np.asarray(pred, dtype=np.float64)[:, j] - t
            med = [np.nanmedian(r[(t >= lo) & (t <= hi)]) if np.any((t >= lo) & (t <= hi))
                   else np.nan for lo, hi in itertools.pairwise(edges)]
            ax.plot(centres, med, "o-", ms=3, color=f"C{k}", label=model)
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_xlabel(axis_label(name))
        ax.set_ylabel("median residual")
    axes[0].legend(fontsize=7)
    return _finish(fig, path)
