"""Losses for label regression with missing labels."""

from __future__ import annotations

import math

import torch

__all__ = ["masked_gaussian_nll"]


def masked_gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor,
                        present: torch.Tensor | None = None,
                        target_var: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian negative log-likelihood averaged over the labels that are present.

    Parameters
    ----------
    mean, log_var : tensors (batch, n_labels)
        Predicted mean and log-variance (standardised label units).
    target : tensor (batch, n_labels)
        True labels; NaN where a label is missing.
    present : bool tensor (batch, n_labels), optional
        Which targets count; defaults to ``~isnan(target)``.
    target_var : tensor (batch, n_labels), optional
        Variance of each target's own measurement error (standardised units; NaN or 0
        where unknown): the heteroscedastic label-noise term. The likelihood of a
        target is then that of a Gaussian of variance ``exp(log_var) + target_var``, so
        the predicted variance learns what the spectrum leaves uncertain, not the
        catalogue's errors, and a label known badly weighs less.

    Returns
    -------
    Scalar tensor: ``0.5 * (log v + (target - mean)**2 / v + log 2 pi)`` with
    ``v = exp(log_var) [+ target_var]``, averaged over present entries (0 when none is
    present). Missing labels contribute neither to the value nor to any gradient.
    """
    if present is None:
        present = ~torch.isnan(target)
    safe_target = torch.where(present, target, mean.detach())
    if target_var is None:
        nll = 0.5 * (log_var + (safe_target - mean) ** 2 * torch.exp(-log_var)
                     + math.log(2 * math.pi))
    else:
        var = torch.exp(log_var) + torch.nan_to_num(target_var, nan=0.0).clamp(min=0.0)
        nll = 0.5 * (torch.log(var) + (safe_target - mean) ** 2 / var
                     + math.log(2 * math.pi))
    nll = torch.where(present, nll, torch.zeros_like(nll))
    count = present.sum()
    return nll.sum() / count.clamp(min=1)
