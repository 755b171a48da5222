"""LAMOST low- and medium-resolution spectra (LRS, MRS).

Data models: LAMOST DR1-DR7 LRS files keep flux, inverse variance, wavelength, andmask and
ormask as the five rows of a 2-D primary image, with the wavelength also given by the
log-linear keys ``COEFF0``/``COEFF1`` (log10 Angstrom; authoritative); later releases put
the same arrays in a one-row binary table (HDU 1, columns FLUX, IVAR, WAVELENGTH, ANDMASK,
ORMASK). MRS files hold binary tables ``COADD_B``/``COADD_R`` and one per exposure
(``B-<mjm>``, ``R-<mjm>``) with FLUX, IVAR, LOGLAM or WAVELENGTH, ANDMASK, ORMASK.
LAMOST wavelengths are vacuum (header ``VACUUM = T``). See
https://www.lamost.org/dr7/v2.0/doc/lr-data-production-description and
https://www.lamost.org/dr9/v2.0/doc/mr-data-production-description.

Importing this module also registers ``LAMOST-LRS`` and ``LAMOST-MRS`` loaders with
specutils, so that after ``import starlearn`` ``Spectrum.read(path, format="LAMOST-LRS")``
works (specutils has no entry point for third-party loaders: the import is required).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.grid import C_KMS, air_to_vacuum
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
from starlearn.spectra import SpectrumSet

__all__ = ["lamost_lrs_identify", "lamost_mrs_identify", "read_lamost_lrs", "read_lamost_mrs"]

_HEADER_META = {"CLASS": "class", "SUBCLASS": "subclass", "Z": "z", "Z_ERR": "z_err",
                "SN_U": "sn_u", "SN_G": "sn_g", "SN_R": "sn_r", "SN_I": "sn_i", "SN_Z": "sn_z",
                "RA": "ra", "DEC": "dec", "OBSID": "obsid", "DESIG": "designation",
                "OBJNAME": "objname", "MJD": "mjd"}


def _is_lamost(header: fits.Header) -> bool:
    return str(header.get("TELESCOP", "")).strip().upper() == "LAMOST"


def _has_mrs_tables(hdul: fits.HDUList) -> bool:
    return any(h.name in ("COADD_B", "COADD_R") for h in hdul[1:])


def lamost_lrs_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                        **kwargs: Any) -> bool:
    """True for a LAMOST low-resolution file of either layout."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or not _is_lamost(hdul[0].header) or _has_mrs_tables(hdul):
            return False
        head = hdul[0].header
        if head.get("NAXIS") == 2 and head.get("NAXIS2") in (3, 5) and "COEFF0" in head:
            return True
        if len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU):
            cols = {c.upper() for c in hdul[1].columns.names}
            return {"FLUX", "IVAR", "WAVELENGTH"} <= cols
        return False


def lamost_mrs_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                        **kwargs: Any) -> bool:
    """True for a LAMOST medium-resolution file (COADD_B / COADD_R tables)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return hdul is not None and _is_lamost(hdul[0].header) and _has_mrs_tables(hdul)


@dataclass
class _Arrays:
    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    header: fits.Header


def _bad_pixels(andmask: np.ndarray, ormask: np.ndarray, mask_bits: str, name: str) -> np.ndarray:
    if mask_bits == "and":
        return andmask != 0
    if mask_bits == "or":
        return (andmask != 0) | (ormask != 0)
    if mask_bits == "none":
        return np.zeros(andmask.shape, dtype=bool)
    raise ValueError(f"mask_bits must be 'and', 'or' or 'none', got {mask_bits!r}")


def _to_vacuum(wave: np.ndarray, header: fits.Header) -> np.ndarray:
    return wave if header.get("VACUUM", True) else air_to_vacuum(wave)


@functools.lru_cache(maxsize=16)
def _log_linear_wave(c0: float, c1: float, n_pix: int, vacuum: bool) -> np.ndarray:
    """Vacuum wavelengths (Å) of ``n_pix`` pixels at log10(λ) = c0 + c1 i (read-only; the
    files of one survey release share a few grids, so each is computed once)."""
    wave = 10.0 ** (c0 + c1 * np.arange(n_pix))
    wave = wave if vacuum else air_to_vacuum(wave)
    wave.flags.writeable = False
    return wave


def _image_arrays(head: Any, image: np.ndarray, name: str, mask_bits: str) -> _Arrays:
    """The DR1-DR7 layout: rows flux, ivar, wavelength, andmask, ormask of the primary
    image; the wavelength from COEFF0/COEFF1. ``head`` is any FITS header mapping (astropy,
    fitsio or a dict)."""
    data = np.asarray(image)  # float32 in LAMOST files, as SpectrumSet keeps flux and ivar
    if data.ndim != 2 or data.shape[0] < 3:
        raise ReadError(name, f"primary image has {data.shape[0]} rows, expected 5 "
                              "(flux, ivar, wavelength, andmask, ormask)")
    c0 = float(header_value(head, "COEFF0", name, "primary HDU"))
    c1 = float(header_value(head, "COEFF1", name, "primary HDU"))
    wave = _log_linear_wave(c0, c1, data.shape[1], bool(head.get("VACUUM", True))).copy()
    andmask = data[3] if data.shape[0] > 3 else np.zeros(data.shape[1])
    ormask = data[4] if data.shape[0] > 4 else np.zeros(data.shape[1])
    # rows converted one by one: a float64 copy of the whole image (156 kB) would be a fresh
    # memory mapping, and its page faults, for every file
    return _Arrays(wave, data[0].astype(np.float32), data[1].astype(np.float32),
                   _bad_pixels(andmask, ormask, mask_bits, name), head)


def _lrs_arrays(hdul: fits.HDUList, name: str, mask_bits: str) -> _Arrays:
    head = hdul[0].header
    if head.get("NAXIS") == 2 and hdul[0].data is not None:
        return _image_arrays(head, hdul[0].data, name, mask_bits)
    else:
        if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            raise ReadError(name, "no 5-row primary image and no binary table in HDU 1")
        table = hdul[1].data
        if table is None or len(table) < 1:
            raise ReadError(name, "HDU 1 table is empty")
        row = table[:1]
        flux = column(row, "FLUX", name, "HDU 1")[0]
        ivar = column(row, "IVAR", name, "HDU 1")[0]
        wave = column(row, "WAVELENGTH", name, "HDU 1")[0]
        cols = {c.upper() for c in table.columns.names}
        andmask = column(row, "ANDMASK", name, "HDU 1")[0] if "ANDMASK" in cols \
            else np.zeros_like(flux)
        ormask = column(row, "ORMASK", name, "HDU 1")[0] if "ORMASK" in cols \
            else np.zeros_like(flux)
    bad = _bad_pixels(andmask, ormask, mask_bits, name)
    return _Arrays(_to_vacuum(np.asarray(wave, np.float64), head), np.asarray(flux, np.float64),
                   np.asarray(ivar, np.float64), bad, head)


def _meta(header: fits.Header, survey: str) -> dict[str, list[Any]]:
    meta: dict[str, list[Any]] = {"survey": [survey]}
    for key, col in _HEADER_META.items():
        if key in header:
            value = header[key]
            if isinstance(value, str):
                value = value.strip()
            elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and value <= -9999:
                value = np.nan  # LAMOST's "no value"
            meta[col] = [value]
    if "z" in meta:
        try:
            meta["rv"] = [float(meta["z"][0]) * C_KMS]
        except (TypeError, ValueError):
            meta["rv"] = [np.nan]
    if "snr" not in meta and "sn_g" in meta:
        meta["snr"] = [meta["sn_g"][0]]
    return meta


def _ident(header: fits.Header, name: str) -> str:
    return str(header.get("OBSID", header.get("OBJNAME", header.get("FILENAME", name)))).strip()


def _spectrum_set(arrays: _Arrays, name: str, survey: str) -> SpectrumSet:
    return SpectrumSet(wave=arrays.wave, flux=arrays.flux, ivar=arrays.ivar, mask=arrays.mask,
                       ids=[_ident(arrays.header, name)], meta=_meta(arrays.header, survey))


@register_row_reader("lamost-lrs")
def _lrs_row(hdul: fits.HDUList, name: str, *, mask_bits: str = "and") -> SpectrumRow:
    """The spectrum of :func:`read_lamost_lrs` as a row, for :func:`starlearn.io.read_many`."""
    return _row(_lrs_arrays(hdul, name, mask_bits), name)


def _row(arrays: _Arrays, name: str) -> SpectrumRow:
    meta = {key: values[0] for key, values in _meta(arrays.header, "lamost").items()}
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


@register_row_reader("lamost-lrs", direct=True)
def _lrs_row_direct(path: str, name: str, *, mask_bits: str = "and") -> SpectrumRow | None:
    """:func:`_lrs_row` for a file in the image layout, read with fitsio (cfitsio: about
    3x faster per small file than astropy's header parsing); None when fitsio is missing,
    cannot read the file, or the file is not plainly a LAMOST LRS image (one HDU, TELESCOP
    LAMOST, a 3- or 5-row image, COEFF0), so that the astropy path identifies it, reads it
    or names what is wrong with it."""
    try:
        import fitsio
    except ImportError:  # pragma: no cover - fitsio is a dependency
        return None
    try:
        with fitsio.FITS(path) as f:
            if len(f) != 1:
                return None
            head = _header_dict(f[0].read_header_list())
            if not (_is_lamost(head) and head.get("NAXIS") == 2
                    and head.get("NAXIS2") in (3, 5) and "COEFF0" in head):
                return None
            image = f[0].read()
    except (OSError, ValueError):
        return None
    if image is None:
        return None
    return _row(_image_arrays(head, image, name, mask_bits), name)


@register_reader("lamost-lrs", identifier=lamost_lrs_identify, priority=10)
def read_lamost_lrs(source: Any, *, mask_bits: str = "and") -> SpectrumSet:
    """Read a LAMOST low-resolution spectrum (either layout) into a SpectrumSet.

    Parameters
    ----------
    source : path, file object or HDUList
    mask_bits : {"and", "or", "none"}
        Which LAMOST pixel mask marks bad pixels: ANDMASK (bad in every exposure, the
        default), ANDMASK | ORMASK, or none.

    Returns
    -------
    SpectrumSet with one spectrum: vacuum wavelength (Angstrom), flux in the file's units,
    ivar; meta columns survey, class, subclass, z, rv (= z c, km/s), sn_u ... sn_z, snr.
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
    row = hdu.data[:1]
    cols = {c.upper() for c in hdu.columns.names}
    if "LOGLAM" in cols:
        wave = 10.0 ** column(row, "LOGLAM", name, extname)[0].astype(np.float64)
    else:
        wave = column(row, "WAVELENGTH", name, extname)[0].astype(np.float64)
    flux = column(row, "FLUX", name, extname)[0]
    ivar = column(row, "IVAR", name, extname)[0]
    andmask = column(row, "ANDMASK", name, extname)[0] if "ANDMASK" in cols \
        else np.zeros_like(flux)
    ormask = column(row, "ORMASK", name, extname)[0] if "ORMASK" in cols \
        else np.zeros_like(flux)
    head = hdul[0].header
    return _Arrays(_to_vacuum(wave, head), np.asarray(flux, np.float64),
                   np.asarray(ivar, np.float64),
                   _bad_pixels(andmask, ormask, mask_bits, name), head)


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
                     for f in ("wave", "flux", "ivar", "mask")), parts[0].header)


@register_reader("lamost-mrs", identifier=lamost_mrs_identify, priority=10)
def read_lamost_mrs(source: Any, *, arm: str = "R", exposure: str | None = None,
                    mask_bits: str = "and") -> SpectrumSet:
    """Read a LAMOST medium-resolution spectrum: the coadd or one exposure.

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
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        return _spectrum_set(_mrs_arrays(hdul, name, arm, exposure, mask_bits), name, "lamost")


# ---------------------------------------------------------------- specutils registration
def _register_specutils() -> None:
    try:
        import astropy.units as u
        from astropy.nddata import InverseVariance
        from specutils import Spectrum
        from specutils.io.registers import data_loader
    except ImportError:  # specutils is optional
        return

    def to_spectrum(arrays: _Arrays) -> Spectrum:
        # DR1-DR7 files give no flux unit (relative flux calibration): dimensionless
        # unless the header names one.
        try:
            unit = u.Unit(arrays.header.get("BUNIT", ""), parse_strict="raise")
        except (ValueError, TypeError):
            unit = u.dimensionless_unscaled
        return Spectrum(flux=arrays.flux * unit, spectral_axis=arrays.wave * u.AA,
                        uncertainty=InverseVariance(arrays.ivar / unit**2), mask=arrays.mask,
                        meta={"header": arrays.header})

    @data_loader("LAMOST-LRS", identifier=lamost_lrs_identify, dtype=Spectrum,
                 extensions=["fits", "fits.gz"], priority=10)
    def lamost_lrs_loader(file_obj: Any, mask_bits: str = "and", **kwargs: Any) -> Spectrum:
        """LAMOST low-resolution spectrum (either layout) as a specutils Spectrum."""
        name = source_name(file_obj)
        with as_hdulist(file_obj) as hdul:
            return to_spectrum(_lrs_arrays(hdul, name, mask_bits))

    @data_loader("LAMOST-MRS", identifier=lamost_mrs_identify, dtype=Spectrum,
                 extensions=["fits", "fits.gz"], priority=10)
    def lamost_mrs_loader(file_obj: Any, arm: str = "R", exposure: str | None = None,
                          mask_bits: str = "and", **kwargs: Any) -> Spectrum:
        """LAMOST medium-resolution spectrum (coadd or one exposure) as a Spectrum."""
        name = source_name(file_obj)
        with as_hdulist(file_obj) as hdul:
            return to_spectrum(_mrs_arrays(hdul, name, arm, exposure, mask_bits))


_register_specutils()
