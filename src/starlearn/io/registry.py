"""The reader registry: formats by name, auto-identification, and :func:`read`.

Built on astropy's unified I/O registry (a private ``UnifiedIORegistry`` for
:class:`~starlearn.spectra.SpectrumSet`), so readers and identifiers follow astropy's
conventions: an identifier is ``identify(origin, path, fileobj, *args, **kwargs) -> bool``
and decides from content (header keys, HDU layout), never from the file name alone; several
matches go to the highest priority, and a tie is an "ambiguous" error.

:func:`read` opens a FITS file once and hands the same HDUList to every identifier (so
identification of many files costs one header parse each), then calls the chosen reader
with the HDUList; error messages always name the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from astropy.io import fits
from astropy.io.registry import UnifiedIORegistry

from starlearn.io.fitsutil import ReadError, as_hdulist, source_name
from starlearn.spectra import SpectrumSet

__all__ = ["ReaderInfo", "formats", "identify_format", "read", "register_reader"]

REGISTRY = UnifiedIORegistry()
"""The astropy registry holding starlearn's SpectrumSet readers."""

Identifier = Callable[..., bool]


@dataclass(frozen=True)
class ReaderInfo:
    """What the registry knows of a format."""

    name: str
    reader: Callable[..., SpectrumSet]
    identifier: Identifier | None
    priority: int
    medium: str
    description: str
    fits: bool | None
    generic: bool = False


_INFO: dict[str, ReaderInfo] = {}


def register_reader(name: str, *, identifier: Identifier | None, priority: int = 0,
                    medium: str = "vacuum", fits_based: bool | None = True,
                    generic: bool = False,
                    description: str = "") -> Callable[[Callable[..., SpectrumSet]],
                                                       Callable[..., SpectrumSet]]:
    """Decorator registering ``reader(source, **options) -> SpectrumSet`` under ``name``.

    Parameters
    ----------
    name : str
        Format name, e.g. ``"lamost-lrs"``.
    identifier : callable or None
        ``identifier(origin, path, fileobj, *args, **kwargs) -> bool``; None registers a
        format that is only used when asked for by name.
    priority : int
        Survey-specific formats use 10, generic ones (1-D WCS, tables, text) lower.
    medium : {"vacuum", "air"}
        The medium of the wavelengths *in the files*; readers convert air to vacuum.
    fits_based : bool or None
        Whether the files are FITS (read hands the reader an open HDUList), not FITS (the
        reader gets the path), or None for formats delivered both ways (e.g. Gaia tables
        as FITS, CSV, ECSV or VOTable).
    generic : bool
        A format of no one product (1-D WCS images, tables of columns, text): its
        identifier is asked only when no product's identifier claims the file, so that a
        survey file is never also "a 1-D WCS image".
    """
    if medium not in ("vacuum", "air"):
        raise ValueError(f"register_reader: medium must be 'vacuum' or 'air', got {medium!r}")

    def decorate(reader: Callable[..., SpectrumSet]) -> Callable[..., SpectrumSet]:
        REGISTRY.register_reader(name, SpectrumSet, reader, priority=priority)
        if identifier is not None:
            REGISTRY.register_identifier(name, SpectrumSet, identifier)
        doc = description or (reader.__doc__ or "").strip().splitlines()[0]
        _INFO[name] = ReaderInfo(name, reader, identifier, priority, medium, doc, fits_based,
                                 generic)
        return reader

    return decorate


def formats() -> list[ReaderInfo]:
    """All registered formats, highest priority first."""
    return sorted(_INFO.values(), key=lambda r: (-r.priority, r.name))


def _is_fits(path: str) -> bool:
    import gzip

    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            return f.read(9) == b"SIMPLE  ="
    except OSError:
        return False


def _is_hdf5(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def identify_format(source: Any) -> list[str]:
    """Names of the formats whose identifiers accept ``source`` (path or HDUList), highest
    priority first (the first is what :func:`read` uses)."""
    if isinstance(source, fits.HDUList):
        return _identify(None, source)
    path = os.fspath(source)
    if _is_fits(path):
        with as_hdulist(path) as hdul:
            return _identify(path, hdul)
    return _identify(path, None)


def _identify(path: str | None, hdul: fits.HDUList | None,
              min_priority: int | None = None) -> list[str]:
    """Formats whose identifiers accept the file (only those of at least ``min_priority``
    when given: the lower ones could not win). Generic formats are asked only when no
    product format claims the file."""
    args = (hdul,) if hdul is not None else ((path,) if path is not None else ())
    candidates = [info for info in formats()
                  if info.identifier is not None
                  and (info.fits is None or info.fits == (hdul is not None))
                  and (min_priority is None or info.priority >= min_priority)]
    for generic in (False, True):
        found = [info.name for info in candidates
                 if info.generic == generic and _safe(info.identifier, path, args)]
        if found:
            return found
    return []


def _safe(identifier: Identifier, path: str | None, args: tuple[Any, ...]) -> bool:
    try:
        return bool(identifier("read", path, None, *args))
    except Exception:
        return False


_SURVEY_MARKS = {"apogee": ("apogee",), "desi": ("desi",), "eso": ("eso",),
                 "gaia": ("gaia",), "galah": ("galah", "hermes"), "lamost": ("lamost",),
                 "ondrejov": ("ondrejov", "ondřejov", "perek"), "pfs": ("pfs", "subaru"),
                 "sdss": ("sdss", "boss", "segue"), "iraf": ("multispec",)}
"""Words in a file's own marks (telescope, instrument, origin, survey, file name) that tie
it to the formats of a survey (by the first part of the format's name)."""

_MARK_KEYS = ("TELESCOP", "INSTRUME", "ORIGIN", "SURVEY", "FILENAME", "DATA_V", "PRODCATG",
              "WAT0_001", "OBSERVAT")


def _closest_format(name: str, hdul: fits.HDUList) -> tuple[str, str] | None:
    """For a FITS file no identifier claims: the format whose survey marks the file
    carries (and where: ``KEY = 'value'``), or None."""
    marks = []
    for hdu in list(hdul)[:2]:
        marks += [(f"{k} = {str(hdu.header[k])!r}", str(hdu.header[k]).lower())
                  for k in _MARK_KEYS if k in hdu.header]
    marks.append((f"file name {os.path.basename(name)!r}", os.path.basename(name).lower()))
    for info in formats():
        if info.generic or info.fits is False:
            continue
        words = _SURVEY_MARKS.get(info.name.split("-")[0], ())
        for where, text in marks:
            if any(w in text for w in words):
                return info.name, where
    return None


def _not_recognised(name: str, hdul: fits.HDUList | None) -> str:
    """The reason for a file no identifier claims: what the closest format expected and
    did not find (its reader's own complaint), when the file carries a survey's marks."""
    known = ", ".join(r.name for r in formats())
    closest = _closest_format(name, hdul) if hdul is not None else None
    if closest is not None:
        fmt, where = closest
        try:
            with reader_errors(fmt, name):
                _INFO[fmt].reader(hdul)
            problem = f"it reads as {fmt}: pass format='{fmt}'"
        except ReadError as err:
            problem = err.reason
        except Exception as err:  # only explains, never reads
            problem = f"{type(err).__name__}: {err}"
        return (f"format not recognised: it looks like {fmt} ({where}) but {problem} "
                f"(known formats: {known})")
    return f"format not recognised (known formats: {known}); pass format=... if you know it"


def _choose(name: str, matches: list[str], hdul: fits.HDUList | None = None) -> str:
    if not matches:
        raise ReadError(name, _not_recognised(name, hdul))
    top = max(_INFO[m].priority for m in matches)
    best = [m for m in matches if _INFO[m].priority == top]
    if len(best) > 1:
        raise ReadError(name, f"ambiguous format, matches {', '.join(sorted(best))}; "
                              f"pass format=...")
    return best[0]


def read(source: Any, format: str | None = None, **options: Any) -> SpectrumSet:
    """Read a spectrum file of any supported format into a SpectrumSet.

    Parameters
    ----------
    source : path, file object or HDUList
        A FITS file (``.fits`` or ``.fits.gz``), a data-set HDF5 file, or a text file.
    format : str, optional
        A registered format name (see :func:`formats`); when omitted the format is
        identified from the content.
    **options
        Passed to the reader (e.g. ``hdu=``, ``exposure=``).

    Raises
    ------
    ReadError
        Naming the file and what is wrong with it (unreadable, unknown or ambiguous format,
        missing HDU or column, no usable pixels ...).
    """
    name = source_name(source)
    if format is not None and format not in _INFO:
        raise ValueError(f"unknown format '{format}'; known formats: "
                         f"{', '.join(r.name for r in formats())}")
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise ReadError(name, "no such file")
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).endswith(".gz"):
        with open(source, "rb") as f:
            start = f.read(9)
        if start[:2] != b"\x1f\x8b":
            what = "a plain FITS file" if start == b"SIMPLE  =" else "not gzip data"
            raise ReadError(name, f"named .gz but not gzip-compressed ({what}): rename it "
                                  "or compress it")
    if isinstance(source, (str, os.PathLike)) and format is None and _is_hdf5(
            os.fspath(source)):
        raise ReadError(name, "an HDF5 file, not a spectrum file: starlearn data sets are "
                              "read with starlearn.read_dataset (or open_dataset)")
    if isinstance(source, (str, os.PathLike)) and _is_fits(os.fspath(source)):
        with as_hdulist(source) as hdul:
            chosen = format or _choose(name, _identify(name, hdul), hdul)
            return _call(chosen, hdul, name, options)
    if isinstance(source, fits.HDUList):
        chosen = format or _choose(name, _identify(None, source), source)
        return _call(chosen, source, name, options)
    chosen = format or _choose(name, _identify(name, None) if isinstance(
        source, (str, os.PathLike)) else [])
    return _call(chosen, source, name, options)


@contextlib.contextmanager
def reader_errors(fmt: str, name: str) -> Iterator[None]:
    """Turn what a ``fmt`` reader raises into a :class:`ReadError` naming the file."""
    try:
        yield
    except ReadError as err:
        if err.path.startswith("<"):
            raise ReadError(name, err.reason) from None
        raise
    except (KeyError, IndexError, ValueError, TypeError, OSError) as err:
        raise ReadError(name, f"cannot be read as {fmt}: {err}") from None


NO_USABLE_PIXEL = "no usable pixel (all flux masked, non-finite or ivar = 0)"


def _call(fmt: str, source: Any, name: str, options: dict[str, Any]) -> SpectrumSet:
    with reader_errors(fmt, name):
        spectra = _INFO[fmt].reader(source, **options)
    if spectra.mask.all():
        raise ReadError(name, NO_USABLE_PIXEL)
    if "file" not in spectra.meta.colnames and not name.startswith("<"):
        spectra.meta["file"] = [name] * len(spectra)
    if "format" not in spectra.meta.colnames:
        spectra.meta["format"] = [fmt] * len(spectra)
    return spectra
