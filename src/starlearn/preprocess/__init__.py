"""Preprocessing transforms (fit/transform, to_dict/from_dict) and the Pipeline.

Every transform takes and returns a :class:`~starlearn.SpectrumSet` and follows the
scikit-learn transformer contract (see :class:`Transform`). The usual order is
``DopplerShift -> Resample -> continuum -> DegradeResolution -> Standardize``::

    from starlearn.preprocess import Pipeline, DopplerShift, Resample, FitContinuum
    pipe = Pipeline(steps=[DopplerShift(), Resample(grid="apogee"), FitContinuum()])
    ready = pipe.fit_transform(spectra)
    config = pipe.to_dict()           # JSON-able, fitted state included
    same = transform_from_dict(config)
"""

from starlearn.preprocess.base import Transform, registered_transforms, transform_from_dict
from starlearn.preprocess.cannon_continuum import CannonContinuum
from starlearn.preprocess.domain import DomainAdapter, median_snr
from starlearn.preprocess.doppler import DopplerShift
from starlearn.preprocess.fit_continuum import FitContinuum
from starlearn.preprocess.noise import AddNoise
from starlearn.preprocess.pipeline import Pipeline
from starlearn.preprocess.resample import Resample
from starlearn.preprocess.resolution import DegradeResolution
from starlearn.preprocess.running_continuum import RunningPercentileContinuum
from starlearn.preprocess.standardize import Standardize
from starlearn.preprocess.window import LineWindow

__all__ = [
    "AddNoise",
    "CannonContinuum",
    "DegradeResolution",
    "DomainAdapter",
    "DopplerShift",
    "FitContinuum",
    "LineWindow",
    "Pipeline",
    "Resample",
    "RunningPercentileContinuum",
    "Standardize",
    "Transform",
    "median_snr",
    "registered_transforms",
    "transform_from_dict",
]
