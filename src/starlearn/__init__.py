"""starlearn: deep learning on stellar spectra for survey astronomy."""

from starlearn.errors import InputError
from starlearn.grid import PRESETS, Grid, air_to_vacuum, get_grid, vacuum_to_air
from starlearn.io import ReadError, open_dataset, read, read_dataset
from starlearn.spectra import SpectrumSet

__version__ = "0.1.0"

_LAZY = {name: ("starlearn.estimators", name)
         for name in ("Autoencoder", "Cannon", "Classifier", "Regressor", "load")}


def __getattr__(name: str):  # torch is imported only when an estimator is used
    import importlib

    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in ("synth", "preprocess", "estimators", "evaluate", "models"):
        return importlib.import_module(f"starlearn.{name}")
    raise AttributeError(f"module 'starlearn' has no attribute '{name}'")


__all__ = [
    "PRESETS",
    "Autoencoder",
    "Cannon",
    "Classifier",
    "Grid",
    "InputError",
    "ReadError",
    "Regressor",
    "SpectrumSet",
    "__version__",
    "air_to_vacuum",
    "get_grid",
    "load",
    "open_dataset",
    "read",
    "read_dataset",
    "vacuum_to_air",
]
