"""Shared pieces of the continuum-normalisation transforms."""

from __future__ import annotations

import numpy as np

from starlearn.preprocess.base import Transform
from starlearn.spectra import SpectrumSet

__all__ = ["_ContinuumTransform", "divide_continuum", "fill_masked", "segments"]


class _ContinuumTransform(Transform):
    """Base of the continuum normalisers: divide by ``self.continuum(spectra)``.

    ``flux / cont`` and ``ivar * cont**2``; pixels where the continuum is non-finite or
    <= 0 become masked.
    """

    def continuum(self, spectra: SpectrumSet) -> np.ndarray:  # pragma: no cover
        """The continuum (flux units), float64 (n_spectra, n_pixels); NaN where unknown."""
        raise NotImplementedError

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        return divide_continuum(spectra, self.continuum(spectra))


def divide_continuum(spectra: SpectrumSet, cont: np.ndarray) -> SpectrumSet:
    """Normalise ``spectra`` by ``cont`` (n_spectra, n_pixels); see _ContinuumTransform."""
    cont = np.asarray(cont, dtype=np.float64)
    ok = np.isfinite(cont) & (cont > 0) & ~spectra.mask
    flux = np.divide(spectra.flux, cont, out=np.zeros(cont.shape), where=ok)
    ivar = np.where(ok, spectra.ivar * np.where(ok, cont, 0.0) ** 2, 0.0)
    bad = ~ok | ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar <= 0)
    flux[bad] = 0.0
    ivar[bad] = 0.0
    return spectra.replace(flux=flux, ivar=ivar, mask=bad)


def fill_masked(flux: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Fill bad pixels by linear interpolation between the nearest good ones.

    Beyond the first/last good pixel the nearest good value is repeated. A spectrum with no
    good pixel is returned as NaN. Shapes (n_spectra, n_pixels); returns float64.

    Examples
    --------
    >>> import numpy as np
    >>> fill_masked(np.array([[1.0, 0.0, 3.0, 0.0], [5.0, 6.0, 7.0, 8.0]]),
    ...             np.array([[True, False, True, False], [False] * 4]))
    array([[ 1.,  2.,  3.,  3.],
           [nan, nan, nan, nan]])
    """
    out = np.array(flux, dtype=np.float64)
    x = np.arange(out.shape[1])
    for i in range(out.shape[0]):
        gi = good[i]
        if gi.all():
            continue
        if not gi.any():
            out[i] = np.nan
            continue
        out[i, ~gi] = np.interp(x[~gi], x[gi], out[i, gi])
    return out


def segments(bad: np.ndarray, wave: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """Contiguous pixel ranges ``[lo, hi)`` separated by gaps.

    A gap is a run of at least ``min_gap`` consecutive bad pixels, or a jump in wavelength
    larger than 10 times the median pixel step. Leading and trailing bad runs of any length
    are dropped. Ranges that contain no good pixel are left out.

    Parameters
    ----------
    bad : bool array (n_pixels,)
    wave : array (n_pixels,)
        Wavelength (Angstrom), increasing.
    min_gap : int
        Shortest run of bad pixels that splits the spectrum.

    Examples
    --------
    >>> import numpy as np
    >>> bad = np.zeros(20, dtype=bool)
    >>> bad[:2] = bad[8:12] = bad[15] = True  # a leading run, a gap, one bad pixel
    >>> segments(bad, np.arange(20.0), min_gap=3)
    [(2, 8), (12, 20)]
    """
    n = bad.size
    good_idx = np.flatnonzero(~bad)
    if good_idx.size == 0:
        return []
    steps = np.diff(wave)
    jump = steps > 10 * np.median(steps) if steps.size else np.zeros(0, bool)
    # split between consecutive good pixels i < j when the bad run between them is long
    # enough, or when a wavelength jump lies between them
    cjump = np.concatenate([[0], np.cumsum(jump)])
    a, b = good_idx[:-1], good_idx[1:]
    split = ((b - a - 1) >= min_gap) | (cjump[b] != cjump[a])
    starts = np.concatenate([[good_idx[0]], b[split]])
    ends = np.concatenate([a[split], [good_idx[-1]]]) + 1
    return [(int(lo), int(min(hi, n))) for lo, hi in zip(starts, ends, strict=True)]
