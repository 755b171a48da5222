"""LAMOST low- and medium-resolution spectra (LRS, MRS), every data release.

Data models (LAMOST data-release documentation, "data production description" of each
release, e.g. https://www.lamost.org/dr7/v2.0/doc/lr-data-production-description and
https://www.lamost.org/dr9/v2.0/doc/mr-data-production-description):

* LRS DR1 (pipeline 2.6): the primary HDU is a 5 x N image whose rows ``EXTEN0`` names
  ``Flux Inverse Subcontinuum Andmask Ormask`` (row 3 is the flux divided by the
  continuum, *not* a wavelength);
* LRS DR2-DR8 v1: the same image with rows ``Flux, Inverse, Wavelength, Andmask, Ormask``;
* LRS DR8 v2.0 and DR9 onwards: an empty primary HDU (which still carries the stale
  ``NAXIS1``/``NAXIS2`` cards of the image layout) and a one-row binary table ``COADD``
  with vector columns FLUX, IVAR, WAVELENGTH, ANDMASK, ORMASK, NORMALIZATION;
* MRS DR6-DR10: binary tables ``COADD_B``/``COADD_R`` and one per exposure
  (``B-<lmjm>``, ``R-<lmjm>``), either one row per pixel with scalar columns (the early
  releases) or one row of vector columns; wavelength in ``LOGLAM`` (log10 Angstrom) or
  ``WAVELENGTH``; masks ``ANDMASK``/``ORMASK`` (coadds) or ``PIXMASK`` (exposures).

In the image layouts the wavelength of pixel i (0-based) is ``10 ** (COEFF0 + COEFF1 i)``
Angstrom, the authoritative grid (3.5682 + 1e-4 i in every release); the tables give a
wavelength column. LAMOST wavelengths are vacuum and heliocentric (``VACUUM = T``,
``HELIO = T``; the documented convention where a file lacks the key). Every LAMOST
product carries ``TELESCOP = 'LAMOST'`` (or ``ORIGIN = 'NAOC-LAMOST'``); MRS files are told
from LRS ones by their ``FILENAME`` (``med-...``) or their HDU names.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.grid import C_KMS
from starlearn.io.batch import SpectrumRow, register_row_reader
from starlearn.io.fitsutil import (
    ReadError,
    as_hdulist,
    column,
    header_value,
    identify_hdulist,
    source_name,
)
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import keyword_medium, medium_meta, to_vacuum
from starlearn.spectra import SpectrumSet

__all__ = ["lamost_lrs_identify", "lamost_mrs_identify", "read_lamost_lrs", "read_lamost_mrs"]

_HEADER_META = {"CLASS": "class", "SUBCLASS": "subclass", "Z": "z", "Z_ERR": "z_err",
                "SN_U": "sn_u", "SN_G": "sn_g", "SN_R": "sn_r", "SN_I": "sn_i", "SN_Z": "sn_z",
                "SNRU": "sn_u", "SNRG": "sn_g", "SNRR": "sn_r", "SNRI": "sn_i", "SNRZ": "sn_z",
                "RA": "ra", "DEC": "dec", "OBSID": "obsid", "DESIG": "designation",
                "OBJNAME": "objname", "MJD": "mjd", "HELIO_RV": "helio_rv",
                "DATA_V": "data_release", "FILENAME": "filename"}

_ROWS = {"flux": "flux", "inverse": "ivar", "ivar": "ivar", "wavelength": "wavelength",
         "subcontinuum": "subcontinuum", "andmask": "andmask", "ormask": "ormask"}
_DEFAULT_ROWS = ("flux", "ivar", "wavelength", "andmask", "ormask")
_EXPOSURE_HDU = re.compile(r"^[BR]-\d+$")


def _is_lamost(header: Any) -> bool:
    return (str(header.get("TELESCOP", "")).strip().upper() == "LAMOST"
            or str(header.get("ORIGIN", "")).strip().upper() == "NAOC-LAMOST")


def _is_mrs(hdul: fits.HDUList) -> bool:
    if str(hdul[0].header.get("FILENAME", "")).strip().lower().startswith("med-"):
        return True
    return any(h.name in ("COADD_B", "COADD_R") or _EXPOSURE_HDU.match(h.name)
               for h in hdul[1:])


def lamost_lrs_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                        **kwargs: Any) -> bool:
    """A LAMOST low-resolution file of any layout (DR1 image ... DR9+ COADD table)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or not _is_lamost(hdul[0].header) or _is_mrs(hdul):
            return False
        head = hdul[0].header
        if head.get("NAXIS") == 2 and head.get("NAXIS2") in (3, 4, 5) and "COEFF0" in head:
            return True
        if len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU):
            cols = {c.upper() for c in hdul[1].columns.names}
            return {"FLUX", "IVAR", "WAVELENGTH"} <= cols
        return False


def lamost_mrs_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                        **kwargs: Any) -> bool:
    """A LAMOST medium-resolution file (``med-*``; COADD_B / COADD_R / exposure tables)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return (hdul is not None and _is_lamost(hdul[0].header) and _is_mrs(hdul)
                and any(isinstance(h, fits.BinTableHDU) for h in hdul[1:]))


@dataclass
class _Arrays:
    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    header: Any
    medium: tuple[str, str]


def _bad_pixels(andmask: np.ndarray, ormask: np.ndarray, mask_bits: str) -> np.ndarray:
    if mask_bits == "and":
        return andmask != 0
    if mask_bits == "or":
        return (andmask != 0) | (ormask != 0)
    if mask_bits == "none":
        return np.zeros(andmask.shape, dtype=bool)
    raise ValueError(f"mask_bits must be 'and', 'or' or 'none', got {mask_bits!r}")


def _medium(header: Any) -> tuple[str, str]:
    return keyword_medium(header, ("vacuum", "LAMOST convention (vacuum)"))


@functools.lru_cache(maxsize=16)
def _log_linear_wave(c0: float, c1: float, n_pix: int, medium: str) -> np.ndarray:
    """Vacuum wavelengths (Å) of ``n_pix`` pixels at log10(λ) = c0 + c1 i (read-only; the
    files of one survey release share a few grids, so each is computed once)."""
    wave = to_vacuum(10.0 ** (c0 + c1 * np.arange(n_pix)), medium)
    wave.flags.writeable = False
    return wave


def _row_names(head: Any, n_rows: int, name: str) -> list[str]:
    """The meaning of each image row from EXTEN0 ('Flux Inverse Subcontinuum Andmask
    Ormask' in DR1, 'Flux, Inverse, Wavelength, Andmask, Ormask' later)."""
    text = str(head.get("EXTEN0", "")).strip()
    if not text:
        return list(_DEFAULT_ROWS[:n_rows])
    words = [w.lower() for w in re.split(r"[,\s]+", text) if w]
    unknown = [w for w in words if w not in _ROWS]
    if unknown or len(words) < 2 or words[0] != "flux":
        raise ReadError(name, f"primary image rows EXTEN0 = '{text}' are not the LAMOST "
                              "layout (Flux, Inverse, ...)")
    return [_ROWS[w] for w in words]


def _image_arrays(head: Any, image: np.ndarray, name: str, mask_bits: str) -> _Arrays:
    """The DR1-DR8 v1 image layout: rows named by EXTEN0, the wavelength from COEFF0 and
    COEFF1. ``head`` is any FITS header mapping (astropy, fitsio's records or a dict)."""
    data = np.asarray(image)  # float32 in LAMOST files, as SpectrumSet keeps flux and ivar
    if data.ndim != 2 or data.shape[0] < 2:
        raise ReadError(name, f"primary image has shape {data.shape}, expected 5 rows "
                              "(flux, ivar, wavelength or subcontinuum, andmask, ormask)")
    rows = _row_names(head, data.shape[0], name)
    index = {r: i for i, r in enumerate(rows[:data.shape[0]])}
    if "ivar" not in index:
        raise ReadError(name, "primary image has no inverse-variance row (EXTEN0)")
    c0 = float(header_value(head, "COEFF0", name, "primary HDU"))
    c1 = float(header_value(head, "COEFF1", name, "primary HDU"))
    if not c1 > 0:
        raise ReadError(name, f"COEFF1 = {c1}: the log-linear wavelength step must be > 0")
    medium = _medium(head)
    wave = _log_linear_wave(c0, c1, data.shape[1], medium[0]).copy()
    zeros = np.zeros(data.shape[1])
    andmask = data[index["andmask"]] if "andmask" in index else zeros
    ormask = data[index["ormask"]] if "ormask" in index else zeros
    # rows converted one by one: a float64 copy of the whole image (156 kB) would be a fresh
    # memory mapping, and its page faults, for every file
    return _Arrays(wave, data[index["flux"]].astype(np.float32),
                   data[index["ivar"]].astype(np.float32),
                   _bad_pixels(andmask, ormask, mask_bits), head, medium)


def _table_columns(hdu: fits.BinTableHDU, name: str, where: str,
                   keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Columns ``keys`` (those present) of a spectrum table of either form: one row of
    vector columns, or one row per pixel with scalar columns."""
    table = hdu.data
    if table is None or len(table) < 1:
        raise ReadError(name, f"{where} table is empty")
    present = {c.upper(): c for c in hdu.columns.names}
    per_pixel = len(table) > 1 and hdu.columns[present.get("FLUX", hdu.columns.names[0])] \
        .format.repeat == 1
    out = {}
    for key in keys:
        if key in present:
            values = column(table, key, name, where)
            out[key] = np.asarray(values if per_pixel else values[0]).ravel()
    return out


def _lrs_arrays(hdul: fits.HDUList, name: str, mask_bits: str) -> _Arrays:
    head = hdul[0].header
    if head.get("NAXIS") == 2 and hdul[0].data is not None:
        return _image_arrays(head, hdul[0].data, name, mask_bits)
    if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
        raise ReadError(name, "no LAMOST image in the primary HDU and no binary table in "
                              "HDU 1")
    cols = _table_columns(hdul[1], name, "HDU 1 (COADD)",
                          ("FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK"))
    for key in ("FLUX", "IVAR", "WAVELENGTH"):
        if key not in cols:
            column(hdul[1].data, key, name, "HDU 1 (COADD)")  # raises, naming the columns
    zeros = np.zeros_like(cols["FLUX"])
    medium = _medium(head)
    bad = _bad_pixels(cols.get("ANDMASK", zeros), cols.get("ORMASK", zeros), mask_bits)
    return _Arrays(to_vacuum(cols["WAVELENGTH"], medium[0]),
                   np.asarray(cols["FLUX"], np.float64), np.asarray(cols["IVAR"], np.float64),
                   bad, head, medium)


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= -9999:
        return np.nan  # LAMOST's "no value"
    return value


def _meta(header: Any, survey: str, medium: tuple[str, str]) -> dict[str, list[Any]]:
    meta: dict[str, list[Any]] = {"survey": [survey]}
    for key, col in _HEADER_META.items():
        if key in header and col not in meta:
            meta[col] = [_value(header[key])]
    meta["rv"] = [_float(meta.get("z", [np.nan])[0]) * C_KMS]
    for col in ("helio_rv", "z", "z_err"):
        if col in meta:
            meta[col] = [_float(meta[col][0])]
    if "snr" not in meta and "sn_g" in meta:
        meta["snr"] = [_float(meta["sn_g"][0])]
    meta.update({k: [v] for k, v in medium_meta(medium[0], medium[1], "Angstrom",
                                                "LAMOST data model").items()})
    return meta


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")  # e.g. HELIO_RV = '' in some DR2 files


def _ident(header: Any, name: str) -> str:
    return str(header.get("OBSID", header.get("OBJNAME", header.get("FILENAME", name)))).strip()


def _spectrum_set(arrays: _Arrays, name: str, survey: str) -> SpectrumSet:
    return SpectrumSet(wave=arrays.wave, flux=arrays.flux, ivar=arrays.ivar, mask=arrays.mask,
                       ids=[_ident(arrays.header, name)],
                       meta=_meta(arrays.header, survey, arrays.medium))


@register_row_reader("lamost-lrs")
def _lrs_row(hdul: fits.HDUList, name: str, *, mask_bits: str = "and") -> SpectrumRow:
    """The spectrum of :func:`read_lamost_lrs` as a row, for :func:`starlearn.io.read_many`."""
    return _row(_lrs_arrays(hdul, name, mask_bits), name)


def _row(arrays: _Arrays, name: str) -> SpectrumRow:
    meta = {key: values[0] for key, values in
            _meta(arrays.header, "lamost", arrays.medium).items()}
    return SpectrumRow(arrays.wave, arrays.flux, arrays.ivar, arrays.mask,
                       _ident(arrays.header, name), meta)


def _header_dict(records: list[dict[str, Any]]) -> dict[str, Any]:
    """fitsio's header records as a plain dict of keyword values (the first of repeated
    keywords; COMMENT, HISTORY and CONTINUE cards left out): a dozen lookups per file in
    a dict instead of fitsio's header object, which scans its cards for each."""
    head: dict[str, Any] = {}
    for record in records:
        key = record["name"]
        if key and key not in head and key not in ("COMMENT", "HISTORY", "CONTINUE"):
            head[key] = record["value"]
    return head


_MAGIC = {".gz": b"\x1f\x8b", ".bz2": b"BZh", ".fz": b"SIMPLE"}


def _content_matches_name(path: str) -> bool:
    """Whether a file's first bytes are what its suffix promises (gzip for ``.gz`` ...):
    cfitsio reads by content, astropy by name, and both paths must judge a file alike."""
    magic = next((m for suffix, m in _MAGIC.items() if path.lower().endswith(suffix)),
                 b"SIMPLE")
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


@register_row_reader("lamost-lrs", direct=True)
def _lrs_row_direct(path: str, name: str, *, mask_bits: str = "and") -> SpectrumRow | None:
    """:func:`_lrs_row` for a file in the image layout, read with fitsio (cfitsio: about
    3x faster per small file than astropy's header parsing); None when fitsio is missing,
    cannot read the file, or the file is not plainly a LAMOST LRS image (one HDU, TELESCOP
    LAMOST, a 5-row image, COEFF0, an LRS file name), so that the astropy path identifies
    it, reads it or names what is wrong with it."""
    try:
        import fitsio
    except ImportError:  # fitsio is optional (starlearn[fitsio]): astropy reads it
        return None
    if not _content_matches_name(path):
        return None  # e.g. a plain FITS named .gz: the usual path says what is wrong
    try:
        with fitsio.FITS(path) as f:
            if len(f) != 1:
                return None
            head = _header_dict(f[0].read_header_list())
            if not (_is_lamost(head) and head.get("NAXIS") == 2
                    and head.get("NAXIS2") in (3, 4, 5) and "COEFF0" in head
                    and not str(head.get("FILENAME", "")).strip().lower().startswith("med-")):
                return None
            image = f[0].read()
    except (OSError, ValueError):
        return None
    if image is None:
        return None
    return _row(_image_arrays(head, image, name, mask_bits), name)


@register_reader("lamost-lrs", identifier=lamost_lrs_identify, priority=10)
def read_lamost_lrs(source: Any, *, mask_bits: str = "and") -> SpectrumSet:
    """Read a LAMOST low-resolution spectrum (any release and layout) into a SpectrumSet.

    Parameters
    ----------
    source : path, file object or HDUList
    mask_bits : {"and", "or", "none"}
        Which LAMOST pixel mask marks bad pixels: ANDMASK (bad in every exposure, the
        default), ANDMASK | ORMASK, or none. Pixels with ivar = 0 are always bad.

    Returns
    -------
    SpectrumSet with one spectrum: vacuum wavelength (Angstrom, heliocentric), flux in the
    file's units (relative flux calibration), ivar; meta columns survey, class, subclass,
    z, rv (= z c, km/s), sn_u ... sn_z, snr (= sn_g), obsid, ra, dec, mjd, helio_rv,
    data_release, filename and the wavelength provenance (medium_in_file, medium_from,
    wave_unit_in_file, wave_unit_from).
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        return _spectrum_set(_lrs_arrays(hdul, name, mask_bits), name, "lamost")


def _mrs_table(hdul: fits.HDUList, extname: str, name: str, mask_bits: str) -> _Arrays:
    try:
        hdu = hdul[extname]
    except KeyError:
        names = [h.name for h in hdul[1:]]
        raise ReadError(name, f"no HDU named {extname} (HDUs: {', '.join(names)})") from None
    if not isinstance(hdu, fits.BinTableHDU):
        raise ReadError(name, f"HDU {extname} is not a binary table")
    cols = _table_columns(hdu, name, extname, ("LOGLAM", "WAVELENGTH", "FLUX", "IVAR",
                                               "ANDMASK", "ORMASK", "PIXMASK"))
    if "LOGLAM" in cols:
        wave = 10.0 ** cols["LOGLAM"].astype(np.float64)
    elif "WAVELENGTH" in cols:
        wave = cols["WAVELENGTH"].astype(np.float64)
    else:
        raise ReadError(name, f"{extname} has no LOGLAM or WAVELENGTH column (columns: "
                              f"{', '.join(hdu.columns.names)})")
    for key in ("FLUX", "IVAR"):
        if key not in cols:
            column(hdu.data, key, name, extname)  # raises, naming the columns
    flux = np.asarray(cols["FLUX"], np.float64)
    ivar = np.asarray(cols["IVAR"], np.float64)
    if "PIXMASK" in cols and "ANDMASK" not in cols:  # per-exposure tables
        bad = (cols["PIXMASK"] != 0) if mask_bits != "none" else np.zeros(flux.shape, bool)
        _bad_pixels(bad, bad, mask_bits)  # validates mask_bits
    else:
        zeros = np.zeros_like(flux)
        bad = _bad_pixels(cols.get("ANDMASK", zeros), cols.get("ORMASK", zeros), mask_bits)
    order = np.argsort(wave, kind="stable")
    medium = _medium(hdul[0].header)
    return _Arrays(to_vacuum(wave[order], medium[0]), flux[order], ivar[order], bad[order],
                   hdul[0].header, medium)


def _mrs_arrays(hdul: fits.HDUList, name: str, arm: str, exposure: str | None,
                mask_bits: str) -> _Arrays:
    if arm not in ("B", "R", "both"):
        raise ValueError(f"arm must be 'B', 'R' or 'both', got {arm!r}")
    arms = ["B", "R"] if arm == "both" else [arm]
    parts = []
    for a in arms:
        extname = f"COADD_{a}" if exposure is None else f"{a}-{exposure}"
        parts.append(_mrs_table(hdul, extname, name, mask_bits))
    if len(parts) == 1:
        return parts[0]
    parts.sort(key=lambda p: p.wave[0])
    return _Arrays(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("wave", "flux", "ivar", "mask")), parts[0].header,
                   parts[0].medium)


@register_reader("lamost-mrs", identifier=lamost_mrs_identify, priority=10)
def read_lamost_mrs(source: Any, *, arm: str = "R", exposure: str | None = None,
                    mask_bits: str = "and") -> SpectrumSet:
    """Read a LAMOST medium-resolution spectrum (DR6-DR10): the coadd or one exposure.

    Parameters
    ----------
    source : path, file object or HDUList
    arm : {"R", "B", "both"}
        Red arm (6,300-6,800 Angstrom, the default), blue arm (4,950-5,350), or both
        joined along the wavelength axis.
    exposure : str, optional
        The exposure suffix of the per-exposure HDUs (``"84420148"`` for ``R-84420148``);
        None reads the coadd (COADD_R / COADD_B).
    mask_bits : {"and", "or", "none"}
        For coadds as in :func:`read_lamost_lrs`; an exposure's PIXMASK marks bad pixels
        unless "none".

    Returns
    -------
    SpectrumSet with one spectrum (vacuum Angstrom, heliocentric; the tables of either
    form, one row per pixel or one row of vectors, sorted by wavelength) and the meta
    columns of :func:`read_lamost_lrs`.
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        return _spectrum_set(_mrs_arrays(hdul, name, arm, exposure, mask_bits), name, "lamost")
