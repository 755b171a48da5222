"""DopplerShift: move spectra to the rest frame (or away from it) by their radial velocity."""

from __future__ import annotations

from typing import Any

import numpy as np

from starlearn.grid import C_KMS
from starlearn.preprocess.base import Transform, _check_number
from starlearn.spectra import SpectrumSet

__all__ = ["DopplerShift", "column_kms", "doppler_factor"]


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
