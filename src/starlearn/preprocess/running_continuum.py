"""RunningPercentileContinuum: continuum from a running percentile filter."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import percentile_filter, uniform_filter1d

from starlearn.preprocess._continuum import _ContinuumTransform, fill_masked
from starlearn.preprocess.base import _check_number
from starlearn.spectra import SpectrumSet

__all__ = ["RunningPercentileContinuum", "running_percentile_continuum"]


def running_percentile_continuum(flux: np.ndarray, good: np.ndarray, *, window: int,
                                 percentile: float, smooth: int) -> np.ndarray:
    """Running-percentile continuum of a batch of spectra (see RunningPercentileContinuum).

    Parameters
    ----------
    flux : array (n_spectra, n_pixels)
    good : bool array (n_spectra, n_pixels)
        True for usable pixels; the others are filled by linear interpolation first.
    window, smooth : int
        Widths in pixels of the percentile filter and of the boxcar smoothing after it.
    percentile : float
        Percentile in [0, 100].

    Returns
    -------
    float64 (n_spectra, n_pixels), NaN for spectra without any good pixel.

    Examples
    --------
    >>> import numpy as np
    >>> cont = 2.0 + np.linspace(0.0, 1.0, 400)  # a sloped continuum and a deep line
    >>> flux = cont * (1 - 0.6 * np.exp(-0.5 * ((np.arange(400) - 200) / 3.0) ** 2))
    >>> est = running_percentile_continuum(flux[None], np.ones((1, 400), dtype=bool),
    ...                                    window=51, percentile=90.0, smooth=51)
    >>> bool(np.all(np.abs(est / cont - 1) < 0.01))
    True
    """
    filled = fill_masked(flux, good)
    empty = ~np.isfinite(filled).all(axis=1)
    filled[empty] = 0.0

    def one_pass(x: np.ndarray) -> np.ndarray:
        # row by row: scipy's 1-D rank filter is much faster than the 2-D one
        c = np.empty_like(x)
        for i, row in enumerate(x):
            c[i] = percentile_filter(row, percentile, size=window, mode="nearest")
        return uniform_filter1d(c, smooth, axis=1, mode="nearest") if smooth > 1 else c

    cont = one_pass(filled)
    # Second pass on the flattened spectrum: a percentile of a sloped continuum is biased by
    # about slope * (percentile / 100 - 1/2) * window; on flux / cont the slope is gone.
    flat_ok = np.all(cont > 0, axis=1) & ~empty
    if np.any(flat_ok):
        ratio = filled[flat_ok] / cont[flat_ok]
        cont[flat_ok] *= one_pass(ratio)
    cont[empty] = np.nan
    return cont


class RunningPercentileContinuum(_ContinuumTransform):
    """Continuum normalisation by a running percentile filter.

    Masked pixels are first filled by linear interpolation from their good neighbours; the
    continuum is then the ``percentile``-th percentile in a running window of ``window``
    pixels (:func:`scipy.ndimage.percentile_filter`), smoothed by a running mean of
    ``smooth`` pixels. The filter is applied twice: the second time to ``flux / cont``,
    which removes the bias a percentile has on a sloped continuum. Flux is divided by the
    continuum and ivar multiplied by its square; pixels where the continuum is <= 0 or
    non-finite become masked.

    Parameters
    ----------
    window : int
        Width of the running window in pixels, odd, >= 3. It should span several line
        widths so that the continuum, not line cores, sets the percentile.
    percentile : float
        Percentile of the flux in the window taken as the continuum level, in (0, 100].
    smooth : int or None
        Width in pixels of the running mean applied after the percentile filter; None uses
        ``window``; 1 switches smoothing off.
    noise_correction : bool
        Subtract the noise's share of the percentile (see Notes).

    Notes
    -----
    Stateless and per spectrum. With noise ``sigma`` the percentile of pure continuum lies
    ``z_p * sigma`` above it (``z_p`` = 1.28 for the 90th percentile): with
    ``noise_correction`` (the default) that is subtracted, ``sigma`` the running median of
    the pixels' noise ``1/sqrt(ivar)`` (ivar must then be the real noise; spectra whose
    median S/N per pixel is below 5, such as those without errors and ivar = 1, are left
    uncorrected). Lines that fill
    more than ``(100 - percentile)`` % of a window pull the estimate down: choose
    ``window`` and ``percentile`` for the data's S/N and line density. Works on
    per-spectrum wavelength arrays too (only pixel indices matter).

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import SpectrumSet
    >>> w = np.linspace(5000, 5500, 500)
    >>> s = SpectrumSet(wave=w, flux=2.0 - 1.5 * np.exp(-0.5 * ((w - 5200) / 1.0) ** 2))
    >>> out = RunningPercentileContinuum(window=51).transform(s)
    >>> round(float(out.flux[0, 0]), 3), round(float(out.flux[0, 200]), 2)
    (1.0, 0.31)
    """

    def __init__(self, *, window: int = 101, percentile: float = 90.0,
                 smooth: int | None = None, noise_correction: bool = True) -> None:
        self.window = window
        self.percentile = percentile
        self.smooth = smooth
        self.noise_correction = noise_correction

    def _validate_params(self) -> None:
        who = "RunningPercentileContinuum"
        _check_number(self.window, "window", who, low=3, integer=True)
        if self.window % 2 != 1:
            raise ValueError(f"{who}: 'window' must be an odd number of pixels >= 3, "
                             f"got {self.window}")
        _check_number(self.percentile, "percentile", who, low=0.0, high=100.0, low_open=True)
        if self.smooth is not None:
            _check_number(self.smooth, "smooth", who, low=1, integer=True)

    def continuum(self, spectra: SpectrumSet) -> np.ndarray:
        """The continuum (flux units), float64 (n_spectra, n_pixels); NaN if unknown."""
        self._validate_params()
        smooth = self.window if self.smooth is None else self.smooth
        cont = running_percentile_continuum(spectra.flux, ~spectra.mask,
                                            window=int(self.window),
                                            percentile=float(self.percentile),
                                            smooth=int(smooth))
        if not self.noise_correction:
            return cont
        # the percentile of pure continuum plus noise sits z_p sigma above it
        from scipy.stats import norm

        good = ~spectra.mask & (spectra.ivar > 0)
        sigma = np.where(good, 1.0 / np.sqrt(np.where(good, spectra.ivar, 1.0)), np.nan)
        local = running_percentile_continuum(np.nan_to_num(sigma), good, window=int(self.window),
                                             percentile=50.0, smooth=int(smooth))
        shift = norm.ppf(float(self.percentile) / 100.0) * np.nan_to_num(local)
        # ivar = 1 of spectra without errors is a weight, not the noise: S/N < 5 is left
        real = np.nanmedian(np.where(good, np.abs(spectra.flux) / sigma, np.nan), axis=1) > 5
        return np.where(real[:, None], cont - shift, cont)
