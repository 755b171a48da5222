"""The starlearn HDF5 data-set format: write, read whole, or read lazily in batches.

Layout (see ``docs/dataset-format.md``)::

    /                 attrs: format = "starlearn-spectra", version = 2
    /wave             float64, (n_pixels,) or (n_spectra, n_pixels), vacuum; attr unit
    /flux             float32, (n_spectra, n_pixels); attr unit ("" = dimensionless)
    /ivar             float32, (n_spectra, n_pixels), inverse variance, 0 = no information;
                      attr unit (flux unit**-2)
    /mask             bool,    (n_spectra, n_pixels), True = bad pixel         [optional]
    /labels           float32, (n_spectra, n_labels), NaN = missing; attrs names, units
                                                                               [optional]
    /classes          int,     (n_spectra,), -1 = unknown; attr names          [optional]
    /ids              str,     (n_spectra,)
    /meta/<column>    one dataset per metadata column, (n_spectra,); attr unit [optional]

Version 2 added the ``unit`` attributes and the label ``units``; files of version 1 are
read as before (wavelength in Angstrom, dimensionless flux).

Spectrum arrays are chunked in whole spectra, so a reader pulls a batch of rows without
touching the rest of the file.

The format is registered with the reader registry as ``"starlearn-h5"`` (reader
:func:`read_dataset`, writer :func:`write_dataset`, identified by the HDF5 signature and
the root attribute ``format``), so ``starlearn.read``, ``SpectrumSet.read`` /
``SpectrumSet.write`` and ``starlearn.io.read_many`` read and write it like any other
format; :func:`open_dataset` is the lazy view for files larger than memory.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

import astropy.units as u
import h5py
import numpy as np
from astropy.table import Table

from starlearn._atomic import remove_stale_temporaries, share_mode, temporary_name
from starlearn.io.fitsutil import FileMissingError, ReadError
from starlearn.io.registry import HDF5_SIGNATURE, register_reader, register_writer
from starlearn.spectra import SpectrumSet
from starlearn.units import (
    ANGSTROM,
    UnitProblem,
    angstrom_factor,
    label_unit,
    unit_text,
    wavelength_unit,
)
from starlearn.units import flux_unit as parse_flux_unit

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "READ_VERSIONS", "DatasetStore", "DatasetWriter",
           "dataset_identify", "open_dataset", "read_dataset", "write_dataset"]

FORMAT_NAME = "starlearn-spectra"
FORMAT_VERSION = 2
"""The version this starlearn writes (2: units stored; see docs/dataset-format.md)."""
READ_VERSIONS = (1, 2)
"""The versions this starlearn reads."""
_STR = h5py.string_dtype("utf-8")
_PER_SPECTRUM = ("flux", "ivar", "mask")


def _chunk_rows(n_pix: int, itemsize: int = 4) -> int:
    """Rows per chunk: whole spectra, about 256 KiB per chunk."""
    return int(max(1, min(1024, (256 * 1024) // max(1, n_pix * itemsize))))


def _meta_array(column: Any) -> np.ndarray:
    data = column.filled() if hasattr(column, "filled") and hasattr(column, "mask") else column
    arr = np.asarray(data)
    if arr.dtype.kind in "USO":
        return np.asarray([str(x) for x in arr], dtype=object)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"meta column '{getattr(column, 'name', '?')}' has unsupported "
                         f"dtype {arr.dtype}")
    return arr


class DatasetWriter:
    """Write a data-set file spectrum block by spectrum block (for ingest and big files).

    Parameters
    ----------
    path : path-like
        Output file.
    wave : array, shape (n_pixels,), optional
        The shared vacuum wavelength grid (Angstrom). ``None`` stores per-spectrum
        wavelengths taken from each appended SpectrumSet.
    label_names, class_names : list of str
        Fixed for the whole file.
    meta_columns : dict of name -> dtype
        Per-spectrum metadata columns to store under ``/meta`` (their units are taken
        from the first block appended).
    flux_unit : astropy unit or str, optional
        The flux unit of the file; blocks in another unit are converted to it. By
        default the unit of the first block appended.
    provenance : dict, optional
        How the file was made (command, config, versions); stored as JSON in the root
        attribute ``provenance``.
    overwrite : bool
        Replace an existing file; otherwise an existing file raises FileExistsError.
    expected_rows : int, optional
        Number of spectra if known (small files then get small chunks).

    Label units are those of :func:`starlearn.units.label_unit` (none for a label it does
    not know).

    The file is written under a hidden temporary name in the same folder and renamed to
    ``path`` by :meth:`close`, so that replacing a file never truncates it under a process
    reading it; leaving the ``with`` block by an exception (or :meth:`discard`) deletes the
    temporary file and leaves any old file as it was.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from starlearn import Grid, SpectrumSet
    >>> grid = Grid.log_uniform(5000.0, 5100.0, n_pix=50)
    >>> blocks = [SpectrumSet(wave=grid.wave, flux=np.full((3, 50), k)) for k in (1.0, 2.0)]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "set.h5"
    ...     with DatasetWriter(path, n_pix=grid.n_pix, wave=grid.wave) as w:
    ...         for block in blocks:
    ...             w.append(block)
    ...     with open_dataset(path) as store:
    ...         print(len(store), store.n_pix, store.read([0, 5]).flux[:, 0].tolist())
    6 50 [1.0, 2.0]
    """

    def __init__(self, path: str | PathLike, *, n_pix: int, wave: np.ndarray | None = None,
                 label_names: list[str] | None = None, class_names: list[str] | None = None,
                 meta_columns: dict[str, np.dtype] | None = None,
                 provenance: dict[str, Any] | None = None, overwrite: bool = False,
                 expected_rows: int | None = None, flux_unit: Any = None) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: file exists (pass overwrite=True to replace it)")
        self.n_pix = int(n_pix)
        self.label_names = list(label_names or [])
        self.class_names = list(class_names or [])
        self.shared_wave = wave is not None
        self.flux_unit = None if flux_unit is None else parse_flux_unit(flux_unit)
        self.n = 0
        rows = _chunk_rows(self.n_pix)
        if expected_rows is not None:
            rows = max(1, min(rows, int(expected_rows)))
        remove_stale_temporaries(self.path.parent, self.path.name)
        if expected_rows is not None:
            self._ensure_room(int(expected_rows))
        self._tmp = temporary_name(self.path)
        self._h5 = h5py.File(self._tmp, "w")
        try:
            self._create(wave, rows, provenance, meta_columns)
        except BaseException:
            self.discard()
            raise

    def _create(self, wave: np.ndarray | None, rows: int, provenance: dict[str, Any] | None,
                meta_columns: dict[str, np.dtype] | None) -> None:
        h5 = self._h5
        h5.attrs["format"] = FORMAT_NAME
        h5.attrs["version"] = FORMAT_VERSION
        if provenance:
            h5.attrs["provenance"] = json.dumps(provenance)
        shape, maxshape, chunks = (0, self.n_pix), (None, self.n_pix), (rows, self.n_pix)
        if self.shared_wave:
            wave = np.asarray(wave, dtype=np.float64)
            if wave.shape != (self.n_pix,):
                raise ValueError(f"DatasetWriter: wave has shape {wave.shape}, expected "
                                 f"({self.n_pix},)")
            h5.create_dataset("wave", data=wave)
        else:
            h5.create_dataset("wave", shape, np.float64, maxshape=maxshape, chunks=chunks)
        h5["wave"].attrs["unit"] = ANGSTROM.to_string()
        h5.create_dataset("flux", shape, np.float32, maxshape=maxshape, chunks=chunks)
        h5.create_dataset("ivar", shape, np.float32, maxshape=maxshape, chunks=chunks)
        h5.create_dataset("mask", shape, bool, maxshape=maxshape, chunks=chunks)
        self._write_flux_unit(self.flux_unit or u.dimensionless_unscaled)
        if self.label_names:
            d = h5.create_dataset("labels", (0, len(self.label_names)), np.float32,
                                  maxshape=(None, len(self.label_names)),
                                  chunks=(min(4096, rows * 16), len(self.label_names)))
            d.attrs["names"] = np.asarray(self.label_names, dtype=object)
            d.attrs["units"] = np.asarray([unit_text(label_unit(x)) for x in self.label_names],
                                          dtype=object)
        if self.class_names:
            d = h5.create_dataset("classes", (0,), np.int64, maxshape=(None,),
                                  chunks=(min(4096, rows * 16),))
            d.attrs["names"] = np.asarray(self.class_names, dtype=object)
        h5.create_dataset("ids", (0,), _STR, maxshape=(None,), chunks=(min(4096, rows * 16),))
        self._meta_dtypes = dict(meta_columns or {})
        if self._meta_dtypes:
            group = h5.create_group("meta", track_order=True)  # keys in column order
            for name, dtype in self._meta_dtypes.items():
                dt = _STR if np.dtype(dtype).kind in "USO" else np.dtype(dtype)
                group.create_dataset(name, (0,), dt, maxshape=(None,),
                                     chunks=(min(4096, rows * 16),))

    def _write_flux_unit(self, unit: u.UnitBase) -> None:
        self._h5["flux"].attrs["unit"] = unit_text(unit)
        self._h5["ivar"].attrs["unit"] = unit_text(unit ** -2)

    def _ensure_room(self, n: int) -> None:
        """Refuse (ENOSPC, naming the file) to write ``n`` more spectra where the disk has
        not room for them: HDF5 that meets a full disk mid-write can bring the process
        down instead of raising, so the room is checked first."""
        per_row = self.n_pix * (4 + 4 + 1 + (0 if self.shared_wave else 8)) + 256 + 4 * len(
            self.label_names)
        need = int(1.1 * n * per_row) + 64 * 1024
        folder = self.path.parent if str(self.path.parent) else Path(".")
        free = shutil.disk_usage(folder).free
        if free < need:
            raise OSError(errno.ENOSPC, f"No space left on device: {free / 1e6:.2f} MB free, "
                          f"{n} spectra need about {need / 1e6:.2f} MB", str(self.path))

    def append(self, spectra: SpectrumSet) -> None:
        """Append a block of spectra (same pixels, labels and classes as the file; flux in
        the file's unit or one that converts to it)."""
        self._ensure_room(len(spectra))
        if spectra.n_pix != self.n_pix:
            raise ValueError(f"{self.path}: block has {spectra.n_pix} pixels, file has "
                             f"{self.n_pix}")
        if spectra.label_names != self.label_names:
            raise ValueError(f"{self.path}: block labels {spectra.label_names} differ from "
                             f"the file's {self.label_names}")
        if self.class_names and spectra.class_names != self.class_names:
            raise ValueError(f"{self.path}: block classes {spectra.class_names} differ from "
                             f"the file's {self.class_names}")
        if self.flux_unit is None:
            self.flux_unit = spectra.flux_unit
            self._write_flux_unit(self.flux_unit)
        elif spectra.flux_unit != self.flux_unit:
            try:
                spectra = spectra.to_flux_unit(self.flux_unit)
            except u.UnitConversionError:
                raise ValueError(f"{self.path}: block flux unit '{spectra.flux_unit}' does "
                                 f"not convert to the file's '{self.flux_unit}'") from None
        h5, n0, k = self._h5, self.n, len(spectra)
        n1 = n0 + k
        if self.shared_wave:
            if not (spectra.shared_wave and np.array_equal(spectra.wave, h5["wave"][...])):
                raise ValueError(f"{self.path}: block is not on the file's wavelength grid")
        else:
            h5["wave"].resize(n1, axis=0)
            h5["wave"][n0:n1] = np.broadcast_to(spectra.wave, spectra.flux.shape)
        for name in _PER_SPECTRUM:
            h5[name].resize(n1, axis=0)
            h5[name][n0:n1] = getattr(spectra, name)
        if self.label_names:
            h5["labels"].resize(n1, axis=0)
            h5["labels"][n0:n1] = spectra.labels
        if self.class_names:
            h5["classes"].resize(n1, axis=0)
            h5["classes"][n0:n1] = (np.full(k, -1) if spectra.classes is None
                                    else spectra.classes)
        h5["ids"].resize(n1, axis=0)
        h5["ids"][n0:n1] = np.asarray(spectra.ids, dtype=object)
        for name in self._meta_dtypes:
            d = h5["meta"][name]
            d.resize(n1, axis=0)
            if name in spectra.meta.colnames:
                unit = getattr(spectra.meta[name], "unit", None)
                if n0 == 0 and unit is not None and "unit" not in d.attrs:
                    d.attrs["unit"] = unit_text(unit)
                d[n0:n1] = _meta_array(spectra.meta[name])
            else:
                d[n0:n1] = _missing(d.dtype, k)
        self.n = n1

    def close(self) -> None:
        """Finish the file and move it to ``path`` (replacing what was there)."""
        if self._h5:
            try:
                self._h5.close()
                share_mode(self._tmp)
                os.replace(self._tmp, self.path)
            except BaseException:  # e.g. a full disk while flushing
                self._tmp.unlink(missing_ok=True)
                raise

    def discard(self) -> None:
        """Drop what was written; an old file at ``path`` stays as it was."""
        try:
            if self._h5:
                self._h5.close()
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def _missing(dtype: np.dtype, k: int) -> np.ndarray:
    """Fill values for a metadata column absent from a block: '', NaN, or 0."""
    if dtype.kind == "O":
        return np.full(k, "", dtype=object)
    return np.full(k, np.nan if dtype.kind == "f" else 0, dtype=dtype)


def write_dataset(spectra: SpectrumSet, path: str | PathLike, *, overwrite: bool = False,
                  provenance: dict[str, Any] | None = None) -> None:
    """Write a SpectrumSet to ``path`` in the starlearn HDF5 data-set format (replaced
    whole, see :class:`DatasetWriter`); the ``starlearn-h5`` writer of
    :meth:`SpectrumSet.write <starlearn.spectra.SpectrumSet.write>`.

    Parameters
    ----------
    spectra : SpectrumSet
    path : path-like
    overwrite : bool
        Replace an existing file; otherwise an existing file raises FileExistsError.
    provenance : dict, optional
        How the file was made (command, config, versions), stored as JSON.
    """
    meta_cols = {name: _meta_array(spectra.meta[name]).dtype for name in spectra.meta.colnames}
    with DatasetWriter(path, n_pix=spectra.n_pix,
                       wave=spectra.wave if spectra.shared_wave else None,
                       label_names=spectra.label_names, class_names=spectra.class_names,
                       meta_columns=meta_cols, provenance=provenance,
                       overwrite=overwrite, expected_rows=len(spectra),
                       flux_unit=spectra.flux_unit) as writer:
        writer.append(spectra)


class DatasetStore:
    """Lazy, read-only view of a data-set file: batches are read on demand.

    Use as a context manager or call :meth:`close`. Indexing returns an in-memory
    SpectrumSet of the selected rows; ``iter_batches`` streams the whole file.

    Parameters
    ----------
    path : path-like or open binary file

    Raises
    ------
    ReadError
        Naming the file and the problem (not HDF5, not a data set, unsupported version,
        missing or misshapen dataset); also a FileNotFoundError when there is no file.

    Attributes
    ----------
    path : Path
    n_pix : int
    label_names, class_names : list of str
    wave : ndarray or None
        The shared vacuum wavelength grid (Angstrom), or None for per-spectrum wavelengths.
    version : int
        The file's format version (1 or 2).
    flux_unit : astropy unit
        The flux unit (dimensionless for a version-1 file and for an empty ``unit``).
    label_units : list of astropy unit or None
        Per label: its unit (:func:`starlearn.units.label_unit`), or None when unknown.

    Notes
    -----
    A version-2 file whose ``/wave`` is in another unit of length (a file written by
    hand, in nm) is read in Angstrom; a label stored in another unit of the same kind
    (``vsini`` in m/s) is converted to starlearn's (km/s). A label in a unit of another
    kind (``teff`` in dex) is refused.
    """

    def __init__(self, path: str | PathLike | BinaryIO) -> None:
        source: Any = path
        if isinstance(path, (str, PathLike)):
            self.path = Path(path)
            if not self.path.exists():
                raise FileMissingError(str(self.path))
            source = self.path
        else:  # an open binary file
            self.path = Path(str(getattr(path, "name", None) or "<file object>"))
        try:
            self._h5 = h5py.File(source, "r")
        except (OSError, ValueError) as err:
            raise ReadError(str(self.path), f"not a readable HDF5 file ({err})") from None
        try:
            self._check()
        except Exception:
            self._h5.close()
            raise

    def _check(self) -> None:
        h5, p = self._h5, self.path
        fmt = h5.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT_NAME:
            raise ReadError(str(p), f"root attribute 'format' is {fmt!r}, expected "
                                    f"'{FORMAT_NAME}' (not a starlearn data-set file)")
        version = int(h5.attrs.get("version", -1))
        if version not in READ_VERSIONS:
            raise ReadError(str(p), f"data-set format version {version} is not supported "
                                    f"(this starlearn reads versions "
                                    f"{', '.join(map(str, READ_VERSIONS))})")
        self.version = version
        for name in ("wave", "flux", "ivar"):
            if name not in h5:
                raise ReadError(str(p), f"missing dataset '/{name}'")
        n, n_pix = h5["flux"].shape
        for name in ("ivar", "mask"):
            if name in h5 and h5[name].shape != (n, n_pix):
                raise ReadError(str(p), f"'/{name}' has shape {h5[name].shape}, expected "
                                        f"({n}, {n_pix}) like '/flux'")
        if h5["wave"].shape not in ((n_pix,), (n, n_pix)):
            raise ReadError(str(p), f"'/wave' has shape {h5['wave'].shape}, expected "
                                    f"({n_pix},) or ({n}, {n_pix})")
        if "labels" in h5 and h5["labels"].shape[0] != n:
            raise ReadError(str(p), f"'/labels' has {h5['labels'].shape[0]} rows for {n} "
                                    "spectra")
        if "labels" in h5 and "names" not in h5["labels"].attrs:
            raise ReadError(str(p), "'/labels' has no 'names' attribute")
        if "classes" in h5 and "names" not in h5["classes"].attrs:
            raise ReadError(str(p), "'/classes' has no 'names' attribute")
        self.n_pix = n_pix
        self._n = n
        self.label_names = _names(h5["labels"]) if "labels" in h5 else []
        self.class_names = _names(h5["classes"]) if "classes" in h5 else []
        self._units()
        self.wave = self._wave(h5["wave"][...]) if h5["wave"].ndim == 1 else None
        self.meta_columns = list(h5["meta"].keys()) if "meta" in h5 else []
        self._meta_units = {name: _attr_unit(h5["meta"][name], p, f"/meta/{name}")
                            for name in self.meta_columns}

    def _units(self) -> None:
        """The units of a version-2 file (a version-1 file has none: Angstrom,
        dimensionless flux, labels in starlearn's units)."""
        h5, p = self._h5, str(self.path)
        try:
            unit = wavelength_unit(_text(h5["wave"].attrs.get("unit", "")))
        except UnitProblem as err:
            raise ReadError(p, f"'/wave': {err}") from None
        self._wave_factor = 1.0 if unit is None else angstrom_factor(unit)
        self.flux_unit = _attr_unit(h5["flux"], p, "/flux") or u.dimensionless_unscaled
        stored = ([_text(x) for x in h5["labels"].attrs["units"]]
                  if "labels" in h5 and "units" in h5["labels"].attrs else [])
        if stored and len(stored) != len(self.label_names):
            raise ReadError(p, f"'/labels' has {len(stored)} units for "
                               f"{len(self.label_names)} names")
        self.label_units = [label_unit(name) for name in self.label_names]
        self._label_scale = np.ones(len(self.label_names), dtype=np.float64)
        for j, text in enumerate(stored):
            own = self.label_units[j]
            if not str(text).strip():
                continue
            try:
                given = u.Unit(str(text), parse_strict="raise")
            except ValueError:
                raise ReadError(p, f"label '{self.label_names[j]}' has unit {text!r}, not a "
                                   "unit astropy understands") from None
            if own is None:
                self.label_units[j] = given
                continue
            try:
                self._label_scale[j] = float(given.to(own))
            except u.UnitConversionError:
                raise ReadError(p, f"label '{self.label_names[j]}' is in {given}, which does "
                                   f"not convert to {own}, its unit in starlearn") from None

    def _wave(self, wave: np.ndarray) -> np.ndarray:
        return wave if self._wave_factor == 1.0 else wave * self._wave_factor

    def _labels(self, labels: np.ndarray) -> np.ndarray:
        if np.all(self._label_scale == 1.0):
            return labels
        return (labels * self._label_scale).astype(np.float32)

    def __len__(self) -> int:
        return self._n

    def read(self, index: slice | np.ndarray | list[int] | None = None) -> SpectrumSet:
        """Read the selected spectra (all when ``index`` is None) into memory."""
        if index is None:
            index = slice(None)
        if not isinstance(index, slice):
            idx = np.asarray(index)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            idx = np.where(idx < 0, idx + len(self), idx)
            order = np.argsort(idx, kind="stable")
            sorted_idx = idx[order]
            if np.any(np.diff(sorted_idx) == 0):
                raise ValueError(f"{self.path}: duplicate indices in a lazy read")
            block = self._read_sorted(sorted_idx)
            return block[np.argsort(order)]
        return self._read_sorted(index)

    def _read_sorted(self, index: slice | np.ndarray) -> SpectrumSet:
        h5 = self._h5

        def get(name: str) -> np.ndarray:
            return h5[name][index]

        ids = np.asarray([x.decode() if isinstance(x, bytes) else str(x) for x in get("ids")])
        meta = None
        if self.meta_columns:
            meta = Table()
            for name in self.meta_columns:
                col = h5["meta"][name][index]
                if col.dtype.kind in "OS":
                    col = np.asarray([x.decode() if isinstance(x, bytes) else str(x)
                                      for x in col])
                meta[name] = col
                meta[name].unit = self._meta_units[name]
        return SpectrumSet(
            wave=self.wave if self.wave is not None else self._wave(get("wave")),
            flux=get("flux"), ivar=get("ivar"),
            mask=get("mask") if "mask" in h5 else None,
            labels=self._labels(get("labels")) if "labels" in h5 else None,
            label_names=self.label_names,
            classes=get("classes") if "classes" in h5 else None, class_names=self.class_names,
            ids=ids, meta=meta, flux_unit=self.flux_unit)

    def labels(self) -> np.ndarray:
        """All labels, (n_spectra, n_labels) float32, NaN = missing (no spectra read)."""
        if "labels" not in self._h5:
            return np.zeros((len(self), 0), dtype=np.float32)
        return self._labels(self._h5["labels"][...])

    def classes(self) -> np.ndarray | None:
        """All class indices (n_spectra,), -1 = unknown, or None (no spectra read)."""
        return self._h5["classes"][...] if "classes" in self._h5 else None

    @property
    def provenance(self) -> dict[str, Any]:
        """The file's provenance record (command, config, versions), or {}."""
        raw = self._h5.attrs.get("provenance")
        return json.loads(raw) if raw else {}

    def summary(self) -> str:
        """A few human-readable lines: size, wavelength range, labels, classes, meta."""
        lines = [f"{self.path}: {len(self)} spectra x {self.n_pix} pixels"]
        if len(self):
            wave = self.wave if self.wave is not None else self._wave(self._h5["wave"][0])
            kind = "shared grid" if self.wave is not None else "per-spectrum wavelengths"
            lines.append(f"  wavelength {wave[0]:.2f} - {wave[-1]:.2f} A (vacuum), {kind}")
        if self.flux_unit != u.dimensionless_unscaled:
            lines.append(f"  flux unit: {self.flux_unit}")
        labels = self.labels()
        for j, name in enumerate(self.label_names):
            col = labels[:, j]
            ok = col[np.isfinite(col)]
            unit = f" {self.label_units[j]}" if self.label_units[j] is not None else ""
            span = f"{ok.min():.4g} .. {ok.max():.4g}{unit}" if ok.size else "all missing"
            lines.append(f"  label {name:>9}: {span}  ({col.size - ok.size} missing)")
        classes = self.classes()
        if classes is not None:
            counts = np.bincount(classes + 1, minlength=len(self.class_names) + 1)
            parts = [f"{c}={counts[i + 1]}" for i, c in enumerate(self.class_names)]
            lines.append(f"  classes: {', '.join(parts)} (unknown={counts[0]})")
        if self.meta_columns:
            lines.append(f"  meta: {', '.join(self.meta_columns)}")
        command = self.provenance.get("command")
        if command:
            lines.append(f"  made by: {' '.join(command)}")
        return "\n".join(lines)

    def __getitem__(self, index: slice | np.ndarray | list[int] | int) -> SpectrumSet:
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        return self.read(index)

    def iter_batches(self, batch_size: int = 256) -> Iterator[SpectrumSet]:
        """Yield consecutive blocks of ``batch_size`` spectra (the last may be shorter)."""
        for start in range(0, len(self), batch_size):
            yield self.read(slice(start, min(start + batch_size, len(self))))

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> DatasetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"DatasetStore('{self.path}', n={len(self)}, n_pix={self.n_pix}, "
                f"labels={self.label_names})")


def _attr_unit(dataset: h5py.Dataset, path: str, where: str) -> u.UnitBase | None:
    """The unit in the ``unit`` attribute of ``dataset``: None when there is none or it
    is empty; a ReadError naming the file for one astropy does not parse."""
    text = str(_text(dataset.attrs.get("unit", ""))).strip()
    if not text:
        return None
    try:
        return u.Unit(text, parse_strict="raise")
    except ValueError:
        raise ReadError(path, f"'{where}' has unit {text!r}, not a unit astropy "
                              "understands") from None


def _names(dataset: h5py.Dataset) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in dataset.attrs["names"]]


def open_dataset(path: str | PathLike) -> DatasetStore:
    """Open a data-set file lazily (see :class:`DatasetStore`)."""
    return DatasetStore(path)


def dataset_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                     **kwargs: Any) -> bool:
    """A starlearn data set: the HDF5 signature at the start of the file and the root
    attribute ``format = "starlearn-spectra"`` (the version is the reader's to check, so
    that a file of another version is refused with the reason). Never raises; an open
    file is put back where it was."""
    pos = None
    try:
        if fileobj is not None:
            pos = fileobj.tell()
            if fileobj.read(8) != HDF5_SIGNATURE:
                return False
            fileobj.seek(pos)
            source: Any = fileobj
        else:
            source = path if path is not None else (args[0] if args else None)
            if not isinstance(source, (str, PathLike)):
                return False
            with open(source, "rb") as f:
                if f.read(8) != HDF5_SIGNATURE:
                    return False
        with h5py.File(source, "r") as h5:
            return _text(h5.attrs.get("format")) == FORMAT_NAME
    except Exception:
        return False
    finally:
        if pos is not None:
            with contextlib.suppress(Exception):
                fileobj.seek(pos)


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@register_reader("starlearn-h5", identifier=dataset_identify, priority=10, fits_based=False,
                 container=True, suffixes=(".h5", ".hdf5"),
                 description="starlearn HDF5 data set (docs/dataset-format.md)")
def read_dataset(path: str | PathLike | BinaryIO, *,
                 rows: slice | np.ndarray | list[int] | None = None) -> SpectrumSet:
    """Read a data-set file into a SpectrumSet: every spectrum, or only ``rows``.

    The ``starlearn-h5`` reader of :func:`starlearn.read` and
    :meth:`SpectrumSet.read <starlearn.spectra.SpectrumSet.read>`.

    Parameters
    ----------
    path : path-like or open binary file
    rows : slice, int array or bool array, optional
        The spectra to read (in the order given); the other rows are not read from disk.
        For repeated access to a file larger than memory use :func:`open_dataset`.

    Returns
    -------
    SpectrumSet
        As stored: wavelengths vacuum Angstrom, flux in the file's ``flux_unit``
        (dimensionless for a version-1 file), labels NaN = missing, ids, meta columns
        with their units.

    Raises
    ------
    ReadError
        Naming the file: not HDF5, not a starlearn data set, an unsupported version, a
        missing or misshapen dataset; also a FileNotFoundError when there is no file.
    """
    with DatasetStore(path) as store:
        return store.read(rows)


register_writer("starlearn-h5")(write_dataset)
