"""DegradeResolution: Gaussian line-spread function from resolving power r_in to r_out."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from starlearn.grid import Grid, get_grid
from starlearn.preprocess._masked import apply_masked
from starlearn.preprocess._rebin import pixel_edges, rebin_matrix
from starlearn.preprocess.base import Transform, _check_number
from starlearn.spectra import SpectrumSet

__all__ = ["DegradeResolution", "gaussian_lsf_matrix"]

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))  # 1 / 2.3548
_TRUNCATE = 4.0


def gaussian_lsf_matrix(wave: np.ndarray, fwhm_rel: float) -> sparse.csr_matrix:
    """Sparse (n_pixels, n_pixels) Gaussian smoothing matrix with FWHM = fwhm_rel * lambda.

    Row ``i`` holds ``exp(-(lambda_j - lambda_i)**2 / (2 sigma_i**2)) * dlambda_j`` for
    ``|lambda_j - lambda_i| <= 4 sigma_i``, with ``sigma_i = lambda_i * fwhm_rel / 2.3548``,
    normalised to sum 1. ``wave`` in Angstrom, increasing; ``dlambda_j`` the pixel widths
    from :func:`~starlearn.preprocess._rebin.pixel_edges`.

    Examples
    --------
    >>> import numpy as np
    >>> wave = np.linspace(5000.0, 5010.0, 201)  # 0.05 A pixels
    >>> k = gaussian_lsf_matrix(wave, 1 / 4000)  # FWHM 1.25 A, 25 pixels, at 5,000 A
    >>> k.shape, bool(np.allclose(k.sum(axis=1), 1.0))
    ((201, 201), True)
    >>> row = k[100].toarray()[0]  # the kernel of the middle pixel
    >>> int((row >= row.max() / 2).sum())  # the pixels within its FWHM
    25
    """
    wave = np.asarray(wave, dtype=np.float64)
    n = wave.size
    width = np.diff(pixel_edges(wave))
    sigma = wave * fwhm_rel * FWHM_TO_SIGMA
    lo = np.searchsorted(wave, wave - _TRUNCATE * sigma, side="left")
    hi = np.searchsorted(wave, wave + _TRUNCATE * sigma, side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(n), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = np.repeat(lo, counts) + offsets
    vals = np.exp(-0.5 * ((wave[cols] - wave[rows]) / sigma[rows]) ** 2) * width[cols]
    norm = np.bincount(rows, weights=vals, minlength=n)
    vals = vals / norm[rows]
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


class DegradeResolution(Transform):
    """Convolve spectra with a Gaussian line-spread function to lower their resolving power.

    Spectra observed at resolving power ``r_in`` (R = lambda / FWHM) come out at ``r_out``:
    the kernel has ``FWHM / lambda = sqrt(1 / r_out**2 - 1 / r_in**2)``, since Gaussian
    widths add in quadrature. This is the "Gaussian blur" used to match one instrument's
    spectra to another's (domain adaptation, e.g. APOGEE-like to LAMOST-like).

    Parameters
    ----------
    r_in : float
        Resolving power of the input spectra, > 0.
    r_out : float
        Resolving power wanted, 0 < r_out < r_in.
    min_good : float
        Mask an output pixel when the good input pixels carry less than this fraction of
        its kernel weight, in [0, 1].
    grid : str, Grid, dict or None
        Resample onto this grid in the same step (flux-conserving, as :class:`Resample`),
        so that the errors are propagated through the convolution and the rebinning
        together. None keeps the input sampling.

    Notes
    -----
    Works on any wavelength grid (the kernel width grows with wavelength): a sparse
    (n_pixels, n_pixels) matrix ``K`` is built from the wavelengths
    (:func:`gaussian_lsf_matrix`, Gaussian in wavelength with
    ``sigma_i = lambda_i * fwhm / 2.3548``, truncated at +-4 sigma, weighted by pixel widths,
    rows normalised), once for spectra sharing one grid and once per spectrum otherwise.
    With a ``grid`` the operator is ``M = R @ K``, ``R`` the rebinning matrix of
    :class:`Resample`; without one ``M = K``. Masked pixels are excluded by normalised
    application: ``f_out = M @ (g f) / (M @ g)`` with ``g`` the good-pixel indicator, and
    ``var_out = (M**2) @ (g var) / (M @ g)**2``, which is exact for independent input
    pixels: each output pixel is a weighted sum of input pixels and its variance the sum
    of the squared weights times their variances.

    The convolution correlates neighbouring output pixels (a pixel shares most of its
    input pixels with its neighbours), so a later, *separate* step that combines output
    pixels, such as :class:`Resample` to a coarser grid, and treats them as independent
    would overstate their ivar (up to ~6x for a blur of 10 pixels). Give ``grid`` here
    instead (:class:`Pipeline` does this itself for a DegradeResolution followed directly
    by a Resample; :class:`DomainAdapter` always does). Near the ends of the spectrum the
    truncated kernel is renormalised.

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import Grid, SpectrumSet
    >>> w = Grid.log_uniform(6000, 6100, n_pix=2000).wave
    >>> s = SpectrumSet(wave=w, flux=1 - 0.5 * np.exp(-0.5 * ((w - 6050) / 0.05) ** 2))
    >>> out = DegradeResolution(r_in=50000, r_out=5000).transform(s)
    >>> bool(out.flux.min() > 0.9)
    True
    """

    def __init__(self, *, r_in: float, r_out: float, min_good: float = 0.5,
                 grid: str | Grid | dict[str, Any] | None = None) -> None:
        self.r_in = r_in
        self.r_out = r_out
        self.min_good = min_good
        self.grid = grid

    def _validate_params(self) -> None:
        who = "DegradeResolution"
        _check_number(self.r_in, "r_in", who, low=0.0, low_open=True)
        _check_number(self.r_out, "r_out", who, low=0.0, low_open=True)
        if not self.r_out < self.r_in:
            raise ValueError(f"{who}: 'r_out' must be lower than 'r_in' (the resolution can "
                             f"only be degraded), got r_in={self.r_in}, r_out={self.r_out}")
        _check_number(self.min_good, "min_good", who, low=0.0, high=1.0)
        if self.grid is not None:
            if not isinstance(self.grid, (str, Grid, dict)):
                raise TypeError(f"{who}: 'grid' must be a preset name, a Grid, a Grid dict "
                                f"or None, got {type(self.grid).__name__}")
            get_grid(self.grid)

    @property
    def fwhm_relative(self) -> float:
        """Kernel FWHM / lambda = sqrt(1/r_out**2 - 1/r_in**2) (dimensionless).

        Examples
        --------
        >>> round(1 / DegradeResolution(r_in=22_500, r_out=1_800).fwhm_relative, 1)
        1805.8
        """
        return float(np.sqrt(1.0 / self.r_out**2 - 1.0 / self.r_in**2))

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        return self.degrade(spectra, resample_min_good=0.5)

    def degrade(self, spectra: SpectrumSet, *, resample_min_good: float) -> SpectrumSet:
        """The transform, with ``resample_min_good`` the good-coverage fraction below which
        a resampled output pixel is masked (the ``min_good`` of the :class:`Resample` this
        step stands for)."""
        fwhm = self.fwhm_relative
        grid = get_grid(self.grid) if self.grid is not None else None
        good = ~spectra.mask
        n_out = grid.n_pix if grid is not None else spectra.n_pix

        def operator(wave: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
            kernel = gaussian_lsf_matrix(wave, fwhm)
            if grid is None:
                return kernel, np.ones(n_out)
            rebin = rebin_matrix(pixel_edges(wave), grid.edges)
            return (rebin @ kernel).tocsr(), np.asarray(rebin.sum(axis=1)).ravel()

        if spectra.shared_wave:
            op, cover = operator(spectra.wave)
            flux, ivar, weight = apply_masked(op, spectra.flux, spectra.ivar, good)
            cover = np.broadcast_to(cover, flux.shape)
        else:
            flux, ivar, weight, covers = (np.zeros((len(spectra), n_out)) for _ in range(4))
            for i in range(len(spectra)):
                op, covers[i] = operator(spectra.wave[i])
                f, iv, w = apply_masked(op, spectra.flux[i:i + 1], spectra.ivar[i:i + 1],
                                        good[i:i + 1])
                flux[i], ivar[i], weight[i] = f[0], iv[0], w[0]
            cover = covers
        frac = np.divide(weight, cover, out=np.zeros_like(weight), where=cover > 0)
        bad = (weight <= 0) | (frac < self.min_good) | (ivar <= 0)
        if grid is not None:
            bad |= (cover < 1.0 - 1e-9) | (frac < resample_min_good) | grid.gap_mask[None, :]
        flux[bad] = 0.0
        ivar[bad] = 0.0
        if grid is None:
            return spectra.replace(flux=flux, ivar=ivar, mask=bad)
        return spectra.replace(wave=grid.wave, flux=flux, ivar=ivar, mask=bad)
