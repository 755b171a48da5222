"""The Transform base class, the transform registry and JSON (de)serialisation.

A Transform follows the scikit-learn transformer contract, on SpectrumSets instead of
arrays:

* the constructor stores its keyword-only hyperparameters unchanged and nothing else
  (``get_params`` / ``set_params`` / ``sklearn.base.clone`` come from
  :class:`sklearn.base.BaseEstimator`);
* ``fit(spectra)`` validates the parameters, clears earlier fitted state, learns and
  returns ``self`` (also when the transform learns nothing);
* learned state lives in public attributes ending in ``_``; a stateful transform raises
  :class:`sklearn.exceptions.NotFittedError` from ``transform`` before ``fit``;
* ``transform(spectra)`` returns a new SpectrumSet and never changes its input.

Serialisation: ``to_dict()`` gives ``{"type": name, "params": ..., "state": ...}`` made of
plain JSON types only, and :func:`transform_from_dict` (or ``Transform.from_dict``) rebuilds
the transform, fitted state included, so that ``json.dumps`` / ``json.loads`` of the
dictionary round-trips to a transform with identical output. Every concrete subclass is
registered under its class name when the class is defined.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from starlearn.grid import Grid
from starlearn.spectra import SpectrumSet

__all__ = ["Transform", "registered_transforms", "transform_from_dict"]

_REGISTRY: dict[str, type[Transform]] = {}


def registered_transforms() -> dict[str, type[Transform]]:
    """A copy of the registry: transform name -> class."""
    return dict(_REGISTRY)


_GRID_KEYS = frozenset(Grid.__dataclass_fields__)


def _is_grid_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == _GRID_KEYS


def _jsonable(value: Any, where: str) -> Any:
    """Convert a parameter or state value into plain JSON types (recursively)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Transform):
        return value.to_dict()
    if isinstance(value, Grid):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"to_dict: '{where}' has type {type(value).__name__}, which has no JSON "
                    "form; use numbers, strings, lists, arrays, Grids or Transforms")


class Transform(BaseEstimator):
    """Base class of all preprocessing transforms (scikit-learn transformer contract).

    Subclasses define a keyword-only ``__init__`` that stores the hyperparameters, and
    override some of: ``_validate_params`` (raise ``ValueError``/``TypeError`` naming the
    parameter and its allowed values), ``_fit`` (set attributes ending in ``_``),
    ``_transform`` (return a new SpectrumSet), ``_inverse_transform``. Stateful subclasses
    set the class attribute ``_stateful = True``; ``_state_dtypes`` gives the numpy dtype
    of each array-valued fitted attribute when it is read back from JSON.

    Subclasses are registered under their class name (or ``_registry_name`` when set);
    names starting with ``_`` are not registered (private bases).

    Examples
    --------
    >>> import json
    >>> from starlearn.preprocess import DopplerShift, transform_from_dict
    >>> t = DopplerShift(rv=12.5)
    >>> t.to_dict()["params"]
    {'rv': 12.5, 'rv_column': 'rv', 'to_rest': True}
    >>> transform_from_dict(json.loads(json.dumps(t.to_dict()))).get_params() == t.get_params()
    True
    """

    _stateful: ClassVar[bool] = False
    _state_dtypes: ClassVar[dict[str, Any]] = {}
    _registry_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("_registry_name") or cls.__name__
        if name.startswith("_"):
            return
        other = _REGISTRY.get(name)
        if other is not None and (other.__module__, other.__qualname__) != (
                cls.__module__, cls.__qualname__):
            raise TypeError(f"Transform name '{name}' is already registered by "
                            f"{other.__module__}.{other.__qualname__}; set a different "
                            "'_registry_name' on the class")
        cls._registry_name = name
        _REGISTRY[name] = cls

    # ------------------------------------------------------------------ the public API
    def fit(self, spectra: SpectrumSet, y: None = None) -> Transform:
        """Learn the transform's state from ``spectra`` (a no-op for stateless ones).

        Parameters
        ----------
        spectra : SpectrumSet
            Training spectra.
        y : None
            Ignored; present for scikit-learn compatibility.

        Returns
        -------
        self
        """
        _check_spectra(spectra, type(self).__name__)
        self._validate_params()
        self._reset()
        self._fit(spectra)
        return self

    def transform(self, spectra: SpectrumSet) -> SpectrumSet:
        """Apply the transform; returns a new SpectrumSet (the input is not modified).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            For a stateful transform that has not been fitted.
        """
        _check_spectra(spectra, type(self).__name__)
        if self._stateful:
            check_is_fitted(self)
        self._validate_params()
        return self._transform(spectra)

    def fit_transform(self, spectra: SpectrumSet, y: None = None) -> SpectrumSet:
        """``fit(spectra)`` then ``transform(spectra)``."""
        return self.fit(spectra).transform(spectra)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able description: ``{"type", "params", "state"}``.

        ``params`` is ``get_params(deep=False)`` with arrays and tuples as lists, Grids as
        ``Grid.to_dict()`` and nested transforms as their own ``to_dict()``; ``state``
        holds the fitted attributes (those ending in ``_``) as lists and numbers.
        """
        name = type(self)._registry_name
        if not name:
            raise TypeError(f"{type(self).__name__} is not a registered transform")
        params = {k: _jsonable(v, k) for k, v in self.get_params(deep=False).items()}
        state = {k: _jsonable(v, k) for k, v in self._fitted_state().items()}
        return {"type": name, "params": params, "state": state}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Transform:
        """Rebuild a transform (with its fitted state) from :meth:`to_dict` output.

        Called on ``Transform`` it builds whichever registered type ``d["type"]`` names;
        called on a subclass it also checks that the type matches.
        """
        if not isinstance(d, Mapping) or "type" not in d:
            raise ValueError("from_dict: expected a dict with keys 'type', 'params', 'state' "
                             f"as written by Transform.to_dict, got {type(d).__name__}")
        name = d["type"]
        try:
            klass = _REGISTRY[name]
        except KeyError:
            raise ValueError(f"from_dict: unknown transform type '{name}'; registered types "
                             f"are {sorted(_REGISTRY)}") from None
        if cls is not Transform and not issubclass(klass, cls):
            raise ValueError(f"from_dict: the dict describes a '{name}', not a "
                             f"{cls.__name__}")
        params = klass._params_from_json(dict(d.get("params", {})))
        obj = klass(**params)
        obj._restore_state(dict(d.get("state", {})))
        return obj

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Turn JSON parameters back into constructor arguments: Grids written by
        ``to_dict`` become Grids again (override for other types)."""
        return {k: Grid.from_dict(v) if _is_grid_dict(v) else v for k, v in params.items()}

    def _fitted_state(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _restore_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            if not key.endswith("_") or key.startswith("_"):
                raise ValueError(f"from_dict: state key '{key}' is not a fitted attribute "
                                 "(those end in '_')")
            if isinstance(value, list):
                value = np.asarray(value, dtype=self._state_dtypes.get(key))
            setattr(self, key, value)

    # ------------------------------------------------------------------ hooks
    def _reset(self) -> None:
        for key in list(self._fitted_state()):
            delattr(self, key)

    def _validate_params(self) -> None:
        """Check the hyperparameters; raise naming the parameter and its allowed values."""

    def _fit(self, spectra: SpectrumSet) -> None:
        """Learn state from ``spectra``; stateless transforms learn nothing."""

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:  # pragma: no cover
        raise NotImplementedError


def transform_from_dict(d: Mapping[str, Any]) -> Transform:
    """Rebuild any registered transform (or Pipeline) from its :meth:`Transform.to_dict`.

    Examples
    --------
    >>> from starlearn.preprocess import Pipeline, Resample, Standardize
    >>> p = Pipeline(steps=[Resample(grid="lamost"), Standardize()])
    >>> q = transform_from_dict(p.to_dict())
    >>> [type(s).__name__ for s in q.steps]
    ['Resample', 'Standardize']
    """
    return Transform.from_dict(d)


def _check_spectra(spectra: Any, who: str) -> None:
    if not isinstance(spectra, SpectrumSet):
        raise TypeError(f"{who}: expected a SpectrumSet, got {type(spectra).__name__}")


def _require_shared_wave(spectra: SpectrumSet, who: str) -> None:
    if not spectra.shared_wave:
        raise ValueError(f"{who}: needs spectra on one shared wavelength grid (wave of shape "
                         f"(n_pixels,)), got per-spectrum wave of shape {spectra.wave.shape}; "
                         "put them on a common grid with Resample first")


def _check_fitted_wave(wave_fit: np.ndarray, spectra: SpectrumSet, who: str) -> None:
    """Check that ``spectra`` lie on the wavelength grid seen in ``fit``."""
    _require_shared_wave(spectra, who)
    if spectra.n_pix != wave_fit.size:
        raise ValueError(f"{who}: fitted on {wave_fit.size} pixels but the spectra have "
                         f"{spectra.n_pix}; resample them onto the fitted grid")
    if not np.allclose(spectra.wave, wave_fit, rtol=1e-7, atol=0):
        raise ValueError(f"{who}: the spectra's wavelength grid differs from the one seen in "
                         "fit; resample them onto the fitted grid")


def _check_number(value: Any, name: str, who: str, *, low: float | None = None,
                  high: float | None = None, low_open: bool = False,
                  integer: bool = False) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is a number in the range."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and np.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        kind = "an integer" if integer else "a finite number"
        rng = ""
        if low is not None:
            rng += f" {'>' if low_open else '>='} {low}"
        if high is not None:
            rng += f"{' and' if rng else ''} <= {high}"
        raise ValueError(f"{who}: '{name}' must be {kind}{rng}, got {value!r}")
