"""DomainAdapter: make spectra of one instrument look like those of another.

The emission-line-star work trained on Ondřejov 2-m spectra (R ~ 13,000) and classified
LAMOST low-resolution spectra (R ~ 1,800): the network sees the line shapes of the training
instrument, so the training spectra are first brought to the target's resolution ("Gaussian
blur"), sampling, wavelength convention and noise level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starlearn.grid import Grid, air_to_vacuum
from starlearn.preprocess.base import Transform, _check_number
from starlearn.preprocess.resolution import DegradeResolution
from starlearn.spectra import SpectrumSet

__all__ = ["DomainAdapter", "median_snr"]


def median_snr(spectra: SpectrumSet, step: int = 1) -> np.ndarray:
    """Median S/N per pixel of each spectrum (``|flux| * sqrt(ivar)`` over good pixels; 0 for
    a spectrum without good pixels); ``step > 1`` takes every step-th pixel only (faster,
    for large sets)."""
    cols = slice(None, None, max(1, int(step)))
    mask, ivar, flux = spectra.mask[:, cols], spectra.ivar[:, cols], spectra.flux[:, cols]
    good = ~mask & (ivar > 0)
    values = np.where(good, np.abs(flux) * np.sqrt(np.maximum(ivar, 0)), np.nan)
    out = np.zeros(len(spectra))
    has = good.any(axis=1)
    out[has] = np.nanmedian(values[has], axis=1)
    return out


class DomainAdapter(Transform):
    """Bring source-instrument spectra to a target instrument's resolution, grid and noise.

    Steps, in order:

    1. air to vacuum wavelengths (``source_air=True``; starlearn readers already give vacuum);
    2. Gaussian degradation from ``r_source`` to ``r_target`` and flux-conserving
       resampling onto ``target_grid`` (if given), as one operator
       (:class:`DegradeResolution` with ``grid``), so that the errors are right;
    3. (the resampling is part of step 2);
    4. noise matching: each spectrum gets a target S/N (``target_snr``) and, if its own
       median S/N per pixel is higher, white Gaussian noise with
       ``sigma = level * sqrt(1/snr_target**2 - 1/snr_now**2)`` (``level`` = median |flux|)
       is added and ivar lowered accordingly; noisier spectra are left as they are.

    Parameters
    ----------
    r_source, r_target : float
        Resolving powers R = lambda / FWHM of the source and target instruments,
        ``r_target < r_source``.
    target_grid : str, Grid or None
        The target's wavelength grid (preset name or Grid); None keeps the sampling.
    target_snr : None, float, (lo, hi) or a sequence of more than two floats
        Median S/N per pixel wanted: one value, a log-uniform range, or an empirical
        sample (e.g. ``median_snr(target_spectra)``) drawn with replacement. None skips
        noise matching.
    source_air : bool
        The source wavelengths are in air.
    seed : int
        Seed of the S/N draws and the noise (spectrum ``i`` uses ``(seed, i)``).

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import Grid, SpectrumSet
    >>> w = Grid.log_uniform(6400.0, 6700.0, n_pix=4000).wave
    >>> line = 1 - 0.6 * np.exp(-0.5 * ((w - 6564.6) / (6564.6 / 13000 / 2.3548)) ** 2)
    >>> s = SpectrumSet(wave=w, flux=line[None], ivar=np.full((1, 4000), 1e4))
    >>> out = DomainAdapter(r_source=13000, r_target=1800).transform(s)
    >>> bool(out.flux.min() > 0.9)
    True
    """

    def __init__(self, *, r_source: float, r_target: float,
                 target_grid: str | Grid | None = None,
                 target_snr: float | Sequence[float] | None = None,
                 source_air: bool = False, seed: int = 0) -> None:
        self.r_source = r_source
        self.r_target = r_target
        self.target_grid = target_grid
        self.target_snr = target_snr
        self.source_air = source_air
        self.seed = seed

    def _validate_params(self) -> None:
        who = "DomainAdapter"
        _check_number(self.r_source, "r_source", who, low=0.0, low_open=True)
        _check_number(self.r_target, "r_target", who, low=0.0, low_open=True)
        if not self.r_target < self.r_source:
            raise ValueError(f"{who}: 'r_target' must be lower than 'r_source' (resolution "
                             f"can only be degraded), got r_source={self.r_source}, "
                             f"r_target={self.r_target}")
        if self.target_snr is not None:
            values = np.atleast_1d(np.asarray(self.target_snr, dtype=float))
            if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
                raise ValueError(f"{who}: 'target_snr' must be positive numbers, "
                                 f"got {self.target_snr!r}")
        _check_number(self.seed, "seed", who, low=0, integer=True)

    def _draw_snr(self, n: int) -> np.ndarray:
        values = np.atleast_1d(np.asarray(self.target_snr, dtype=float))
        out = np.empty(n)
        for i in range(n):
            rng = np.random.default_rng([int(self.seed), i, 1])
            if values.size == 1:
                out[i] = values[0]
            elif values.size == 2:
                out[i] = np.exp(rng.uniform(*np.log(np.sort(values))))
            else:
                out[i] = values[rng.integers(values.size)]
        return out

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        if self.source_air:
            spectra = spectra.replace(wave=air_to_vacuum(spectra.wave))
        # blur and rebinning as one operator: the errors of the pixels the blur correlates
        # are propagated through the rebinning exactly
        spectra = DegradeResolution(r_in=self.r_source, r_out=self.r_target,
                                    grid=self.target_grid).transform(spectra)
        if self.target_snr is None:
            return spectra
        good = ~spectra.mask
        now = median_snr(spectra)
        want = self._draw_snr(len(spectra))
        level = np.array([np.median(np.abs(f[g])) if g.any() else 0.0
                          for f, g in zip(spectra.flux, good, strict=True)])
        flux = spectra.flux.astype(np.float64).copy()
        ivar = spectra.ivar.astype(np.float64).copy()
        for i in np.flatnonzero((want < now) & (level > 0)):
            sigma = level[i] * np.sqrt(1.0 / want[i] ** 2 - 1.0 / now[i] ** 2)
            rng = np.random.default_rng([int(self.seed), i])
            g = good[i]
            flux[i, g] += sigma * rng.standard_normal(int(g.sum()))
            ivar[i, g] = 1.0 / (1.0 / ivar[i, g] + sigma**2)
        meta = spectra.meta.copy()
        meta["snr"] = np.where(want < now, want, now)
        return spectra.replace(flux=flux, ivar=ivar, meta=meta)
