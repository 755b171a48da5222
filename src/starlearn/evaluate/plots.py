"""Figures for papers: spectra with models and residuals, label residuals, Kiel diagrams,
saliency with line identifications and 2-D embeddings.

Every function builds a :class:`matplotlib.figure.Figure` with the object-oriented API and
returns it; given ``path`` it also writes the file (format from the suffix: ``.png``,
``.pdf``, ``.svg`` ...). Nothing in ``starlearn.evaluate`` selects a matplotlib backend or
uses ``pyplot``: ``Figure.savefig`` needs neither a backend nor a screen, so writing files
works headless whatever backend is configured, and in a Jupyter notebook a returned figure
shows inline as the cell's output (it has a ``_repr_png_``, so this works without
``%matplotlib inline`` too; the figures are not registered with pyplot, so they never show
twice and are freed like any other object).

Axes carry physical names and units (:func:`axis_label`): wavelengths are vacuum Angstrom,
the convention of every :class:`~starlearn.spectra.SpectrumSet`; flux axes read
"normalised flux" unless the spectra carry a flux unit or ``flux_label`` says otherwise.
Value axes use robust limits (:func:`robust_limits`), so one wild point does not flatten a
panel; points beyond the limits are drawn on the edge as open triangles and counted in the
panel.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from os import PathLike
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from starlearn.spectra import SpectrumSet

__all__ = ["FLUX_LABEL", "WAVELENGTH_LABEL", "axis_label", "describe_star", "plot_embedding",
           "plot_kiel", "plot_reconstruction", "plot_residuals", "plot_saliency",
           "plot_spectra", "plot_spectrum_model", "plot_spectrum_panels", "robust_limits",
           "strong_lines"]

WAVELENGTH_LABEL = "Wavelength [Å] (vacuum)"
"""Label of every wavelength axis: starlearn's wavelengths are vacuum Angstrom."""
FLUX_LABEL = "normalised flux"
"""Label of flux axes of spectra without a physical flux unit (``flux_unit`` None or
dimensionless); with one the axis reads "flux [unit]". ``flux_label=`` overrides both."""
DPI = 150
"""Resolution of the files written with ``path`` (call ``fig.savefig`` for others)."""

_LABEL_FORMAT = {"teff": "Teff={:.0f} K", "logg": "log g={:.2f}", "fe_h": "[Fe/H]={:+.2f}"}

# name -> (symbol, unit); abundances <x>_fe, <x>_h, <x>_m are matched by _ABUNDANCE
_AXES: dict[str, tuple[str, str]] = {
    "teff": (r"$T_\mathrm{eff}$", "K"),
    "logg": ("log g", "dex"),
    "fe_h": ("[Fe/H]", "dex"), "feh": ("[Fe/H]", "dex"), "m_h": ("[Fe/H]", "dex"),
    "alpha_fe": ("[α/Fe]", "dex"), "alpha_m": ("[α/M]", "dex"),
    "vmicro": (r"$v_\mathrm{micro}$", "km/s"), "vmacro": (r"$v_\mathrm{macro}$", "km/s"),
    "vsini": ("v sin i", "km/s"), "vbroad": (r"$v_\mathrm{broad}$", "km/s"),
    "rv": ("RV", "km/s"), "vrad": ("RV", "km/s"),
}
_ABUNDANCE = re.compile(r"^([a-z]{1,2})_(fe|h|m)$")
_REFERENCE = {"fe": "Fe", "h": "H", "m": "M"}
_METALLICITY = ("fe_h", "feh", "m_h")
_EDGE_STYLE = {"facecolors": "none", "edgecolors": "C3", "s": 18, "lw": 0.8,
               "clip_on": False, "zorder": 4}


class _Figure(Figure):
    """A Figure that renders itself as PNG in IPython/Jupyter, whatever the backend."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _new_figure(width: float, height: float) -> Figure:
    return _Figure(figsize=(width, height), layout="constrained")


def _finish(fig: Figure, path: str | PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=DPI)
    return fig


def _symbol_unit(name: str) -> tuple[str, str]:
    key = str(name).strip().lower()
    if key in _AXES:
        return _AXES[key]
    match = _ABUNDANCE.match(key)
    if match:
        element, ref = match.groups()
        return f"[{element.capitalize()}/{_REFERENCE[ref]}]", "dex"
    return str(name), ""


def axis_label(name: str) -> str:
    r"""Axis label with physical name and unit for the label ``name``.

    ``teff``, ``logg``, ``fe_h`` (also ``feh``, ``m_h``), ``alpha_fe``, every abundance
    ``<x>_fe`` / ``<x>_h``, ``vmicro``, ``vmacro``, ``vsini``, ``rv``; a name starlearn does
    not know is returned as it is.

    Examples
    --------
    >>> axis_label("teff"), axis_label("logg"), axis_label("mg_fe"), axis_label("depth")
    ('$T_\\mathrm{eff}$ [K]', 'log g [dex]', '[Mg/Fe] [dex]', 'depth')
    >>> axis_label("vsini"), axis_label("alpha_fe")
    ('v sin i [km/s]', '[α/Fe] [dex]')
    """
    symbol, unit = _symbol_unit(name)
    return f"{symbol} [{unit}]" if unit else symbol


def robust_limits(values: Any, *, percentiles: tuple[float, float] = (1.0, 99.0),
                  reach: float = 0.5, pad: float = 0.05) -> tuple[float, float]:
    """Axis limits that a few extreme values cannot stretch.

    The core is the ``percentiles`` range (taken at data points, never interpolated
    towards an outlier); the limits then grow to the farthest points within ``reach``
    times the core width beyond it, and are padded by ``pad`` of their width. Non-finite
    values are ignored.

    Returns
    -------
    (low, high) with low < high.

    Examples
    --------
    >>> x = np.r_[np.linspace(0.0, 1.0, 99), 1e6]
    >>> lo, hi = robust_limits(x)
    >>> bool(-0.1 < lo < 0.0 and 1.0 < hi < 1.1)
    True
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.0, 1.0
    a = float(np.percentile(x, percentiles[0], method="higher"))
    b = float(np.percentile(x, percentiles[1], method="lower"))
    lo, hi = min(a, b), max(a, b)
    width = hi - lo
    near = x[(x >= lo - reach * width) & (x <= hi + reach * width)]
    lo, hi = float(near.min()), float(near.max())
    width = hi - lo
    if width <= 0:
        half = 0.05 * abs(lo) or 0.5
        return lo - half, hi + half
    return lo - pad * width, hi + pad * width


def _scatter_with_edges(ax: Any, x: np.ndarray, y: np.ndarray, xlim: tuple[float, float],
                        ylim: tuple[float, float], color: Any = None,
                        inverted: tuple[bool, bool] = (False, False), **kw: Any
                        ) -> tuple[Any, int]:
    """Scatter (x, y); points outside the box go on its edge as open triangles pointing
    out (``inverted``: whether the x and y axes will be drawn inverted). Sets the limits
    (increasing); returns the scatter of the points inside (for a colour bar) and the
    number of points on the edge."""
    inside = (x >= xlim[0]) & (x <= xlim[1]) & (y >= ylim[0]) & (y <= ylim[1])
    if color is not None and np.ndim(color):
        kw["c"] = np.asarray(color)[inside]
    elif color is not None:
        kw["color"] = color
    mappable = ax.scatter(x[inside], y[inside], **kw)
    out = ~inside
    xo, yo = np.clip(x[out], *xlim), np.clip(y[out], *ylim)
    above, below = y[out] > ylim[1], y[out] < ylim[0]
    right, left = (x[out] > xlim[1]) & ~above & ~below, (x[out] < xlim[0]) & ~above & ~below
    up, down = ("v", "^") if inverted[1] else ("^", "v")
    east, west = ("<", ">") if inverted[0] else (">", "<")
    for sel, marker in ((above, up), (below, down), (right, east), (left, west)):
        if sel.any():
            ax.scatter(xo[sel], yo[sel], marker=marker, **_EDGE_STYLE)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    return mappable, int(out.sum())


def _root(ax: Any) -> Figure:
    return ax.figure.figure


def _flux_label(spectra: SpectrumSet, given: str | None) -> str:
    if given is not None:
        return given
    from starlearn.units import unit_text

    unit = getattr(spectra, "flux_unit", None)
    text = unit_text(unit) if unit is not None else ""
    return f"flux [{text}]" if text else FLUX_LABEL


# ------------------------------------------------------------------------------ spectra
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
                 title: str | None = None, flux_label: str | None = None,
                 path: str | PathLike | None = None) -> Figure:
    """Flux against vacuum wavelength (Angstrom) of a few spectra; masked pixels left out.

    Parameters
    ----------
    spectra : SpectrumSet
    indices : spectra to draw (default: the first three)
    ax : Axes to draw into (default: a new figure)
    offset : vertical shift between consecutive spectra, flux units
    xlim : wavelength range, Angstrom (vacuum)
    flux_label : label of the flux axis (default: from ``spectra.flux_unit``,
        :data:`FLUX_LABEL` without one)
    path : file to write (optional)

    Returns
    -------
    Figure (the one holding ``ax`` when given).
    """
    fig = _new_figure(10, 3) if ax is None else _root(ax)
    if ax is None:
        ax = fig.subplots()
    indices = range(min(3, len(spectra))) if indices is None else indices
    for k, i in enumerate(indices):
        flux = np.where(spectra.mask[i], np.nan, spectra.flux[i]) + k * offset
        ax.plot(spectra.wave_of(i), flux, lw=0.6, label=describe_star(spectra, i))
    if xlim:
        ax.set_xlim(*xlim)
    ax.set_xlabel(WAVELENGTH_LABEL)
    ax.set_ylabel(_flux_label(spectra, flux_label) + (" + offset" if offset else ""))
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    return _finish(fig, path)


def plot_spectrum_panels(panels: Mapping[str, SpectrumSet],
                         path: str | PathLike | None = None, *,
                         indices: Mapping[str, Sequence[int]] | None = None,
                         xlims: Mapping[str, tuple[float, float]] | None = None,
                         offset: float = 0.0, flux_label: str | None = None) -> Figure:
    """One panel of spectra (:func:`plot_spectra`) per named SpectrumSet, stacked.

    Returns the Figure; writes it to ``path`` when given.
    """
    fig = _new_figure(11, 2.6 * len(panels))
    axes = fig.subplots(len(panels), 1, squeeze=False)
    for ax, (name, spectra) in zip(axes[:, 0], panels.items(), strict=True):
        plot_spectra(spectra, (indices or {}).get(name), ax=ax, offset=offset,
                     xlim=(xlims or {}).get(name), title=name, flux_label=flux_label)
    return _finish(fig, path)


def _model_row(model: SpectrumSet | np.ndarray, i: int, n_pix: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Model flux and model sigma (0 where unknown) of spectrum ``i``."""
    if isinstance(model, SpectrumSet):
        with np.errstate(divide="ignore"):
            sigma = np.where(model.mask[i], np.nan, 1.0 / np.sqrt(model.ivar[i]))
        return np.where(model.mask[i], np.nan, model.flux[i]), sigma
    arr = np.asarray(model, dtype=np.float64)
    row = arr if arr.ndim == 1 else arr[i]
    if row.shape != (n_pix,):
        raise ValueError(f"model: expected {n_pix} pixels per spectrum, got shape {arr.shape}")
    return row, np.zeros(n_pix)


def _draw_model(sub: Any, observed: SpectrumSet, model: SpectrumSet | np.ndarray, i: int, *,
                model_label: str, flux_label: str | None, xlim: tuple[float, float] | None,
                title: str | None, xlabel: bool) -> tuple[Any, Any]:
    """Spectrum ``i`` with its error band and the model above, residuals below."""
    top, bottom = sub.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    wave = observed.wave_of(i)
    bad = observed.mask[i]
    flux = np.where(bad, np.nan, observed.flux[i]).astype(np.float64)
    sigma = np.where(bad, np.nan, observed.sigma[i]).astype(np.float64)
    mflux, msigma = _model_row(model, i, observed.n_pix)
    resid = flux - mflux
    top.fill_between(wave, flux - sigma, flux + sigma, color="0.75", lw=0, step="mid",
                     label="±1σ")
    top.plot(wave, flux, color="k", lw=0.6, drawstyle="steps-mid", label="observed")
    top.plot(wave, mflux, color="C3", lw=0.8, label=model_label)
    # the range holds the model on the good pixels and the data within 5 sigma of it:
    # deep lines are never clipped, a cosmic ray or a bad pixel does not stretch it
    fits = ~bad & np.isfinite(mflux) & np.isfinite(flux)
    fits &= np.abs(flux - mflux) <= 5.0 * np.hypot(sigma, np.nan_to_num(msigma))
    if fits.any():
        lo, hi = robust_limits(np.r_[flux[fits], mflux[fits]], percentiles=(0.0, 100.0))
    else:
        lo, hi = robust_limits(flux, percentiles=(0.5, 99.5))
    top.set_ylim(lo, hi)
    top.set_ylabel(_flux_label(observed, flux_label))
    top.legend(fontsize=7, loc="lower right", ncols=3)
    bottom.fill_between(wave, -sigma, sigma, color="0.75", lw=0, step="mid")
    bottom.axhline(0.0, color="C3", lw=0.6)
    bottom.plot(wave, resid, color="k", lw=0.5, drawstyle="steps-mid")
    lim = max(np.abs(robust_limits(resid, percentiles=(0.5, 99.5))))
    bottom.set_ylim(-lim, lim)
    bottom.set_ylabel("obs − model")
    total_var = sigma**2 + np.nan_to_num(msigma) ** 2
    good = np.isfinite(resid) & (total_var > 0)
    if good.any():
        chi2 = float(np.mean(resid[good] ** 2 / total_var[good]))
        bottom.text(0.01, 0.95, f"χ²/pixel = {chi2:.2f}", transform=bottom.transAxes,
                    ha="left", va="top", fontsize=7)
    top.set_xlim(*(xlim or (float(np.nanmin(wave)), float(np.nanmax(wave)))))
    if xlabel:
        bottom.set_xlabel(WAVELENGTH_LABEL)
    top.set_title(describe_star(observed, i) if title is None else title, fontsize=9)
    return top, bottom


def plot_spectrum_model(observed: SpectrumSet, model: SpectrumSet | np.ndarray,
                        index: int = 0, path: str | PathLike | None = None, *,
                        model_label: str = "model", xlim: tuple[float, float] | None = None,
                        title: str | None = None, flux_label: str | None = None) -> Figure:
    """An observed spectrum with its ±1σ error band, a model over it and the residuals.

    Parameters
    ----------
    observed : SpectrumSet on the model's grid (e.g. ``estimator.prepare_inputs(spectra)``)
    model : SpectrumSet (an autoencoder's ``reconstruct``; its ivar, the model error, enters
        the chi-square) or an array (n_spectra, n_pixels) or (n_pixels,) of model flux,
        e.g. The Cannon's ``model_flux(labels)``
    index : which spectrum
    model_label : legend name of the model
    xlim : wavelength range, Angstrom (vacuum)
    path : file to write (optional)

    Returns
    -------
    Figure: top, observed flux (steps), ±1σ band (grey) and model (red); bottom,
    observed − model with the ±1σ band and the reduced chi-square per pixel
    (observed and model variance added).

    Examples
    --------
    >>> s = SpectrumSet(wave=np.linspace(5000, 5010, 50), flux=np.ones((1, 50)),
    ...                 ivar=np.full((1, 50), 1e4))
    >>> fig = plot_spectrum_model(s, np.full(50, 0.99), model_label="The Cannon")
    >>> fig.axes[1].get_xlabel()
    'Wavelength [Å] (vacuum)'
    """
    fig = _new_figure(10, 4.2)
    _draw_model(fig, observed, model, index, model_label=model_label,
                flux_label=flux_label, xlim=xlim, title=title, xlabel=True)
    return _finish(fig, path)


def plot_reconstruction(observed: SpectrumSet, reconstructed: SpectrumSet | np.ndarray,
                        indices: Sequence[int] | None = None,
                        path: str | PathLike | None = None, *,
                        titles: Sequence[str] | None = None,
                        model_label: str = "reconstruction",
                        xlim: tuple[float, float] | None = None,
                        flux_label: str | None = None) -> Figure:
    """Several spectra with their reconstruction and residuals (:func:`plot_spectrum_model`
    stacked), e.g. an autoencoder's typical and worst cases.

    ``indices`` default to the first three spectra; ``titles`` (one per index) default to
    the star's class and labels. Returns the Figure; writes it to ``path`` when given.
    """
    indices = list(range(min(3, len(observed)))) if indices is None else list(indices)
    if titles is not None and len(titles) != len(indices):
        raise ValueError(f"titles: expected {len(indices)} (one per index), got {len(titles)}")
    fig = _new_figure(10, 3.4 * len(indices))
    subs = fig.subfigures(len(indices), 1, squeeze=False)[:, 0]
    for k, (sub, i) in enumerate(zip(subs, indices, strict=True)):
        _draw_model(sub, observed, reconstructed, i, model_label=model_label,
                    flux_label=flux_label, xlim=xlim,
                    title=None if titles is None else titles[k], xlabel=k == len(indices) - 1)
    return _finish(fig, path)


# ------------------------------------------------------------------------------- labels
def _stats_text(resid: np.ndarray, unit: str, n_off: int) -> str:
    from starlearn.evaluate.metrics import robust_sigma

    u = f" {unit}" if unit else ""
    lines = [f"bias = {np.mean(resid):+.3g}{u}", f"median = {np.median(resid):+.3g}{u}",
             f"robust σ = {robust_sigma(resid):.3g}{u}", f"N = {resid.size}"]
    if n_off:
        lines.append(f"{n_off} off-scale (open triangles at edge)")
    return "\n".join(lines)


def plot_residuals(true: np.ndarray, pred: np.ndarray, names: Sequence[str],
                   path: str | PathLike | None = None, *, title: str = "",
                   max_columns: int = 4) -> Figure:
    r"""Predicted against true value with the 1:1 line, and the residual below, per label.

    Parameters
    ----------
    true, pred : (n_spectra, n_labels) in label units; NaN = missing
    names : label names (axes get physical names and units, :func:`axis_label`)
    path : file to write (optional)
    title : figure title
    max_columns : labels per row of panels

    Returns
    -------
    Figure. Each label has a predicted-vs-true panel (same robust limits on both axes,
    1:1 line) over a residual (predicted − true) panel symmetric about 0; points beyond
    the robust limits sit on the edge as open triangles. The panel states the bias (mean
    residual, as ``metrics.json``), the median residual, the robust σ (1.4826 MAD) and N.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(5000, 500, (100, 1)); p = t + rng.normal(0, 50, t.shape)
    >>> plot_residuals(t, p, ["teff"]).axes[0].get_ylabel()
    'predicted $T_\\mathrm{eff}$ [K]'
    """
    true = np.asarray(true, dtype=np.float64).reshape(len(true), -1)
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    k = len(names)
    ncol = max(1, min(k, max_columns))
    nrow = -(-k // ncol)
    fig = _new_figure(3.3 * ncol, 4.3 * nrow)
    subs = fig.subfigures(nrow, ncol, squeeze=False).ravel()
    for j, (sub, name) in enumerate(zip(subs, names, strict=False)):
        top, bottom = sub.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        symbol, unit = _symbol_unit(name)
        ok = np.isfinite(true[:, j]) & np.isfinite(pred[:, j])
        t, p = true[ok, j], pred[ok, j]
        resid = p - t
        lim = robust_limits(np.r_[t, p])
        top.plot(lim, lim, color="k", lw=0.7, zorder=1)
        _, n_off = _scatter_with_edges(top, t, p, lim, lim, color="C0", s=4, alpha=0.5,
                                       lw=0)
        r = max(np.abs(robust_limits(resid))) if resid.size else 1.0
        bottom.axhline(0.0, color="k", lw=0.7, zorder=1)
        _, n_off_r = _scatter_with_edges(bottom, t, resid, lim, (-r, r), color="C0", s=4,
                                         alpha=0.5, lw=0)
        u = f" [{unit}]" if unit else ""
        top.set_ylabel(f"predicted {symbol}{u}")
        bottom.set_ylabel(f"pred − true{u}")
        bottom.set_xlabel(f"true {symbol}{u}")
        if resid.size:
            top.text(0.04, 0.96, _stats_text(resid, unit, max(n_off, n_off_r)),
                     transform=top.transAxes, ha="left", va="top", fontsize=7,
                     bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        else:
            top.text(0.5, 0.5, "no finite values", transform=top.transAxes, ha="center")
    for sub in subs[k:]:
        sub.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def _label_columns(labels: Any, names: Sequence[str] | None) -> dict[str, np.ndarray]:
    """Label arrays by name from a SpectrumSet, a table / mapping of columns, or a 2-D
    array with ``names``."""
    if isinstance(labels, SpectrumSet):
        return {n: labels.label(n).astype(np.float64) for n in labels.label_names}
    if hasattr(labels, "colnames"):
        return {n: np.asarray(labels[n], dtype=np.float64) for n in labels.colnames
                if np.asarray(labels[n]).dtype.kind in "fiu"}
    if isinstance(labels, Mapping):
        return {n: np.asarray(v, dtype=np.float64) for n, v in labels.items()}
    arr = np.asarray(labels, dtype=np.float64)
    if names is None or arr.ndim != 2 or arr.shape[1] != len(names):
        raise ValueError("labels: a 2-D array needs names, one per column")
    return {n: arr[:, j] for j, n in enumerate(names)}


def plot_kiel(labels: Any, path: str | PathLike | None = None, *,
              names: Sequence[str] | None = None, reference: Any = None,
              color: str | None = None, title: str = "") -> Figure:
    """Kiel diagram: log g against Teff with both axes inverted, as astronomers draw it
    (Teff falls to the right, log g grows downwards: dwarfs at the bottom, giants up).

    Parameters
    ----------
    labels : the labels to draw (typically predicted): a SpectrumSet, a table or mapping
        with columns ``teff`` and ``logg`` (a Regressor's ``predict`` output), or an array
        (n, n_labels) with ``names``
    path : file to write (optional)
    names : column names of an array ``labels``
    reference : optional labels of the same kind (e.g. the true ones), drawn in a second
        panel on the same axes and colour scale
    color : label to colour by; default the metallicity ([Fe/H]: ``fe_h``, ``feh`` or
        ``m_h``) when present, else one colour. Points with no value are grey.
    title : figure title

    Returns
    -------
    Figure, one panel (``labels``, titled "predicted" when ``reference`` is given)
    or two (reference first).
    """
    sets = [("predicted" if reference is not None else "", _label_columns(labels, names))]
    if reference is not None:
        sets.insert(0, ("true", _label_columns(reference, names)))
    for _, cols in sets:
        missing = [n for n in ("teff", "logg") if n not in cols]
        if missing:
            raise ValueError(f"plot_kiel: the labels have no {missing} (they have "
                             f"{list(cols)})")
    if color is None:
        color = next((m for m in _METALLICITY if all(m in c for _, c in sets)), None)
    teff_all = np.concatenate([c["teff"] for _, c in sets])
    logg_all = np.concatenate([c["logg"] for _, c in sets])
    xlim, ylim = robust_limits(teff_all), robust_limits(logg_all)
    clim = (robust_limits(np.concatenate([c[color] for _, c in sets]), pad=0.0)
            if color is not None else None)
    fig = _new_figure(4.6 * len(sets) + (0.9 if color else 0.0), 4.2)
    axes = fig.subplots(1, len(sets), squeeze=False, sharex=True, sharey=True)[0]
    mappable = None
    for ax, (name, cols) in zip(axes, sets, strict=True):
        teff, logg = cols["teff"], cols["logg"]
        ok = np.isfinite(teff) & np.isfinite(logg)
        value = cols[color][ok] if color is not None else None
        if value is not None and np.isfinite(value).any():
            has = np.isfinite(value)
            _, n_grey = _scatter_with_edges(ax, teff[ok][~has], logg[ok][~has], xlim, ylim,
                                            color="0.6", inverted=(True, True), s=5, lw=0)
            coloured, n_off = _scatter_with_edges(ax, teff[ok][has], logg[ok][has], xlim,
                                                  ylim, color=value[has],
                                                  inverted=(True, True), s=5, lw=0,
                                                  cmap="viridis", vmin=clim[0], vmax=clim[1])
            mappable, n_off = coloured, n_off + n_grey
        else:
            _, n_off = _scatter_with_edges(ax, teff[ok], logg[ok], xlim, ylim, color="C0",
                                           inverted=(True, True), s=5, lw=0, alpha=0.7)
        ax.set_xlim(xlim[1], xlim[0])
        ax.set_ylim(ylim[1], ylim[0])
        ax.set_xlabel(axis_label("teff"))
        ax.set_title(name, fontsize=9)
        text = f"N = {int(ok.sum())}" + (f"\n{n_off} off-scale (at edge)" if n_off else "")
        ax.text(0.96, 0.04, text, transform=ax.transAxes, ha="right", va="bottom",
                fontsize=7)
    axes[0].set_ylabel(axis_label("logg"))
    if color is not None and mappable is not None:
        fig.colorbar(mappable, ax=list(axes), label=axis_label(color), pad=0.02)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


# ----------------------------------------------------------------------------- saliency
_GREEK = "αβγδε"
_SERIES = {2: "H", 3: "Pa", 4: "Br"}
_REFERENCE_STARS = ((5772.0, 4.438), (4500.0, 2.0), (8000.0, 4.0))
"""Sun, K giant, A dwarf: a line's strength is its largest in any of them."""


def _hydrogen_name(lower: int, upper: int) -> str:
    step = upper - lower
    return _SERIES[lower] + (_GREEK[step - 1] if step <= len(_GREEK) else str(upper))


@lru_cache(maxsize=1)
def _line_catalogue() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vacuum wavelength (Angstrom), species name and strength index of the generator's
    real lines (atomic, hydrogen, molecular; not the random forest), sorted by wavelength.
    """
    from starlearn.synth import linelist, physics

    atomic, molecular, hydrogen = (linelist.atomic_lines(), linelist.molecular_lines(),
                                   linelist.hydrogen_lines())
    h_species = physics.SPECIES_INDEX["H I"]
    wave = np.concatenate([atomic.wave, molecular.wave, hydrogen.wave])
    species = np.concatenate([atomic.species, molecular.species,
                              np.full(len(hydrogen), h_species)]).astype(int)
    chi = np.concatenate([atomic.chi, molecular.chi, hydrogen.chi])
    log_gf = np.concatenate([atomic.log_gf, molecular.log_gf, hydrogen.log_gf])
    name = np.array([physics.SPECIES[s] for s in species[:len(atomic) + len(molecular)]]
                    + [_hydrogen_name(int(lo), int(up))
                       for lo, up in zip(hydrogen.lower, hydrogen.upper, strict=True)],
                    dtype=object)
    ref = np.array(_REFERENCE_STARS)
    abund = np.repeat(np.array([v[1] for v in physics.ELEMENTS.values()])[None, :],
                      len(ref), axis=0)
    atm = physics.atmosphere(ref[:, 0], ref[:, 1], abund)
    # Saha-Boltzmann line-strength index: log(gf lambda N_species / U) - theta chi
    strength = (atm.log_species[:, species] - atm.theta[:, None] * chi[None, :]
                + log_gf[None, :] + np.log10(wave)[None, :]).max(axis=0)
    order = np.argsort(wave, kind="stable")
    return wave[order], name[order], strength[order]


def strong_lines(wave_min: float, wave_max: float, n: int | None = None
                 ) -> list[tuple[float, str, float]]:
    """The strongest lines of the synthetic generator's line list in a wavelength range.

    Parameters
    ----------
    wave_min, wave_max : range, vacuum Angstrom
    n : how many (default: all)

    Returns
    -------
    list of (vacuum wavelength in Angstrom, species, strength index), strongest first.
    Species are spectroscopic names ("Fe I", "Ca II", "CO"; hydrogen as "Hα", "Paδ",
    "Br11"). The strength index is log10(gf λ N/U) − θχ of the line's species in the
    generator's one-layer atmosphere (:func:`starlearn.synth.physics.atmosphere`), the
    largest of a solar dwarf, a K giant (4,500 K, log g 2) and an A dwarf (8,000 K): a
    ranking, not a depth. The lines are those of :func:`starlearn.synth.linelist.
    atomic_lines` (literature wavelengths), :func:`~starlearn.synth.linelist.
    hydrogen_lines` and :func:`~starlearn.synth.linelist.molecular_lines`; the seeded
    weak-line forest is left out (its wavelengths are random, not real transitions).

    Examples
    --------
    >>> [(round(w, 1), s) for w, s, _ in strong_lines(3900, 4000, 2)]
    [(3934.8, 'Ca II'), (3969.6, 'Ca II')]
    """
    wave, name, strength = _line_catalogue()
    sel = np.flatnonzero((wave >= wave_min) & (wave <= wave_max))
    sel = sel[np.argsort(-strength[sel], kind="stable")][:n]
    return [(float(wave[i]), str(name[i]), float(strength[i])) for i in sel]


def _pick_lines(wave: np.ndarray, row: np.ndarray | None, n: int, min_sep: float
                ) -> list[tuple[float, str]]:
    """Up to ``n`` strong lines in the range of ``wave``, ranked by ``row`` (saliency) at
    the line among the 4 n (at least 20) strongest, or by strength without ``row``; at
    least ``min_sep`` apart."""
    candidates = strong_lines(float(np.nanmin(wave)), float(np.nanmax(wave)), max(4 * n, 20))
    if row is not None and candidates:
        peak = float(np.nanmax(row)) or 1.0
        pix = np.abs(wave[None, :] - np.array([w for w, _, _ in candidates])[:, None]
                     ).argmin(axis=1)
        score = [float(np.nanmax(row[max(p - 2, 0):p + 3])) / peak for p in pix]
        order = sorted(range(len(candidates)), key=lambda c: -score[c])
        candidates = [candidates[c] for c in order]
    chosen: list[tuple[float, str]] = []
    for w, name, _ in candidates:
        if len(chosen) == n:
            break
        if all(abs(w - c) >= min_sep for c, _ in chosen):
            chosen.append((w, name))
    return chosen


def _mark_lines(ax: Any, lines: Sequence[tuple[float, str]], y0: float, y1: float) -> None:
    for w, name in lines:
        ax.axvline(w, color="0.6", lw=0.4, ls=":", zorder=0)
        ax.plot([w, w], [y0, y0 + 0.35 * (y1 - y0)], color="0.2", lw=0.6)
        ax.text(w, y0 + 0.45 * (y1 - y0), name, rotation=90, ha="center", va="bottom",
                fontsize=6.5, color="0.1", gid="line-id")


def plot_saliency(wave: np.ndarray, sal: np.ndarray, names: Sequence[str],
                  path: str | PathLike | None = None, *,
                  mean_spectrum: np.ndarray | None = None, n_lines: int = 8,
                  flux_label: str = "mean " + FLUX_LABEL) -> Figure:
    """Where a network looks: one panel per label of mean |d label / d flux| against
    vacuum wavelength, normalised to its peak, with the strongest lines identified.

    Parameters
    ----------
    wave : (n_pixels,) vacuum Angstrom (``regressor.wave_``)
    sal : (n_labels, n_pixels) from :func:`starlearn.evaluate.saliency.saliency`
    names : label names
    path : file to write (optional)
    mean_spectrum : (n_pixels,) drawn in a panel of its own above the saliency panels
    n_lines : lines to identify per panel (0: none): of the 4 n (at least 20) strongest
        lines in range (:func:`strong_lines`), those where this label's saliency within
        2 pixels is highest, at least 1.4 label heights apart so no two labels overlap
    flux_label : label of the mean-spectrum axis

    Returns
    -------
    Figure.
    """
    wave = np.asarray(wave, dtype=np.float64)
    sal = np.asarray(sal, dtype=np.float64)
    rows = len(names) + (mean_spectrum is not None)
    fig = _new_figure(11, 2.2 * rows + 0.6)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    if mean_spectrum is not None:
        axes[0].plot(wave, mean_spectrum, lw=0.5, color="0.3")
        axes[0].set_ylabel(flux_label)
        axes = axes[1:]
    span = float(np.nanmax(wave) - np.nanmin(wave)) or 1.0
    # vertical 6.5 pt labels, 1.4 times their height apart, on an axes ~0.85 figure wide
    min_sep = 1.4 * 6.5 / (0.85 * 72 * fig.get_figwidth()) * span
    for ax, name, row in zip(axes, names, sal, strict=True):
        ax.plot(wave, row / (np.nanmax(row) or 1.0), lw=0.6, color="C3")
        ax.set_ylim(0.0, 1.55)
        ax.set_yticks([0.0, 0.5, 1.0])
        ax.set_ylabel(f"{_symbol_unit(name)[0]} saliency")
        if n_lines > 0:
            _mark_lines(ax, _pick_lines(wave, row, n_lines, min_sep), 1.05, 1.55)
    axes[-1].set_xlabel(WAVELENGTH_LABEL)
    axes[-1].set_xlim(float(np.nanmin(wave)), float(np.nanmax(wave)))
    fig.suptitle("where the network looks: mean |∂label/∂flux|, normalised to its peak",
                 fontsize=10)
    return _finish(fig, path)


# ---------------------------------------------------------------------------- embedding
_METHOD_AXES = {"tsne": "t-SNE", "pca": "PC"}


def plot_embedding(xy: np.ndarray, color: np.ndarray, path: str | PathLike | None = None,
                   *, label: str = "", title: str = "", groups: Sequence[str] | None = None,
                   method: str | None = None) -> Figure:
    """Scatter plot of a 2-D embedding coloured by a value (or by group names).

    ``label`` names the colour (a label name gets its unit, :func:`axis_label`);
    ``method`` (``"tsne"`` or ``"pca"``) names the axes. Returns the Figure; writes it to
    ``path`` when given.
    """
    fig = _new_figure(6, 5)
    ax = fig.subplots()
    if groups is not None:
        for name in dict.fromkeys(groups):
            sel = np.asarray(groups) == name
            ax.scatter(xy[sel, 0], xy[sel, 1], s=5, alpha=0.6, lw=0, label=name)
        ax.legend(fontsize=8, markerscale=3)
    else:
        points = ax.scatter(xy[:, 0], xy[:, 1], c=color, s=5, lw=0, cmap="viridis")
        fig.colorbar(points, ax=ax, label=axis_label(label) if label else "")
    ax.set_xticks([])
    ax.set_yticks([])
    if method is not None:
        axis = _METHOD_AXES.get(method, method)
        ax.set_xlabel(f"{axis} 1")
        ax.set_ylabel(f"{axis} 2")
    ax.set_title(title, fontsize=10)
    return _finish(fig, path)
