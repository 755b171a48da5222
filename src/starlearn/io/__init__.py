"""Input and output: one reader registry for survey files and the HDF5 data-set format.

Importing this package registers every format (each module registers its own, the HDF5
data set as ``"starlearn-h5"`` in :mod:`starlearn.io.dataset`) with the registry that
:func:`read` (``starlearn.read``), ``SpectrumSet.read``/``write`` and the batch reader
:func:`read_many` dispatch through; once specutils is imported, starlearn's loaders are
registered with specutils too (see :mod:`starlearn.io.specutils_loaders`).
"""

from starlearn.io import (  # noqa: F401  (importing a reader module registers it)
    apogee,
    desi,
    eso,
    gaia,
    galah,
    generic,
    iraf,
    lamost,
    ondrejov,
    pfs,
    sdss,
)
from starlearn.io.batch import expand_inputs, read_many
from starlearn.io.dataset import DatasetStore, open_dataset, read_dataset, write_dataset
from starlearn.io.describe import describe
from starlearn.io.fitsutil import ReadError, ReadWarning
from starlearn.io.registry import formats, identify_format, read

__all__ = ["DatasetStore", "ReadError", "ReadWarning", "describe", "expand_inputs", "formats",
           "identify_format", "open_dataset", "read", "read_dataset", "read_many",
           "write_dataset"]

from starlearn.io import specutils_loaders as _specutils_loaders

_specutils_loaders.install()
