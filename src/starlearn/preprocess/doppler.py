"""DopplerShift: move spectra to the rest frame (or away from it) by their radial velocity."""

from __future__ import annotations

from typing import Any

import numpy as np

from starlearn.grid import C_KMS
from starlearn.preprocess.base import Transform, _check_number
from starlearn.spectra import SpectrumSet

__all__ = ["DopplerShift", "column_kms", "doppler_factor", "line_velocity"]


def doppler_factor(rv: float | np.ndarray) -> np.ndarray:
    """Doppler factor ``lambda_obs / lambda_rest = 1 + rv / c``, the surveys' convention.

    Survey radial velocities are defined this way: LAMOST and SDSS give ``rv = c z`` with
    ``lambda_obs = lambda_rest (1 + z)``, and APOGEE shifts visits by ``1 + VREL / c``. (The
    relativistic factor ``sqrt((1 + b) / (1 - b))`` differs by ``b**2 / 2``: 0.60 km/s at
    600 km/s; a velocity measured with one and applied with the other would be off by
    that much.)

    Parameters
    ----------
    rv : float or array
        Radial velocity in km/s (positive = receding, redshift), ``|rv| < c``.

    Returns
    -------
    ndarray of float64, same shape as ``rv``.

    Examples
    --------
    >>> doppler_factor([0.0, 299.792458, -2997.92458])  # rv / c = 0, 1e-3, -1e-2
    array([1.   , 1.001, 0.99 ])
    """
    return 1.0 + np.asarray(rv, dtype=np.float64) / C_KMS


def line_velocity(wave: np.ndarray, flux: np.ndarray, good: np.ndarray, line: float, *,
                  search: float = 600.0, half_width: float = 400.0, continuum: float = 1500.0,
                  min_significance: float = 5.0) -> np.ndarray:
    """Radial velocity (km/s) of each spectrum from the symmetry of one strong line.

    The line (vacuum Å) is absorption, emission or both: around it the spectrum is divided
    by a straight continuum through the medians of the two side bands (``search +
    half_width`` to ``continuum`` km/s from the line), and the velocity is the centre
    ``v0`` (within ``search`` km/s of the line) about which the profile ``1 - f / c`` is
    most nearly mirror-symmetric over ``half_width`` km/s on each side (the least
    ``sum (d(v0 + x) - d(v0 - x))**2 / sum (d(v0 + x)**2 + d(v0 - x)**2)``, on a grid of a
    quarter pixel, refined by a parabola). A line
    profile is symmetric about the star's velocity whatever its shape (an absorption core
    with its wings, an emission line, a double-peaked emission), and a centroid is not: it
    is pulled towards the search window's middle by the wings it cuts. At LAMOST
    resolution (R 1,800; 69 km/s pixels) an H-alpha of an FGK or A star gives the velocity
    to about 10-20 km/s: enough to place a line window, not a survey radial velocity.

    Parameters
    ----------
    wave : (n_pix,) or (n, n_pix) vacuum Å
    flux : (n, n_pix)
    good : (n, n_pix) bool, usable pixels
    line : float, vacuum Å
    search, half_width, continuum : km/s (see above)
    min_significance : the line's signal (its summed ``|1 - f / c|`` within ``half_width``
        of the centre, over the noise of that sum from the side bands' scatter) below which
        no velocity is given.

    Returns
    -------
    (n,) float64 km/s; NaN where the region is not covered, has no usable side bands or
    the line is not significant.

    Examples
    --------
    >>> w = np.linspace(6500.0, 6630.0, 1300)
    >>> line = 6564.6 * doppler_factor(45.0)
    >>> f = 1 - 0.6 * np.exp(-0.5 * ((w - line) / 1.5) ** 2)
    >>> round(float(line_velocity(w, f[None], np.ones((1, w.size), bool), 6564.6)[0]))
    45
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    good = np.atleast_2d(np.asarray(good, dtype=bool)) & np.isfinite(flux)
    wave = np.asarray(wave, dtype=np.float64)
    v = (np.broadcast_to(wave, flux.shape) / float(line) - 1.0) * C_KMS  # km/s per pixel
    inner = float(search) + float(half_width)
    side = good & (np.abs(v) >= inner) & (np.abs(v) <= continuum)
    out = np.full(len(flux), np.nan)
    for i in range(len(flux)):
        left, right = side[i] & (v[i] < 0), side[i] & (v[i] > 0)
        near = good[i] & (np.abs(v[i]) < inner)
        if left.sum() < 3 or right.sum() < 3 or near.sum() < 8:
            continue
        lv, rv_ = np.median(v[i, left]), np.median(v[i, right])
        lf, rf = np.median(flux[i, left]), np.median(flux[i, right])
        if not (lf > 0 and rf > 0):
            continue
        cont = lf + (rf - lf) * (v[i] - lv) / (rv_ - lv)
        depth = 1.0 - flux[i] / cont
        bands = depth[side[i]]
        noise = 1.4826 * np.median(np.abs(bands - np.median(bands))) + 1e-12
        vn, dn = v[i, near], depth[near]
        step = max(float(np.median(np.diff(vn))) / 4.0, 0.5)
        x = np.arange(step, half_width + step / 2, step)
        centres = np.arange(-search, search + step / 2, step)
        up = np.interp(centres[:, None] + x, vn, dn)
        down = np.interp(centres[:, None] - x, vn, dn)
        # the asymmetry relative to the profile's power: about 1 where only noise or
        # continuum is in reach (flat is symmetric too), small at the line's centre
        mismatch = (np.sum((up - down) ** 2, axis=1)
                    / np.maximum(np.sum(up**2 + down**2, axis=1), 1e-300))
        k = int(np.argmin(mismatch))
        centre = float(centres[k])
        if 0 < k < centres.size - 1:  # parabola through the minimum and its neighbours
            a, b, c = mismatch[k - 1], mismatch[k], mismatch[k + 1]
            curve = a - 2 * b + c
            if curve > 0:
                centre += 0.5 * step * (a - c) / curve
        # a flat, noisy profile is "symmetric" anywhere: it must hold a line (|noise|
        # alone sums to 0.798 sigma per pixel, with a spread of 0.603 sigma)
        k = max(int(np.sum(np.abs(vn - centre) <= half_width)), 1)
        total = np.abs(dn[np.abs(vn - centre) <= half_width]).sum()
        if (total - 0.798 * noise * k) / (0.603 * noise * np.sqrt(k)) >= min_significance:
            out[i] = centre
    return out


def column_kms(col: Any) -> np.ndarray:
    """A radial-velocity meta column as float64 km/s, NaN where it is masked.

    A column with an astropy unit (m/s, km/s, ...) is converted to km/s; one without a unit
    is taken to be in km/s already.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.table import MaskedColumn
    >>> column_kms(MaskedColumn([1500.0, 0.0], unit=u.m / u.s, mask=[False, True]))
    array([1.5, nan])
    """
    if getattr(col, "unit", None) is not None:
        import astropy.units as u

        rv = np.asarray(col.quantity.to_value(u.km / u.s), dtype=np.float64)
    else:
        rv = np.asarray(col, dtype=np.float64)
    if np.ma.is_masked(col):
        rv = np.where(np.ma.getmaskarray(col), np.nan, rv)
    return rv


class DopplerShift(Transform):
    """Shift each spectrum's wavelengths by its radial velocity (``1 + rv / c``, the surveys'
    convention: :func:`doppler_factor`).

    Only the wavelength array changes; flux, ivar and mask are carried over unchanged (a
    flux density per unit wavelength changes by the same factor as the pixel widths, which
    is ignored here: it is a constant ``1 + O(v/c)`` per spectrum). Use :class:`Resample`
    afterwards to put the shifted spectra back onto a common grid.

    Parameters
    ----------
    rv : float or None
        Radial velocity in km/s (heliocentric or barycentric, whichever frame the data use;
        positive = receding). ``None`` reads one velocity per spectrum from the meta column
        ``rv_column``.
    rv_column : str
        Meta column with the radial velocity in km/s (when ``rv`` is None). A column
        carrying an astropy unit is converted to km/s.
    to_rest : bool
        True divides observed wavelengths by the Doppler factor (to the rest frame);
        False multiplies by it (rest frame to observed, e.g. to simulate a velocity).

    Notes
    -----
    ``lambda_rest = lambda_obs / (1 + rv / c)`` (:func:`doppler_factor`), as the
    synthetic generator shifts its spectra and as the surveys define their velocities. The
    result has a per-spectrum wavelength array of shape (n_spectra, n_pixels) unless the
    input wavelengths were shared and all velocities are equal. A shift to rest by ``v``
    and one from rest (``to_rest=False``) by ``v`` recover the wavelengths to float64
    rounding. Moving to the rest frame by ``rv_column`` sets that column to 0 (the spectra
    are at rest now) and adds the velocity removed to ``<rv_column>_removed``, so that a
    saved pipeline applied again to spectra shifted earlier (packed windows, ``ingest
    --rest-frame``) does not shift them twice.

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import SpectrumSet
    >>> s = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 1.0]], meta={"rv": [29.9792458]})
    >>> round(float(DopplerShift().transform(s).wave[0]), 4)
    4999.5
    """

    def __init__(self, *, rv: float | None = None, rv_column: str = "rv",
                 to_rest: bool = True) -> None:
        self.rv = rv
        self.rv_column = rv_column
        self.to_rest = to_rest

    def _validate_params(self) -> None:
        if self.rv is not None:
            _check_number(self.rv, "rv", "DopplerShift", low=-C_KMS, high=C_KMS)
            if abs(self.rv) >= C_KMS:
                raise ValueError(f"DopplerShift: 'rv' must satisfy |rv| < c = {C_KMS} km/s, "
                                 f"got {self.rv}")
        if not isinstance(self.rv_column, str):
            raise TypeError(f"DopplerShift: 'rv_column' must be a str, got {self.rv_column!r}")
        if not isinstance(self.to_rest, (bool, np.bool_)):
            raise TypeError(f"DopplerShift: 'to_rest' must be True or False, got "
                            f"{self.to_rest!r}")

    def velocities(self, spectra: SpectrumSet) -> np.ndarray:
        """The radial velocity (km/s) used for each spectrum, shape (n_spectra,).

        Examples
        --------
        >>> from starlearn import SpectrumSet
        >>> s = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 1.0], [1.0, 1.0]],
        ...                 meta={"vhelio": [12.5, -3.0]})
        >>> DopplerShift(rv_column="vhelio").velocities(s), DopplerShift(rv=7.0).velocities(s)
        (array([12.5, -3. ]), array([7., 7.]))
        """
        n = len(spectra)
        if self.rv is not None:
            return np.full(n, float(self.rv))
        meta = spectra.meta
        if self.rv_column not in meta.colnames:
            raise ValueError(f"DopplerShift: meta column '{self.rv_column}' (radial velocity, "
                             f"km/s) not found; meta columns are {meta.colnames}. Pass "
                             "rv=<km/s> or rv_column=<column name>")
        rv = column_kms(meta[self.rv_column])
        bad = ~np.isfinite(rv) | (np.abs(rv) >= C_KMS)
        if np.any(bad):
            ids = list(spectra.ids[bad][:5])
            raise ValueError(f"DopplerShift: meta column '{self.rv_column}' has "
                             f"{int(bad.sum())} missing, non-finite or |rv| >= c values "
                             f"(spectra {ids}...); drop those spectra or fill the column")
        return rv

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        rv = self.velocities(spectra)
        factor = 1.0 / doppler_factor(rv) if self.to_rest else doppler_factor(rv)
        if spectra.shared_wave and (len(rv) == 0 or np.all(rv == rv[0])):
            wave = spectra.wave * factor[0] if len(rv) else spectra.wave
        else:
            wave = np.broadcast_to(spectra.wave, spectra.flux.shape) * factor[:, None]
        if self.rv is not None or not self.to_rest:
            return spectra.replace(wave=wave)
        # at rest now: the column says so, so that a second shift (a saved pipeline applied
        # to spectra shifted earlier) moves nothing; what was removed stays in meta
        meta = spectra.meta.copy()
        removed = f"{self.rv_column}_removed"
        before = (np.asarray(meta[removed], dtype=np.float64) if removed in meta.colnames
                  else 0.0)
        meta[removed] = before + rv
        meta[self.rv_column] = np.zeros(len(rv))
        return spectra.replace(wave=wave, meta=meta)
