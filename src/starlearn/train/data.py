"""Batches for training and prediction: from a SpectrumSet in memory or an HDF5 data set.

Spectra reach a network as float32 tensors (batch, channels, n_pixels): channel 0 is the
scaled flux ``(flux - pixel_mean) / flux_scale`` with bad pixels set to 0 (the training
mean), and, when asked for, channel 1 is the bad-pixel mask (1 = bad). Files larger than
memory are streamed block by block (whole HDF5 chunks), blocks in a shuffled order.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from starlearn.io.dataset import DatasetStore
from starlearn.spectra import SpectrumSet

__all__ = ["FluxScaler", "SpectraSource", "iterate_batches"]

SpectraSource = SpectrumSet | DatasetStore


@dataclass
class FluxScaler:
    """Per-pixel mean and one robust global scale of the flux, learned from training spectra.

    ``x = clip((flux - mean) / scale, -CLIP, CLIP)`` on usable pixels and 0 on the others.
    A pixel is unusable when masked or when its noise (1/sqrt(ivar)) exceeds
    ``MAX_NOISE`` times the median noise of its spectrum (pipelines inflate the errors of
    pixels they distrust), so that no single pixel can dominate the input; the clipping
    guards against garbage values that carry no error.
    """

    mean: np.ndarray
    scale: float

    CLIP = 50.0
    MAX_NOISE = 20.0

    @classmethod
    def fit(cls, source: SpectraSource, *, max_spectra: int = 2000, seed: int = 0,
            per_pixel: bool = True) -> FluxScaler:
        """Learn the scaling; ``per_pixel=False`` uses one constant level for all pixels
        (needed by translation-equivariant models)."""
        spectra = _sample(source, max_spectra, seed)
        good = ~spectra.mask
        flux = np.where(good, spectra.flux, np.nan).astype(np.float64)
        with warnings.catch_warnings():  # pixels masked in every spectrum: mean 0
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmedian(flux, axis=0) if per_pixel else np.full(
                spectra.n_pix, np.nanmedian(flux))
        mean = np.where(np.isfinite(mean), mean, 0.0)
        resid = (flux - mean)[good]
        if not resid.size:
            scale = 1.0
        elif per_pixel:  # robust spread of the star-to-star differences
            scale = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
        else:  # lines fill few pixels: the plain spread keeps them inside the clip range
            scale = float(np.std(resid))
        return cls(mean.astype(np.float32), scale if scale > 0 else 1.0)

    def usable(self, mask: np.ndarray, ivar: np.ndarray | None) -> np.ndarray:
        """Boolean (n, n_pixels): pixels the network sees."""
        if ivar is None:
            return ~mask
        good = ~mask & (ivar > 0)
        # median ivar of the good pixels of each spectrum (the typical noise level)
        typical = np.array([np.median(row[ok]) if ok.any() else 0.0
                            for row, ok in zip(ivar, good, strict=True)])
        return good & (ivar * self.MAX_NOISE**2 >= typical[:, None])

    def transform(self, flux: np.ndarray, mask: np.ndarray,
                  ivar: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Network input (n, n_pixels) float32 and the bad-pixel mask actually applied."""
        ok = self.usable(mask, ivar)
        x = np.clip((flux - self.mean) / self.scale, -self.CLIP, self.CLIP)
        return np.where(ok, x, 0.0).astype(np.float32), ~ok


def _sample(source: SpectraSource, n: int, seed: int) -> SpectrumSet:
    if len(source) <= n:
        return source if isinstance(source, SpectrumSet) else source.read()
    idx = np.sort(np.random.default_rng(seed).choice(len(source), n, replace=False))
    return source[idx] if isinstance(source, SpectrumSet) else source.read(idx)


def iterate_batches(source: SpectraSource, *, batch_size: int, shuffle: bool,
                    rng: np.random.Generator | None = None, rows: np.ndarray | None = None,
                    block: int = 4096) -> Iterator[SpectrumSet]:
    """Batches of spectra from ``rows`` (default all) of a SpectrumSet or HDF5 data set.

    In-memory sets are shuffled as a whole. HDF5 data sets are read ``block`` spectra at a
    time (whole chunks, so memory stays bounded), blocks in random order, spectra shuffled
    within each block.
    """
    if shuffle and rng is None:
        raise ValueError("iterate_batches: shuffle needs an rng")
    n = len(source)
    if isinstance(source, SpectrumSet):
        idx = np.arange(n) if rows is None else np.sort(np.asarray(rows))
        if shuffle:
            idx = rng.permutation(idx)
        for start in range(0, idx.size, batch_size):
            yield source[idx[start:start + batch_size]]
        return
    keep = None
    if rows is not None:
        keep = np.zeros(n, dtype=bool)
        keep[np.asarray(rows)] = True
    block = max(block, batch_size)
    starts = np.arange(0, n, block)
    if shuffle:
        rng.shuffle(starts)
    for start in starts:
        stop = min(int(start) + block, n)
        chunk = source.read(slice(int(start), stop))
        local = np.arange(len(chunk)) if keep is None else np.flatnonzero(keep[start:stop])
        if shuffle:
            local = rng.permutation(local)
        for i in range(0, local.size, batch_size):
            yield chunk[local[i:i + batch_size]]


def to_tensor(x: np.ndarray, mask: np.ndarray | None, device: torch.device) -> torch.Tensor:
    """(batch, channels, n_pixels) float32 tensor: scaled flux and, if given, the mask."""
    channels = [x] if mask is None else [x, mask.astype(np.float32)]
    return torch.from_numpy(np.stack(channels, axis=1)).to(device)
