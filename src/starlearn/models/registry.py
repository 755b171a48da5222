"""The network registry: a name -> (network class, task, architecture defaults).

A network module registers each name it serves where the class is defined::

    register_model("starnet", ConvRegressor, task="regress", filters=(4, 16), kernel=8,
                   pool=4, dense=(256, 128))

and :func:`get_model` builds one from a plain config (what a saved model's config.json
holds). Adding a network is one class and one ``register_model`` call in its own module;
the estimators, the command line and the search find it by name (see CONTRIBUTING.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["ModelSpec", "get_model", "model_names", "model_spec", "register_model"]

TASKS = ("regress", "autoencode", "classify")


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of a network name."""

    name: str
    cls: type[nn.Module]
    task: str
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, cls: type[nn.Module], *, task: str,
                   **defaults: Any) -> ModelSpec:
    """Register network ``name``: ``cls(n_pix, n_outputs, **config)`` for regress and
    classify (``cls(n_pix, **config)`` for autoencode) with the architecture ``defaults``
    that ``config`` overrides. A name is registered once."""
    if task not in TASKS:
        raise ValueError(f"register_model: task must be one of {TASKS}, got {task!r}")
    if name in _REGISTRY and _REGISTRY[name].cls is not cls:
        raise ValueError(f"register_model: '{name}' is already registered "
                         f"({_REGISTRY[name].cls.__name__})")
    spec = ModelSpec(name, cls, task, dict(defaults))
    _REGISTRY[name] = spec
    return spec


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name`` (ValueError naming the known ones)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; models are {model_names()}") from None


def model_names(task: str | None = None) -> list[str]:
    """Registered network names (for one task: "regress", "autoencode" or "classify")."""
    return sorted(n for n, s in _REGISTRY.items() if task is None or s.task == task)


def get_model(name: str, *, n_pix: int, n_labels: int | None = None,
              **config: Any) -> nn.Module:
    """Build network ``name`` for ``n_pix`` input pixels (and ``n_labels`` outputs: labels
    of a regressor, classes of a classifier). ``config`` overrides the architecture
    defaults (e.g. ``filters=(8, 32)``, ``latent=64``, ``in_channels=2``)."""
    spec = model_spec(name)
    settings = {**spec.defaults, **config}
    if spec.task in ("regress", "classify"):
        if n_labels is None:
            raise ValueError(f"model '{name}' is a {spec.task} model: give n_labels "
                             "(labels or classes)")
        return spec.cls(n_pix, n_labels, **settings)
    return spec.cls(n_pix, **settings)
