"""Generic 1-D spectra: FITS images with a 1-D WCS, FITS binary tables, and text columns.

These are the formats of small-observatory archives: raw Ondřejov 2-m CCD700 spectra are
1-D images with ``CRVAL1``/``CDELT1``/``CRPIX1`` (linear, air Angstrom, counts), and the
archive's processed spectra are binary tables with a wavelength and a flux column.

Air or vacuum: ground-based archives usually give **air** wavelengths, so the generic
readers assume air unless the header says otherwise (``VACUUM = T``, ``AIRORVAC = 'vac'``,
or a ``CTYPE1`` of ``WAVE``/``VWAV``) or ``medium="vacuum"`` is passed; they always return
vacuum wavelengths.

When a file has no error spectrum, the error is estimated from the data (robust scatter of
pixel-to-pixel differences, scaled with sqrt(flux) as for photon noise) and the metadata
column ``ivar_estimated`` is True.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.grid import air_to_vacuum
from starlearn.io.fitsutil import ReadError, as_hdulist, identify_hdulist, source_name
from starlearn.io.registry import register_reader
from starlearn.spectra import SpectrumSet

__all__ = ["estimate_ivar", "read_ascii", "read_table1d", "read_wcs1d"]

_WAVE_COLUMNS = ("wavelength", "wave", "lambda", "spectral", "wl", "loglam")
_FLUX_COLUMNS = ("flux", "intensity", "fnu", "flam")
_ERROR_COLUMNS = ("error", "err", "sigma", "flux_err", "uncertainty", "e_flux")
_IVAR_COLUMNS = ("ivar", "inverse_variance")


def estimate_ivar(flux: np.ndarray) -> np.ndarray:
    """Inverse variance estimated from the data when a file gives no errors.

    sigma_0 = 1.4826 * MAD(diff(flux)) / sqrt(2) is the pixel noise at the median flux;
    sigma scales as sqrt(flux / median(flux)) (photon noise). Returns (n_pixels,).
    """
    flux = np.asarray(flux, dtype=np.float64)
    good = np.isfinite(flux)
    if good.sum() < 3:
        return np.zeros_like(flux)
    diff = np.diff(flux[good])
    sigma0 = 1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2)
    level = np.median(np.abs(flux[good]))
    if not (sigma0 > 0 and level > 0):
        return np.where(good, 1.0, 0.0)
    scale = np.sqrt(np.clip(np.abs(np.where(good, flux, level)) / level, 0.05, None))
    return np.where(good, 1.0 / (sigma0 * scale) ** 2, 0.0)


def _header_medium(header: fits.Header) -> str | None:
    if "VACUUM" in header:
        return "vacuum" if bool(header["VACUUM"]) else "air"
    value = str(header.get("AIRORVAC", "")).strip().lower()
    if value.startswith("vac"):
        return "vacuum"
    if value.startswith("air"):
        return "air"
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    if ctype.startswith(("WAVE", "VWAV")):
        return "vacuum"
    if ctype.startswith("AWAV"):
        return "air"
    return None


def _vacuum(wave: np.ndarray, medium: str, header_medium: str | None) -> tuple[np.ndarray, str]:
    if medium not in ("auto", "air", "vacuum"):
        raise ValueError(f"medium must be 'auto', 'air' or 'vacuum', got {medium!r}")
    chosen = (header_medium or "air") if medium == "auto" else medium
    return (air_to_vacuum(wave) if chosen == "air" else wave), chosen


def _finish(name: str, wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray | None,
            header: fits.Header | None, medium: str, header_medium: str | None,
            ident: str | None = None) -> SpectrumSet:
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if wave.shape != flux.shape or wave.ndim != 1:
        raise ReadError(name, f"wavelength and flux differ in shape: {wave.shape} vs "
                              f"{flux.shape}")
    if np.any(np.diff(wave) < 0):
        order = np.argsort(wave, kind="stable")
        wave, flux = wave[order], flux[order]
        ivar = None if ivar is None else np.asarray(ivar)[order]
    if np.any(np.diff(wave) <= 0):
        raise ReadError(name, "wavelengths are not strictly increasing (repeated values)")
    estimated = ivar is None
    ivar = estimate_ivar(flux) if ivar is None else np.asarray(ivar, dtype=np.float64)
    vac, chosen = _vacuum(wave, medium, header_medium)
    header = header or fits.Header()
    ident = ident or str(header.get("OBJECT", header.get("OBJNAME", "")) or
                         os.path.basename(name)).strip()
    meta = {"survey": [str(header.get("TELESCOP", "")).strip()],
            "object": [str(header.get("OBJECT", "")).strip()],
            "medium_in_file": [chosen], "ivar_estimated": [estimated]}
    return SpectrumSet(wave=vac, flux=flux, ivar=ivar, ids=[ident], meta=meta)


# ---------------------------------------------------------------- wcs1d
def wcs1d_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                   **kwargs: Any) -> bool:
    """A FITS file whose primary HDU is a 1-D image with a spectral WCS (CRVAL1, CDELT1)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None:
            return False
        head = hdul[0].header
        return (head.get("NAXIS") == 1 and "CRVAL1" in head
                and ("CDELT1" in head or "CD1_1" in head))


@register_reader("wcs1d", identifier=wcs1d_identify, priority=5, medium="air")
def read_wcs1d(source: Any, *, hdu: int = 0, medium: str = "auto") -> SpectrumSet:
    """Read a 1-D FITS image with a linear or log-linear wavelength WCS.

    Parameters
    ----------
    source : path, file object or HDUList
    hdu : int
        The HDU holding the spectrum.
    medium : {"auto", "air", "vacuum"}
        Medium of the file's wavelengths; "auto" reads the header (VACUUM, AIRORVAC,
        CTYPE1) and assumes air when it says nothing. The result is always vacuum.

    Notes
    -----
    lambda_i = CRVAL1 + CDELT1 * (i + 1 - CRPIX1) Angstrom, or 10 ** that when the axis is
    log-linear (``DC-FLAG = 1`` or ``CTYPE1`` containing LOG). The error is estimated from
    the data (see :func:`estimate_ivar`).
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        try:
            image = hdul[hdu]
        except IndexError:
            raise ReadError(name, f"has no HDU {hdu}") from None
        head = image.header
        if image.data is None or image.data.ndim != 1:
            raise ReadError(name, f"HDU {hdu} is not a 1-D image (NAXIS={head.get('NAXIS')})")
        flux = np.asarray(image.data, dtype=np.float64)
        if "CRVAL1" not in head:
            raise ReadError(name, f"HDU {hdu} has no header keyword CRVAL1")
        step = head.get("CDELT1", head.get("CD1_1"))
        if step is None:
            raise ReadError(name, f"HDU {hdu} has no header keyword CDELT1 or CD1_1")
        x = float(head["CRVAL1"]) + float(step) * (np.arange(flux.size) + 1
                                                  - float(head.get("CRPIX1", 1.0)))
        log = int(head.get("DC-FLAG", 0)) == 1 or "LOG" in str(head.get("CTYPE1", "")).upper()
        wave = 10.0**x if log else x
        unit = str(head.get("CUNIT1", "angstrom")).strip().lower()
        if unit in ("nm", "nanometer"):
            wave = wave * 10.0
        return _finish(name, wave, flux, None, head, medium, _header_medium(head))


# ---------------------------------------------------------------- table1d
def _find(names: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[c] for c in candidates if c in lower), None)


def table1d_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                     **kwargs: Any) -> bool:
    """A FITS binary table with a wavelength column and a flux column (one value per row)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            return False
        cols = hdul[1].columns
        wave, flux = _find(cols.names, _WAVE_COLUMNS), _find(cols.names, _FLUX_COLUMNS)
        if wave is None or flux is None:
            return False
        return cols[flux].format.repeat == 1 and hdul[1].header.get("NAXIS2", 0) > 1


@register_reader("table1d", identifier=table1d_identify, priority=6, medium="air")
def read_table1d(source: Any, *, hdu: int = 1, medium: str = "auto",
                 wave_column: str | None = None, flux_column: str | None = None,
                 error_column: str | None = None) -> SpectrumSet:
    """Read a spectrum stored as a FITS binary table, one row per pixel.

    Column names are found case-insensitively (wavelength: wavelength, wave, lambda,
    spectral, wl, loglam (log10 Angstrom); flux: flux, intensity; errors: error, err,
    sigma, flux_err, or ivar) unless given. Wavelengths in nm (``TUNIT`` = nm) are
    converted to Angstrom; ``medium`` as for :func:`read_wcs1d`.
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        try:
            table = hdul[hdu]
        except IndexError:
            raise ReadError(name, f"has no HDU {hdu}") from None
        if not isinstance(table, fits.BinTableHDU):
            raise ReadError(name, f"HDU {hdu} is not a binary table")
        names = table.columns.names
        wcol = wave_column or _find(names, _WAVE_COLUMNS)
        fcol = flux_column or _find(names, _FLUX_COLUMNS)
        for what, col in (("wavelength", wcol), ("flux", fcol)):
            if col is None or col not in names:
                raise ReadError(name, f"HDU {hdu} has no {what} column (columns: "
                                      f"{', '.join(names)})")
        wave = np.asarray(table.data[wcol], dtype=np.float64)
        if wcol.lower() == "loglam":
            wave = 10.0**wave
        if str(table.columns[wcol].unit or "").strip().lower() in ("nm", "nanometer"):
            wave = wave * 10.0
        flux = np.asarray(table.data[fcol], dtype=np.float64)
        ivar = None
        ecol = error_column or _find(names, _ERROR_COLUMNS)
        icol = _find(names, _IVAR_COLUMNS)
        if ecol is not None:
            with np.errstate(divide="ignore"):
                ivar = 1.0 / np.asarray(table.data[ecol], dtype=np.float64) ** 2
            ivar[~np.isfinite(ivar)] = 0.0
        elif icol is not None:
            ivar = np.asarray(table.data[icol], dtype=np.float64)
        header = hdul[0].header.copy()
        header.update({k: v for k, v in table.header.items()
                       if k in ("OBJECT", "TELESCOP", "VACUUM", "AIRORVAC")})
        return _finish(name, wave, flux, ivar, header, medium, _header_medium(header))


# ---------------------------------------------------------------- ascii
def _numeric_rows(path: str, limit: int = 20) -> list[list[float]]:
    rows: list[list[float]] = []
    with open(path, encoding="utf-8", errors="strict") as f:
        for line in f:
            text = line.strip()
            if not text or text.startswith(("#", "%", "!")):
                continue
            rows.append([float(x) for x in text.replace(",", " ").split()])
            if len(rows) >= limit:
                break
    return rows


def ascii_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                   **kwargs: Any) -> bool:
    """A text file whose data lines are 2 or 3 numbers (wavelength, flux[, error])."""
    if path is None or not os.path.isfile(path):
        return False
    try:
        rows = _numeric_rows(path)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return len(rows) >= 2 and all(len(r) == len(rows[0]) and len(r) in (2, 3) for r in rows)


@register_reader("ascii", identifier=ascii_identify, priority=-10, medium="air",
                 fits_based=False)
def read_ascii(source: Any, *, medium: str = "auto") -> SpectrumSet:
    """Read a text spectrum: columns wavelength (Angstrom), flux and optionally its error.

    Lines starting with #, % or ! are comments; commas or whitespace separate columns.
    ``medium="auto"`` assumes air (as ground-based archives write); pass "vacuum" if the
    file's wavelengths are vacuum.
    """
    name = source_name(source)
    try:
        data = np.loadtxt(source, comments=("#", "%", "!"), delimiter=None, ndmin=2,
                          converters=None)
    except ValueError:
        try:
            data = np.loadtxt(source, comments=("#", "%", "!"), delimiter=",", ndmin=2)
        except ValueError as err:
            raise ReadError(name, f"not a table of numbers ({err})") from None
    if data.shape[1] not in (2, 3) or data.shape[0] < 2:
        raise ReadError(name, f"expected 2 or 3 numeric columns, got {data.shape[1]}")
    ivar = None
    if data.shape[1] == 3:
        with np.errstate(divide="ignore"):
            ivar = 1.0 / data[:, 2] ** 2
        ivar[~np.isfinite(ivar)] = 0.0
    return _finish(name, data[:, 0], data[:, 1], ivar, None, medium, None)
