"""Neural networks (torch ``nn.Module`` only; no training code, no files).

``build_model(name, n_pix=..., n_labels=..., **config)`` builds a registered network from
a plain config; ``MODEL_DEFAULTS[name]`` holds each name's architecture as in its paper.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from starlearn.models.regressors import ConvRegressor, DenseRegressor, GaussianHead

__all__ = ["MODEL_DEFAULTS", "ConvRegressor", "DenseRegressor", "GaussianHead", "build_model",
           "model_names"]

MODEL_DEFAULTS: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    # StarNet architecture table (Fabbro et al. 2018)
    "shallow-nn": (DenseRegressor, {"hidden": (512, 128)}),
    "deep-nn": (DenseRegressor, {"hidden": (2048, 1024, 512, 256, 128, 32)}),
    "shallow-cnn": (ConvRegressor, {"filters": (16,), "kernel": 8, "pool": 4,
                                    "dense": (128,)}),
    "starnet": (ConvRegressor, {"filters": (4, 16), "kernel": 8, "pool": 4,
                                "dense": (256, 128)}),
    "deep-cnn": (ConvRegressor, {"filters": (16, 32, 32, 64, 64), "kernel": 8, "pool": 4,
                                 "pool_after": (1, 3, 4), "dense": (1024, 512, 256)}),
}


def model_names() -> list[str]:
    """Registered network names."""
    return sorted(MODEL_DEFAULTS)


def build_model(name: str, *, n_pix: int, n_labels: int, **config: Any) -> nn.Module:
    """Build network ``name`` for ``n_pix`` input pixels and ``n_labels`` outputs.

    ``config`` overrides the architecture defaults of ``MODEL_DEFAULTS[name]`` (e.g.
    ``filters=(8, 32)``, ``dense=(512, 256)``, ``in_channels=2``, ``dropout=0.1``).
    """
    try:
        cls, defaults = MODEL_DEFAULTS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; models are {model_names()}") from None
    return cls(n_pix, n_labels, **{**defaults, **config})
