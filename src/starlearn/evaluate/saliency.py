"""Saliency: where in the spectrum a network looks for each label."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from starlearn.spectra import SpectrumSet
from starlearn.train.data import iterate_batches

__all__ = ["saliency"]


def saliency(regressor: Any, spectra: SpectrumSet, *, batch_size: int = 64) -> np.ndarray:
    """Mean absolute gradient of each predicted label with respect to each input pixel.

    Parameters
    ----------
    regressor : fitted starlearn Regressor (a network, not The Cannon)
    spectra : SpectrumSet (or data-set path) as ``predict`` takes them: the model's own
        input builder (:meth:`~starlearn.estimators.base.NetworkEstimator.network_input`)
        prepares them

    Returns
    -------
    ndarray (n_labels, n_pixels): mean over the spectra of |d label / d flux| in label
    units per flux unit; masked pixels contribute 0. The wavelength of each column is
    ``regressor.wave_``.
    """
    if not hasattr(regressor, "module_"):
        raise ValueError("saliency needs a neural-network regressor (The Cannon has no "
                         "input gradients here; look at its theta coefficients instead)")
    spectra = regressor.prepare_inputs(spectra)
    module = regressor.module_.eval()
    device = next(module.parameters()).device
    scale = regressor.flux_scaler_.scale  # network input units per flux unit: 1 / scale
    total = np.zeros((len(regressor.label_names_), spectra.n_pix))
    for batch in iterate_batches(spectra, batch_size=batch_size, shuffle=False):
        x = torch.as_tensor(regressor.network_input(batch, prepared=True), device=device)
        bad = ~regressor.flux_scaler_.usable(batch.mask, batch.ivar)
        x.requires_grad_(True)
        mean, _ = module(x)
        for j in range(mean.shape[1]):
            (grad,) = torch.autograd.grad(mean[:, j].sum(), x, retain_graph=True)
            g = grad[:, 0].abs().cpu().numpy() * regressor.label_std_[j] / scale
            total[j] += np.where(bad, 0.0, g).sum(axis=0)
    return total / max(len(spectra), 1)
