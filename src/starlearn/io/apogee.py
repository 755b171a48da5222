"""APOGEE spectra: apStar/asStar, aspcapStar and apVisit/asVisit files, DR10-DR17.

Data models (SDSS): https://data.sdss.org/datamodel/files/APOGEE_REDUX/APRED_VERS/stars/
(apStar, asStar for the LCO 2.5-m), https://data.sdss.org/datamodel/files/APOGEE_ASPCAP/
(aspcapStar), https://data.sdss.org/datamodel/files/APOGEE_REDUX/APRED_VERS/visit/ (apVisit).
Layouts by pipeline: apred r3 (DR10), r5 (DR11/12), r6 (DR13), r8 (DR14), r12 (DR16) and
dr17; no DR17 or earlier file has EXTNAMEs.

* apStar/asStar: HDUs 1-3 flux, error, pixel mask (BUNIT 'Flux (10^-17 erg/s/cm^2/Ang)',
  'Error'/'Err (...)', 'Flag Mask (bitwise)' in the IDL era, 'Pixel bitmask' in DR17) on the
  combined grid ``log10(lambda) = CRVAL1 + CDELT1 i`` = 4.179 + 6e-6 i, 8,575 pixels (keys in
  the primary header and in HDUs 1-7). Rows: 0 the pixel-weighted combination, 1 the
  globally weighted one, 2... the visits, shifted to the rest frame, when there is more
  than one visit; the IDL-era files of a one-visit star have a single row. The spectra
  are **in the rest frame** (VRAD = 0 in the header: "set to rest frame").
* aspcapStar: HDUs 1-3 the pseudo-continuum-normalised spectrum, its error and the ASPCAP
  best-fit model (1-D, 8,575 pixels), HDU 4 a one-row table (PARAM, FPARAM, PARAMFLAG,
  ASPCAPFLAG, X_H ...). Also in the rest frame. Bad pixels are not flagged but written
  as sentinels: flux 0 with error 10 (DR13/14), error 1e10 (DR16/17), all zeros in the
  chip gaps; they are masked here.
* apVisit/asVisit: HDUs 1-4 flux, error, mask, wavelength as (3, N) images, one row per
  detector stored red to blue with wavelengths *descending* along each row (N = 4096,
  or 2048 in the DR10 files of the spectrum service), HDU 11 a one-row table with VREL.
  The wavelengths are in the observer's frame: ``lambda_rest = lambda_obs / (1 + VREL/c)``,
  VREL being the Doppler shift measured against the observer (primary VRAD);
  VHELIO = VREL + BC (the barycentric correction).

All APOGEE wavelengths are vacuum Angstrom.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.io.fitsutil import (
    ReadError,
    as_hdulist,
    column,
    header_value,
    identify_hdulist,
    source_name,
)
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import medium_meta
from starlearn.spectra import SpectrumSet

__all__ = ["ASPCAP_ELEMENTS", "ASPCAP_PARAMS", "BAD_PIXEL_BITS", "PARAM_FIXED_BIT",
           "read_apogee_apstar", "read_apogee_apvisit", "read_apogee_aspcapstar"]

ASPCAP_PARAMS = ("teff", "logg", "param_vmicro", "m_h", "c_m", "n_m", "alpha_m",
                 "param_vbroad", "o_m")
"""Order of the ASPCAP PARAM/FPARAM entries (7 in DR10-DR12, 9 from DR13): Teff [K],
log g [dex], microturbulence, [M/H], [C/M], [N/M], [alpha/M], broadening (vsini or vmacro),
[O/M] [dex]. The two velocity entries are FERRE's log10(km/s) values in FPARAM (LOG10VDOP,
LGVSINI); they go to the metadata as stored (``param_vmicro``, ``param_vbroad``), not to
the labels."""

ASPCAP_ELEMENTS = ("c", "ci", "n", "o", "na", "mg", "al", "si", "p", "s", "k", "ca", "ti",
                   "tiii", "v", "cr", "mn", "fe", "co", "ni", "cu")
"""Leading entries of the per-element arrays X_H / X_M (ELEM_SYMBOL of DR13-DR16 allStar
files; the entries after Cu differ between releases and are not read)."""

BAD_PIXEL_BITS = sum(1 << b for b in (0, 1, 2, 3, 4, 5, 6, 7, 12))
"""APOGEE_PIXMASK bits treated as bad by default: BADPIX, CRPIX, SATPIX, UNFIXABLE,
BADDARK, BADFLAT, BADERR, NOSKY (bits 0-7) and SIG_SKYLINE (12): the apogee package's
``badcombpixmask`` (4351). Bits 9-11 (PERSIST_HIGH/MED/LOW) and 13 (SIG_TELLURIC) warn."""

PARAM_FIXED_BIT = 16
"""APOGEE_PARAMFLAG bit 16, PARAM_FIXED: the parameter was held fixed in the fit, so its
value is not a measurement (read as NaN)."""

_SENTINEL = -9998.0  # ASPCAP's -9999 means "no value"
_BAD_ERROR_NORMALISED = 10.0  # aspcapStar: error >= 10 (DR13/14: 10, DR16/17: 1e10) = bad
_BAD_ERROR_FLUX = 1e9  # apStar: the pipeline's "bad error" sentinels (1e10 and more)


def _clean(values: Any) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    out[~np.isfinite(out) | (out <= _SENTINEL)] = np.nan
    return out


def _log_linear_wave(header: Any, n_pix: int, name: str, where: str) -> np.ndarray:
    crval = float(header_value(header, "CRVAL1", name, where))
    cdelt = float(header.get("CDELT1", header.get("CD1_1", np.nan)))
    if not np.isfinite(cdelt):
        raise ReadError(name, f"{where} has no header keyword CDELT1")
    crpix = float(header.get("CRPIX1", 1.0))
    return 10.0 ** (crval + cdelt * (np.arange(n_pix) + 1 - crpix))


def _ivar_from_error(error: np.ndarray, bad_error: float) -> np.ndarray:
    error = np.asarray(error, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ivar = 1.0 / error**2
    ivar[~np.isfinite(ivar) | ~(error < bad_error)] = 0.0
    return ivar


def _is_apogee_grid(header: Any) -> bool:
    try:
        return (abs(float(header.get("CRVAL1", 0)) - 4.179) < 1e-6
                and abs(float(header.get("CDELT1", header.get("CD1_1", 0))) - 6e-6) < 1e-10)
    except (TypeError, ValueError):
        return False


def _is_mask_hdu(header: Any) -> bool:
    unit = str(header.get("BUNIT", "")).lower()
    return "bitmask" in unit or "mask" in unit


def _wave_meta(n: int) -> dict[str, list[Any]]:
    return {k: [v] * n for k, v in medium_meta("vacuum", "APOGEE data model", "Angstrom",
                                               "APOGEE data model").items()}


def _aspcap_table(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    return next((h for h in hdul[2:] if isinstance(h, fits.BinTableHDU)
                 and {"FPARAM", "ASPCAPFLAG"} & {c.upper() for c in h.columns.names}), None)


# ---------------------------------------------------------------- aspcapStar
def apogee_aspcapstar_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                               **kwargs: Any) -> bool:
    """aspcapStar: 1-D 8,575-pixel images in HDUs 1-3 and an ASPCAP table (FPARAM or
    ASPCAPFLAG)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 5:
            return False
        h1 = hdul[1].header
        if h1.get("NAXIS") != 1 or h1.get("NAXIS1") != 8575 or not _is_apogee_grid(h1):
            return False
        return _aspcap_table(hdul) is not None


@register_reader("apogee-aspcapstar", identifier=apogee_aspcapstar_identify, priority=10)
def read_apogee_aspcapstar(source: Any, *, spectrum: str = "observed",
                           params: str = "PARAM") -> SpectrumSet:
    """Read an APOGEE aspcapStar file (DR10-DR17): pseudo-normalised spectrum and ASPCAP labels.

    Parameters
    ----------
    source : path, file object or HDUList
    spectrum : {"observed", "model"}
        The observed spectrum (HDU 1, errors in HDU 2) or ASPCAP's best-fit model (HDU 3,
        with the observed errors).
    params : {"PARAM", "FPARAM"}
        Calibrated (PARAM) or raw spectroscopic (FPARAM) ASPCAP parameters as labels.

    Returns
    -------
    SpectrumSet with one spectrum on the 8,575-pixel grid (vacuum Angstrom, rest frame):
    pixels with ASPCAP's bad-pixel sentinels (flux 0, error >= 10, or no error) masked;
    labels ``teff, logg, m_h, c_m, n_m, alpha_m, o_m`` from ``params`` and, where
    X_H is given, ``fe_h`` and ``<x>_fe`` for C, N, O, Na, Mg, Al, Si, K, Ca, Ti, Mn, Ni
    (ASPCAP's -9999, and a parameter flagged PARAM_FIXED in PARAMFLAG, become NaN); meta
    columns apogee_id, snr, aspcapflag, vhelio (km/s, kept as measured), rv (0: the
    spectrum is at rest), param_vmicro, param_vbroad.
    """
    if spectrum not in ("observed", "model"):
        raise ValueError(f"spectrum must be 'observed' or 'model', got {spectrum!r}")
    if params not in ("PARAM", "FPARAM"):
        raise ValueError(f"params must be 'PARAM' or 'FPARAM', got {params!r}")
    name = source_name(source)
    with as_hdulist(source) as hdul:
        if len(hdul) < 5:
            raise ReadError(name, f"has {len(hdul)} HDUs, an aspcapStar file has at least 5")
        observed = np.asarray(hdul[1].data, dtype=np.float64)
        error = np.asarray(hdul[2].data, dtype=np.float64)
        flux = np.asarray(hdul[3].data, dtype=np.float64) if spectrum == "model" else observed
        ivar = _ivar_from_error(error, _BAD_ERROR_NORMALISED)
        ivar[observed == 0] = 0.0  # ASPCAP writes 0 where it has no good data
        wave = _log_linear_wave(hdul[1].header, flux.size, name, "HDU 1")
        table_hdu = _aspcap_table(hdul)
        if table_hdu is None:
            raise ReadError(name, "has no ASPCAP table (FPARAM/ASPCAPFLAG)")
        table = table_hdu.data
        where = "the ASPCAP table"
        values = _clean(column(table, params, name, where)[0])
        cols = {c.upper() for c in table.columns.names}
        if "PARAMFLAG" in cols:
            flags = np.asarray(column(table, "PARAMFLAG", name, where)[0]).astype(np.int64)
            fixed = (flags[:values.size] & (1 << PARAM_FIXED_BIT)) != 0
            values[:fixed.size][fixed] = np.nan
        names, labels = [], []
        meta: dict[str, list[Any]] = {"survey": ["apogee"]}
        for key, value in zip(ASPCAP_PARAMS, values, strict=False):
            if key.startswith("param_"):
                meta[key] = [value]
            else:
                names.append(key)
                labels.append(value)
        if "X_H" in cols:
            x_h = _clean(column(table, "X_H", name, where)[0])
            if x_h.size >= len(ASPCAP_ELEMENTS):
                fe = x_h[ASPCAP_ELEMENTS.index("fe")]
                names.append("fe_h")
                labels.append(fe)
                for element in ("c", "n", "o", "na", "mg", "al", "si", "k", "ca", "ti", "mn",
                                "ni"):
                    names.append(f"{element}_fe")
                    labels.append(x_h[ASPCAP_ELEMENTS.index(element)] - fe)
        head = hdul[0].header
        for key in ("SNR", "ASPCAPFLAG", "VHELIO"):
            if key in cols:
                meta[key.lower()] = [column(table, key, name, where)[0]]
            elif key in head:
                meta[key.lower()] = [head[key]]
        ident = (str(column(table, "APOGEE_ID", name, where)[0]).strip() if "APOGEE_ID" in cols
                 else str(head.get("OBJ", head.get("OBJID", name))).strip())
        meta["apogee_id"] = [ident]
        meta["rv"] = [0.0]  # aspcapStar spectra are at rest (VHELIO is kept as measured)
        meta.update(_wave_meta(1))
    return SpectrumSet(wave=wave, flux=flux, ivar=ivar, labels=[labels], label_names=names,
                       ids=[ident], meta=meta)


# ---------------------------------------------------------------- apStar
def apogee_apstar_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                           **kwargs: Any) -> bool:
    """apStar/asStar: APOGEE grid in the primary (or HDU 1) header, flux/error/mask images
    of 8,575 pixels in HDUs 1-3 (the mask's BUNIT says mask, or it is an integer image
    without BUNIT), at least 8 HDUs, and no ASPCAP table."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 8:
            return False
        head, h1 = hdul[0].header, hdul[1].header
        if not (_is_apogee_grid(head) or _is_apogee_grid(h1)) or h1.get("NAXIS1") != 8575:
            return False
        mask = hdul[3].header
        if mask.get("NAXIS", 0) == 0 or not (_is_mask_hdu(mask) or (
                "BUNIT" not in mask and int(mask.get("BITPIX", -32)) > 0)):
            return False
        return _aspcap_table(hdul) is None


@register_reader("apogee-apstar", identifier=apogee_apstar_identify, priority=10)
def read_apogee_apstar(source: Any, *, rows: str = "combined",
                       mask_bits: int = BAD_PIXEL_BITS) -> SpectrumSet:
    """Read an APOGEE apStar or asStar file (DR10-DR17): combined spectrum and/or the visits.

    Parameters
    ----------
    source : path, file object or HDUList
    rows : {"combined", "visits", "all"}
        Row 0 (the combined spectrum, pixel-weighted), the per-visit rows (rows 2...
        when there is more than one visit; the combined row for a one-visit star), or
        every row.
    mask_bits : int
        APOGEE_PIXMASK bits (HDU 3) that mark bad pixels; default :data:`BAD_PIXEL_BITS`.

    Returns
    -------
    SpectrumSet on the 8,575-pixel grid (vacuum Angstrom, rest frame), flux in
    1e-17 erg/s/cm^2/Angstrom; meta columns apogee_id, row, snr, vhelio (km/s, from the
    visit table for visits), rv (0: the spectra are at rest), nvisits, telescope.
    """
    if rows not in ("combined", "visits", "all"):
        raise ValueError(f"rows must be 'combined', 'visits' or 'all', got {rows!r}")
    name = source_name(source)
    with as_hdulist(source) as hdul:
        flux = np.atleast_2d(np.asarray(hdul[1].data, dtype=np.float64))
        ivar = _ivar_from_error(np.atleast_2d(hdul[2].data), _BAD_ERROR_FLUX)
        bits = np.atleast_2d(np.asarray(hdul[3].data)).astype(np.int64)
        if not flux.shape == ivar.shape == bits.shape:
            raise ReadError(name, f"HDUs 1-3 have different shapes {flux.shape}, "
                                  f"{ivar.shape}, {bits.shape}")
        head = hdul[0].header
        wave_header = head if "CRVAL1" in head else hdul[1].header
        wave = _log_linear_wave(wave_header, flux.shape[1], name, "primary HDU")
        n_visits = int(head.get("NVISITS", max(1, flux.shape[0] - 2)))
        visit_rows = list(range(2, flux.shape[0])) if flux.shape[0] > 2 else [0]
        index = {"combined": [0], "visits": visit_rows,
                 "all": list(range(flux.shape[0]))}[rows]
        ident = str(head.get("OBJID", head.get("OBJ", name))).strip()
        visit_snr, visit_vhelio = _visit_table(hdul)
        snr, vhelio = [], []
        for r in index:
            if r >= 2 and visit_snr is not None and r - 2 < visit_snr.size:
                snr.append(float(visit_snr[r - 2]))
                vhelio.append(float(visit_vhelio[r - 2]))
            else:
                snr.append(float(head.get("SNR", np.nan)))
                vhelio.append(float(head.get("VHELIO", np.nan)))
        telescope = str(head.get("TELESCOP", "")).strip()
        meta = {"survey": ["apogee"] * len(index), "apogee_id": [ident] * len(index),
                "row": index, "snr": snr, "vhelio": vhelio, "rv": [0.0] * len(index),
                "nvisits": [n_visits] * len(index), "telescope": [telescope] * len(index),
                **_wave_meta(len(index))}
        mask = (bits[index] & int(mask_bits)) != 0
        flux, ivar = flux[index], ivar[index]
    ids = [ident if r == 0 else f"{ident}/{r}" for r in index]
    return SpectrumSet(wave=wave, flux=flux, ivar=ivar, mask=mask, ids=ids, meta=meta)


def _visit_table(hdul: fits.HDUList) -> tuple[np.ndarray | None, np.ndarray | None]:
    for hdu in hdul[4:]:
        if isinstance(hdu, fits.BinTableHDU):
            cols = {c.upper(): c for c in hdu.columns.names}
            if "VHELIO" in cols and "SNR" in cols:
                return (_clean(hdu.data[cols["SNR"]]).ravel(),
                        _clean(hdu.data[cols["VHELIO"]]).ravel())
    return None, None


# ---------------------------------------------------------------- apVisit
def apogee_apvisit_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                            **kwargs: Any) -> bool:
    """apVisit/asVisit: three-detector (3, N) flux, error, mask and wavelength images in
    HDUs 1-4 (HDU 4 in Angstrom)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 5:
            return False
        shapes = [hdul[i].header.get("NAXIS2") for i in (1, 2, 3, 4)]
        return (shapes == [3, 3, 3, 3]
                and str(hdul[4].header.get("BUNIT", "")).lower().startswith("wavelength")
                and str(hdul[1].header.get("BUNIT", "")).lower().startswith("flux"))


@register_reader("apogee-apvisit", identifier=apogee_apvisit_identify, priority=10)
def read_apogee_apvisit(source: Any, *, mask_bits: int = BAD_PIXEL_BITS) -> SpectrumSet:
    """Read an APOGEE apVisit/asVisit file: the three detectors joined in increasing
    wavelength.

    Returns
    -------
    SpectrumSet with one spectrum on its own per-pixel wavelength array (vacuum Angstrom,
    3 x 4096 pixels, 3 x 2048 for the DR10 spectrum service), flux in
    1e-17 erg/s/cm^2/Angstrom, **in the observer's frame**; meta columns apogee_id, snr,
    mjd, rv (km/s: VREL, the Doppler shift against the observer, which takes the
    spectrum to rest), vhelio (VREL + BC) and bc (barycentric correction).
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        flux = np.asarray(hdul[1].data, dtype=np.float64)
        ivar = _ivar_from_error(hdul[2].data, _BAD_ERROR_FLUX)
        bits = np.asarray(hdul[3].data).astype(np.int64)
        wave = np.asarray(hdul[4].data, dtype=np.float64)
        if not (flux.shape == ivar.shape == bits.shape == wave.shape):
            raise ReadError(name, f"HDUs 1-4 have different shapes {flux.shape}, "
                                  f"{ivar.shape}, {bits.shape}, {wave.shape}")
        head = hdul[0].header
        ident = str(head.get("OBJID", name)).strip()
        table = _visit_row(hdul)
        vrel = _first(table, ("VREL", "VRAD"), head.get("VRAD"))
        vhelio = _first(table, ("VHELIO",), head.get("VHELIO"))
        bc = _first(table, ("BC",), head.get("BC"))
        if not np.isfinite(vrel) and np.isfinite(vhelio) and np.isfinite(bc):
            vrel = vhelio - bc
        meta = {"survey": ["apogee"], "apogee_id": [ident],
                "snr": [float(head.get("SNR", np.nan))], "rv": [vrel], "vhelio": [vhelio],
                "bc": [bc], "mjd": [int(head.get("MJD5", -1))],
                "telescope": [str(head.get("TELESCOP", "")).strip()], **_wave_meta(1)}
    order = np.argsort(wave.ravel(), kind="stable")
    wave, flux, ivar = wave.ravel()[order], flux.ravel()[order], ivar.ravel()[order]
    mask = (bits.ravel()[order] & int(mask_bits)) != 0
    keep = np.concatenate([[True], np.diff(wave) > 0])  # drop duplicated wavelengths
    return SpectrumSet(wave=wave[keep], flux=flux[keep], ivar=ivar[keep], mask=mask[keep],
                       ids=[ident], meta=meta)


def _visit_row(hdul: fits.HDUList) -> dict[str, Any]:
    """The one-row visit table (HDU 11) as a dict of upper-case column names, or {}."""
    for hdu in hdul[5:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.data is not None and len(hdu.data) == 1:
            return {c.upper(): hdu.data[c][0] for c in hdu.columns.names}
    return {}


def _first(table: dict[str, Any], keys: tuple[str, ...], default: Any) -> float:
    for key in keys:
        if key in table:
            value = _clean(np.atleast_1d(table[key]))[0]
            if np.isfinite(value):
                return float(value)
    return float(_clean(np.atleast_1d(default if default is not None else np.nan))[0])
