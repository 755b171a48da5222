"""The Regressor's training pieces: its losses (the Gaussian likelihood of the labels, with
their own errors where given; the validation score) and the domain adaptation's (the
feature-alignment loss, the "cycle" translation of the input, the layers fine-tuning
freezes first, and what "match" takes from the target spectra)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from starlearn.noise import signal_level
from starlearn.spectra import SpectrumSet
from starlearn.train.domain import (
    CycleTranslator,
    DomainAdversarial,
    coral_loss,
    domain_confusion_loss,
    mmd_loss,
)
from starlearn.train.losses import masked_gaussian_nll

__all__: list[str] = []  # private to starlearn.estimators


def _targets(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(labels, their error variances or None) of a batch's target tensor (see
    ``Regressor._batch``)."""
    return (y[:, 0], y[:, 1]) if y.ndim == 3 else (y, None)


def _nll(module: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    mean, log_var = module(x)
    y, y_var = _targets(y)
    return masked_gaussian_nll(mean, log_var, y, target_var=y_var)


def _alignment_loss(align: str) -> Any:
    """The training loss: the Gaussian NLL of the source labels, plus (batches of four:
    source inputs, labels, target inputs, weight) the weighted feature alignment."""
    if align not in ("coral", "mmd", "adversarial"):
        return _nll

    def loss(module: torch.nn.Module, batch: tuple[Any, ...]) -> torch.Tensor:
        if len(batch) == 2 or not module.training:
            return _nll(module, batch[:2])
        x_s, y_s, x_t, strength = batch
        net = module.network if isinstance(module, DomainAdversarial) else module
        f_s, f_t = net.embed(x_s), net.embed(x_t)
        mean, log_var = net.head(f_s)
        y_s, y_var = _targets(y_s)
        nll = masked_gaussian_nll(mean, log_var, y_s, target_var=y_var)
        if align == "coral":
            return nll + strength * coral_loss(f_s, f_t)
        if align == "mmd":
            return nll + strength * mmd_loss(f_s, f_t)
        d_loss, confusion = domain_confusion_loss(module, f_s, f_t)
        return nll + d_loss + strength * confusion

    return loss


def _translated(translator: CycleTranslator, x: torch.Tensor) -> torch.Tensor:
    """Network input (batch, channels, n_pix) with the flux channel translated."""
    flux = translator(x[:, 0])
    return torch.cat([flux[:, None], x[:, 1:]], dim=1)


def _frozen_part(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters :meth:`Regressor.fine_tune` freezes in its first phase: the
    convolutional ``features``; for a dense network all but the last hidden layer and
    the head."""
    features = getattr(module, "features", None)
    if features is not None:
        return list(features.parameters())
    body = getattr(module, "body", None)
    if body is None:
        return []
    linear = [m for m in body.modules() if isinstance(m, torch.nn.Linear)]
    return [p for m in linear[:-1] for p in m.parameters()]


class _TargetPool(NamedTuple):
    """What "match" takes from the target spectra: their bad pixels, per-pixel errors
    (sigma, inf where bad) and median flux levels."""

    bad: np.ndarray
    sigma: np.ndarray
    level: np.ndarray

    @classmethod
    def of(cls, target: SpectrumSet | None) -> _TargetPool | None:
        if target is None:
            return None
        bad = target.mask | ~(target.ivar > 0)
        with np.errstate(divide="ignore"):
            sigma = np.where(bad, np.inf, 1.0 / np.sqrt(np.where(bad, 1.0, target.ivar)))
        level = signal_level(target.flux, ~bad, empty=1.0)
        return cls(bad, sigma.astype(np.float32), np.where(level > 0, level, 1.0))

    def match(self, flux: np.ndarray, mask: np.ndarray, ivar: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each spectrum takes the mask of a random target spectrum (union with its own)
        and white noise lifting its per-pixel error to that spectrum's error scaled to
        its own median flux (pixels already noisier keep theirs)."""
        k = rng.integers(len(self.bad), size=len(flux))
        bad = mask | ~(ivar > 0) | self.bad[k]
        level = signal_level(flux, ~bad, empty=1.0)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            want = self.sigma[k].astype(np.float64) * (level / self.level[k])[:, None]
            have = 1.0 / np.sqrt(np.where(bad, 1.0, ivar))
            gap = np.where(bad | ~np.isfinite(want), 0.0, want**2 - have**2)
        extra = np.sqrt(np.clip(gap, 0.0, None))
        noisy = flux + rng.standard_normal(flux.shape) * extra
        new_ivar = np.where(bad, 0.0, 1.0 / (have**2 + extra**2))
        return noisy.astype(flux.dtype), bad, new_ivar.astype(ivar.dtype)


def _nll_and_mse(module: torch.nn.Module,
                 batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation loss (Gaussian NLL) and score: the mean squared error of the predicted
    means over the labels present (standardised units), which picks the best epoch and
    drives the schedule. The NLL on held-out data jumps whenever a few spectra get an
    over-confident variance, which stops training early; the accuracy of the means is what
    the StarNet table measures."""
    x, y = batch
    mean, log_var = module(x)
    y, y_var = _targets(y)
    present = ~torch.isnan(y)
    err = torch.where(present, mean - torch.nan_to_num(y), torch.zeros_like(mean))
    if y_var is None:
        mse = (err**2).sum() / present.sum().clamp(min=1)
    else:  # labels known badly weigh less here too, as in the loss (else the best epoch
        # would be the one whose means follow the catalogue's noise); fixed weights, so
        # that epochs compare: a label error of 0.22 label spreads halves the weight
        w = present / (0.05 + torch.nan_to_num(y_var, nan=0.0).clamp(min=0.0))
        mse = (w * err**2).sum() / w.sum().clamp(min=1e-12)
    return masked_gaussian_nll(mean, log_var, y, present, target_var=y_var), mse
