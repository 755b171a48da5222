"""starlearn: deep learning on stellar spectra for survey astronomy."""

from starlearn.grid import PRESETS, Grid, air_to_vacuum, get_grid, vacuum_to_air
from starlearn.io import ReadError, open_dataset, read, read_dataset
from starlearn.spectra import SpectrumSet

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "Grid",
    "ReadError",
    "SpectrumSet",
    "__version__",
    "air_to_vacuum",
    "get_grid",
    "open_dataset",
    "read",
    "read_dataset",
    "vacuum_to_air",
]
