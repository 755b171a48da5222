"""Read many files: the batch reader :func:`read_many` (the archive runner's and the
command line's read path), and the paths it expands (:func:`expand_inputs`).

:func:`read_many` reads what :func:`starlearn.io.read` reads, file by file and with the
same reasons for the files it cannot use, and puts the spectra in few SpectrumSets. A
format may register a *row reader* (``register_row_reader``) that hands back plain arrays
and a dict of header values instead of a SpectrumSet: the rows of one length become one
set with one meta table (the astropy table built per file by ``read`` costs about as much
as opening a small FITS file). Formats without a row reader (the HDF5 data set included)
go through :func:`starlearn.io.read`. A format may also register a *direct* row reader
that opens the file itself with a faster FITS library (LAMOST LRS images through
fitsio/cfitsio); it is tried first for a file that follows a file of its format, and hands
any file it is not certain of to the usual path.

Identification is the registry's (:func:`starlearn.io.registry.identify`), with the
previous file's format as a hint: in an archive of one survey that costs one identifier
call per file instead of one per registered format.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from starlearn.io.fitsutil import ReadError, as_hdulist
from starlearn.io.registry import (
    NO_USABLE_PIXEL,
    format_info,
    identify,
    is_fits,
    read,
    read_as,
    reader_errors,
)
from starlearn.spectra import SpectrumSet, check_wave

__all__ = ["SpectrumRow", "expand_inputs", "read_many", "register_row_reader", "rows_to_set"]

SPECTRUM_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fit.gz", ".fts", ".txt", ".dat", ".csv")
"""File-name endings :func:`expand_inputs` takes from a folder (data sets are named, not
searched for: a folder of ingested ``.h5`` files next to their sources is not read twice)."""

LIST_SUFFIXES = (".lst", ".list")
"""File-name endings of list files (one path per line)."""


def _files_under(folder: str) -> list[str]:
    """Spectrum files under ``folder`` (recursively), in path order (folder by folder, as
    sorting the paths' components gives)."""
    found = []
    for root, _dirs, names in os.walk(folder):
        found.extend(os.path.join(root, n) for n in names
                     if n.lower().endswith(SPECTRUM_SUFFIXES))
    found = [f for f in found if os.path.isfile(f)]  # no broken links
    return sorted(found, key=lambda f: f.split(os.sep))


def expand_inputs(inputs: Iterable[str | os.PathLike] | str | os.PathLike) -> list[str]:
    """Paths from files, folders (searched recursively), glob patterns and list files.

    A list file (``.lst``/``.list``) holds one path per line (``#`` comments allowed),
    relative to the list's folder. A file that exists is taken as named, even with
    ``*?[`` in its name. Order is kept; duplicates are dropped; a path that does not exist
    is kept (reading it gives the reason).
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if os.path.isdir(text):
            found = _files_under(text)
        elif text.lower().endswith(LIST_SUFFIXES) and os.path.isfile(text):
            base = os.path.dirname(text)
            with open(text, encoding="utf-8") as f:
                found = [os.path.join(base, line.strip()) for line in f
                         if line.strip() and not line.lstrip().startswith("#")]
        elif any(c in text for c in "*?[") and not os.path.exists(text):
            found = sorted(glob.glob(text, recursive=True))
        else:
            found = [text]
        out.extend(found)
    return list(dict.fromkeys(out))


@dataclass
class SpectrumRow:
    """One spectrum as a row reader returns it: vacuum wavelength (Å), flux, inverse
    variance and bad-pixel mask (1-D, one length), its id and scalar meta values."""

    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    id: str
    meta: dict[str, Any] = field(default_factory=dict)


RowReader = Callable[..., SpectrumRow]
_ROW_READERS: dict[str, RowReader] = {}
_DIRECT_READERS: dict[str, Callable[..., SpectrumRow | None]] = {}


def register_row_reader(name: str, *, direct: bool = False) -> Callable[[RowReader], RowReader]:
    """Decorator registering ``row_reader(hdul, name, **options) -> SpectrumRow`` for the
    registered format ``name`` (its reader must give the same spectrum).

    With ``direct=True`` the function is ``row_reader(path, name, **options) -> SpectrumRow
    | None`` and opens the file itself (e.g. with a faster FITS library): it is tried first
    for a file when the previous file of the batch was of format ``name`` (or ``format=name``
    was given), and must return None unless the file is certainly of that format and
    readable, so that the usual path identifies the file and names any problem.
    """

    def decorate(fn: RowReader) -> RowReader:
        (_DIRECT_READERS if direct else _ROW_READERS)[name] = fn
        return fn

    return decorate


def rows_to_set(rows: Sequence[SpectrumRow]) -> SpectrumSet:
    """One SpectrumSet from rows of one length: the wavelength stays shared when every row
    has the same one; meta columns are the union of the rows' keys (NaN or "" where a row
    lacks one)."""
    if not rows:
        raise ValueError("rows_to_set: no rows")
    first = rows[0].wave
    shared = all(r.wave is first or np.array_equal(r.wave, first) for r in rows)
    wave = first if shared else np.vstack([r.wave for r in rows])
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r.meta if k not in keys)
    meta = {}
    for k in keys:
        values = [r.meta.get(k) for r in rows]
        text = any(isinstance(v, str) for v in values)
        meta[k] = [("" if text else np.nan) if v is None else v for v in values]
    return SpectrumSet(wave=wave, flux=np.vstack([r.flux for r in rows]),
                       ivar=np.vstack([r.ivar for r in rows]),
                       mask=np.vstack([r.mask for r in rows]),
                       ids=[r.id for r in rows], meta=meta)


def _check_row(row: SpectrumRow) -> None:
    """The checks a SpectrumSet makes of its arrays, for one row (so that one bad file is
    rejected with the reason :func:`~starlearn.io.read` gives, not the whole batch)."""
    flux = np.asarray(row.flux)
    if flux.ndim != 1:
        raise ValueError(f"SpectrumSet: 'flux' must be 1-D per spectrum, got {flux.shape}")
    check_wave(np.asarray(row.wave, dtype=np.float64), (1, flux.size))
    for key in ("ivar", "mask"):
        if np.shape(getattr(row, key)) != flux.shape:
            raise ValueError(f"SpectrumSet: '{key}' has shape {np.shape(getattr(row, key))}, "
                             f"expected {flux.shape} like flux")


def read_many(inputs: Iterable[str | os.PathLike] | str | os.PathLike,
              format: str | None = None, *, progress: bool = False,
              **options: Any) -> tuple[list[SpectrumSet], list[tuple[str, str]]]:
    """Read many files of any registered formats: the batch form of
    :func:`starlearn.io.read`.

    Parameters
    ----------
    inputs : path or iterable of paths
        Files, folders (searched recursively), glob patterns and list files, expanded by
        :func:`expand_inputs`: survey files and starlearn data sets (HDF5) alike.
    format : str, optional
        A registered format for every file; by default each file's format is identified
        from its content, as :func:`starlearn.io.read` does.
    progress : bool
        Show a progress bar (one step per file).
    **options
        Passed to every reader.

    Returns
    -------
    sets : list of SpectrumSet
        The spectra of the readable files, in the order of each set's first file: the
        files of a format with a row reader as one set per spectrum length, every other
        file (data sets included) as its own set, as :func:`~starlearn.io.read` gives it
        (meta ``file`` and ``format`` for survey files). ``SpectrumSet.concat(sets)`` joins
        them when they have one length.
    rejects : list of (path, reason)
        The files that could not be used, each with the reason :func:`starlearn.io.read`
        gives for it; one bad file never stops the others.

    Raises
    ------
    ValueError
        ``format`` is not a registered format (before any file is read).
    """
    if format is not None:
        format_info(format)
    from tqdm import tqdm

    paths = expand_inputs(inputs)
    rows: dict[int, list[SpectrumRow]] = {}
    first: dict[int, int] = {}  # spectrum length -> position of its first row
    placed: list[tuple[int, SpectrumSet]] = []
    rejects: list[tuple[str, str]] = []
    previous = format
    for position, name in enumerate(tqdm(paths, disable=not progress, unit="file",
                                         desc="read")):
        try:
            direct = _DIRECT_READERS.get(previous) if previous is not None else None
            row = direct(name, name, **options) if direct is not None else None
            fmt = previous
            if row is None and not is_fits(name):  # data sets, text, files that do not exist
                placed.append((position, read(name, format=format, **options)))
                continue
            if row is None:
                with as_hdulist(name) as hdul:
                    fmt = format or identify(name, hdul, previous=previous)
                    previous = fmt
                    if fmt not in _ROW_READERS:
                        placed.append((position, read_as(fmt, hdul, name, **options)))
                        continue
                    with reader_errors(fmt, name):
                        row = _ROW_READERS[fmt](hdul, name, **options)
            with reader_errors(fmt or "?", name):
                _check_row(row)  # what SpectrumSet would refuse, refused here, per file
            row.meta.setdefault("file", name)
            row.meta.setdefault("format", fmt)
            rows.setdefault(row.flux.size, []).append(row)
            first.setdefault(row.flux.size, position)
        except ReadError as err:
            rejects.append((name, err.reason))
        except (ValueError, OSError) as err:
            rejects.append((name, str(err)))
    for size, group in rows.items():
        try:
            spectra = rows_to_set(group)
        except ValueError:  # not expected after _check_row; isolate the row that fails
            good = []
            for row in group:
                try:
                    rows_to_set([row])
                    good.append(row)
                except ValueError as err:
                    rejects.append((str(row.meta["file"]), str(err)))
            if not good:
                continue
            spectra = rows_to_set(good)
        empty = spectra.mask.all(axis=1)  # the SpectrumSet's own notion of a usable pixel
        rejects.extend((str(f), NO_USABLE_PIXEL) for f in spectra.meta["file"][empty])
        if not empty.all():
            placed.append((first[size], spectra[~empty] if empty.any() else spectra))
    placed.sort(key=lambda item: item[0])
    return [spectra for _, spectra in placed], rejects
