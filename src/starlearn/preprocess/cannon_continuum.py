"""CannonContinuum: Chebyshev continuum fitted on a fixed set of continuum pixels."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from numpy.polynomial import chebyshev

from starlearn.preprocess._continuum import _ContinuumTransform, segments
from starlearn.preprocess.base import (
    _check_fitted_wave,
    _check_number,
    _require_shared_wave,
)
from starlearn.preprocess.running_continuum import running_percentile_continuum
from starlearn.spectra import SpectrumSet

__all__ = ["CannonContinuum"]

_N_BINS = 10


class CannonContinuum(_ContinuumTransform):
    """The Cannon's continuum normalisation: a Chebyshev fit to fixed continuum pixels.

    In every contiguous segment of the grid an ivar-weighted Chebyshev polynomial of
    ``degree`` is fitted, per spectrum, to the flux at the continuum pixels only, and the
    flux is divided by it (ivar multiplied by its square), as in Ness et al. (2015, ApJ 808,
    16) for APOGEE. Because the pixels are fixed, the normalisation is the same function of
    the data for every star, which is what a data-driven model needs.

    Parameters
    ----------
    continuum_pixels : array of int or bool, or None
        The continuum pixels: indices into the grid, or a boolean mask of shape
        (n_pixels,). None selects them from the training set in ``fit`` (see Notes).
    degree : int
        Degree of the Chebyshev polynomial per segment, >= 0 (the Cannon uses 2-3).
    n_select : int or float
        How many continuum pixels ``fit`` selects: an int >= 1 is a count, a float in
        (0, 1) a fraction of the pixels with data. Ignored when ``continuum_pixels`` is
        given.
    max_deviation : float
        Largest ``|median pseudo-normalised flux - 1|`` of a selected pixel, > 0.
    window, percentile : int, float
        Running-percentile window (pixels, odd) and percentile of the pseudo-normalisation
        used for the selection (:class:`RunningPercentileContinuum`).
    min_gap : int
        Runs of at least this many pixels masked in every training spectrum (or jumps in
        wavelength) separate the segments, >= 1.

    Attributes
    ----------
    continuum_pixels_ : ndarray of int, shape (n_continuum,)
        Sorted indices of the continuum pixels.
    segments_ : ndarray of int, shape (n_segments, 2)
        Half-open pixel ranges ``[lo, hi)`` fitted separately.
    wave_ : ndarray of float, shape (n_pixels,)
        The grid seen in ``fit`` (vacuum Angstrom); ``transform`` requires the same grid.

    Notes
    -----
    Selection criteria (``continuum_pixels=None``): each training spectrum is divided by a
    running-percentile continuum (the *pseudo-normalised* flux ``p``). For each pixel with
    good data in at least half of the training spectra, ``m`` = median of ``p`` over
    spectra and ``s = 1.4826 * median(|p - m|)`` its robust scatter across spectra. A pixel
    is a candidate when ``|m - 1| <= max_deviation``; candidates are ranked by
    ``|m - 1| + s`` (close to 1 and insensitive to the stellar labels). The ``n_select``
    pixels are shared among segments in proportion to their length, and within a segment
    among 10 equal bins so that they span the whole segment; a segment gets at least
    ``degree + 1`` pixels (relaxing ``max_deviation`` if needed). In a spectrum where a
    segment has fewer than ``degree + 1`` good continuum pixels the continuum is unknown and
    the segment is masked.

    The transform needs spectra on one shared wavelength grid, the one seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import SpectrumSet
    >>> w = np.linspace(5000, 5500, 500)
    >>> s = SpectrumSet(wave=w, flux=np.outer([1.0, 2.0], 1 + 1e-3 * (w - 5000)))
    >>> t = CannonContinuum(continuum_pixels=np.arange(0, 500, 10), degree=1).fit(s)
    >>> bool(np.allclose(t.transform(s).flux, 1.0))
    True
    """

    _stateful = True
    _state_dtypes: ClassVar[dict[str, Any]] = {
        "continuum_pixels_": np.int64,
        "segments_": np.int64,
        "wave_": np.float64,
    }

    def __init__(self, *, continuum_pixels: Any = None, degree: int = 3,
                 n_select: int | float = 0.1, max_deviation: float = 0.02, window: int = 101,
                 percentile: float = 90.0, min_gap: int = 10) -> None:
        self.continuum_pixels = continuum_pixels
        self.degree = degree
        self.n_select = n_select
        self.max_deviation = max_deviation
        self.window = window
        self.percentile = percentile
        self.min_gap = min_gap

    def _validate_params(self) -> None:
        who = "CannonContinuum"
        _check_number(self.degree, "degree", who, low=0, integer=True)
        if isinstance(self.n_select, (float, np.floating)):
            _check_number(self.n_select, "n_select", who, low=0.0, high=1.0, low_open=True)
        else:
            _check_number(self.n_select, "n_select", who, low=1, integer=True)
        _check_number(self.max_deviation, "max_deviation", who, low=0.0, low_open=True)
        _check_number(self.window, "window", who, low=3, integer=True)
        if self.window % 2 != 1:
            raise ValueError(f"{who}: 'window' must be an odd number of pixels >= 3, "
                             f"got {self.window}")
        _check_number(self.percentile, "percentile", who, low=0.0, high=100.0, low_open=True)
        _check_number(self.min_gap, "min_gap", who, low=1, integer=True)

    # ------------------------------------------------------------------ fit
    def _fit(self, spectra: SpectrumSet) -> None:
        who = "CannonContinuum"
        _require_shared_wave(spectra, who)
        n_pix = spectra.n_pix
        common_bad = np.all(spectra.mask, axis=0)
        segs = segments(common_bad, spectra.wave, int(self.min_gap))
        if self.continuum_pixels is not None:
            pixels = _as_indices(self.continuum_pixels, n_pix)
        else:
            pixels = self._select(spectra, segs)
        self.continuum_pixels_ = pixels
        self.segments_ = np.asarray(segs, dtype=np.int64).reshape(-1, 2)
        self.wave_ = np.array(spectra.wave, dtype=np.float64)
        d = int(self.degree) + 1
        for lo, hi in self.segments_:
            n_in = np.count_nonzero((pixels >= lo) & (pixels < hi))
            if n_in < d:
                warnings.warn(f"CannonContinuum: segment of pixels [{lo}, {hi}) has {n_in} "
                              f"continuum pixels, fewer than degree + 1 = {d}; it will be "
                              "masked", UserWarning, stacklevel=3)

    def _select(self, spectra: SpectrumSet, segs: list[tuple[int, int]]) -> np.ndarray:
        good = ~spectra.mask
        cont = running_percentile_continuum(spectra.flux, good, window=int(self.window),
                                            percentile=float(self.percentile),
                                            smooth=int(self.window))
        ok = good & np.isfinite(cont) & (cont > 0)
        pn = np.divide(spectra.flux, cont, out=np.full(cont.shape, np.nan), where=ok)
        n = len(spectra)
        enough = ok.sum(axis=0) >= max(1, int(np.ceil(0.5 * n)))
        med = np.full(spectra.n_pix, np.nan)
        scat = np.full(spectra.n_pix, np.nan)
        if np.any(enough):
            sub = pn[:, enough]
            med[enough] = np.nanmedian(sub, axis=0)
            scat[enough] = 1.4826 * np.nanmedian(np.abs(sub - med[enough]), axis=0)
        dev = np.abs(med - 1.0)
        score = np.where(enough, dev + scat, np.inf)
        candidate = enough & (dev <= self.max_deviation)

        total = sum(hi - lo for lo, hi in segs)
        n_total = (round(float(self.n_select) * np.count_nonzero(enough))
                   if isinstance(self.n_select, (float, np.floating)) else int(self.n_select))
        d = int(self.degree) + 1
        chosen: list[np.ndarray] = []
        for lo, hi in segs:
            want = max(d, round(n_total * (hi - lo) / total))
            idx = np.arange(lo, hi)
            bins = np.array_split(idx, min(_N_BINS, idx.size))
            per_bin = int(np.ceil(want / len(bins)))
            pick = []
            for b in bins:
                cb = b[candidate[b]]
                pick.append(cb[np.argsort(score[cb], kind="stable")[:per_bin]])
            sel = np.concatenate(pick)
            if sel.size > want:  # trim the worst to the share of this segment
                sel = sel[np.argsort(score[sel], kind="stable")[:want]]
            if sel.size < d:  # too few candidates: relax max_deviation
                rest = idx[enough[idx] & ~np.isin(idx, sel)]
                extra = rest[np.argsort(score[rest], kind="stable")[:d - sel.size]]
                sel = np.concatenate([sel, extra])
            chosen.append(sel)
        if not chosen:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(chosen)).astype(np.int64)

    # ------------------------------------------------------------------ transform
    def continuum(self, spectra: SpectrumSet) -> np.ndarray:
        """The continuum (flux units), float64 (n_spectra, n_pixels); NaN if unknown."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        _check_fitted_wave(np.asarray(self.wave_), spectra, "CannonContinuum")
        n = len(spectra)
        d = int(self.degree) + 1
        wave = spectra.wave
        pixels = np.asarray(self.continuum_pixels_, dtype=np.int64)
        cont = np.full(spectra.flux.shape, np.nan)
        for lo, hi in np.asarray(self.segments_, dtype=np.int64).reshape(-1, 2):
            cp = pixels[(pixels >= lo) & (pixels < hi)]
            if cp.size < d:
                continue
            w0, w1 = wave[lo], wave[hi - 1]
            t_all = (2.0 * (wave[lo:hi] - w0) / (w1 - w0) - 1.0) if hi - lo > 1 else \
                np.zeros(1)
            a = chebyshev.chebvander(t_all[cp - lo], int(self.degree))  # (m, d)
            wts = np.where(spectra.mask[:, cp], 0.0, spectra.ivar[:, cp].astype(np.float64))
            y = spectra.flux[:, cp].astype(np.float64)
            coef = np.full((n, d), np.nan)
            solvable = np.count_nonzero(wts > 0, axis=1) >= d
            if np.any(solvable):
                wv, yv = wts[solvable], y[solvable]
                mat = np.einsum("nm,mi,mj->nij", wv, a, a)
                rhs = np.einsum("nm,mi->ni", wv * yv, a)
                try:
                    coef[solvable] = np.linalg.solve(mat, rhs[..., None])[..., 0]
                except np.linalg.LinAlgError:
                    for k, row in zip(np.flatnonzero(solvable), range(wv.shape[0]),
                                      strict=True):
                        sw = np.sqrt(wv[row])
                        coef[k] = np.linalg.lstsq(a * sw[:, None], yv[row] * sw,
                                                  rcond=None)[0]
            cont[:, lo:hi] = coef @ chebyshev.chebvander(t_all, int(self.degree)).T
        return cont


def _as_indices(pixels: Any, n_pix: int) -> np.ndarray:
    """Continuum pixels given as indices or a boolean mask -> sorted unique int indices."""
    arr = np.asarray(pixels)
    if arr.dtype == bool:
        if arr.shape != (n_pix,):
            raise ValueError(f"CannonContinuum: boolean 'continuum_pixels' must have shape "
                             f"({n_pix},) like the spectra, got {arr.shape}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError("CannonContinuum: 'continuum_pixels' must be a 1-D array of pixel "
                         f"indices or a boolean mask of shape ({n_pix},), got dtype "
                         f"{arr.dtype} shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_pix):
        raise ValueError(f"CannonContinuum: 'continuum_pixels' must lie in [0, {n_pix}), got "
                         f"range [{arr.min()}, {arr.max()}]")
    return np.unique(arr).astype(np.int64)
