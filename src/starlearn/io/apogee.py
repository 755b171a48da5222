"""APOGEE spectra: aspcapStar, apStar (combined and visits) and apVisit files, DR13-DR17.

Data models (SDSS): https://data.sdss.org/datamodel/files/APOGEE_ASPCAP/ (aspcapStar),
https://data.sdss.org/datamodel/files/APOGEE_REDUX/APRED_VERS/stars/ (apStar),
https://data.sdss.org/datamodel/files/APOGEE_REDUX/APRED_VERS/visit/ (apVisit).
All APOGEE wavelengths are vacuum Angstrom. apStar and aspcapStar share the log-linear
grid ``log10(lambda) = CRVAL1 + CDELT1 * i`` (4.179, 6e-6, 8,575 pixels); apVisit files give
a per-pixel wavelength array for each of the three detectors (stored red to blue).
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
from starlearn.spectra import SpectrumSet

__all__ = ["ASPCAP_ELEMENTS", "ASPCAP_PARAMS", "BAD_PIXEL_BITS", "read_apogee_apstar",
           "read_apogee_apvisit", "read_apogee_aspcapstar"]

ASPCAP_PARAMS = ("teff", "logg", "param_vmicro", "m_h", "c_m", "n_m", "alpha_m",
                 "param_vbroad", "o_m")
"""Order of the 9 ASPCAP PARAM/FPARAM entries (DR13-DR17): Teff [K], log g [dex],
microturbulence, [M/H], [C/M], [N/M], [alpha/M], broadening (vsini or vmacro), [O/M] [dex].
The two velocity entries are log10(km/s) in DR13-DR14 and km/s later, so they go to the
metadata as stored (``param_vmicro``, ``param_vbroad``) rather than into the labels."""

ASPCAP_ELEMENTS = ("c", "ci", "n", "o", "na", "mg", "al", "si", "p", "s", "k", "ca", "ti",
                   "tiii", "v", "cr", "mn", "fe", "co", "ni", "cu")
"""Leading entries of the per-element arrays X_H / X_M (ELEM_SYMBOL of DR13-DR16 allStar
files; the entries after Cu differ between releases and are not read)."""

BAD_PIXEL_BITS = sum(1 << b for b in (0, 1, 2, 3, 4, 5, 6, 7, 12))
"""APOGEE PIXMASK bits treated as bad by default: BADPIX, CRPIX, SATPIX, UNFIXABLE,
BADDARK, BADFLAT, BADERR, NOSKY, SIG_SKYLINE (the apogee package's default bad mask)."""

_SENTINEL = -9998.0  # ASPCAP's -9999 means "no value"


def _clean(values: Any) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    out[~np.isfinite(out) | (out <= _SENTINEL)] = np.nan
    return out


def _log_linear_wave(header: fits.Header, n_pix: int, name: str, where: str) -> np.ndarray:
    crval = float(header_value(header, "CRVAL1", name, where))
    cdelt = float(header.get("CDELT1", header.get("CD1_1", np.nan)))
    if not np.isfinite(cdelt):
        raise ReadError(name, f"{where} has no header keyword CDELT1")
    crpix = float(header.get("CRPIX1", 1.0))
    return 10.0 ** (crval + cdelt * (np.arange(n_pix) + 1 - crpix))


def _ivar_from_error(error: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ivar = 1.0 / np.asarray(error, dtype=np.float64) ** 2
    ivar[~np.isfinite(ivar)] = 0.0
    return ivar


def _is_apogee_grid(header: fits.Header) -> bool:
    return (abs(float(header.get("CRVAL1", 0)) - 4.179) < 1e-6
            and abs(float(header.get("CDELT1", 0)) - 6e-6) < 1e-10)


# ---------------------------------------------------------------- aspcapStar
def apogee_aspcapstar_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                               **kwargs: Any) -> bool:
    """aspcapStar: 1-D 8,575-pixel image in HDU 1 and an ASPCAP table with PARAM/FPARAM."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 5:
            return False
        h1 = hdul[1].header
        if h1.get("NAXIS") != 1 or not _is_apogee_grid(h1):
            return False
        table = next((h for h in hdul[2:] if isinstance(h, fits.BinTableHDU)), None)
        return table is not None and "FPARAM" in {c.upper() for c in table.columns.names}


@register_reader("apogee-aspcapstar", identifier=apogee_aspcapstar_identify, priority=10)
def read_apogee_aspcapstar(source: Any, *, spectrum: str = "observed",
                           params: str = "PARAM") -> SpectrumSet:
    """Read an APOGEE aspcapStar file (DR13-DR17): pseudo-normalised spectrum and ASPCAP labels.

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
    SpectrumSet with one spectrum on the 8,575-pixel grid (vacuum Angstrom), labels
    ``teff, logg, m_h, c_m, n_m, alpha_m, o_m`` from ``params`` and, where
    X_H is given, ``fe_h`` and ``<x>_fe`` for C, N, O, Na, Mg, Al, Si, K, Ca, Ti, Mn, Ni
    (ASPCAP's -9999 becomes NaN); meta columns apogee_id, snr, aspcapflag, vhelio, rv,
    param_vmicro, param_vbroad.
    """
    if spectrum not in ("observed", "model"):
        raise ValueError(f"spectrum must be 'observed' or 'model', got {spectrum!r}")
    if params not in ("PARAM", "FPARAM"):
        raise ValueError(f"params must be 'PARAM' or 'FPARAM', got {params!r}")
    name = source_name(source)
    with as_hdulist(source) as hdul:
        if len(hdul) < 5:
            raise ReadError(name, f"has {len(hdul)} HDUs, an aspcapStar file has at least 5")
        flux = np.asarray(hdul[3 if spectrum == "model" else 1].data, dtype=np.float64)
        ivar = _ivar_from_error(hdul[2].data)
        wave = _log_linear_wave(hdul[1].header, flux.size, name, "HDU 1")
        table = hdul[4].data
        where = "HDU 4 (ASPCAP table)"
        values = _clean(column(table, params, name, where)[0])
        names, labels = [], []
        meta: dict[str, list[Any]] = {"survey": ["apogee"]}
        for key, value in zip(ASPCAP_PARAMS, values, strict=False):
            if key.startswith("param_"):
                meta[key] = [value]
            else:
                names.append(key)
                labels.append(value)
        cols = {c.upper() for c in table.columns.names}
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
        for key in ("SNR", "ASPCAPFLAG", "VHELIO"):
            if key in cols:
                meta[key.lower()] = [column(table, key, name, where)[0]]
        ident = (str(column(table, "APOGEE_ID", name, where)[0]).strip() if "APOGEE_ID" in cols
                 else str(hdul[0].header.get("OBJ", hdul[0].header.get("OBJID", name))))
        meta["apogee_id"] = [ident]
        if "vhelio" in meta:
            meta["rv"] = [float(meta["vhelio"][0])]
    return _one(name, wave, flux, ivar, None, labels, names, ident, meta)


def _one(name: str, wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
         mask: np.ndarray | None, labels: list[float] | None, names: list[str],
         ident: str, meta: dict[str, list[Any]]) -> SpectrumSet:
    return SpectrumSet(wave=wave, flux=flux, ivar=ivar, mask=mask,
                       labels=None if labels is None else [labels],
                       label_names=names if labels is not None else [],
                       ids=[ident], meta=meta)


# ---------------------------------------------------------------- apStar
def apogee_apstar_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                           **kwargs: Any) -> bool:
    """apStar: APOGEE grid in the primary header, flux/error/bitmask images in HDUs 1-3."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 4:
            return False
        head, h1 = hdul[0].header, hdul[1].header
        if not (_is_apogee_grid(head) or _is_apogee_grid(h1)):
            return False
        if hdul[3].header.get("NAXIS", 0) == 0 or not str(
                hdul[3].header.get("BUNIT", "")).lower().startswith("pixel bitmask"):
            return False
        return not any(isinstance(h, fits.BinTableHDU) and "FPARAM" in h.columns.names
                       for h in hdul[2:])


@register_reader("apogee-apstar", identifier=apogee_apstar_identify, priority=10)
def read_apogee_apstar(source: Any, *, rows: str = "combined",
                       mask_bits: int = BAD_PIXEL_BITS) -> SpectrumSet:
    """Read an APOGEE apStar file (DR13-DR17): combined spectrum and/or the visits.

    Parameters
    ----------
    source : path, file object or HDUList
    rows : {"combined", "visits", "all"}
        Row 0 (the combined spectrum, global weighting), the per-visit rows (rows 2..
        when there is more than one visit), or every row.
    mask_bits : int
        PIXMASK bits (HDU 3) that mark bad pixels; default :data:`BAD_PIXEL_BITS`.

    Returns
    -------
    SpectrumSet on the 8,575-pixel grid (vacuum Angstrom), flux in 1e-17 erg/s/cm^2/A;
    meta columns apogee_id, row, snr and vhelio (km/s, from the visit table for visits).
    """
    if rows not in ("combined", "visits", "all"):
        raise ValueError(f"rows must be 'combined', 'visits' or 'all', got {rows!r}")
    name = source_name(source)
    with as_hdulist(source) as hdul:
        flux = np.atleast_2d(np.asarray(hdul[1].data, dtype=np.float64))
        ivar = _ivar_from_error(np.atleast_2d(hdul[2].data))
        bits = np.atleast_2d(np.asarray(hdul[3].data)).astype(np.int64)
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
        meta = {"survey": ["apogee"] * len(index), "apogee_id": [ident] * len(index),
                "row": index, "snr": snr, "vhelio": vhelio, "rv": vhelio,
                "nvisits": [n_visits] * len(index)}
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
    """apVisit: three-chip (3, N) flux, error, mask and wavelength images in HDUs 1-4."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 5:
            return False
        shapes = [hdul[i].header.get("NAXIS2") for i in (1, 2, 3, 4)]
        return (shapes == [3, 3, 3, 3]
                and "wavelength" in str(hdul[4].header.get("BUNIT", "")).lower())


@register_reader("apogee-apvisit", identifier=apogee_apvisit_identify, priority=10)
def read_apogee_apvisit(source: Any, *, mask_bits: int = BAD_PIXEL_BITS) -> SpectrumSet:
    """Read an APOGEE apVisit file: the three detectors joined in increasing wavelength.

    Returns
    -------
    SpectrumSet with one spectrum on its own per-pixel wavelength array (vacuum Angstrom,
    3 x 4096 pixels), flux in 1e-17 erg/s/cm^2/A, in the observed frame; meta columns
    apogee_id, snr, vhelio and rv (km/s; VHELIO from the primary header).
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        flux = np.asarray(hdul[1].data, dtype=np.float64)
        ivar = _ivar_from_error(hdul[2].data)
        bits = np.asarray(hdul[3].data).astype(np.int64)
        wave = np.asarray(hdul[4].data, dtype=np.float64)
        if not (flux.shape == ivar.shape == bits.shape == wave.shape):
            raise ReadError(name, f"HDUs 1-4 have different shapes {flux.shape}, "
                                  f"{ivar.shape}, {bits.shape}, {wave.shape}")
        head = hdul[0].header
        ident = str(head.get("OBJID", name)).strip()
        vhelio = float(head["VHELIO"]) if "VHELIO" in head else np.nan
        if not np.isfinite(vhelio) and len(hdul) > 11 and isinstance(hdul[11],
                                                                      fits.BinTableHDU):
            cols = {c.upper(): c for c in hdul[11].columns.names}
            if "VHELIO" in cols:
                vhelio = float(_clean(hdul[11].data[cols["VHELIO"]])[0])
        meta = {"survey": ["apogee"], "apogee_id": [ident],
                "snr": [float(head.get("SNR", np.nan))], "vhelio": [vhelio], "rv": [vhelio],
                "mjd": [int(head.get("MJD5", -1))]}
    order = np.argsort(wave.ravel(), kind="stable")
    wave, flux, ivar = wave.ravel()[order], flux.ravel()[order], ivar.ravel()[order]
    mask = (bits.ravel()[order] & int(mask_bits)) != 0
    keep = np.concatenate([[True], np.diff(wave) > 0])  # drop duplicated wavelengths
    return _one(name, wave[keep][None, :], flux[keep], ivar[keep], mask[keep], None, [],
                ident, meta)
