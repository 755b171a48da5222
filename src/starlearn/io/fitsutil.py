"""Opening FITS sources for readers and identifiers: paths, .fits.gz, file objects, HDULists."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.errors import InputError

__all__ = ["FileMissingError", "ReadError", "ReadWarning", "as_hdulist", "column",
           "header_value", "identify_hdulist", "source_name"]


class ReadError(InputError, ValueError):
    """A file could not be read as the format it was read with.

    Attributes
    ----------
    path : str
        The file (or a description of the source when it has no name).
    reason : str
        What was wrong, e.g. "HDU 1 has no column 'FLUX'".
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class FileMissingError(ReadError, FileNotFoundError):
    """A file that does not exist: a :class:`ReadError` with the reason "no such file"
    that is also a FileNotFoundError (so either ``except`` catches it)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "no such file")


class ReadWarning(UserWarning):
    """Part of a file could not be used and was left out (e.g. one aperture of a
    multi-aperture image with an impossible dispersion); the message names the file."""


def source_name(source: Any) -> str:
    """A printable name for a path, file object or HDUList."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, fits.HDUList):
        name = getattr(source, "_file", None)
        name = getattr(name, "name", None)
        return str(name) if name else "<HDUList>"
    return str(getattr(source, "name", None) or "<file object>")


@contextlib.contextmanager
def as_hdulist(source: Any) -> Iterator[fits.HDUList]:
    """Yield an HDUList for a path (``.fits`` or ``.fits.gz``), a binary file object or an
    HDUList; errors become :class:`ReadError` naming the file.

    A path is opened without memory mapping and closed on exit; an HDUList given by the
    caller is left open.
    """
    if isinstance(source, fits.HDUList):
        yield source
        return
    name = source_name(source)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(source, memmap=False, lazy_load_hdus=False)
    except FileNotFoundError:
        raise FileMissingError(name) from None
    except Exception as err:  # astropy raises OSError, TypeError, ValueError ...
        raise ReadError(name, f"not a readable FITS file ({err})") from None
    for warning in caught:
        if "truncated" in str(warning.message) and not _data_complete(hdul):
            hdul.close()
            raise ReadError(name, f"truncated FITS file ({warning.message})")
    try:
        yield hdul
    finally:
        hdul.close()


def _data_bytes(header: fits.Header) -> int:
    """Bytes of an HDU's data without the padding to a 2,880-byte block."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    size = 1
    for i in range(1, naxis + 1):
        size *= int(header.get(f"NAXIS{i}", 0))
    return abs(int(header.get("BITPIX", 8))) // 8 * int(header.get("GCOUNT", 1)) * (
        size + int(header.get("PCOUNT", 0)))


def _data_complete(hdul: fits.HDUList) -> bool:
    """True when astropy's "may have been truncated" concerns only the padding after the
    last HDU's data (some writers omit it): every HDU's data lies inside the file."""
    try:
        handle = hdul.fileinfo(0)["file"]
        size = os.fstat(handle._file.fileno()).st_size if hasattr(handle, "_file") else None
        if size is None:
            return False
        return all(hdul.fileinfo(i)["datLoc"] + _data_bytes(hdu.header) <= size
                   for i, hdu in enumerate(hdul))
    except Exception:  # a file object without a descriptor, a damaged header ...
        return False


@contextlib.contextmanager
def identify_hdulist(path: str | None, fileobj: Any,
                     args: tuple[Any, ...]) -> Iterator[fits.HDUList | None]:
    """For identifiers: yield an HDUList for an astropy-registry call, or None; never raises.

    Accepts an HDUList as ``args[0]`` (left open), an open binary ``fileobj`` (read from
    its current position, which is put back on exit, as astropy's registry expects of
    identifiers), or a ``path`` (opened and closed here). Only FITS content is opened.
    """
    hdul, owned, pos = None, False, None
    try:
        if args and isinstance(args[0], fits.HDUList):
            hdul = args[0]
        elif fileobj is not None:
            pos = fileobj.tell()
            start = fileobj.read(9)
            fileobj.seek(pos)
            if start == b"SIMPLE  =":
                hdul, owned = fits.open(fileobj, memmap=False), True
        elif path is not None and os.path.isfile(path):
            hdul, owned = fits.open(path, memmap=False), True
    except Exception:
        hdul = None
    try:
        yield hdul
    finally:
        if owned and hdul is not None:
            with contextlib.suppress(Exception):
                hdul.close(closed=False) if fileobj is not None else hdul.close()
        if pos is not None:
            with contextlib.suppress(Exception):
                fileobj.seek(pos)


def header_value(header: fits.Header, key: str, name: str, where: str) -> Any:
    """``header[key]``, or a ReadError naming the file, the HDU and the missing key."""
    try:
        return header[key]
    except KeyError:
        raise ReadError(name, f"{where} has no header keyword {key}") from None


def column(table: Any, key: str, name: str, where: str) -> np.ndarray:
    """Column ``key`` of a FITS table (case-insensitive) as an array, or a ReadError."""
    names = {c.upper(): c for c in table.columns.names}
    if key.upper() not in names:
        raise ReadError(name, f"{where} has no column '{key}' (columns: "
                              f"{', '.join(table.columns.names)})")
    return np.array(table[names[key.upper()]])
