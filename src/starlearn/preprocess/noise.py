"""AddNoise: Gaussian noise at a given signal-to-noise ratio, or from the error spectrum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from starlearn.noise import draw_noise, draw_snr, noise_sigma, redraw_noise, signal_level
from starlearn.preprocess.base import Transform, _check_number
from starlearn.spectra import SpectrumSet

__all__ = ["AddNoise"]


class AddNoise(Transform):
    """Add Gaussian noise to spectra (e.g. to turn noiseless synthetic spectra into observed
    ones, or to augment training data).

    Two modes:

    * ``snr`` given: the noise sigma of spectrum ``i`` at pixel ``j`` is
      ``median(|flux_i| over good pixels) / (snr_i * c_j)``, where ``c`` is ``snr_curve``
      normalised to median 1 (all ones without a curve). ``ivar`` is *replaced* by
      ``1 / sigma**2`` (the input is taken as noiseless) and the S/N drawn for each
      spectrum is written to the meta column ``"snr"``.
    * ``from_ivar=True``: noise is drawn from the existing error spectrum,
      ``sigma = 1 / sqrt(ivar)``, so the variance doubles: ``ivar`` becomes ``ivar / 2`` and
      an existing meta ``"snr"`` column is divided by sqrt(2).

    Parameters
    ----------
    snr : float, (lo, hi) or None
        Median signal-to-noise ratio per pixel (> 0). A pair draws one S/N per spectrum,
        log-uniformly in ``[lo, hi]``. None with ``from_ivar=True``.
    snr_curve : array of shape (n_pixels,) or None
        Relative S/N per pixel (e.g. an exposure-time-calculator curve for the instrument),
        >= 0, normalised to median 1 internally; pixels where it is 0 become masked.
    from_ivar : bool
        Draw the noise from the existing ivar instead (``snr`` and ``snr_curve`` must be
        None).
    seed : int or None
        Seed. With an int the noise of spectrum ``i`` (its index in the SpectrumSet given
        to ``transform``) depends only on ``(seed, i)``, through
        ``numpy.random.default_rng([seed, i])``: the same call gives the same output, and a
        spectrum's noise does not depend on the other spectra (but does on its position: a
        subset gets different noise). None draws fresh noise on every call.

    Notes
    -----
    The S/N convention and the draws are those of :mod:`starlearn.noise`
    (:func:`~starlearn.noise.noise_sigma` with the level ``median |flux|`` as the signal,
    :func:`~starlearn.noise.draw_noise`, :func:`~starlearn.noise.redraw_noise`).
    Stateless. Masked pixels stay masked (flux 0, ivar 0) and get no noise. A spectrum
    whose good pixels all have zero flux has no defined noise level in the ``snr`` mode
    and raises a ValueError. Flux and sigma are in the flux unit of the input; ivar in
    flux units**-2.

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import SpectrumSet
    >>> s = SpectrumSet(wave=np.linspace(5000, 5100, 1000), flux=np.ones((2, 1000)))
    >>> out = AddNoise(snr=(20, 100), seed=1).transform(s)
    >>> bool(np.all((out.meta["snr"] >= 20) & (out.meta["snr"] <= 100)))
    True
    >>> bool(np.allclose(out.ivar[0], out.meta["snr"][0] ** 2))
    True
    """

    def __init__(self, *, snr: float | Sequence[float] | None = None,
                 snr_curve: Any = None, from_ivar: bool = False,
                 seed: int | None = 0) -> None:
        self.snr = snr
        self.snr_curve = snr_curve
        self.from_ivar = from_ivar
        self.seed = seed

    def _validate_params(self) -> None:
        who = "AddNoise"
        if not isinstance(self.from_ivar, (bool, np.bool_)):
            raise TypeError(f"{who}: 'from_ivar' must be True or False, got {self.from_ivar!r}")
        if self.from_ivar:
            if self.snr is not None or self.snr_curve is not None:
                raise ValueError(f"{who}: with from_ivar=True, 'snr' and 'snr_curve' must be "
                                 f"None, got snr={self.snr!r}")
        elif self.snr is None:
            raise ValueError(f"{who}: give 'snr' (a float > 0 or a (lo, hi) pair) or set "
                             "from_ivar=True")
        if self.snr is not None:
            if isinstance(self.snr, (list, tuple, np.ndarray)):
                lo_hi = list(np.asarray(self.snr, dtype=float).ravel())
                if len(lo_hi) != 2 or not (0 < lo_hi[0] <= lo_hi[1] < np.inf):
                    raise ValueError(f"{who}: 'snr' as a range must be (lo, hi) with "
                                     f"0 < lo <= hi, got {self.snr!r}")
            else:
                _check_number(self.snr, "snr", who, low=0.0, low_open=True)
        if self.snr_curve is not None:
            curve = np.asarray(self.snr_curve, dtype=float)
            if (curve.ndim != 1 or not np.all(np.isfinite(curve)) or np.any(curve < 0)
                    or not np.median(curve) > 0):
                raise ValueError(f"{who}: 'snr_curve' must be a 1-D array of finite values "
                                 ">= 0 with a positive median (relative S/N per pixel)")
        if self.seed is not None:
            _check_number(self.seed, "seed", who, low=0, integer=True)

    def _rng(self, i: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([int(self.seed), i])

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        n, n_pix = spectra.flux.shape
        good = ~spectra.mask
        flux = spectra.flux.astype(np.float64)
        meta = spectra.meta.copy()
        if self.from_ivar:
            flux, ivar = redraw_noise(flux, spectra.ivar.astype(np.float64),
                                      [self._rng(i) for i in range(n)])
            if "snr" in meta.colnames:
                meta["snr"] = np.asarray(meta["snr"], dtype=float) / np.sqrt(2.0)
            return spectra.replace(flux=flux, ivar=ivar, meta=meta)

        curve = None
        if self.snr_curve is not None:
            curve = np.asarray(self.snr_curve, dtype=float)
            if curve.shape != (n_pix,):
                raise ValueError(f"AddNoise: 'snr_curve' has {curve.size} values but the "
                                 f"spectra have {n_pix} pixels")
        snr_spec = (tuple(np.asarray(self.snr, dtype=float).ravel())
                    if isinstance(self.snr, (list, tuple, np.ndarray)) else float(self.snr))
        snr = np.zeros(n)
        ivar = np.zeros(flux.shape)
        mask = spectra.mask if curve is None else spectra.mask | (curve <= 0)[None, :]
        level = signal_level(flux, good, empty=0.0)
        for i in range(n):
            rng = self._rng(i)
            snr[i] = draw_snr(snr_spec, rng)
            if not good[i].any():
                continue
            if not level[i] > 0:
                raise ValueError(f"AddNoise: spectrum '{spectra.ids[i]}' has zero median "
                                 "|flux| over its good pixels, so 'snr' defines no noise level")
            # noise independent of the flux, at S/N level / sigma (starlearn.noise)
            sigma = np.where(mask[i], 0.0, noise_sigma(level[i], snr[i], snr_curve=curve))
            flux[i], ivar[i] = draw_noise(flux[i], sigma, rng)
        meta["snr"] = snr
        return spectra.replace(flux=flux, ivar=ivar, mask=mask, meta=meta)
