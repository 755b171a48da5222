"""Neural networks (torch ``nn.Module`` only; no training code, no files).

Each network module registers the names it serves (:func:`register_model`, in
:mod:`starlearn.models.registry`); ``get_model(name, n_pix=..., n_labels=..., **config)``
(alias ``build_model``) builds one from a plain config, ``model_names(task)`` lists them.
``MODEL_DEFAULTS[name]`` (class, architecture as in its paper) and ``MODEL_TASKS[name]`` are
read-only views of the registry.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from torch import nn

from starlearn.models import autoencoders, classifiers, regressors  # noqa: F401 (register)
from starlearn.models.autoencoders import ConvAutoencoder, DenseAutoencoder
from starlearn.models.classifiers import VGG1D
from starlearn.models.registry import (
    _REGISTRY,
    ModelSpec,
    get_model,
    model_names,
    model_spec,
    register_model,
)
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
    "ModelSpec",
    "build_model",
    "get_model",
    "model_names",
    "model_spec",
    "register_model",
]


def _defaults() -> dict[str, tuple[type[nn.Module], dict[str, Any]]]:
    return {n: (s.cls, s.defaults) for n, s in _REGISTRY.items()}


MODEL_DEFAULTS = MappingProxyType(_defaults())
MODEL_TASKS = MappingProxyType({n: s.task for n, s in _REGISTRY.items()})

build_model = get_model
