"""Saliency: where in the spectrum a network looks for each label."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from starlearn.spectra import SpectrumSet
from starlearn.train.data import iterate_batches, to_tensor

__all__ = ["saliency"]


def saliency(regressor: Any, spectra: SpectrumSet, *, batch_size: int = 64) -> np.ndarray:
    """Mean absolute gradient of each predicted label with respect to each input pixel.

    Parameters
    ----------
    regressor : fitted starlearn Regressor (a network, not The Cannon)
    spectra : SpectrumSet on the model's grid (after its preprocessing)

    Returns
    -------
    ndarray (n_labels, n_pixels): mean over the spectra of |d label / d flux| in label
    units per flux unit; masked pixels contribute 0. The wavelength of each column is
    ``regressor.wave_``.
    """
    if not hasattr(regressor, "module_"):
        raise ValueError("saliency needs a neural-network regressor (The Cannon has no "
                         "input gradients here; look at its theta coefficients instead)")
    if regressor.preprocess is not None:
        spectra = regressor.preprocess.transform(spectra)
    module = regressor.module_.eval()
    device = next(module.parameters()).device
    scaler = regressor.flux_scaler_
    total = np.zeros((len(regressor.label_names_), spectra.n_pix))
    for batch in iterate_batches(spectra, batch_size=batch_size, shuffle=False):
        x, bad = scaler.transform(batch.flux, batch.mask, batch.ivar)
        x = to_tensor(x, bad if regressor.mask_channel else None, device)
        x.requires_grad_(True)
        mean, _ = module(x)
        for j in range(mean.shape[1]):
            (grad,) = torch.autograd.grad(mean[:, j].sum(), x, retain_graph=True)
            g = grad[:, 0].abs().cpu().numpy() * regressor.label_std_[j] / scaler.scale
            total[j] += np.where(bad, 0.0, g).sum(axis=0)
    return total / max(len(spectra), 1)
