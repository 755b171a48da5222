"""Pipeline: a chain of Transforms that is itself a Transform."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlearn.preprocess.base import Transform, _check_spectra, transform_from_dict
from starlearn.spectra import SpectrumSet

__all__ = ["Pipeline"]


class Pipeline(Transform):
    """Apply transforms one after the other.

    ``fit`` fits each step on the output of the steps before it (``fit_transform`` of
    every step but the last); ``transform`` chains the steps' ``transform``. The steps are
    fitted in place (not cloned), as in :class:`sklearn.pipeline.Pipeline`.

    Parameters
    ----------
    steps : sequence of Transform
        The transforms, in order of application.

    Notes
    -----
    ``to_dict()`` nests each step's own ``to_dict()`` (with its fitted state) under
    ``params["steps"]``; the Pipeline has no state of its own. A
    :class:`~starlearn.preprocess.DegradeResolution` followed directly by a
    :class:`~starlearn.preprocess.Resample` is applied as one operator (the blur and the
    rebinning together), which propagates the errors of the pixels the blur correlated
    exactly; two separate steps would overstate the ivar. A step that needs fitting
    raises :class:`sklearn.exceptions.NotFittedError` from ``transform`` before ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import SpectrumSet
    >>> from starlearn.preprocess import DopplerShift, Pipeline, Resample, Standardize
    >>> s = SpectrumSet(wave=np.linspace(7000, 9000, 3000), flux=np.ones((4, 3000)))
    >>> p = Pipeline(steps=[DopplerShift(rv=20.0), Resample(grid="pfs-mr"), Standardize()])
    >>> p.fit(s).transform(s).n_pix
    4096
    """

    def __init__(self, *, steps: Sequence[Transform] = ()) -> None:
        self.steps = steps

    def _validate_params(self) -> None:
        if not isinstance(self.steps, (list, tuple)):
            raise TypeError(f"Pipeline: 'steps' must be a list of Transforms, got "
                            f"{type(self.steps).__name__}")
        for i, step in enumerate(self.steps):
            if not isinstance(step, Transform):
                raise TypeError(f"Pipeline: 'steps[{i}]' must be a Transform, got "
                                f"{type(step).__name__}")

    def fit(self, spectra: SpectrumSet, y: None = None) -> Pipeline:
        """Fit each step on the output of the previous ones; returns ``self``."""
        _check_spectra(spectra, "Pipeline")
        self._validate_params()
        out = spectra
        units = self._units()
        for i, unit in enumerate(units):
            if i < len(units) - 1:
                out = unit(out, fit=True)
            else:
                unit(out, fit=True, last=True)
        return self

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        out = spectra
        for unit in self._units():
            out = unit(out, fit=False)
        if out is spectra:  # an empty pipeline still returns a new object
            out = spectra.replace()
        return out

    def _units(self) -> list[Any]:
        """The steps as callables ``unit(spectra, fit, last=False)``, a DegradeResolution
        without a grid and the Resample right after it fused into one."""
        from starlearn.preprocess.resample import Resample
        from starlearn.preprocess.resolution import DegradeResolution

        steps, units, i = list(self.steps), [], 0
        while i < len(steps):
            step = steps[i]
            after = steps[i + 1] if i + 1 < len(steps) else None
            if (type(step) is DegradeResolution and step.grid is None
                    and type(after) is Resample):
                units.append(_fused(step, after))
                i += 2
            else:
                units.append(_single(step))
                i += 1
        return units

    def inverse_transform(self, spectra: SpectrumSet) -> SpectrumSet:
        """Undo the steps in reverse order (every step must have ``inverse_transform``)."""
        _check_spectra(spectra, "Pipeline")
        self._validate_params()
        missing = [type(s).__name__ for s in self.steps if not hasattr(s, "inverse_transform")]
        if missing:
            raise TypeError(f"Pipeline.inverse_transform: steps {missing} have no "
                            "inverse_transform")
        out = spectra
        for step in reversed(self.steps):
            out = step.inverse_transform(out)
        return out

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        params["steps"] = [s if isinstance(s, Transform) else transform_from_dict(s)
                           for s in params.get("steps", [])]
        return params


def _single(step: Transform) -> Any:
    def unit(spectra: SpectrumSet, fit: bool, last: bool = False) -> SpectrumSet:
        if not fit:
            return step.transform(spectra)
        return step.fit(spectra) if last else step.fit_transform(spectra)

    return unit


def _fused(degrade: Any, resample: Any) -> Any:
    """DegradeResolution then Resample as one operator (both are stateless: fitting them
    only checks their parameters)."""
    from starlearn.preprocess.resolution import DegradeResolution

    def unit(spectra: SpectrumSet, fit: bool, last: bool = False) -> SpectrumSet:
        if fit:
            degrade.fit(spectra)
            resample.fit(spectra)
        params = {**degrade.get_params(), "grid": resample.grid}
        return DegradeResolution(**params).fit(spectra).degrade(
            spectra, resample_min_good=resample.min_good)

    return unit
