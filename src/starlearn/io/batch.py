"""Read many single-spectrum files into one SpectrumSet: the archive runner's read path.

:func:`starlearn.io.read` returns one SpectrumSet per file, whose astropy meta table alone
costs about as much as opening a small FITS file. A format that registers a *row reader*
(``register_row_reader``) hands back plain arrays and a dict of header values instead, and
:func:`read_many` builds one set (and one meta table) for all the files of a batch. Formats
without a row reader go through :func:`~starlearn.io.read` as usual. A format may also
register a *direct* row reader that opens the file itself with a faster FITS library
(LAMOST LRS images through fitsio/cfitsio); it is tried first for a file that follows a
file of its format, and hands any file it is not certain of to the usual path. Identification is the
registry's, once: a file that the previous file's format accepts (and no format of higher
priority) is read as that format, which in an archive of one survey costs one identifier
call per file instead of one per registered format; any other file is identified among all
formats as :func:`~starlearn.io.read` does. (Formats of one priority are told apart by
content, so their identifiers do not overlap on real files; an ambiguous file that
:func:`~starlearn.io.read` would refuse is read as the previous file's format here.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from starlearn.io.fitsutil import ReadError, as_hdulist
from starlearn.io.registry import (
    _INFO,
    NO_USABLE_PIXEL,
    _call,
    _choose,
    _identify,
    _is_fits,
    _safe,
    formats,
    read,
    reader_errors,
)
from starlearn.spectra import SpectrumSet, check_wave

__all__ = ["SpectrumRow", "read_many", "register_row_reader", "rows_to_set"]


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


def _format_of(name: str, hdul: Any, previous: str | None) -> str:
    if previous is not None:
        info = _INFO[previous]
        if (info.identifier is not None and _safe(info.identifier, name, (hdul,))
                and not _identify(name, hdul, min_priority=info.priority + 1)):
            return previous
    return _choose(name, _identify(name, hdul), hdul)


def read_many(paths: Sequence[str | os.PathLike], format: str | None = None,
              **options: Any) -> tuple[list[SpectrumSet], list[tuple[str, str]]]:
    """Read ``paths`` (files of any registered format); returns the spectra as few
    SpectrumSets as possible (one per spectrum length for formats with a row reader, one
    per file for the others; meta ``file`` and ``format`` as :func:`read` gives) and the
    files that could not be used with the reason (the reasons :func:`read` gives)."""
    if format is not None and format not in _INFO:
        raise ValueError(f"unknown format '{format}'; known formats: "
                         f"{', '.join(r.name for r in formats())}")
    rows: dict[int, list[SpectrumRow]] = {}
    sets: list[SpectrumSet] = []
    rejects: list[tuple[str, str]] = []
    previous = format
    for path in paths:
        name = os.fspath(path)
        try:
            direct = _DIRECT_READERS.get(previous) if previous is not None else None
            row = direct(name, name, **options) if direct is not None else None
            fmt = previous
            if row is None and not _is_fits(name):  # text formats, files that do not exist
                sets.append(read(name, format=format, **options))
                continue
            if row is None:
                with as_hdulist(name) as hdul:
                    fmt = format or _format_of(name, hdul, previous)
                    previous = fmt
                    if fmt not in _ROW_READERS:
                        sets.append(_call(fmt, hdul, name, options))
                        continue
                    with reader_errors(fmt, name):
                        row = _ROW_READERS[fmt](hdul, name, **options)
            with reader_errors(fmt or "?", name):
                _check_row(row)  # what SpectrumSet would refuse, refused here, per file
            row.meta.setdefault("file", name)
            row.meta.setdefault("format", fmt)
            rows.setdefault(row.flux.size, []).append(row)
        except ReadError as err:
            rejects.append((name, err.reason))
        except (ValueError, OSError) as err:
            rejects.append((name, str(err)))
    for group in rows.values():
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
            sets.insert(0, spectra[~empty] if empty.any() else spectra)
    return sets, rejects
