"""Input and output: survey readers (auto-identified by content) and the HDF5 data-set format.

Importing this package registers every reader with :func:`starlearn.io.read` and the LAMOST
loaders with specutils.
"""

from starlearn.io import apogee, generic, lamost, ondrejov, pfs, sdss  # noqa: F401
from starlearn.io.batch import read_many
from starlearn.io.dataset import DatasetStore, open_dataset, read_dataset, write_dataset
from starlearn.io.fitsutil import ReadError
from starlearn.io.registry import formats, identify_format, read

__all__ = ["DatasetStore", "ReadError", "formats", "identify_format", "open_dataset", "read",
           "read_dataset", "read_many", "write_dataset"]
