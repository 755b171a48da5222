"""The one reader registry: formats by name, identification by content, read and write.

Every format registers itself when its module is imported, with ``@register_reader`` on
its reader function (and ``@register_writer`` on a writer), as astropy's
``io/fits/connect.py`` registers Table's "fits" format. Three doors dispatch through this
registry and nothing else: :func:`read` (``starlearn.read``), :meth:`SpectrumSet.read
<starlearn.spectra.SpectrumSet.read>` / :meth:`~starlearn.spectra.SpectrumSet.write`, and
the batch reader :func:`starlearn.io.read_many`. :func:`read` also takes a specutils
``Spectrum`` or ``SpectrumList`` already in memory (no format: it is converted by
``SpectrumSet.from_specutils``).

Identifiers follow astropy's conventions: ``identify(origin, path, fileobj, *args,
**kwargs) -> bool`` decides from content (header keys, HDU layout, an HDF5 root
attribute), never from the file name alone; several matches go to the highest priority,
and a tie is an "ambiguous" error. Formats of no one product (``generic=True``) are asked
only when no product format claims the file.

:func:`read` opens a FITS file once and hands the same HDUList to every identifier (so
identification of many files costs one header parse each), then calls the chosen reader
with the HDUList; error messages always name the file.

The registry is this module's table of :class:`ReaderInfo`, not astropy's
``UnifiedIORegistry``: dispatch needs what that class does not do (one HDUList shared by
the identifiers, the product/generic tiers, the reason "it looks like X but ..." for a
file nobody claims, and the previous-format shortcut of :func:`identify` for archives).

Public surface for code that reads files itself (:mod:`starlearn.io.batch`): :func:`identify`,
:func:`accepts`, :func:`read_as`, :func:`reader_errors`, :func:`format_info`,
:func:`is_fits`, :func:`is_hdf5` and :data:`NO_USABLE_PIXEL`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from astropy.io import fits

from starlearn.io.fitsutil import FileMissingError, ReadError, as_hdulist, source_name
from starlearn.spectra import SpectrumSet

__all__ = ["DEFAULT_WRITE_FORMAT", "NO_USABLE_PIXEL", "ReaderInfo", "accepts", "format_info",
           "formats", "identify", "identify_format", "is_fits", "is_hdf5", "is_specutils",
           "read", "read_as",
           "reader_errors", "register_reader", "register_writer", "write"]

Identifier = Callable[..., bool]
Reader = Callable[..., SpectrumSet]
Writer = Callable[..., None]

DEFAULT_WRITE_FORMAT = "starlearn-h5"
"""The format :func:`write` uses when none is given: the starlearn HDF5 data set."""

NO_USABLE_PIXEL = "no usable pixel (all flux masked, non-finite or ivar = 0)"


@dataclass(frozen=True)
class ReaderInfo:
    """What the registry knows of a format (see :func:`register_reader`)."""

    name: str
    reader: Reader
    identifier: Identifier | None
    priority: int
    medium: str
    description: str
    fits: bool | None
    generic: bool = False
    container: bool = False
    suffixes: tuple[str, ...] = ()
    writer: Writer | None = None


_INFO: dict[str, ReaderInfo] = {}


def register_reader(name: str, *, identifier: Identifier | None, priority: int = 0,
                    medium: str = "vacuum", fits_based: bool | None = True,
                    generic: bool = False, container: bool = False,
                    suffixes: tuple[str, ...] = (),
                    description: str = "") -> Callable[[Reader], Reader]:
    """Decorator registering ``reader(source, **options) -> SpectrumSet`` under ``name``.

    Parameters
    ----------
    name : str
        Format name, e.g. ``"lamost-lrs"``; registering a name twice raises ValueError.
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
    container : bool
        The files hold spectra of many sources with their own meta (the starlearn HDF5
        data set): :func:`read` returns the set as stored, without adding ``file`` and
        ``format`` meta columns and without refusing a set whose every pixel is masked.
    suffixes : tuple of str
        File-name endings of the format (e.g. ``(".h5", ".hdf5")``), used only to explain
        a file that no identifier claims ("it looks like ... but <the reader's
        complaint>"), never to identify one.
    description : str
        One line for listings; default the first line of the reader's docstring.
    """
    if medium not in ("vacuum", "air"):
        raise ValueError(f"register_reader: medium must be 'vacuum' or 'air', got {medium!r}")

    def decorate(reader: Reader) -> Reader:
        if name in _INFO:
            raise ValueError(f"register_reader: format '{name}' is already registered")
        doc = description or (reader.__doc__ or "").strip().splitlines()[0]
        _INFO[name] = ReaderInfo(name, reader, identifier, priority, medium, doc, fits_based,
                                 generic, container, tuple(s.lower() for s in suffixes))
        return reader

    return decorate


def register_writer(name: str) -> Callable[[Writer], Writer]:
    """Decorator registering ``writer(spectra, path, **options) -> None`` for the format
    ``name`` (whose reader must be registered first and read back what it writes)."""

    def decorate(writer: Writer) -> Writer:
        info = format_info(name)
        if info.writer is not None:
            raise ValueError(f"register_writer: format '{name}' already has a writer")
        _INFO[name] = dataclasses.replace(info, writer=writer)
        return writer

    return decorate


def formats() -> list[ReaderInfo]:
    """All registered formats, highest priority first."""
    return sorted(_INFO.values(), key=lambda r: (-r.priority, r.name))


def format_info(name: str) -> ReaderInfo:
    """The registered format ``name``; ValueError (listing the known formats) otherwise."""
    try:
        return _INFO[name]
    except KeyError:
        raise ValueError(f"unknown format '{name}'; known formats: "
                         f"{', '.join(r.name for r in formats())}") from None


def is_fits(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts with the FITS signature (``SIMPLE  =``; read through gzip
    for a name ending ``.gz``); False for a file that cannot be opened."""
    path = os.fspath(path)
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            return f.read(9) == b"SIMPLE  ="
    except OSError:
        return False


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts with the HDF5 signature; False for a file that cannot be
    opened."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def identify_format(source: Any) -> list[str]:
    """Names of the formats whose identifiers accept ``source`` (path or HDUList), highest
    priority first (the first is what :func:`read` uses)."""
    if isinstance(source, fits.HDUList):
        return _identify(None, source)
    path = os.fspath(source)
    if is_fits(path):
        with as_hdulist(path) as hdul:
            return _identify(path, hdul)
    return _identify(path, None)


def accepts(fmt: str, source: Any, name: str | None = None) -> bool:
    """Whether the identifier of format ``fmt`` claims ``source``: an open HDUList (then
    ``name`` is the path the identifier is told) or the path of a file that is not FITS.
    Never raises for a file; False for a format without identifier or of the other kind
    (FITS / not FITS)."""
    info = format_info(fmt)
    if isinstance(source, fits.HDUList):
        return _accepts(info, name, source)
    return _accepts(info, os.fspath(source), None)


def _accepts(info: ReaderInfo, path: str | None, hdul: fits.HDUList | None) -> bool:
    if info.identifier is None or (info.fits is not None and info.fits != (hdul is not None)):
        return False
    args = (hdul,) if hdul is not None else ((path,) if path is not None else ())
    try:
        return bool(info.identifier("read", path, None, *args))
    except Exception:  # an identifier never decides by raising
        return False


def _identify(path: str | None, hdul: fits.HDUList | None,
              min_priority: int | None = None) -> list[str]:
    """Formats whose identifiers accept the file (only those of at least ``min_priority``
    when given: the lower ones could not win). Generic formats are asked only when no
    product format claims the file."""
    candidates = [info for info in formats()
                  if min_priority is None or info.priority >= min_priority]
    for generic in (False, True):
        found = [info.name for info in candidates
                 if info.generic == generic and _accepts(info, path, hdul)]
        if found:
            return found
    return []


def identify(name: str, hdul: fits.HDUList | None = None, *,
             previous: str | None = None) -> str:
    """The format :func:`read` would use for the file ``name``: given as its open
    ``hdul`` for a FITS file, by the path ``name`` otherwise.

    With ``previous`` (the format of the file before, in an archive of one survey), a file
    that format accepts, and that no format of higher priority accepts, is of that format:
    one identifier call instead of one per registered format. (Formats of one priority are
    told apart by content, so their identifiers do not overlap on real files; a file both
    would claim, which :func:`read` refuses as ambiguous, is taken as ``previous`` here.)

    Raises
    ------
    ReadError
        No format claims the file (the reason says what the closest format expected), or
        several of the top priority do.
    """
    if previous is not None:
        info = format_info(previous)
        if (_accepts(info, name, hdul)
                and not _identify(name, hdul, min_priority=info.priority + 1)):
            return previous
    return _choose(name, _identify(name, hdul), hdul)


_SURVEY_MARKS = {"apogee": ("apogee",), "desi": ("desi",), "eso": ("eso",),
                 "gaia": ("gaia",), "galah": ("galah", "hermes"), "lamost": ("lamost",),
                 "ondrejov": ("ondrejov", "ondřejov", "perek"), "pfs": ("pfs", "subaru"),
                 "sdss": ("sdss", "boss", "segue"), "iraf": ("multispec",)}
"""Words in a file's own marks (telescope, instrument, origin, survey, file name) that tie
it to the formats of a survey (by the first part of the format's name)."""

_MARK_KEYS = ("TELESCOP", "INSTRUME", "ORIGIN", "SURVEY", "FILENAME", "DATA_V", "PRODCATG",
              "WAT0_001", "OBSERVAT")


def _closest_format(name: str, hdul: fits.HDUList | None) -> tuple[str, str] | None:
    """For a file no identifier claims: the format it looks like and why (``KEY =
    'value'`` for a FITS file carrying a survey's marks, the file name for a format's
    suffix), or None."""
    base = os.path.basename(name)
    if hdul is not None:
        marks = []
        for hdu in list(hdul)[:2]:
            marks += [(f"{k} = {str(hdu.header[k])!r}", str(hdu.header[k]).lower())
                      for k in _MARK_KEYS if k in hdu.header]
        marks.append((f"file name {base!r}", base.lower()))
        for info in formats():
            if info.generic or info.fits is False:
                continue
            words = _SURVEY_MARKS.get(info.name.split("-")[0], ())
            for where, text in marks:
                if any(w in text for w in words):
                    return info.name, where
        return None
    for info in formats():
        if info.suffixes and info.fits is not True and base.lower().endswith(info.suffixes):
            return info.name, f"file name {base!r}"
    return None


def _not_recognised(name: str, hdul: fits.HDUList | None) -> str:
    """The reason for a file no identifier claims: what the closest format expected and
    did not find (its reader's own complaint), when the file looks like one."""
    known = ", ".join(r.name for r in formats())
    closest = _closest_format(name, hdul)
    if closest is not None:
        fmt, where = closest
        try:
            with reader_errors(fmt, name):
                _INFO[fmt].reader(hdul if hdul is not None else name)
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


def _check_path(path: str, name: str) -> None:
    """Refuse a missing file, and a ``.gz`` name on data that is not gzip-compressed."""
    if not os.path.exists(path):
        raise FileMissingError(name)
    if path.endswith(".gz"):
        with open(path, "rb") as f:
            start = f.read(9)
        if start[:2] != b"\x1f\x8b":
            what = "a plain FITS file" if start == b"SIMPLE  =" else "not gzip data"
            raise ReadError(name, f"named .gz but not gzip-compressed ({what}): rename it "
                                  "or compress it")


def read(source: Any, format: str | None = None, **options: Any) -> SpectrumSet:
    """Read a file of any registered format into a SpectrumSet: survey files and the
    starlearn HDF5 data set (``starlearn-h5``) alike.

    Parameters
    ----------
    source : path, file object, HDUList, or a specutils Spectrum or SpectrumList
        A FITS file (``.fits`` or ``.fits.gz``), a starlearn data set (HDF5), or a text,
        CSV, ECSV or VOTable file; a specutils object (already in memory) is converted
        by :meth:`SpectrumSet.from_specutils
        <starlearn.spectra.SpectrumSet.from_specutils>`, without ``format`` or options.
    format : str, optional
        A registered format name (see :func:`formats`); when omitted the format is
        identified from the content.
    **options
        Passed to the reader (e.g. ``hdu=``, ``exposure=``; ``rows=`` for a data set).

    Returns
    -------
    SpectrumSet
        Vacuum wavelengths in Angstrom. A survey file's spectra carry meta ``file`` and
        ``format``; a data set comes back as stored.

    Raises
    ------
    ReadError
        Naming the file and what is wrong with it (unreadable, unknown or ambiguous format,
        missing HDU or column, no usable pixels ...); for a file that does not exist it is
        also a FileNotFoundError.
    ValueError
        ``format`` is not a registered format.
    TypeError
        ``format`` or options given with a specutils object.
    """
    if is_specutils(source):
        return _from_specutils(source, format, options)
    name = source_name(source)
    if format is not None:
        format_info(format)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        _check_path(path, name)
        if is_fits(path):
            with as_hdulist(path) as hdul:
                return _call(format or _choose(name, _identify(name, hdul), hdul), hdul,
                             name, options)
        return _call(format or _choose(name, _identify(name, None)), source, name, options)
    if isinstance(source, fits.HDUList):
        return _call(format or _choose(name, _identify(None, source), source), source, name,
                     options)
    return _call(format or _choose(name, []), source, name, options)


def is_specutils(source: Any) -> bool:
    """Whether ``source`` is a specutils ``Spectrum`` or ``SpectrumList`` (asked without
    importing specutils: an object of it exists only once the program has imported it)."""
    module = sys.modules.get("specutils")
    kinds = tuple(k for k in (getattr(module, "Spectrum", None),
                              getattr(module, "SpectrumList", None)) if k is not None)
    return bool(kinds) and isinstance(source, kinds)


def _from_specutils(source: Any, format: str | None, options: dict[str, Any]) -> SpectrumSet:
    if format is not None or options:
        given = ([f"format={format!r}"] if format is not None else []) + sorted(options)
        raise TypeError(f"read: a specutils {type(source).__name__} is converted as it is; "
                        f"{', '.join(given)} do not apply (SpectrumSet.from_specutils)")
    name = f"<specutils {type(source).__name__}>"
    with reader_errors("specutils", name):
        return SpectrumSet.from_specutils(source)


def read_as(fmt: str, source: Any, name: str | None = None, **options: Any) -> SpectrumSet:
    """Read ``source`` (an open HDUList, a path or a file object) as format ``fmt``, as
    :func:`read` does once it has opened and identified the file: errors become
    :class:`ReadError` naming ``name`` (default the source's own name), a spectrum file
    without one usable pixel is refused, meta ``file`` and ``format`` are added."""
    format_info(fmt)
    return _call(fmt, source, source_name(source) if name is None else name, options)


def write(spectra: SpectrumSet, path: str | os.PathLike, format: str | None = None,
          **options: Any) -> None:
    """Write ``spectra`` to ``path`` in a format with a registered writer (default
    :data:`DEFAULT_WRITE_FORMAT`, the starlearn HDF5 data set, whatever the file name);
    ``options`` go to the writer (``overwrite=``, ``provenance=`` for a data set)."""
    info = format_info(format or DEFAULT_WRITE_FORMAT)
    if info.writer is None:
        with_writer = ", ".join(r.name for r in formats() if r.writer is not None)
        raise ValueError(f"format '{info.name}' has no writer; formats with one: "
                         f"{with_writer}")
    info.writer(spectra, path, **options)


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


def _call(fmt: str, source: Any, name: str, options: dict[str, Any]) -> SpectrumSet:
    info = _INFO[fmt]
    with reader_errors(fmt, name):
        spectra = info.reader(source, **options)
    if info.container:
        return spectra
    if spectra.mask.all():
        raise ReadError(name, NO_USABLE_PIXEL)
    if "file" not in spectra.meta.colnames and not name.startswith("<"):
        spectra.meta["file"] = [name] * len(spectra)
    if "format" not in spectra.meta.colnames:
        spectra.meta["format"] = [fmt] * len(spectra)
    return spectra
