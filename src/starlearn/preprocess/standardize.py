"""Standardize: per-pixel zero mean and unit variance over the training set."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from starlearn.preprocess.base import Transform, _check_fitted_wave, _require_shared_wave
from starlearn.spectra import SpectrumSet

__all__ = ["Standardize"]

_REL_FLOOR = 1e-8


class Standardize(Transform):
    """Scale each pixel to zero mean and unit standard deviation over the training set.

    ``transform``: ``flux' = (flux - mean_) / scale_`` and ``ivar' = ivar * scale_**2``;
    ``inverse_transform`` undoes it. Masked pixels stay masked.

    Attributes
    ----------
    mean_ : ndarray of float64, shape (n_pixels,)
        Mean flux per pixel over the good (unmasked, ivar > 0) training pixels; 0 where a
        pixel has no good value.
    scale_ : ndarray of float64, shape (n_pixels,)
        Standard deviation per pixel over the good training pixels. It is 1 where a pixel
        has fewer than two good values or a standard deviation below
        ``1e-8 * max(1, |mean|)`` (a constant pixel), so that no division by zero occurs.
    n_good_ : ndarray of int64, shape (n_pixels,)
        Number of good training values per pixel.
    wave_ : ndarray of float64, shape (n_pixels,)
        The wavelength grid seen in ``fit`` (vacuum Angstrom); ``transform`` requires the
        same grid.

    Notes
    -----
    Unweighted statistics (each good spectrum counts once, whatever its ivar). Needs
    spectra on one shared wavelength grid.

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import SpectrumSet
    >>> s = SpectrumSet(wave=[1.0, 2.0], flux=[[1.0, 10.0], [3.0, 10.0]])
    >>> t = Standardize().fit(s)
    >>> t.transform(s).flux.tolist(), t.scale_.tolist()
    ([[-1.0, 0.0], [1.0, 0.0]], [1.0, 1.0])
    """

    _stateful = True
    _state_dtypes: ClassVar[dict[str, Any]] = {
        "mean_": np.float64,
        "scale_": np.float64,
        "n_good_": np.int64,
        "wave_": np.float64,
    }

    def __init__(self) -> None:
        pass

    def _fit(self, spectra: SpectrumSet) -> None:
        _require_shared_wave(spectra, "Standardize")
        good = ~spectra.mask
        flux = np.where(good, spectra.flux, 0.0).astype(np.float64)
        n_good = good.sum(axis=0)
        mean = np.divide(flux.sum(axis=0), n_good, out=np.zeros(spectra.n_pix),
                         where=n_good > 0)
        dev2 = np.where(good, (flux - mean) ** 2, 0.0).sum(axis=0)
        std = np.sqrt(np.divide(dev2, n_good, out=np.zeros(spectra.n_pix), where=n_good > 0))
        floor = _REL_FLOOR * np.maximum(1.0, np.abs(mean))
        self.mean_ = mean
        self.scale_ = np.where((n_good >= 2) & (std > floor), std, 1.0)
        self.n_good_ = n_good.astype(np.int64)
        self.wave_ = np.array(spectra.wave, dtype=np.float64)

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        _check_fitted_wave(np.asarray(self.wave_), spectra, "Standardize")
        flux = (spectra.flux - self.mean_) / self.scale_
        ivar = spectra.ivar * self.scale_**2
        return spectra.replace(flux=flux, ivar=ivar)

    def inverse_transform(self, spectra: SpectrumSet) -> SpectrumSet:
        """Undo :meth:`transform`: ``flux * scale_ + mean_``, ``ivar / scale_**2``."""
        check_is_fitted(self)
        _check_fitted_wave(np.asarray(self.wave_), spectra, "Standardize")
        flux = spectra.flux * self.scale_ + self.mean_
        ivar = spectra.ivar / self.scale_**2
        return spectra.replace(flux=flux, ivar=ivar)
