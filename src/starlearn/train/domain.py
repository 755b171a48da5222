"""Domain adaptation for networks trained on one instrument (or on synthetic spectra) and
applied to another: the losses that align learned features of labelled source spectra
with those of unlabelled target spectra, the domain discriminator, and a small
cycle-consistent translator between the two domains.

One copy, shared by :class:`~starlearn.estimators.Classifier` (``adversarial=True``) and
:class:`~starlearn.estimators.Regressor` (``adapt=...``).

* :func:`coral_loss`: CORAL (Sun & Saenko 2016, "Deep CORAL"): the squared Frobenius
  distance between the feature covariances of a source and a target batch, over
  ``4 d**2``.
* :func:`mmd_loss`: the maximum mean discrepancy (Gretton et al. 2012) with a sum of
  Gaussian kernels whose widths are 0.5, 1 and 2 times the median pairwise distance of the
  batch (biased estimate, >= 0).
* :class:`DomainAdversarial` and :func:`domain_confusion_loss`: a discriminator on the
  features and the domain-confusion form of adversarial training (Tzeng et al. 2015, in
  the spirit of DANN, Ganin et al. 2016).
* :class:`CycleTranslator`: two small dense autoencoders (one per domain) with a shared
  latent space, trained on unlabelled spectra with reconstruction, cycle-consistency and
  latent-alignment losses (a small, honest relative of Cycle-StarNet, O'Briain et al.
  2021); ``to_source(x, "target")`` translates target inputs into the source domain.
* :func:`ramp`: the DANN schedule 2 / (1 + exp(-10 p)) - 1 of the alignment weight over
  the training progress p in [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ADAPT_METHODS", "CycleTranslator", "DomainAdversarial", "coral_loss",
           "domain_confusion_loss", "mmd_loss", "ramp", "ramp_at", "train_translator"]

ADAPT_METHODS = ("none", "match", "coral", "mmd", "adversarial", "cycle")
"""The Regressor's unsupervised adaptation methods (see its ``adapt`` parameter)."""


def ramp(epoch: int, epochs: int) -> float:
    """Weight factor in [0, 1): ``2 / (1 + exp(-10 p)) - 1``, p = epoch / (epochs - 1).

    >>> round(ramp(0, 10), 3), round(ramp(9, 10), 3)
    (0.0, 1.0)
    """
    return ramp_at(epoch / max(epochs - 1, 1))


def ramp_at(progress: float) -> float:
    """The DANN ramp ``2 / (1 + exp(-10 p)) - 1`` at training progress p in [0, 1]."""
    return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0


def coral_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """CORAL: ``||C_s - C_t||_F**2 / (4 d**2)`` of the (d, d) feature covariances of a
    source and a target batch (n, d)."""
    d = f_s.shape[1]

    def cov(f: torch.Tensor) -> torch.Tensor:
        centred = f - f.mean(dim=0, keepdim=True)
        return centred.T @ centred / max(len(f) - 1, 1)

    return ((cov(f_s) - cov(f_t)) ** 2).sum() / (4.0 * d * d)


def mmd_loss(f_s: torch.Tensor, f_t: torch.Tensor,
             scales: tuple[float, ...] = (0.5, 1.0, 2.0)) -> torch.Tensor:
    """Squared MMD with a sum of Gaussian kernels (widths ``scales`` times the median
    pairwise distance of the pooled batch, held fixed in the gradient); biased, >= 0."""
    pooled = torch.cat([f_s, f_t])
    d2 = torch.cdist(pooled, pooled).pow(2)
    with torch.no_grad():
        off = d2[~torch.eye(len(pooled), dtype=torch.bool, device=d2.device)]
        width2 = off.median().clamp(min=1e-12)
    kernel = sum(torch.exp(-d2 / (2.0 * s * s * width2)) for s in scales)
    n = len(f_s)
    return (kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2.0 * kernel[:n, n:].mean())


class DomainAdversarial(nn.Module):
    """A network plus a domain discriminator on its features (``network.embed``).
    Training alternates within each step: the discriminator learns to tell source from
    target features, and the features learn to leave it at 50/50 (the domain-confusion
    form of adversarial training, Tzeng et al. 2015, which unlike plain gradient reversal
    cannot be satisfied by features that flip the domains but keep them separable)."""

    def __init__(self, network: nn.Module, n_features: int, width: int = 64) -> None:
        super().__init__()
        self.network = network
        self.domain = nn.Sequential(nn.Linear(n_features, width), nn.ReLU(),
                                    nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def domain_confusion_loss(module: DomainAdversarial, f_s: torch.Tensor,
                          f_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(discriminator loss, confusion loss) of source and target features: the
    discriminator's binary cross-entropy with the features held fixed, and the features'
    cross-entropy against 50/50 with the discriminator held fixed. The training loss adds
    the first and ``weight`` times the second."""
    features = torch.cat([f_s, f_t])
    domain = torch.cat([torch.zeros(len(f_s)), torch.ones(len(f_t))]).to(f_s.device)
    bce = nn.functional.binary_cross_entropy_with_logits
    d_loss = bce(module.domain(features.detach()).squeeze(1), domain)
    frozen = {k: v.detach() for k, v in module.domain.named_parameters()}
    logits = torch.func.functional_call(module.domain, frozen, (features,))
    confusion = bce(logits.squeeze(1), torch.full_like(domain, 0.5))
    return d_loss, confusion


class CycleTranslator(nn.Module):
    """Two dense autoencoders, one per domain, sharing a latent space of ``latent``
    numbers: ``encode(x, domain)`` and ``decode(z, domain)`` with domain "source" or
    "target"; inputs (batch, n_pix) are scaled fluxes (bad pixels 0).

    ``direction`` (a plain attribute, "target" by default) is the domain that
    :meth:`forward` reads: it returns ``decode(encode(x, direction), "source")``, the
    spectrum as the source domain would show it."""

    def __init__(self, n_pix: int, *, latent: int = 32, hidden: int = 256) -> None:
        super().__init__()
        self.n_pix, self.latent, self.hidden = int(n_pix), int(latent), int(hidden)
        self.direction = "target"

        def coder(n_in: int, n_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(n_in, self.hidden), nn.ELU(),
                                 nn.Linear(self.hidden, n_out))

        self.encoders = nn.ModuleDict({"source": coder(self.n_pix, self.latent),
                                       "target": coder(self.n_pix, self.latent)})
        self.decoders = nn.ModuleDict({"source": coder(self.latent, self.n_pix),
                                       "target": coder(self.latent, self.n_pix)})

    def encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        return self.encoders[domain](x)

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        return self.decoders[domain](z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x, self.direction), "source")


def translator_loss(model: CycleTranslator, x_s: torch.Tensor, good_s: torch.Tensor,
                    x_t: torch.Tensor, good_t: torch.Tensor,
                    align_weight: float) -> torch.Tensor:
    """Reconstruction of each domain through its own autoencoder, cycle consistency
    (source -> target -> source and back) and ``align_weight`` times the MMD of the two
    latent distributions, the pixel errors over good pixels only."""

    def err(a: torch.Tensor, b: torch.Tensor, good: torch.Tensor) -> torch.Tensor:
        return ((a - b) ** 2 * good).sum() / good.sum().clamp(min=1)

    z_s, z_t = model.encode(x_s, "source"), model.encode(x_t, "target")
    recon = err(model.decode(z_s, "source"), x_s, good_s) + err(
        model.decode(z_t, "target"), x_t, good_t)
    s_as_t, t_as_s = model.decode(z_s, "target"), model.decode(z_t, "source")
    cycle = err(model.decode(model.encode(s_as_t, "target"), "source"), x_s, good_s) + err(
        model.decode(model.encode(t_as_s, "source"), "target"), x_t, good_t)
    return recon + cycle + align_weight * mmd_loss(z_s, z_t)


def train_translator(x_s: torch.Tensor, good_s: torch.Tensor, x_t: torch.Tensor,
                     good_t: torch.Tensor, *, latent: int, hidden: int, epochs: int,
                     align_weight: float, batch_size: int = 64, lr: float = 1e-3,
                     generator: torch.Generator | None = None,
                     max_time: float | None = None) -> tuple[CycleTranslator, list[float]]:
    """Train a :class:`CycleTranslator` on unlabelled source and target inputs (n, n_pix)
    with their good-pixel weights (1 good, 0 bad); returns it (evaluation mode, direction
    "target") and the mean loss of each epoch. An epoch is as many batches as the larger
    set fills; the other set is drawn with replacement. Stops after ``max_time``
    seconds."""
    import time

    model = CycleTranslator(x_s.shape[1], latent=latent, hidden=hidden).to(x_s.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = max(len(x_s), len(x_t))
    losses: list[float] = []
    start = time.perf_counter()
    for _ in range(int(epochs)):
        model.train()
        total, count = 0.0, 0
        for _ in range(max(1, n // batch_size)):
            i = torch.randint(len(x_s), (batch_size,), generator=generator)
            j = torch.randint(len(x_t), (batch_size,), generator=generator)
            opt.zero_grad(set_to_none=True)
            loss = translator_loss(model, x_s[i], good_s[i], x_t[j], good_t[j], align_weight)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            total, count = total + float(loss.detach()), count + 1
        losses.append(total / count)
        if max_time is not None and time.perf_counter() - start > max_time:
            break
    model.eval()
    return model, losses
