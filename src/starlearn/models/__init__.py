"""Neural networks (torch ``nn.Module`` only; no training code, no files).

``build_model(name, n_pix=..., n_labels=..., **config)`` builds a registered network from
a plain config; ``MODEL_DEFAULTS[name]`` holds each name's architecture as in its paper and
``MODEL_TASKS[name]`` the task it serves.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from starlearn.models.autoencoders import ConvAutoencoder, DenseAutoencoder
from starlearn.models.classifiers import VGG1D
from starlearn.models.regressors import ConvRegressor, DenseRegressor, GaussianHead

__all__ = [
    "MODEL_DEFAULTS",
    "MODEL_TASKS",
    "VGG1D",
    "ConvAutoencoder",
    "ConvRegressor",
    "DenseAutoencoder",
    "DenseRegressor",
    "GaussianHead",
    "build_model",
    "model_names",
]

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
    # Subaru PFS Galactic Archaeology autoencoders
    "dense-ae": (DenseAutoencoder, {"latent": 32, "hidden": (1024, 512, 128)}),
    "conv-ae": (ConvAutoencoder, {"latent": 16, "channels": (16, 32), "kernel": 7,
                                "dilations": (2, 4, 8, 16)}),
    # emission-line stars (Podsztavek et al.): VGG-like 1-D CNN on H-alpha windows
    "vgg1d": (VGG1D, {"blocks": ((64, 64), (128, 128), (256, 256)), "kernel": 3,
                      "dense": (512, 512), "dropout": 0.5}),
}

MODEL_TASKS: dict[str, str] = {
    **{name: "regress" for name in ("shallow-nn", "deep-nn", "shallow-cnn", "starnet",
                                    "deep-cnn")},
    "dense-ae": "autoencode", "conv-ae": "autoencode", "vgg1d": "classify",
}


def model_names(task: str | None = None) -> list[str]:
    """Registered network names (for one task: "regress", "autoencode" or "classify")."""
    return sorted(n for n in MODEL_DEFAULTS if task is None or MODEL_TASKS[n] == task)


def build_model(name: str, *, n_pix: int, n_labels: int | None = None,
                **config: Any) -> nn.Module:
    """Build network ``name`` for ``n_pix`` input pixels (and ``n_labels`` outputs: labels
    of a regressor, classes of a classifier). ``config`` overrides the architecture
    defaults (e.g. ``filters=(8, 32)``, ``latent=64``, ``in_channels=2``)."""
    try:
        cls, defaults = MODEL_DEFAULTS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; models are {model_names()}") from None
    settings = {**defaults, **config}
    if MODEL_TASKS[name] in ("regress", "classify"):
        if n_labels is None:
            raise ValueError(f"model '{name}' is a {MODEL_TASKS[name]} model: give n_labels "
                             "(labels or classes)")
        return cls(n_pix, n_labels, **settings)
    return cls(n_pix, **settings)
