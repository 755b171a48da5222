"""Resample: flux-conserving resampling onto a wavelength Grid."""

from __future__ import annotations

from typing import Any

import numpy as np

from starlearn.grid import Grid, get_grid
from starlearn.preprocess._masked import apply_banded, apply_masked
from starlearn.preprocess._rebin import pixel_edges, pixel_edges_rows, rebin_bands, rebin_matrix
from starlearn.preprocess.base import Transform, _check_number
from starlearn.spectra import SpectrumSet

__all__ = ["Resample"]

_COVERAGE_TOL = 1e-9
_BAND_CHUNK = 64  # spectra per banded rebinning step (bounds the memory used)


class Resample(Transform):
    """Resample spectra onto a Grid, conserving the flux integral.

    Each output pixel takes the overlap-weighted mean flux density of the input pixels it
    overlaps (:func:`starlearn.preprocess._rebin.rebin_matrix`), so that
    ``sum(f_out * dlambda_out) == sum(f_in * dlambda_in)`` over the common range.

    Parameters
    ----------
    grid : str, Grid or dict
        Target grid: a preset name (``starlearn.grid.PRESETS``), a :class:`~starlearn.Grid`
        or a ``Grid.to_dict()`` dictionary. Vacuum Angstrom, like the input.
    min_good : float
        Mask an output pixel when the good (unmasked) input pixels cover less than this
        fraction of its covered width, in [0, 1].

    Notes
    -----
    With ``W`` the overlap matrix (n_out, n_in), ``g`` the good-pixel indicator and
    ``var = 1/ivar`` (flux units**2),

    * ``f_out = W @ (g f) / (W @ g)``;
    * ``var_out = (W**2) @ (g var) / (W @ g)**2`` and ``ivar_out = 1 / var_out``, the
      exact propagation for independent input pixels (it ignores the correlation that
      resampling introduces between neighbouring output pixels);
    * output pixels not fully inside the input range (row sum of ``W`` < 1 - 1e-9), with a
      good fraction ``(W @ g) / (W @ 1)`` below ``min_good``, or inside the grid's gaps
      (``grid.gap_mask``) are masked (ivar 0, flux 0).

    Input pixel edges are the midpoints of neighbouring centres
    (:func:`~starlearn.preprocess._rebin.pixel_edges`); output edges are the grid's
    geometric edges (``Grid.edges``). Spectra sharing one wavelength array use one matrix
    and one batched sparse product; per-spectrum wavelengths use one matrix per spectrum.
    Work is done in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import SpectrumSet
    >>> s = SpectrumSet(wave=np.linspace(7000, 9000, 3000), flux=np.ones((2, 3000)))
    >>> out = Resample(grid="pfs-mr").transform(s)
    >>> out.n_pix, bool(np.allclose(out.flux, 1.0))
    (4096, True)
    """

    def __init__(self, *, grid: str | Grid | dict[str, Any], min_good: float = 0.5) -> None:
        self.grid = grid
        self.min_good = min_good

    def _validate_params(self) -> None:
        if not isinstance(self.grid, (str, Grid, dict)):
            raise TypeError(f"Resample: 'grid' must be a preset name, a Grid or a Grid dict, "
                            f"got {type(self.grid).__name__}")
        get_grid(self.grid)
        _check_number(self.min_good, "min_good", "Resample", low=0.0, high=1.0)

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        grid = get_grid(self.grid)
        out_edges = grid.edges
        good = ~spectra.mask
        n = len(spectra)
        if spectra.shared_wave and _same_pixels(spectra.wave, grid.wave):
            # already on the grid (packed windows, a set resampled earlier): nothing to move
            bad = spectra.mask | (spectra.ivar <= 0) | grid.gap_mask[None, :]
            return spectra.replace(wave=grid.wave, flux=np.where(bad, 0.0, spectra.flux),
                                   ivar=np.where(bad, 0.0, spectra.ivar), mask=bad)
        if spectra.shared_wave:
            op = rebin_matrix(pixel_edges(spectra.wave), out_edges)
            flux, ivar, weight = apply_masked(op, spectra.flux, spectra.ivar, good)
            cover = np.broadcast_to(np.asarray(op.sum(axis=1)).ravel(), flux.shape)
        else:
            flux = np.zeros((n, grid.n_pix))
            ivar = np.zeros_like(flux)
            weight = np.zeros_like(flux)
            cover = np.zeros_like(flux)
            for start in range(0, n, _BAND_CHUNK):  # one banded operator per spectrum
                sl = slice(start, start + _BAND_CHUNK)
                index, w = rebin_bands(pixel_edges_rows(spectra.wave[sl]), out_edges)
                flux[sl], ivar[sl], weight[sl] = apply_banded(
                    index, w, spectra.flux[sl], spectra.ivar[sl], good[sl])
                cover[sl] = w.sum(axis=-1)
        frac = np.divide(weight, cover, out=np.zeros_like(weight), where=cover > 0)
        bad = ((cover < 1.0 - _COVERAGE_TOL) | (weight <= 0) | (frac < self.min_good)
               | (ivar <= 0) | grid.gap_mask[None, :])
        flux[bad] = 0.0
        ivar[bad] = 0.0
        return spectra.replace(wave=grid.wave, flux=flux, ivar=ivar, mask=bad)


def _same_pixels(wave: np.ndarray, grid_wave: np.ndarray) -> bool:
    """True when ``wave`` (Å) is ``grid_wave`` to a millionth of a pixel."""
    if wave.shape != grid_wave.shape:
        return False
    step = np.diff(grid_wave)
    return bool(np.all(np.abs(wave - grid_wave) <= 1e-6 * np.concatenate([step, step[-1:]])))
