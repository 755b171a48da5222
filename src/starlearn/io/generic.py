"""Generic 1-D spectra: FITS images with a 1-D spectral WCS, FITS tables, text columns.

These are the formats of no one survey: small-observatory archives (raw Ondřejov 2-m
CCD700 spectra are 1-D images with ``CRVAL1``/``CDELT1``/``CRPIX1`` in air Angstrom), IRAF's
``onedspec``/``equispec`` output, and tables of a wavelength and a flux column. They are
*generic* formats: their identifiers are asked only when no product reader claims a file.

The spectral axis follows the FITS standard and IRAF's conventions
(:func:`starlearn.io.spectral_axis.spectral_axis`): ``CD1_1`` over ``CDELT1``, ``DC-FLAG``
and ``WAVE-LOG`` log axes, the unit from ``CUNIT1`` (nm, Angstrom, um ...), the WAT cards
or IRAF's default; velocity, frequency and pixel axes are refused; a file whose unit cannot
be known is an error.

Air or vacuum: the header decides where it can (``VACUUM``, ``AIRORVAC``, ``CTYPE1`` =
``AWAV`` / ``WAVE``); otherwise ground-based spectra are air (their dispersion solutions
come from arc lamps measured in air), which is what the readers take, saying so in the
meta column ``medium_from``; pass ``medium="vacuum"`` for a file that is not. The result is
always vacuum Angstrom.

When a file has no error spectrum, the error is estimated from the data (DER_SNR's noise,
Stoehr et al. 2008, scaled with sqrt(flux) as for photon noise) and the metadata column
``ivar_estimated`` is True.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.io.fitsutil import ReadError, as_hdulist, identify_hdulist, source_name
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import (
    check_wavelengths,
    header_medium,
    medium_meta,
    spectral_axis,
    to_vacuum,
)
from starlearn.spectra import SpectrumSet
from starlearn.units import UnitProblem, to_angstrom, wavelength_unit

__all__ = ["der_snr_noise", "estimate_ivar", "read_ascii", "read_table1d", "read_wcs1d"]

_WAVE_COLUMNS = ("wavelength", "wave", "lambda", "spectral", "wl", "loglam")
_FLUX_COLUMNS = ("flux", "intensity", "fnu", "flam")
_ERROR_COLUMNS = ("error", "err", "sigma", "flux_err", "uncertainty", "e_flux", "err_flux")
_IVAR_COLUMNS = ("ivar", "inverse_variance")
_ASSUMED_AIR = "assumed: air (ground-based convention; the file does not say)"


def der_snr_noise(flux: np.ndarray) -> float | np.ndarray:
    """The noise per pixel of a spectrum by DER_SNR (Stoehr et al. 2008, ADASS XVII 505):
    ``1.482602 / sqrt(6) * median(|2 f_i - f_{i-2} - f_{i+2}|)`` over the finite pixels.

    Pixels two apart are compared, so that noise correlated between neighbours (a
    resampled or smoothed spectrum) is not taken for signal. ``flux`` (n_pixels,) gives a
    float; (n_spectra, n_pixels) one value per row (NaN pixels left out).
    """
    flux = np.asarray(flux, dtype=np.float64)
    if flux.ndim == 1:
        flux = flux[np.isfinite(flux)]
        if flux.size < 5:
            return float("nan")
        return float(1.482602 / np.sqrt(6.0) * np.median(
            np.abs(2.0 * flux[2:-2] - flux[:-4] - flux[4:])))
    rows = []
    for row in flux:  # rows have different numbers of finite pixels
        rows.append(der_snr_noise(row))
    return np.asarray(rows)


def estimate_ivar(flux: np.ndarray) -> np.ndarray:
    """Inverse variance estimated from the data when a file gives no errors.

    sigma_0 = :func:`der_snr_noise` is the pixel noise at the median flux; sigma scales as
    sqrt(flux / median(flux)) (photon noise). ``flux`` is (n_pixels,) or
    (n_spectra, n_pixels); the result has its shape, 0 where flux is not finite.
    """
    flux = np.asarray(flux, dtype=np.float64)
    if flux.ndim == 2:
        return np.vstack([estimate_ivar(row) for row in flux]) if len(flux) else flux.copy()
    good = np.isfinite(flux)
    if good.sum() < 5:
        return np.zeros_like(flux)
    sigma0 = der_snr_noise(flux)
    level = np.median(np.abs(flux[good]))
    if not (sigma0 > 0 and level > 0):
        return np.where(good, 1.0, 0.0)
    scale = np.sqrt(np.clip(np.abs(np.where(good, flux, level)) / level, 0.05, None))
    return np.where(good, 1.0 / (sigma0 * scale) ** 2, 0.0)


def choose_medium(medium: str, header: Any, convention: tuple[str, str] | None = None
                  ) -> tuple[str, str]:
    """The medium of a file's wavelengths and what says so: the ``medium`` option when not
    "auto", else the header (:func:`header_medium`), else ``convention`` (the product's
    documented medium and its name), else air as an assumption stated in the result."""
    if medium in ("air", "vacuum"):
        return medium, "medium option"
    if medium != "auto":
        raise ValueError(f"medium must be 'auto', 'air' or 'vacuum', got {medium!r}")
    found, source = header_medium(header)
    if found:
        return found, source
    return convention or ("air", _ASSUMED_AIR)


def finish(name: str, wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray | None,
           header: Any, medium: tuple[str, str], unit: tuple[str, str],
           ident: str | None = None, mask: np.ndarray | None = None,
           meta: dict[str, Any] | None = None) -> SpectrumSet:
    """One spectrum from wavelengths in Angstrom in the file's medium: sorted increasing,
    converted to vacuum, errors estimated when ``ivar`` is None; meta records the medium
    and unit and where each came from."""
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if wave.shape != flux.shape or wave.ndim != 1:
        raise ReadError(name, f"wavelength and flux differ in shape: {wave.shape} vs "
                              f"{flux.shape}")
    check_wavelengths(wave, name, f"unit from {unit[1]}")
    mask = np.zeros(flux.shape, bool) if mask is None else np.asarray(mask, bool)
    if np.any(np.diff(wave) < 0):
        order = np.argsort(wave, kind="stable")
        wave, flux, mask = wave[order], flux[order], mask[order]
        ivar = None if ivar is None else np.asarray(ivar)[order]
    if np.any(np.diff(wave) <= 0):
        raise ReadError(name, "wavelengths are not strictly increasing (repeated values)")
    estimated = ivar is None
    ivar = estimate_ivar(np.where(mask, np.nan, flux)) if ivar is None else np.asarray(
        ivar, dtype=np.float64)
    header = header if header is not None else {}
    ident = ident or str(header.get("OBJECT", header.get("OBJNAME", "")) or
                         os.path.basename(name)).strip()
    row = {"survey": str(header.get("TELESCOP", "")).strip(),
           "object": str(header.get("OBJECT", "")).strip(), "ivar_estimated": estimated,
           **medium_meta(medium[0], medium[1], unit[0], unit[1]), **(meta or {})}
    return SpectrumSet(wave=to_vacuum(wave, medium[0]), flux=flux, ivar=ivar, mask=mask,
                       ids=[ident], meta={k: [v] for k, v in row.items()})


# ---------------------------------------------------------------- wcs1d
def _image_axes(header: Any) -> tuple[int, ...]:
    return tuple(int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header.get("NAXIS",
                                                                                   0)) + 1))


def _is_spectrum_image(head: Any) -> bool:
    axes = _image_axes(head)
    if not axes or axes[0] < 2 or (len(axes) > 1 and axes[1] != 1) or len(axes) > 3:
        return False
    if str(head.get("CTYPE1", "")).strip().upper().startswith("MULTISPE"):
        return False
    return "CRVAL1" in head and ("CDELT1" in head or "CD1_1" in head)


def _spectrum_hdu(hdul: fits.HDUList) -> int | None:
    """The primary HDU when it is a 1-D spectrum image, else the first image extension
    that is one when the primary holds no data (some archives put the spectrum in HDU 1)."""
    if _is_spectrum_image(hdul[0].header):
        return 0
    if hdul[0].header.get("NAXIS", 0) == 0:
        for i, hdu in enumerate(hdul[1:], start=1):
            if isinstance(hdu, fits.ImageHDU) and _is_spectrum_image(hdu.header):
                return i
    return None


def wcs1d_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                   **kwargs: Any) -> bool:
    """A FITS file whose primary HDU (or, when the primary is empty, first image
    extension) is a 1-D spectrum image with a spectral WCS: NAXIS 1, or IRAF's 2-D/3-D
    single-aperture layouts (NAXIS2 = 1, bands along NAXIS3), with CRVAL1 and a pixel step
    (CD1_1 or CDELT1)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return hdul is not None and _spectrum_hdu(hdul) is not None


@register_reader("wcs1d", identifier=wcs1d_identify, priority=5, medium="air", generic=True)
def read_wcs1d(source: Any, *, hdu: int | None = None, medium: str = "auto", band: int = 1,
               wave_unit: str | None = None) -> SpectrumSet:
    """Read a 1-D FITS image with a linear or log-linear wavelength WCS.

    Parameters
    ----------
    source : path, file object or HDUList
    hdu : int, optional
        The HDU holding the spectrum; by default the primary HDU, or the first image
        extension with a spectrum when the primary is empty.
    medium : {"auto", "air", "vacuum"}
        Medium of the file's wavelengths; "auto" reads the header (VACUUM, AIRORVAC,
        CTYPE1 AWAV/WAVE) and takes air when it says nothing (stated in ``medium_from``).
        The result is always vacuum.
    band : int
        For IRAF's 3-D single-aperture images, the band (plane) holding the spectrum; a
        band whose ``BANDIDn`` says "sigma" gives the errors.
    wave_unit : str, optional
        The wavelength unit when the header names none.

    Notes
    -----
    See :func:`starlearn.io.spectral_axis.spectral_axis` for the WCS. Without a sigma band
    the error is estimated from the data (see :func:`estimate_ivar`).
    """
    return read_image_spectrum(source, hdu=hdu, medium=medium, band=band,
                               wave_unit=wave_unit)


def read_image_spectrum(source: Any, *, hdu: int | None = None, medium: str = "auto",
                        band: int = 1,
                        wave_unit: str | None = None,
                        convention_medium: tuple[str, str] | None = None,
                        convention_unit: tuple[str, str] | None = None,
                        meta: dict[str, Any] | None = None) -> SpectrumSet:
    """:func:`read_wcs1d` with a product's documented medium and unit for headers that
    state none (``(value, "what documents it")``) and extra meta values."""
    name = source_name(source)
    with as_hdulist(source) as hdul:
        if hdu is None:
            hdu = _spectrum_hdu(hdul) or 0
        try:
            image = hdul[hdu]
        except IndexError:
            raise ReadError(name, f"has no HDU {hdu}") from None
        head = image.header
        if image.data is None:
            raise ReadError(name, f"HDU {hdu} has no data")
        data = np.asarray(image.data, dtype=np.float64)
        if data.ndim == 3:
            if not 1 <= band <= data.shape[0]:
                raise ReadError(name, f"HDU {hdu} has {data.shape[0]} bands, band={band} asked")
            sigma_band = next((i for i in range(1, data.shape[0] + 1) if i != band
                               and "sigma" in str(head.get(f"BANDID{i}", "")).lower()), None)
            flux = data[band - 1].ravel()
            sigma = data[sigma_band - 1].ravel() if sigma_band else None
        elif data.ndim in (1, 2) and data.size == data.shape[-1]:
            flux, sigma = data.ravel(), None
        else:
            raise ReadError(name, f"HDU {hdu} is not a 1-D spectrum (shape {data.shape})")
        default = (wave_unit, "wave_unit option") if wave_unit else (
            convention_unit or (None, ""))
        axis = spectral_axis(head, flux.size, name=name, where=f"HDU {hdu}",
                             default_unit=default[0], default_from=default[1])
        ivar = None
        if sigma is not None:
            with np.errstate(divide="ignore"):
                ivar = np.where(sigma > 0, 1.0 / sigma**2, 0.0)
        chosen = choose_medium(medium, head, (axis.medium, f"CTYPE1 = {head.get('CTYPE1')}")
                               if axis.medium else convention_medium)
        return finish(name, axis.wave, flux, ivar, head, chosen, (axis.unit, axis.unit_from),
                      meta=meta)


# ---------------------------------------------------------------- table1d
def _find(names: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[c] for c in candidates if c in lower), None)


def table1d_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                     **kwargs: Any) -> bool:
    """A FITS binary table with a wavelength column and a flux column: one value per row,
    or one row of vectors."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            return False
        cols = hdul[1].columns
        wave, flux = _find(cols.names, _WAVE_COLUMNS), _find(cols.names, _FLUX_COLUMNS)
        if wave is None or flux is None:
            return False
        rows, repeat = hdul[1].header.get("NAXIS2", 0), cols[flux].format.repeat
        return (repeat == 1 and rows > 1) or (rows == 1 and repeat > 1
                                              and cols[wave].format.repeat == repeat)


@register_reader("table1d", identifier=table1d_identify, priority=6, medium="air",
                 generic=True)
def read_table1d(source: Any, *, hdu: int = 1, medium: str = "auto",
                 wave_column: str | None = None, flux_column: str | None = None,
                 error_column: str | None = None, wave_unit: str | None = None) -> SpectrumSet:
    """Read a spectrum stored as a FITS binary table, one row per pixel (or one row of
    vector columns).

    Column names are found case-insensitively (wavelength: wavelength, wave, lambda,
    spectral, wl, loglam (log10); flux: flux, intensity; errors: error, err, sigma,
    flux_err, or ivar) unless given. The wavelength unit is the column's TUNIT (nm,
    Angstrom, um ...) or ``wave_unit``; a table that gives neither is an error (no unit
    is assumed). ``medium`` as for :func:`read_wcs1d`.
    """
    return read_table_columns(source, hdu=hdu, medium=medium, wave_column=wave_column,
                              flux_column=flux_column, error_column=error_column,
                              wave_unit=wave_unit)


def read_table_columns(source: Any, *, hdu: int = 1, medium: str = "auto",
                       wave_column: str | None = None, flux_column: str | None = None,
                       error_column: str | None = None, wave_unit: str | None = None,
                       convention_unit: tuple[str, str] | None = None,
                       convention_medium: tuple[str, str] | None = None) -> SpectrumSet:
    """:func:`read_table1d` with a product's documented unit and medium, used when the
    table says nothing (``(value, "what documents it")``)."""
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
        vectors = len(table.data) == 1 and table.columns[wcol].format.repeat > 1

        def col(key: str) -> np.ndarray:
            data = table.data[key]
            return np.asarray(data[0] if vectors else data, dtype=np.float64).ravel()

        values = col(wcol)
        if wcol.lower() == "loglam":
            values = 10.0**values
        try:
            unit = wavelength_unit(wave_unit or table.columns[wcol].unit)
            unit_from = "wave_unit option" if wave_unit else f"TUNIT of '{wcol}'"
            if unit is None and convention_unit is not None:
                unit, unit_from = wavelength_unit(convention_unit[0]), convention_unit[1]
        except UnitProblem as err:
            raise ReadError(name, f"column '{wcol}': {err}") from None
        if unit is None:
            raise ReadError(name, f"HDU {hdu}: the wavelength column '{wcol}' has no unit "
                                  "(TUNIT); pass wave_unit='Angstrom' (or nm, um) if you "
                                  "know it")
        wave = to_angstrom(values, unit)
        flux = col(fcol)
        ivar = None
        ecol = error_column or _find(names, _ERROR_COLUMNS)
        icol = _find(names, _IVAR_COLUMNS)
        if ecol is not None:
            with np.errstate(divide="ignore"):
                ivar = 1.0 / col(ecol) ** 2
            ivar[~np.isfinite(ivar)] = 0.0
        elif icol is not None:
            ivar = col(icol)
        header = hdul[0].header.copy()
        header.update({k: v for k, v in table.header.items()
                       if k in ("OBJECT", "TELESCOP", "VACUUM", "AIRORVAC")})
        return finish(name, wave, flux, ivar, header,
                      choose_medium(medium, header, convention_medium),
                      (unit.to_string(), unit_from))


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


def _comment_unit(path: Any) -> str | None:
    """A wavelength unit named in a text file's header comments, e.g.
    ``# wavelength [nm] flux`` or ``# lambda (Angstrom)``."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                text = line.strip()
                if text and not text.startswith(("#", "%", "!")):
                    return None
                match = re.search(r"(?:wave\w*|lambda|wl)\s*[\[(]([^\])]+)[\])]", text,
                                  re.IGNORECASE)
                if match:
                    return match.group(1)
    except OSError:
        return None
    return None


@register_reader("ascii", identifier=ascii_identify, priority=-10, medium="air",
                 fits_based=False, generic=True)
def read_ascii(source: Any, *, medium: str = "auto", wave_unit: str | None = None
               ) -> SpectrumSet:
    """Read a text spectrum: columns wavelength, flux and optionally its error.

    Lines starting with #, % or ! are comments; commas or whitespace separate columns.
    The wavelength unit is ``wave_unit``, or the one a header comment names
    (``# wavelength [nm] ...``); with neither, the file is refused (text carries no unit
    and none is assumed). ``medium="auto"`` takes air (as ground-based archives write,
    stated in ``medium_from``); pass "vacuum" if the file's wavelengths are vacuum.
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
    written = None if wave_unit else _comment_unit(source)
    try:
        unit = wavelength_unit(wave_unit or written)
    except UnitProblem as err:
        raise ReadError(name, str(err)) from None
    if unit is None:
        raise ReadError(name, "a text spectrum without a wavelength unit (no header comment "
                              "such as '# wavelength [Angstrom]'); pass wave_unit='Angstrom' "
                              "(or nm, um)")
    return finish(name, to_angstrom(data[:, 0], unit), data[:, 1], ivar, None,
                  choose_medium(medium, {}),
                  (unit.to_string(), "wave_unit option" if wave_unit else "header comment"))
