"""Input and output: the starlearn HDF5 data-set format (and, later, survey readers)."""

from starlearn.io.dataset import DatasetStore, open_dataset, read_dataset, write_dataset

__all__ = ["DatasetStore", "open_dataset", "read_dataset", "write_dataset"]
