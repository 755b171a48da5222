"""Losses for label regression with missing labels."""

from __future__ import annotations

import math

import torch

__all__ = ["masked_gaussian_nll"]


def masked_gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor,
                        present: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian negative log-likelihood averaged over the labels that are present.

    Parameters
    ----------
    mean, log_var : tensors (batch, n_labels)
        Predicted mean and log-variance (standardised label units).
    target : tensor (batch, n_labels)
        True labels; NaN where a label is missing.
    present : bool tensor (batch, n_labels), optional
        Which targets count; defaults to ``~isnan(target)``.

    Returns
    -------
    Scalar tensor: ``0.5 * (log_var + (target - mean)**2 / exp(log_var) + log 2 pi)``
    averaged over present entries (0 when none is present). Missing labels contribute
    neither to the value nor to any gradient.
    """
    if present is None:
        present = ~torch.isnan(target)
    safe_target = torch.where(present, target, mean.detach())
    nll = 0.5 * (log_var + (safe_target - mean) ** 2 * torch.exp(-log_var)
                 + math.log(2 * math.pi))
    nll = torch.where(present, nll, torch.zeros_like(nll))
    count = present.sum()
    return nll.sum() / count.clamp(min=1)
