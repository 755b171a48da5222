"""Gaia DR3 BP/RP (XP) spectra: sampled spectra and continuous (basis-function) coefficients.

Data model: Gaia DR3 documentation, chapter 20 (xp_sampled_mean_spectrum,
xp_continuous_mean_spectrum). The archive delivers them as

* **RAW** exports (one row per source; CSV, ECSV, FITS, VOTable): sampled spectra have
  ``source_id, solution_id, ra, dec, flux, flux_error`` with 343 samples per array on the
  implied grid 336, 338, ..., 1020 nm; continuous ones ``source_id``, ``bp_coefficients``,
  ``bp_coefficient_errors``, ``bp_coefficient_correlations``, ``bp_n_parameters``,
  ``bp_standard_deviation`` ... and the same for ``rp_``. CSV writes arrays as
  ``"(a, b, ...)"`` strings, ECSV as ``[a,b,...]``;
* **DataLink** products (``XP_SAMPLED-Gaia DR3 <source_id>.<ext>``: one row per wavelength,
  columns ``wavelength`` [nm], ``flux``, ``flux_error`` [W m^-2 nm^-1], the source_id in the
  table's metadata; ``XP_CONTINUOUS-Gaia DR3 <source_id>.<ext>``: one row, the RAW columns).

Sampled fluxes are read as they are; continuous coefficients are sampled onto wavelengths
with GaiaXPy (the Gaia consortium's package, the optional extra ``starlearn[gaia]``), which
needs no network for this. Wavelengths are vacuum (the spectral column's UCD is ``em.wl``,
the VO's vacuum wavelength) nanometres; fluxes in W m^-2 nm^-1.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import re
import warnings
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from starlearn._extras import missing
from starlearn.io.fitsutil import ReadError, source_name
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import check_wavelengths, medium_meta
from starlearn.spectra import SpectrumSet

__all__ = ["XP_SAMPLING_NM", "gaia_xp_continuous_identify", "gaia_xp_sampled_identify",
           "read_gaia_xp_continuous", "read_gaia_xp_sampled"]

XP_SAMPLING_NM = np.arange(336.0, 1021.0, 2.0)
"""The DR3 sampled spectra's wavelengths (nm): 343 samples, 336-1020 nm in steps of 2 nm."""

_SAMPLED_RAW = {"source_id", "flux", "flux_error"}
_SAMPLED_DATALINK = {"wavelength", "flux", "flux_error"}
_CONTINUOUS = {"source_id", "bp_coefficients", "rp_coefficients"}
_DATALINK_NAME = re.compile(r"XP_(SAMPLED|CONTINUOUS)[-_]", re.IGNORECASE)


# ---------------------------------------------------------------- cheap column sniffing
def _text_kind(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return _kind_of(f.read(2048))
    except OSError:
        return None


def _kind_of(start: bytes) -> str | None:
    """'ecsv', 'votable' or 'csv' from the first bytes of a text file, or None."""
    text = start.decode("utf-8", errors="replace").lstrip()
    if text.startswith("# %ECSV"):
        return "ecsv"
    if text.startswith("<?xml") or text.startswith("<VOTABLE"):
        return "votable" if "VOTABLE" in text.upper() else None
    first = text.splitlines()[0] if text else ""
    return "csv" if "," in first and not first.startswith("#") else None


def _text_columns(path: str) -> set[str]:
    """Column names of a CSV/ECSV/VOTable file from its first lines (no data parsed)."""
    kind = _text_kind(path)
    if kind is None:
        return set()
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(65536)
    if kind == "ecsv":  # "#   name: flux" (block style) or "# - {name: flux, ...}" (flow)
        block = re.findall(r"^#\s*-?\s*name:\s*([^\s,}]+)", head, re.MULTILINE)
        flow = re.findall(r"\{name:\s*([^\s,}]+)", head)
        return {m.lower() for m in block + flow}
    if kind == "votable":
        return {m.lower() for m in re.findall(r"<FIELD[^>]*\bname=\"([^\"]+)\"", head)}
    return {c.strip().strip('"').lower() for c in head.splitlines()[0].split(",")}


def _columns(path: str | None, args: tuple[Any, ...]) -> tuple[set[str], str]:
    """(column names, file name) of a Gaia-like table: FITS HDU 1 or a text file."""
    if args and isinstance(args[0], fits.HDUList):
        hdul = args[0]
        if len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU):
            return {c.lower() for c in hdul[1].columns.names}, source_name(hdul)
        return set(), ""
    if path is not None and os.path.isfile(path):
        return _text_columns(path), path
    return set(), ""


def _gaia_marked(columns: set[str], name: str) -> bool:
    return "source_id" in columns or bool(_DATALINK_NAME.search(os.path.basename(name)))


def gaia_xp_sampled_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                             **kwargs: Any) -> bool:
    """Gaia XP sampled spectra: RAW (source_id, flux, flux_error arrays) or DataLink
    (wavelength, flux, flux_error; an ``XP_SAMPLED`` file name or a source_id)."""
    columns, name = _columns(path, args)
    if _CONTINUOUS & columns - {"source_id"}:
        return False
    if _SAMPLED_RAW <= columns and "wavelength" not in columns:
        return True
    return _SAMPLED_DATALINK <= columns and (
        bool(_DATALINK_NAME.search(os.path.basename(name))) or _datalink_source(path, args))


def _datalink_source(path: str | None, args: tuple[Any, ...]) -> bool:
    """A DataLink file names its source_id in its metadata (ECSV meta, FITS header)."""
    if args and isinstance(args[0], fits.HDUList):
        return any("SOURCE_ID" in h.header for h in args[0][:2])
    if path is not None and _text_kind(path) == "ecsv":
        with open(path, encoding="utf-8", errors="replace") as f:
            return "source_id:" in f.read(65536)
    return False


def gaia_xp_continuous_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                                **kwargs: Any) -> bool:
    """Gaia XP continuous spectra: source_id, bp_coefficients and rp_coefficients."""
    columns, _ = _columns(path, args)
    return _CONTINUOUS <= columns


# ---------------------------------------------------------------- reading
def _read_table(source: Any, name: str) -> Table:
    if hasattr(source, "read") and not isinstance(source, fits.HDUList):  # a file object
        with contextlib.suppress(Exception):
            source.seek(0)
        content = source.read()
        content = content.encode() if isinstance(content, str) else content
        if content.startswith(b"SIMPLE  ="):
            with fits.open(io.BytesIO(content)) as hdul:
                return _read_table(hdul, name)
        kind = _kind_of(content[:2048])
        # astropy's ascii readers take a string holding newlines as the table itself
        source = io.BytesIO(content) if kind == "votable" else content.decode(
            "utf-8", errors="replace")
    elif isinstance(source, fits.HDUList):
        table = Table.read(source, hdu=1)
        table.meta.update({k: source[0].header[k] for k in ("SOURCE_ID", "SOLUTION_ID")
                           if k in source[0].header})
        return table
    else:
        source = os.fspath(source)
        kind = _text_kind(source)
    formats = {"ecsv": "ascii.ecsv", "csv": "ascii.csv", "votable": "votable"}
    if kind is None:
        raise ReadError(name, "not a CSV, ECSV or VOTable file")
    try:
        return Table.read(source, format=formats[kind])
    except Exception as err:  # astropy raises many kinds for malformed text
        raise ReadError(name, f"cannot be read as a {kind.upper()} table ({err})") from None


def _array(cell: Any, name: str, what: str) -> np.ndarray:
    """A numeric array from a table cell: an array, or a "(a, b, ...)" / "[a,b]" string."""
    if isinstance(cell, (str, bytes)):
        text = cell.decode() if isinstance(cell, bytes) else cell
        text = text.strip().strip("()[]")
        try:
            values = [float(v) if v.strip().lower() not in ("", "null", "nan", "--")
                      else np.nan for v in text.split(",")] if text else []
        except ValueError:
            raise ReadError(name, f"{what} is not a list of numbers ('{text[:40]}...')") from None
        return np.asarray(values, dtype=np.float64)
    return np.ma.filled(np.ma.asarray(cell, dtype=np.float64), np.nan).ravel()


def _columns_lower(table: Table) -> dict[str, str]:
    return {c.lower(): c for c in table.colnames}


def _ivar(error: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ivar = np.where(error > 0, 1.0 / error**2, 0.0)
    ivar[~np.isfinite(ivar)] = 0.0
    return ivar


def _wave_meta(n: int) -> dict[str, list[Any]]:
    return {k: [v] * n for k, v in medium_meta("vacuum", "Gaia data model (em.wl, vacuum)",
                                               "nm", "Gaia data model (nm)").items()}


def _source_id(value: Any) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return str(value).strip()


@register_reader("gaia-xp-sampled", identifier=gaia_xp_sampled_identify, priority=10,
                 fits_based=None)
def read_gaia_xp_sampled(source: Any, *, sampling: Any = None) -> SpectrumSet:
    """Read Gaia XP sampled spectra (RAW exports of many sources, or one DataLink product).

    Parameters
    ----------
    source : path (CSV, ECSV, VOTable, FITS) or HDUList
    sampling : array, optional
        The wavelengths (nm) of RAW arrays sampled on a grid other than DR3's 343-sample
        :data:`XP_SAMPLING_NM` (e.g. written by GaiaXPy with its own sampling).

    Returns
    -------
    SpectrumSet with one row per source (vacuum Angstrom, flux in W m^-2 nm^-1); ids the
    source_ids; meta columns source_id, solution_id, ra, dec (where given).
    """
    name = source_name(source)
    table = _read_table(source, name)
    cols = _columns_lower(table)
    if "wavelength" in cols:  # DataLink: one row per wavelength
        wave_nm = np.asarray(table[cols["wavelength"]], dtype=np.float64)
        unit = str(table[cols["wavelength"]].unit or "nm")
        if unit.strip().lower() not in ("nm", "nanometer"):
            raise ReadError(name, f"the wavelength column is in '{unit}', not nm")
        fluxes = [np.ma.filled(np.ma.asarray(table[cols["flux"]], np.float64), np.nan)]
        errors = [np.ma.filled(np.ma.asarray(table[cols["flux_error"]], np.float64), np.nan)]
        ids = [_source_id(table.meta.get("source_id", table.meta.get("SOURCE_ID",
                                                                      os.path.basename(name))))]
        meta: dict[str, list[Any]] = {"solution_id": [_source_id(table.meta.get(
            "solution_id", table.meta.get("SOLUTION_ID", "")))]}
    else:
        if "source_id" not in cols:
            raise ReadError(name, f"no source_id column (columns: {', '.join(table.colnames)})")
        fluxes = [_array(c, name, "flux") for c in table[cols["flux"]]]
        errors = [_array(c, name, "flux_error") for c in table[cols["flux_error"]]]
        sizes = {f.size for f in fluxes}
        wave_nm = XP_SAMPLING_NM if sampling is None else np.asarray(sampling, np.float64)
        if sizes != {wave_nm.size}:
            raise ReadError(name, f"flux arrays of {sorted(sizes)} samples, the wavelengths "
                                  f"{wave_nm.size} (DR3's grid is 343 samples 336-1020 nm); "
                                  "pass sampling=... (nm) for another grid")
        ids = [_source_id(v) for v in table[cols["source_id"]]]
        meta = {key: [table[cols[key]][i] for i in range(len(table))]
                for key in ("solution_id", "ra", "dec") if key in cols}
        if "solution_id" in meta:
            meta["solution_id"] = [_source_id(v) for v in meta["solution_id"]]
    n = len(ids)
    wave = wave_nm * 10.0
    check_wavelengths(wave, name, "Gaia data model (nm)")
    flux = np.vstack(fluxes)
    ivar = np.vstack([_ivar(e) for e in errors])
    meta = {"survey": ["gaia"] * n, "source_id": ids, **meta, **_wave_meta(n)}
    order = np.argsort(wave, kind="stable")
    return SpectrumSet(wave=wave[order], flux=flux[:, order], ivar=ivar[:, order], ids=ids,
                       meta=meta)


_CONTINUOUS_FIELDS = ("n_parameters", "standard_deviation", "coefficients",
                      "coefficient_errors", "coefficient_correlations", "n_relevant_bases",
                      "basis_function_id", "degrees_of_freedom", "n_measurements",
                      "n_rejected_measurements", "chi_squared", "relative_shrinking")
_ARRAYS = ("coefficients", "coefficient_errors", "coefficient_correlations")


@register_reader("gaia-xp-continuous", identifier=gaia_xp_continuous_identify, priority=10,
                 fits_based=None)
def read_gaia_xp_continuous(source: Any, *, sampling: Any = None,
                            truncation: bool = False) -> SpectrumSet:
    """Read Gaia XP continuous spectra (coefficients) and sample them with GaiaXPy.

    Parameters
    ----------
    source : path (CSV, ECSV, VOTable, FITS) or HDUList
    sampling : array, optional
        Wavelengths (nm, increasing, within 330-1050) to sample on; default DR3's
        :data:`XP_SAMPLING_NM`.
    truncation : bool
        Use only the "relevant" basis functions (``*_n_relevant_bases``), as GaiaXPy's
        ``truncation`` option.

    Returns
    -------
    SpectrumSet with one row per source (vacuum Angstrom, W m^-2 nm^-1).

    Raises
    ------
    ReadError
        When GaiaXPy is not installed, naming the optional extra ``starlearn[gaia]``.
    """
    name = source_name(source)
    try:
        import matplotlib
        import pandas as pd

        with matplotlib.rc_context():  # importing GaiaXPy sets text.usetex = True globally
            from gaiaxpy import calibrate
            from gaiaxpy.calibrator import calibrator as _calibrator
    except ImportError:  # a reason, not a MissingExtraError: a batch read rejects the file
        needs = missing("gaiaxpy", extra="gaia", what="sampling Gaia XP continuous spectra")
        raise ReadError(name, str(needs)) from None
    table = _read_table(source, name)
    cols = _columns_lower(table)
    frame: dict[str, list[Any]] = {"source_id": [int(v) for v in table[cols["source_id"]]]}
    for band in ("bp", "rp"):
        for field in _CONTINUOUS_FIELDS:
            key = f"{band}_{field}"
            if key not in cols:
                continue
            values = table[cols[key]]
            frame[key] = ([_array(v, name, key) for v in values] if field in _ARRAYS
                          else [float(np.ma.filled(np.ma.asarray(v, np.float64), np.nan))
                                for v in values])
    wave_nm = XP_SAMPLING_NM if sampling is None else np.asarray(sampling, np.float64)
    quiet = getattr(_calibrator, "_calibrate", None)
    if quiet is not None and "disable_info" not in inspect.signature(quiet).parameters:
        quiet = None
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
                io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GaiaXPy's own deprecation notices
            # GaiaXPy's public calibrate always draws a progress bar on the stdout it
            # bound at import; its _calibrate (same arguments) can switch it off
            result, used = (quiet(pd.DataFrame(frame), wave_nm, truncation, save_file=False,
                                  disable_info=True) if quiet is not None else
                            calibrate(pd.DataFrame(frame), sampling=wave_nm,
                                      truncation=truncation, save_file=False))
    except Exception as err:  # GaiaXPy raises ValueError, KeyError ... for bad input
        raise ReadError(name, f"GaiaXPy could not sample the coefficients ({err})") from None
    wave = np.asarray(used, dtype=np.float64) * 10.0
    check_wavelengths(wave, name, "sampling (nm)")
    ids = [_source_id(v) for v in result["source_id"]]
    n = len(ids)
    flux = np.vstack([np.asarray(f, np.float64) for f in result["flux"]])
    ivar = np.vstack([_ivar(np.asarray(e, np.float64)) for e in result["flux_error"]])
    meta = {"survey": ["gaia"] * n, "source_id": ids, "sampled_with": ["GaiaXPy"] * n,
            **_wave_meta(n)}
    return SpectrumSet(wave=wave, flux=flux, ivar=ivar, ids=ids, meta=meta)
