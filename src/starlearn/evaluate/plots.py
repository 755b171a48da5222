"""Plots of spectra (matplotlib, written to files; no screen needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from starlearn.spectra import SpectrumSet

__all__ = ["describe_star", "plot_embedding", "plot_residuals", "plot_saliency", "plot_spectra",
           "plot_spectrum_panels"]

_LABEL_FORMAT = {"teff": "Teff={:.0f} K", "logg": "log g={:.2f}", "fe_h": "[Fe/H]={:+.2f}"}


def describe_star(spectra: SpectrumSet, i: int) -> str:
    """Short legend text for spectrum ``i``: class and main labels."""
    parts = []
    if spectra.classes is not None and spectra.classes[i] >= 0:
        parts.append(spectra.class_names[spectra.classes[i]])
    for name, fmt in _LABEL_FORMAT.items():
        if name in spectra.label_names and np.isfinite(spectra.label(name)[i]):
            parts.append(fmt.format(spectra.label(name)[i]))
    return ", ".join(parts) or str(spectra.ids[i])


def plot_spectra(spectra: SpectrumSet, indices: Sequence[int] | None = None, *,
                 ax: Any = None, offset: float = 0.0, xlim: tuple[float, float] | None = None,
                 title: str | None = None) -> Any:
    """Plot flux against vacuum wavelength (Angstrom); masked pixels are left out.

    Returns the matplotlib Axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3))
    indices = range(min(3, len(spectra))) if indices is None else indices
    for k, i in enumerate(indices):
        flux = np.where(spectra.mask[i], np.nan, spectra.flux[i]) + k * offset
        ax.plot(spectra.wave_of(i), flux, lw=0.6, label=describe_star(spectra, i))
    if xlim:
        ax.set_xlim(*xlim)
    ax.set_xlabel("vacuum wavelength [Å]")
    ax.set_ylabel("flux")
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_spectrum_panels(panels: Mapping[str, SpectrumSet], path: str | PathLike, *,
                         indices: Mapping[str, Sequence[int]] | None = None,
                         xlims: Mapping[str, tuple[float, float]] | None = None,
                         offset: float = 0.0) -> None:
    """One panel per named SpectrumSet, written to ``path`` (PNG)."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.6 * len(panels)), squeeze=False)
    for ax, (name, spectra) in zip(axes[:, 0], panels.items(), strict=True):
        plot_spectra(spectra, (indices or {}).get(name), ax=ax, offset=offset,
                     xlim=(xlims or {}).get(name), title=name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_saliency(wave: np.ndarray, sal: np.ndarray, names: Sequence[str],
                  path: str | PathLike, *, mean_spectrum: np.ndarray | None = None) -> None:
    """One panel per label: mean |d label / d flux| against vacuum wavelength (PNG)."""
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 2.2 * len(names) + 0.6),
                             sharex=True, squeeze=False)
    for ax, name, row in zip(axes[:, 0], names, sal, strict=True):
        ax.plot(wave, row / (row.max() or 1.0), lw=0.6, color="C3", label=f"saliency {name}")
        if mean_spectrum is not None:
            ax.plot(wave, mean_spectrum, lw=0.4, color="0.5", alpha=0.7, label="mean spectrum")
        ax.set_ylabel(name)
        ax.legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("vacuum wavelength [Å]")
    fig.suptitle("where the network looks (normalised mean |gradient|)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_residuals(true: np.ndarray, pred: np.ndarray, names: Sequence[str],
                   path: str | PathLike, *, title: str = "") -> None:
    """Residual (predicted - true) against true value, one panel per label (PNG)."""
    k = len(names)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k, 3.2), squeeze=False)
    for j, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        ok = np.isfinite(true[:, j]) & np.isfinite(pred[:, j])
        resid = pred[ok, j] - true[ok, j]
        ax.scatter(true[ok, j], resid, s=3, alpha=0.4, lw=0)
        ax.axhline(0, color="k", lw=0.6)
        sigma = np.std(resid) if resid.size else np.nan
        ax.set_title(f"{name}: σ={sigma:.3g}, bias={np.mean(resid) if resid.size else 0:.2g}",
                     fontsize=8)
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel("predicted − true")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_embedding(xy: np.ndarray, color: np.ndarray, path: str | PathLike, *,
                   label: str = "", title: str = "", groups: Sequence[str] | None = None
                   ) -> None:
    """Scatter plot of a 2-D embedding coloured by a value (or by group names), PNG."""
    fig, ax = plt.subplots(figsize=(6, 5))
    if groups is not None:
        for name in dict.fromkeys(groups):
            sel = np.asarray(groups) == name
            ax.scatter(xy[sel, 0], xy[sel, 1], s=5, alpha=0.6, lw=0, label=name)
        ax.legend(fontsize=8, markerscale=3)
    else:
        points = ax.scatter(xy[:, 0], xy[:, 1], c=color, s=5, lw=0, cmap="viridis")
        fig.colorbar(points, ax=ax, label=label)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
