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

__all__ = ["describe_star", "plot_spectra", "plot_spectrum_panels"]

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
