"""Normalised (mask-aware) application of a sparse linear operator to spectra.

Shared by Resample and DegradeResolution. For an operator ``W`` (n_out, n_in) with
non-negative weights, a good-pixel indicator ``g`` (1 = good, 0 = masked) and variance
``var = 1 / ivar`` on good pixels:

    f_out   = W @ (g * f)      / (W @ g)
    var_out = (W**2) @ (g * var) / (W @ g)**2

which excludes masked input pixels and renormalises the weights of the good ones. The
variance formula assumes independent input pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["apply_banded", "apply_masked"]

_CHUNK = 256


def _right(op_t: sparse.csr_matrix, x: np.ndarray) -> np.ndarray:
    """``x @ op_t`` for a batch ``x`` (n, n_in) -> (n, n_out), as one sparse product."""
    return np.ascontiguousarray(x @ op_t)


def apply_masked(op: sparse.csr_matrix, flux: np.ndarray, ivar: np.ndarray,
                 good: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply ``op`` to a batch of spectra, excluding masked pixels.

    Parameters
    ----------
    op : sparse matrix, shape (n_out, n_in)
        Non-negative weights.
    flux, ivar : arrays, shape (n_spectra, n_in)
        Flux and inverse variance (any unit; ivar in flux units**-2).
    good : bool array, shape (n_spectra, n_in)
        True for usable input pixels (they must have ivar > 0).

    Returns
    -------
    flux_out : float64 (n_spectra, n_out)
        Weighted mean flux; 0 where no good pixel contributes.
    ivar_out : float64 (n_spectra, n_out)
        Propagated inverse variance; 0 where no good pixel contributes.
    weight : float64 (n_spectra, n_out)
        ``W @ g``, the summed weight of the good input pixels.

    Notes
    -----
    Works in float64, in chunks of spectra (one batched sparse product per chunk) to bound
    the memory used.
    """
    op = sparse.csr_matrix(op, dtype=np.float64)
    op_t = op.T.tocsr()
    op2_t = op.multiply(op).T.tocsr()
    n = flux.shape[0]
    n_out = op.shape[0]
    flux_out = np.zeros((n, n_out))
    ivar_out = np.zeros((n, n_out))
    weight = np.zeros((n, n_out))
    row_sums = np.asarray(op.sum(axis=1)).ravel()
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        gd = good[sl]
        f, var = _masked_inputs(flux[sl], ivar[sl], gd)
        # without bad pixels W @ g is just the row sums: one sparse product saved
        w = (np.broadcast_to(row_sums, (f.shape[0], n_out)).copy() if gd.all()
             else _right(op_t, gd.astype(np.float64)))
        flux_out[sl], ivar_out[sl] = _normalised(_right(op_t, f), _right(op2_t, var), w)
        weight[sl] = w
    return flux_out, ivar_out, weight


def _masked_inputs(flux: np.ndarray, ivar: np.ndarray,
                   good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 flux with masked pixels at 0, and the variance (0 where masked or ivar 0)."""
    f = np.where(good, flux, 0.0).astype(np.float64)
    iv = ivar.astype(np.float64)
    return f, np.divide(1.0, iv, out=np.zeros_like(iv), where=good & (iv > 0))


def _normalised(num: np.ndarray, var_num: np.ndarray,
                w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flux ``num / w`` and ivar ``w**2 / var_num``; 0 where no good pixel contributes."""
    ok = w > 0
    flux = np.divide(num, w, out=np.zeros_like(num), where=ok)
    var = np.divide(var_num, w * w, out=np.zeros_like(num), where=ok)
    return flux, np.divide(1.0, var, out=np.zeros_like(num), where=ok & (var > 0))


def apply_banded(index: np.ndarray, weight: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                 good: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`apply_masked` for one operator per spectrum in banded form (``index``,
    ``weight`` of shape (n_spectra, n_out, k), as :func:`~starlearn.preprocess._rebin.
    rebin_bands` gives): the same formulas, gathered instead of sparse products."""
    rows = np.arange(flux.shape[0])[:, None, None]
    gd = good[rows, index]
    f, var = _masked_inputs(flux[rows, index], ivar[rows, index], gd)
    w = (weight * gd).sum(axis=-1)
    flux_out, ivar_out = _normalised((weight * f).sum(axis=-1),
                                     (weight * weight * var).sum(axis=-1), w)
    return flux_out, ivar_out, w
