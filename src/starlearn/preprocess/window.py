"""LineWindow: cut a fixed window around a spectral line, in the star's rest frame."""

from __future__ import annotations

import numpy as np

from starlearn.grid import C_KMS, Grid, air_to_vacuum, get_grid
from starlearn.preprocess.base import Transform, _check_number
from starlearn.preprocess.doppler import (
    DopplerShift,
    column_kms,
    doppler_factor,
    line_velocity,
)
from starlearn.preprocess.resample import Resample
from starlearn.spectra import SpectrumSet

__all__ = ["HALPHA_AIR", "LineWindow", "fit_continuum"]

HALPHA_AIR = 6562.8
"""H-alpha in air (Å), the default line (6564.6 Å in vacuum)."""


CONTINUUM_DEGREES = {"linear": 1, "quadratic": 2}
"""Polynomial degree (in wavelength) of each ``LineWindow(continuum=...)`` option."""


def fit_continuum(wave: np.ndarray, flux: np.ndarray, good: np.ndarray, *, degree: int = 1,
                  edge: float = 0.2, iterations: int = 3, low: float = 2.0,
                  high: float = 4.0) -> np.ndarray:
    """Per-spectrum continuum: a polynomial of ``degree`` in wavelength fitted by least
    squares to the good pixels of the first and last ``edge`` fraction of the window (the
    line-free edges), with ``iterations`` rounds of clipping of pixels more than ``low``
    robust sigmas below (metal lines, telluric lines) or ``high`` above (cosmic rays) the
    fit.

    Parameters
    ----------
    wave : ndarray, (n_pixels,)
        Wavelengths (Å) shared by the spectra.
    flux : ndarray, (n_spectra, n_pixels)
        Flux in any unit (continuum-normalised or flux-calibrated).
    good : ndarray of bool, (n_spectra, n_pixels)
        Usable pixels.

    Returns
    -------
    ndarray, (n_spectra, n_pixels)
        The continuum on every pixel; NaN for a spectrum with fewer than ``degree + 2``
        good pixels in either edge.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.linspace(6460.0, 6670.0, 140)
    >>> slope = 2.0 + 0.01 * (w - 6460.0)
    >>> line = 1 - 0.5 * np.exp(-0.5 * ((w - 6565.0) / 5.0) ** 2)
    >>> c = fit_continuum(w, (slope * line)[None], np.ones((1, 140), bool))
    >>> bool(np.allclose(c[0], slope))
    True
    """
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    good = np.asarray(good, dtype=bool) & np.isfinite(flux)
    n, n_pix = flux.shape
    k = max(degree + 2, round(edge * n_pix))
    edges = np.zeros(n_pix, dtype=bool)
    edges[:k] = edges[n_pix - k:] = True
    x = (wave - wave.mean()) / max(0.5 * (wave[-1] - wave[0]), 1e-30)   # in [-1, 1]
    design = np.vander(x, degree + 1, increasing=True)                 # (n_pix, d + 1)
    y = np.where(good, flux, 0.0)
    use = good & edges
    enough = ((use[:, :k].sum(axis=1) >= degree + 2)
              & (use[:, n_pix - k:].sum(axis=1) >= degree + 2))
    fit = np.full((n, n_pix), np.nan)
    if not enough.any():
        return fit
    rows = np.flatnonzero(enough)
    y, use = y[rows], use[rows]
    scale = np.nanmedian(np.where(use, np.abs(y), np.nan), axis=1)
    scale = np.where(scale > 0, scale, 1.0)[:, None]
    y = y / scale
    ridge = 1e-9 * np.eye(degree + 1)
    for it in range(iterations + 1):
        w = use.astype(np.float64)
        lhs = np.einsum("np,pi,pj->nij", w, design, design) + ridge
        rhs = np.einsum("np,pi,np->ni", w, design, y)
        coef = np.linalg.solve(lhs, rhs[..., None])[..., 0]
        model = coef @ design.T
        if it == iterations:
            break
        resid = np.where(use, y - model, np.nan)
        resid -= np.nanmedian(resid, axis=1, keepdims=True)   # lines pull the fit down
        sigma = 1.4826 * np.nanmedian(np.abs(resid), axis=1)
        sigma = np.maximum(np.nan_to_num(sigma, nan=0.0), 1e-4)[:, None]
        keep = use & (resid > -low * sigma) & (resid < high * sigma)
        # never clip an edge below what the fit needs
        ok = ((keep[:, :k].sum(axis=1) >= degree + 2)
              & (keep[:, n_pix - k:].sum(axis=1) >= degree + 2))
        use = np.where(ok[:, None], keep, use)
    fit[rows] = model * scale
    return fit


def _columns(spectra: SpectrumSet, cols: slice) -> SpectrumSet:
    """The pixels ``cols`` of spectra on one shared grid."""
    return spectra.replace(wave=spectra.wave[cols], flux=spectra.flux[:, cols],
                           ivar=spectra.ivar[:, cols], mask=spectra.mask[:, cols])


class LineWindow(Transform):
    """Resample each spectrum onto a window of ``2 * half_width`` pixels centred on a line.

    The spectrum is first shifted to its rest frame by its radial velocity (meta column
    ``rv_column``, km/s), then resampled (flux-conserving, :class:`Resample`) onto a
    log-uniform window grid with the pixel step of ``sampling``. The classification work on
    emission-line stars used 140 pixels around H-alpha on the LAMOST grid: the defaults.

    Parameters
    ----------
    line : float
        Central wavelength of the line (Å), in air when ``air`` is True (as optical line
        lists give it), else in vacuum.
    air : bool
        ``line`` is an air wavelength (converted to vacuum; spectra are always vacuum).
    half_width : int
        Pixels on each side of the line (the window has ``2 * half_width`` pixels).
    sampling : str, Grid, dict or float
        Pixel step: a grid preset name, Grid or ``Grid.to_dict()`` dictionary (its step), or
        a velocity step in km/s.
    rv_column : str or None
        Meta column with each spectrum's radial velocity (km/s, or converted to km/s from
        the column's astropy unit; masked entries count as missing); None = the spectra
        are already at rest.
    min_coverage : float
        Fraction of the window's pixels that must hold good data, in (0, 1].
    on_missing : {"raise", "mask"}
        For a spectrum that does not cover the window (or has no finite radial velocity,
        with ``missing_rv="raise"``): raise ``ValueError`` naming it and its wavelength
        range, or return it fully masked (ivar 0), for batch runs that flag such spectra
        instead of stopping.
    continuum : {None, "linear", "quadratic"}
        Divide each window by its own continuum, a polynomial in wavelength fitted to the
        good pixels of the window's line-free edges (the outer ``continuum_edge`` fraction
        on each side, metal and telluric lines clipped; :func:`fit_continuum`), so that
        continuum-normalised and flux-calibrated spectra (LAMOST, SDSS, raw counts) with
        any slope across the line come out on one scale (ivar is scaled with the flux). A
        window whose continuum cannot be fitted or is not positive is returned fully
        masked. None keeps the flux as it is.
    continuum_edge : float
        Fraction of the window on each side used for the continuum fit, in (0, 0.49].
    missing_rv : {"raise", "rest", "measure"}
        Spectra without a radial velocity (no ``rv_column`` meta column at all, or a
        masked / non-finite entry): ``"raise"`` (a missing column is a ``ValueError``,
        missing entries follow ``on_missing``); ``"rest"``: take them as already at rest
        (rv = 0 km/s) and flag them in the boolean meta column ``rv_assumed`` of the
        output (what a model trained on synthetic spectra, whose ``rv`` column is all
        zeros, needs to classify real files that carry no velocity, e.g. the Ondřejov
        archive's); ``"measure"``: measure the velocity from the line itself
        (:func:`~starlearn.preprocess.doppler.line_velocity`, the centroid of the
        absorption or emission; meta ``rv_measured`` True and the velocity in the
        ``rv_column``), and take as at rest, flagged ``rv_assumed``, the spectra whose
        line is too weak to give one.

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import Grid, SpectrumSet
    >>> w = Grid.log_uniform(6000.0, 7000.0, n_pix=3000).wave
    >>> s = SpectrumSet(wave=w, flux=np.ones((2, 3000)))
    >>> out = LineWindow(rv_column=None).transform(s)
    >>> out.n_pix, round(float(out.wave[70] * out.wave[69]) ** 0.5, 1)
    (140, 6564.6)
    """

    def __init__(self, *, line: float = HALPHA_AIR, air: bool = True, half_width: int = 70,
                 sampling: str | Grid | dict | float = "lamost", rv_column: str | None = "rv",
                 min_coverage: float = 0.9, on_missing: str = "raise",
                 continuum: str | None = None, continuum_edge: float = 0.2,
                 missing_rv: str = "raise") -> None:
        self.line = line
        self.air = air
        self.half_width = half_width
        self.sampling = sampling
        self.rv_column = rv_column
        self.min_coverage = min_coverage
        self.on_missing = on_missing
        self.continuum = continuum
        self.continuum_edge = continuum_edge
        self.missing_rv = missing_rv

    def _validate_params(self) -> None:
        who = "LineWindow"
        _check_number(self.line, "line", who, low=0.0, low_open=True)
        if not isinstance(self.air, (bool, np.bool_)):
            raise TypeError(f"{who}: 'air' must be True or False, got {self.air!r}")
        if (not isinstance(self.half_width, (int, np.integer)) or isinstance(self.half_width, bool)
                or self.half_width < 1):
            raise ValueError(f"{who}: 'half_width' must be a positive integer, "
                             f"got {self.half_width!r}")
        if self.rv_column is not None and not isinstance(self.rv_column, str):
            raise TypeError(f"{who}: 'rv_column' must be a meta column name (str) or None, "
                            f"got {self.rv_column!r}")
        _check_number(self.min_coverage, "min_coverage", who, low=0.0, high=1.0,
                      low_open=True)
        if self.on_missing not in ("raise", "mask"):
            raise ValueError(f"{who}: 'on_missing' must be 'raise' or 'mask', "
                             f"got {self.on_missing!r}")
        if self.continuum is not None and self.continuum not in CONTINUUM_DEGREES:
            raise ValueError(f"{who}: 'continuum' must be None, 'linear' or 'quadratic', "
                             f"got {self.continuum!r}")
        _check_number(self.continuum_edge, "continuum_edge", who, low=0.0, high=0.49,
                      low_open=True)
        if self.missing_rv not in ("raise", "rest", "measure"):
            raise ValueError(f"{who}: 'missing_rv' must be 'raise', 'rest' or 'measure', "
                             f"got {self.missing_rv!r}")
        if isinstance(self.sampling, (str, Grid, dict)):
            try:
                get_grid(self.sampling)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{who}: 'sampling' must be a grid preset name, a Grid, a "
                                 f"Grid dict or a velocity step in km/s: {exc}") from None
        else:
            _check_number(self.sampling, "sampling", who, low=0.0, low_open=True)

    @property
    def line_vacuum(self) -> float:
        """The line's vacuum wavelength (Å)."""
        return float(air_to_vacuum(self.line)) if self.air else float(self.line)

    @property
    def grid(self) -> Grid:
        """The window grid (vacuum Å, rest frame).

        Examples
        --------
        >>> g = LineWindow().grid  # 140 LAMOST pixels around H-alpha
        >>> g.n_pix, round(g.start, 1), round(g.stop, 1), round(g.velocity_step, 2)
        (140, 6460.4, 6670.5, 69.03)
        >>> LineWindow(line=8542.09, half_width=50, sampling=10.0).grid.n_pix
        100
        """
        if isinstance(self.sampling, (str, Grid, dict)):
            dlog10 = get_grid(self.sampling).dlog10
        else:
            dlog10 = float(np.log10(1.0 + float(self.sampling) / C_KMS))
        n = int(self.half_width)
        return Grid(log10_start=float(np.log10(self.line_vacuum) - (n - 0.5) * dlog10),
                    dlog10=dlog10, n_pix=2 * n, name=f"window-{self.line:g}")

    def _crop(self, spectra: SpectrumSet, rv: np.ndarray) -> SpectrumSet:
        """The pixels that can reach the window at velocities ``rv`` (km/s), with three
        pixels to spare on each side (so that the pixel edges inside are the ones of the
        whole spectrum and the result is the same): the shift and the resampling then
        touch ~150 pixels per spectrum instead of thousands. Spectra with their own
        wavelengths are left whole."""
        if not spectra.shared_wave or len(spectra) == 0:
            return spectra
        edges = self.grid.edges
        factor = doppler_factor(np.asarray(rv, dtype=float))
        lo = np.searchsorted(spectra.wave, edges[0] * factor.min()) - 3
        hi = np.searchsorted(spectra.wave, edges[-1] * factor.max()) + 3
        lo, hi = max(0, int(lo)), min(spectra.n_pix, int(hi))
        if hi - lo < 2 or hi - lo >= spectra.n_pix:
            return spectra
        return _columns(spectra, slice(lo, hi))

    def _normalise(self, out: SpectrumSet) -> SpectrumSet:
        """``out`` divided by its fitted continuum (see ``continuum``)."""
        good = ~out.mask & (out.ivar > 0)
        cont = fit_continuum(out.wave, out.flux, good,
                             degree=CONTINUUM_DEGREES[self.continuum],
                             edge=float(self.continuum_edge))
        ok = np.all(np.isfinite(cont) & ((cont > 0) | ~good), axis=1)
        cont = np.where(ok[:, None] & (cont > 0), cont, 1.0)
        flux = np.where(ok[:, None], out.flux / cont, 0.0)
        ivar = np.where(ok[:, None], out.ivar * cont**2, 0.0)
        mask = out.mask | ~ok[:, None]
        return out.replace(flux=flux.astype(out.flux.dtype), ivar=ivar.astype(out.ivar.dtype),
                           mask=mask)

    def _measured(self, spectra: SpectrumSet, rv: np.ndarray) -> tuple[np.ndarray,
                                                                         np.ndarray]:
        """(rv with the missing entries measured from the line where it allows, which
        were measured) for ``missing_rv="measure"``."""
        missing = ~np.isfinite(rv)
        measured = np.zeros(len(spectra), dtype=bool)
        if not missing.any():
            return rv, measured
        part = spectra[np.flatnonzero(missing)]
        if part.shared_wave:  # the pixels within the measurement's reach (1,500 km/s)
            near = np.abs(part.wave / self.line_vacuum - 1.0) * C_KMS <= 1600.0
            cols = np.flatnonzero(near)
            if cols.size == 0:
                return rv, measured
            part = _columns(part, slice(cols[0], cols[-1] + 1))
        good = ~part.mask & (part.ivar > 0)
        found = line_velocity(part.wave, part.flux, good, self.line_vacuum)
        rv = rv.copy()
        rv[missing] = found
        measured[missing] = np.isfinite(found)
        return rv, measured

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        assumed = None   # (n,) bool: no radial velocity, taken as at rest (missing_rv="rest")
        measured = None  # (n,) bool: velocity measured from the line (missing_rv="measure")
        rest = self.missing_rv in ("rest", "measure")
        if self.rv_column is not None and self.rv_column not in spectra.meta.colnames:
            if not rest:
                raise ValueError(f"LineWindow: the spectra have no meta column "
                                 f"'{self.rv_column}' with radial velocities (km/s); give "
                                 "rv_column=None for spectra already at rest, or "
                                 "missing_rv='rest' to take them as at rest with a flag")
            meta = spectra.meta.copy()
            meta[self.rv_column] = np.zeros(len(spectra))
            spectra = spectra.replace(meta=meta)
            assumed = np.ones(len(spectra), dtype=bool)
        if self.rv_column is not None:
            rv = column_kms(spectra.meta[self.rv_column])  # km/s, NaN where masked
            if assumed is not None:  # no column at all: every velocity is missing
                rv = np.full(len(spectra), np.nan)
                assumed = None
            if self.missing_rv == "measure":
                rv, measured = self._measured(spectra, rv)
            known = np.isfinite(rv)
            if rest:
                assumed = ~known if assumed is None else assumed
                known = np.ones(len(spectra), dtype=bool)
            if not known.all() and self.on_missing == "raise":
                i = int(np.flatnonzero(~known)[0])
                raise ValueError(f"LineWindow: spectrum '{spectra.ids[i]}' has no radial "
                                 f"velocity (meta '{self.rv_column}' is {rv[i]}), so the "
                                 "window cannot be placed; use on_missing='mask' to flag such "
                                 "spectra instead")
            meta = spectra.meta.copy()
            meta[self.rv_column] = np.where(np.isfinite(rv), rv, 0.0)
            shifted = DopplerShift(rv_column=self.rv_column).transform(
                self._crop(spectra, meta[self.rv_column]).replace(meta=meta))
        else:
            known = np.ones(len(spectra), dtype=bool)
            shifted = self._crop(spectra, np.zeros(1))
        grid = self.grid
        out = Resample(grid=grid, min_good=0.5).transform(shifted)
        if measured is not None:
            meta = out.meta.copy()
            meta["rv_measured"] = measured
            out = out.replace(meta=meta)
        if assumed is not None or "rv_assumed" in out.meta.colnames:
            meta = out.meta.copy()
            before = (np.asarray(meta["rv_assumed"], dtype=bool) if "rv_assumed"
                      in meta.colnames else np.zeros(len(out), dtype=bool))
            meta["rv_assumed"] = before | (assumed if assumed is not None else False)
            out = out.replace(meta=meta)
        if self.continuum is not None:
            out = self._normalise(out)
        covered = ((~out.mask).mean(axis=1) >= self.min_coverage) & known
        if covered.all():
            return out
        if self.on_missing == "raise":
            i = int(np.flatnonzero(~covered)[0])
            wave = spectra.wave if spectra.wave.ndim == 1 else spectra.wave[i]
            if self.rv_column is not None:  # to its rest frame
                wave = wave / doppler_factor(float(meta[self.rv_column][i]))
            good = ~spectra.mask[i]
            span = (f"{wave[good].min():.1f}-{wave[good].max():.1f} Å" if good.any()
                    else "no good pixels")
            raise ValueError(
                f"LineWindow: spectrum '{spectra.ids[i]}' ({span} in its rest frame) does "
                f"not cover the window {grid.start:.1f}-{grid.stop:.1f} Å around "
                f"{self.line:g} Å (less than {self.min_coverage:.0%} of the window has good "
                f"pixels; {int((~covered).sum())} of {len(spectra)} spectra); "
                "use on_missing='mask' to flag such spectra instead")
        flux, ivar, mask = out.flux.copy(), out.ivar.copy(), out.mask.copy()
        flux[~covered], ivar[~covered], mask[~covered] = 0.0, 0.0, True
        return out.replace(flux=flux, ivar=ivar, mask=mask)
