"""The spectral axis of a FITS image: wavelengths, their unit and medium, from the header.

One implementation of the 1-D spectral WCS for every reader that needs it, following the
FITS standard (Greisen et al. 2006, A&A 446, 747, "Paper III") and the IRAF conventions
that most ground-based archives write:

* pixel ``p = 1 ... N``; ``x = CRVAL + step * (p - CRPIX)``, where ``step`` is ``CDi_i``
  when present (it takes precedence, as the standard says), else ``CDELTi * PCi_i``
  (``PCi_i`` defaults to 1); a missing ``CRPIXi`` is 0, the standard's default;
* log-linear axes: IRAF's ``DC-FLAG = 1`` or a non-standard ``CTYPE`` containing ``LOG``
  (``LOG-LINEAR``) give ``lambda = 10 ** x`` (log10); the standard's ``WAVE-LOG`` /
  ``AWAV-LOG`` give ``lambda = CRVAL * exp((x - CRVAL) / CRVAL)``;
* the unit: ``CUNITi``; else a unit written in ``CTYPEi`` (``Angstrom``,
  ``WAVELENGTH [Ang]``); else ``units=`` in IRAF's ``WAT1_001``; else Angstrom when the
  header is IRAF's (``DC-FLAG``, ``WAT0_001``, ``IRAFNAME`` or an IRAF ``ORIGIN``: IRAF's
  default dispersion unit); else metres for the standard's ``WAVE``/``AWAV`` (the
  standard's default unit); else the product's documented convention when the reader
  gives one; else an error. The source of the unit is returned with it.
* the medium: ``AWAV`` is air and ``WAVE`` vacuum by the standard; other headers say it in
  ``VACUUM``/``AIRORVAC`` (see :func:`header_medium`).

Velocity, frequency, energy and pixel axes are refused with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from starlearn.grid import air_to_vacuum
from starlearn.io.fitsutil import ReadError
from starlearn.units import UnitProblem, to_angstrom, wavelength_unit

__all__ = ["SpectralAxis", "check_wavelengths", "header_medium", "is_iraf", "keyword_medium",
           "medium_meta", "spectral_axis", "to_vacuum"]

_NOT_WAVELENGTH = ("FREQ", "ENER", "WAVN", "VRAD", "VOPT", "ZOPT", "VELO", "BETA", "FELO",
                   "VELOCITY")

WAVE_MIN_AA, WAVE_MAX_AA = 900.0, 300_000.0
"""Wavelengths a stellar spectrum can have (Angstrom); outside, the unit was misread."""


@dataclass(frozen=True)
class SpectralAxis:
    """Wavelengths of an image's pixels as the file gives them.

    Attributes
    ----------
    wave : ndarray (n_pixels,)
        Wavelength in Angstrom, in the file's medium (not yet converted to vacuum).
    unit : str
        The unit the file's numbers are in (e.g. "Angstrom", "nm").
    unit_from : str
        Where the unit came from ("CUNIT1", "CTYPE1", "WAT1_001", "IRAF default", ...).
    medium : {"air", "vacuum"} or None
        The medium the axis type states (AWAV / WAVE), None when it says nothing.
    """

    wave: np.ndarray
    unit: str
    unit_from: str
    medium: str | None


def is_iraf(header: Any) -> bool:
    """A header written by IRAF (its dispersion keys, WAT cards or origin)."""
    return ("DC-FLAG" in header or "WAT0_001" in header or "IRAFNAME" in header
            or "IRAF" in str(header.get("ORIGIN", "")).upper())


def _wat_unit(header: Any, axis: int) -> str | None:
    text = str(header.get(f"WAT{axis}_001", ""))
    match = re.search(r"units\s*=\s*([^\s]+)", text)
    return match.group(1) if match else None


def _ctype_unit(ctype: str) -> str | None:
    """A unit written into a non-standard CTYPE: 'WAVELENGTH [Ang]' or 'Angstrom'."""
    bracket = re.search(r"[\[(]([^\])]+)[\])]", ctype)
    if bracket:
        return bracket.group(1)
    try:
        return ctype if wavelength_unit(ctype) is not None else None
    except UnitProblem:
        return None


def spectral_axis(header: Any, n_pix: int, *, name: str, where: str, axis: int = 1,
                  default_unit: str | None = None,
                  default_from: str = "product convention") -> SpectralAxis:
    """Wavelengths of the ``n_pix`` pixels along ``axis`` of an image with this header.

    Parameters
    ----------
    header : FITS header (or any mapping of keywords)
    n_pix : int
    name, where : str
        The file and the HDU, for error messages.
    axis : int
        The FITS axis number (1 for a spectrum along NAXIS1).
    default_unit : str, optional
        The unit the product's data model documents, used when the header names none.
    default_from : str
        How to describe that default in ``unit_from``.

    Raises
    ------
    ReadError
        No dispersion keywords, a velocity/frequency/pixel axis, or no way to know the unit.
    """
    ctype = str(header.get(f"CTYPE{axis}", "")).strip()
    code = ctype.upper()
    if code.startswith("MULTISPE"):
        raise ReadError(name, f"{where} is an IRAF multispec image (CTYPE{axis} = MULTISPE); "
                              "read it with format='iraf-multispec'")
    if code.split("-")[0] in _NOT_WAVELENGTH or code in ("PIXEL", "PIXELS"):
        what = "pixels (no dispersion solution)" if code.startswith("PIXEL") else \
            f"{ctype}, not wavelength (velocity, frequency and energy axes are not read)"
        raise ReadError(name, f"{where}: the spectral axis (CTYPE{axis}) is {what}")
    if f"CRVAL{axis}" not in header:
        raise ReadError(name, f"{where} has no wavelength keywords (CRVAL{axis})")
    if f"CD{axis}_{axis}" in header:
        step = float(header[f"CD{axis}_{axis}"])
    elif f"CDELT{axis}" in header:
        step = float(header[f"CDELT{axis}"]) * float(header.get(f"PC{axis}_{axis}", 1.0))
    else:
        raise ReadError(name, f"{where} has no pixel step (CD{axis}_{axis} or CDELT{axis})")
    if not (np.isfinite(step) and step != 0):
        raise ReadError(name, f"{where}: the pixel step CD{axis}_{axis}/CDELT{axis} is {step}")
    crval = float(header[f"CRVAL{axis}"])
    x = crval + step * (np.arange(1, n_pix + 1) - float(header.get(f"CRPIX{axis}", 0.0)))
    standard_log = code.endswith("-LOG") and code[:4] in ("WAVE", "AWAV")
    if standard_log:
        x = crval * np.exp((x - crval) / crval)
    elif int(header.get("DC-FLAG", 0) or 0) == 1 or "LOG" in code:
        x = 10.0**x
    try:
        unit, unit_from = _unit(header, axis, ctype, code)
        if unit is None and default_unit is not None:
            unit, unit_from = wavelength_unit(default_unit), default_from
    except UnitProblem as err:
        raise ReadError(name, f"{where}: {err}") from None
    if unit is None:
        raise ReadError(name, f"{where}: the wavelength unit is not given (no CUNIT{axis}, no "
                              f"unit in CTYPE{axis} = '{ctype}', no IRAF WAT{axis}_001 units); "
                              "pass wave_unit='Angstrom' (or nm, um) if you know it")
    medium = "air" if code.startswith("AWAV") else "vacuum" if code.startswith("WAVE") and \
        not code.startswith("WAVELEN") else None
    return SpectralAxis(to_angstrom(x, unit), unit.to_string(), unit_from, medium)


def _unit(header: Any, axis: int, ctype: str, code: str) -> tuple[Any, str]:
    cunit = str(header.get(f"CUNIT{axis}", "")).strip()
    if cunit:
        return wavelength_unit(cunit), f"CUNIT{axis}"
    in_ctype = _ctype_unit(ctype)
    if in_ctype:
        return wavelength_unit(in_ctype), f"CTYPE{axis}"
    wat = _wat_unit(header, axis)
    if wat:
        return wavelength_unit(wat), f"WAT{axis}_001"
    if is_iraf(header):
        return wavelength_unit("Angstrom"), "IRAF default (Angstrom)"
    if code[:4] in ("WAVE", "AWAV") and not code.startswith("WAVELEN"):
        return wavelength_unit("m"), "FITS standard default (m)"
    return None, ""


def check_wavelengths(wave: np.ndarray, name: str, how: str) -> None:
    """Raise when wavelengths (Angstrom) are not finite or lie where no stellar spectrum
    does (below the Lyman limit, 900 Å, or beyond 30 µm): a sign of a misread unit (500 nm
    taken for 500 Å). ``how`` says how they were found."""
    wave = np.asarray(wave)
    if wave.size == 0 or not np.all(np.isfinite(wave)):
        raise ReadError(name, f"wavelengths ({how}) are missing or not finite")
    lo, hi = float(np.min(wave)), float(np.max(wave))
    if lo < WAVE_MIN_AA or hi > WAVE_MAX_AA:
        raise ReadError(name, f"wavelengths {lo:.4g}-{hi:.4g} Angstrom ({how}) are outside "
                              f"{WAVE_MIN_AA:.0f} Angstrom - 30 um: the unit is likely wrong; "
                              "pass wave_unit=... if you know it")


_TRUE = ("T", "TRUE", "Y", "YES", "1")
_FALSE = ("F", "FALSE", "N", "NO", "0")


def header_medium(header: Any) -> tuple[str | None, str]:
    """Air or vacuum as a header states it, and the keyword that says so.

    Reads ``VACUUM`` (a logical, or the strings 'T'/'F' some releases write), ``AIRORVAC``
    ('air'/'vac'), and a standard ``CTYPE1`` of ``AWAV`` (air) or ``WAVE`` (vacuum).
    Returns ``(None, "")`` when the header says nothing.
    """
    if "VACUUM" in header:
        value = header["VACUUM"]
        text = str(value).strip().upper()
        if isinstance(value, (bool, np.bool_)) or text in _TRUE + _FALSE:
            vacuum = bool(value) if isinstance(value, (bool, np.bool_)) else text in _TRUE
            return ("vacuum" if vacuum else "air"), f"VACUUM = {'T' if vacuum else 'F'}"
    text = str(header.get("AIRORVAC", "")).strip().lower()
    if text.startswith("vac"):
        return "vacuum", "AIRORVAC"
    if text.startswith("air"):
        return "air", "AIRORVAC"
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    if ctype.startswith("AWAV"):
        return "air", "CTYPE1 = AWAV"
    if ctype.startswith("WAVE") and not ctype.startswith("WAVELEN"):
        return "vacuum", "CTYPE1 = WAVE"
    return None, ""


def keyword_medium(header: Any, convention: tuple[str, str]) -> tuple[str, str]:
    """Air or vacuum from a header's VACUUM/AIRORVAC keywords, else ``convention``
    (``(medium, "what documents it")``, the product's data model)."""
    medium, source = header_medium({k: header[k] for k in ("VACUUM", "AIRORVAC")
                                    if k in header})
    return (medium, source) if medium else convention


def to_vacuum(wave: np.ndarray, medium: str) -> np.ndarray:
    """Vacuum wavelengths (Angstrom) from wavelengths in ``medium`` ("air" or "vacuum";
    air is converted with :func:`starlearn.grid.air_to_vacuum`, Morton 2000)."""
    if medium == "air":
        return air_to_vacuum(wave)
    if medium == "vacuum":
        return np.asarray(wave, dtype=np.float64)
    raise ValueError(f"medium must be 'air' or 'vacuum', got {medium!r}")


def medium_meta(medium: str, medium_from: str, unit: str, unit_from: str) -> dict[str, str]:
    """The meta entries every reader records about its wavelengths: the medium in the file
    and what said so, the unit in the file and what said so (wavelengths in a SpectrumSet
    are always vacuum Angstrom)."""
    return {"medium_in_file": medium, "medium_from": medium_from,
            "wave_unit_in_file": unit, "wave_unit_from": unit_from}
