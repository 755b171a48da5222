"""IRAF multispec images: echelle orders and fibre spectra with per-aperture dispersions.

Format: IRAF's "specwcs" help page (noao/onedspec/doc/specwcs.hlp). An image with
``CTYPE1 = 'MULTISPE'`` (``WAT0_001 = 'system=multispec'``) holds one aperture (order or
fibre) per row (NAXIS2), and for 3-D images one band per plane (``BANDIDn``: the optimally
extracted spectrum, the plain sum, the background, the sigma). Each aperture's dispersion
is a string ``specN = "ap beam dtype w1 dw nw z aplow aphigh [wt w0 ftype parameters ...]..."``
spread over the ``WAT2_nnn`` cards (68 characters each):

* dtype 0, linear: ``w = (w1 + dw (p - 1)) / (1 + z)``;
* dtype 1, log-linear: ``w = 10 ** ((w1 + dw (p - 1)) / (1 + z))``;
* dtype 2, non-linear: ``w = sum_i wt_i (w0_i + W_i(p)) / (1 + z)`` with ``W_i`` a
  Chebyshev (ftype 1) or Legendre (2) series in ``n = (2p - (pmax + pmin)) / (pmax - pmin)``,
  a cubic (3) or linear (4) spline over ``s = (p - pmin) / (pmax - pmin) npieces``, or
  tabulated wavelengths at pixels (5) or at given pixel coordinates (6);
* dtype -1: not dispersion-calibrated (refused).

``p`` is the physical pixel, ``p = LTM1_1 l + LTV1`` for image pixel ``l`` (1-based). The
unit is ``units=`` of ``WAT1_001`` (IRAF's default is Angstrom). IRAF dispersion solutions
come from arc-lamp lines in air, so multispec wavelengths are air unless the header says
otherwise (``VACUUM``, ``AIRORVAC``).
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.io.fitsutil import (
    ReadError,
    ReadWarning,
    as_hdulist,
    identify_hdulist,
    source_name,
)
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import check_wavelengths, keyword_medium, medium_meta, to_vacuum
from starlearn.spectra import SpectrumSet
from starlearn.units import UnitProblem, to_angstrom, wavelength_unit

__all__ = ["iraf_multispec_identify", "multispec_wavelengths", "read_iraf_multispec"]


def iraf_multispec_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                            **kwargs: Any) -> bool:
    """An IRAF multispec image: CTYPE1 = 'MULTISPE' or WAT0_001 'system=multispec'."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None:
            return False
        head = hdul[0].header
        return head.get("NAXIS", 0) >= 1 and (
            str(head.get("CTYPE1", "")).strip().upper().startswith("MULTISPE")
            or "multispec" in str(head.get("WAT0_001", "")).lower())


def _wat(header: fits.Header, axis: int) -> str:
    """The WAT{axis}_nnn cards joined (each padded back to the 68 characters astropy strips)."""
    parts = []
    i = 1
    while f"WAT{axis}_{i:03d}" in header:
        parts.append(str(header[f"WAT{axis}_{i:03d}"]).ljust(68))
        i += 1
    return "".join(parts)


def _spec_strings(header: fits.Header, name: str) -> dict[int, list[float]]:
    text = _wat(header, 2)
    found = {int(n): [float(v) for v in values.split()]
             for n, values in re.findall(r"spec(\d+)\s*=\s*\"([^\"]*)\"", text)}
    if not found:
        raise ReadError(name, "multispec image without 'specN = \"...\"' strings in WAT2_nnn")
    return found


def _chebyshev(n: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    return np.polynomial.chebyshev.chebval(n, coeffs)


def _legendre(n: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    return np.polynomial.legendre.legval(n, coeffs)


def _function(p: np.ndarray, ftype: int, params: list[float], name: str,
              ap: int) -> np.ndarray:
    """One non-linear term W(p) of IRAF's dispersion function."""
    if ftype in (1, 2):
        order, pmin, pmax = int(params[0]), params[1], params[2]
        coeffs = np.asarray(params[3:3 + order])
        n = (2 * p - (pmax + pmin)) / (pmax - pmin)
        return _chebyshev(n, coeffs) if ftype == 1 else _legendre(n, coeffs)
    if ftype in (3, 4):
        npieces, pmin, pmax = int(params[0]), params[1], params[2]
        coeffs = np.asarray(params[3:])
        s = (p - pmin) / (pmax - pmin) * npieces
        j = np.clip(np.floor(s).astype(int), 0, npieces - 1)
        b = s - j
        a = 1 - b
        if ftype == 4:
            return coeffs[j] * a + coeffs[j + 1] * b
        x0, x3 = a**3, b**3
        x1 = 1 + 3 * a * (1 + a * b)
        x2 = 1 + 3 * b * (1 + a * b)
        return coeffs[j] * x0 + coeffs[j + 1] * x1 + coeffs[j + 2] * x2 + coeffs[j + 3] * x3
    if ftype == 5:
        table = np.asarray(params[1:1 + int(params[0])])
        return np.interp(p, np.arange(1, table.size + 1), table)
    if ftype == 6:
        count = int(params[0])
        pairs = np.asarray(params[2:2 + 2 * count]).reshape(count, 2)
        return np.interp(p, pairs[:, 0], pairs[:, 1])
    raise ReadError(name, f"aperture {ap}: unknown dispersion function type {ftype}")


def _terms_length(ftype: int, params: list[float]) -> int:
    """How many numbers one non-linear term takes after ``wt w0 ftype``."""
    if ftype in (1, 2):
        return 3 + int(params[0])
    if ftype == 3:
        return 3 + int(params[0]) + 3
    if ftype == 4:
        return 3 + int(params[0]) + 1
    if ftype == 5:
        return 1 + int(params[0])
    if ftype == 6:
        return 2 + 2 * int(params[0])
    return len(params)


def multispec_wavelengths(values: list[float], pixels: np.ndarray, name: str) -> np.ndarray:
    """Wavelengths (the file's unit) at physical pixels ``pixels`` from one aperture's
    ``specN`` numbers ``ap beam dtype w1 dw nw z aplow aphigh [terms]``."""
    ap, dtype, w1, dw, z = int(values[0]), int(values[2]), values[3], values[4], values[6]
    if dtype == -1:
        raise ReadError(name, f"aperture {ap} is not dispersion-calibrated (dtype -1)")
    if dtype in (0, 1):
        x = (w1 + dw * (pixels - 1)) / (1 + z)
        return 10.0**x if dtype == 1 else x
    if dtype != 2:
        raise ReadError(name, f"aperture {ap}: unknown dispersion type {dtype}")
    rest = values[9:]
    wave = np.zeros_like(pixels, dtype=np.float64)
    while len(rest) >= 3:
        wt, w0, ftype = rest[0], rest[1], int(rest[2])
        params = rest[3:]
        wave += wt * (w0 + _function(pixels, ftype, params, name, ap))
        rest = params[_terms_length(ftype, params):]
    return wave / (1 + z)


@register_reader("iraf-multispec", identifier=iraf_multispec_identify, priority=8,
                 medium="air")
def read_iraf_multispec(source: Any, *, band: int = 1, medium: str = "auto",
                        wave_unit: str | None = None) -> SpectrumSet:
    """Read an IRAF multispec image: one spectrum per aperture (echelle order or fibre).

    Parameters
    ----------
    source : path, file object or HDUList
    band : int
        For 3-D images, the band (1-based plane) holding the spectrum; a band whose
        ``BANDIDn`` says "sigma" gives the errors.
    medium : {"auto", "air", "vacuum"}
        The medium of the file's wavelengths; "auto" reads VACUUM / AIRORVAC and takes air
        (IRAF's arc-lamp calibration) when the header says nothing.
    wave_unit : str, optional
        The wavelength unit when the header names none (``WAT1_001 units=``); IRAF's
        default is Angstrom.

    Returns
    -------
    SpectrumSet with one row per aperture on its own wavelengths (vacuum Angstrom,
    increasing; descending orders are reversed); pixels beyond an aperture's ``nw`` valid
    pixels are masked; meta columns aperture, beam, medium and unit provenance. Without a
    sigma band the errors are estimated from the data (``ivar_estimated``).
    """
    from starlearn.io.generic import estimate_ivar

    name = source_name(source)
    with as_hdulist(source) as hdul:
        head = hdul[0].header
        data = np.asarray(hdul[0].data, dtype=np.float64)
        if data.ndim == 1:
            data = data[None, None, :]
        elif data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ReadError(name, f"multispec image of {data.ndim} dimensions")
        if not 1 <= band <= data.shape[0]:
            raise ReadError(name, f"has {data.shape[0]} bands, band={band} asked")
        bands = {i: str(head.get(f"BANDID{i}", "")).lower() for i in range(1, data.shape[0] + 1)}
        sigma_band = next((i for i, text in bands.items() if "sigma" in text and i != band),
                          None)
        specs = _spec_strings(head, name)
        unit_text = re.search(r"units\s*=\s*([^\s]+)", str(head.get("WAT1_001", "")))
        try:
            unit = wavelength_unit(unit_text.group(1) if unit_text else wave_unit)
        except UnitProblem as err:
            raise ReadError(name, str(err)) from None
        unit_from = "WAT1_001" if unit_text else "wave_unit"
        if unit is None:
            unit, unit_from = wavelength_unit("Angstrom"), "IRAF default (Angstrom)"
        if medium == "auto":
            chosen, chosen_from = keyword_medium(
                head, ("air", "IRAF convention (arc-lamp air wavelengths)"))
        elif medium in ("air", "vacuum"):
            chosen, chosen_from = medium, "medium option"
        else:
            raise ValueError(f"medium must be 'auto', 'air' or 'vacuum', got {medium!r}")
        n_ap, n_pix = data.shape[1], data.shape[2]
        ltm = float(head.get("LTM1_1", 1.0))
        ltv = float(head.get("LTV1", 0.0))
        pixels = ltm * np.arange(1, n_pix + 1) + ltv
        waves, fluxes, ivars, masks, apertures, beams = [], [], [], [], [], []
        problems: list[str] = []
        for row in range(n_ap):
            values = specs.get(row + 1)
            if values is None or len(values) < 9:
                raise ReadError(name, f"no dispersion string spec{row + 1} for image row "
                                      f"{row + 1}")
            wave = to_angstrom(multispec_wavelengths(values, pixels, name), unit)
            flux = data[band - 1, row]
            valid = np.arange(n_pix) < int(values[5])
            if sigma_band is not None:
                sigma = data[sigma_band - 1, row]
                with np.errstate(divide="ignore"):
                    ivar = np.where(sigma > 0, 1.0 / sigma**2, 0.0)
            else:
                ivar = estimate_ivar(np.where(valid, flux, np.nan))
            if wave[-1] < wave[0]:
                wave, flux, ivar, valid = wave[::-1], flux[::-1], ivar[::-1], valid[::-1]
            try:
                check_wavelengths(wave[valid] if valid.any() else wave, name,
                                  f"aperture {int(values[0])}, unit from {unit_from}")
                if np.any(np.diff(wave) <= 0):
                    raise ReadError(name, f"aperture {int(values[0])}: the dispersion is not "
                                          "monotonic")
            except ReadError as err:
                problems.append(err.reason)
                continue
            waves.append(to_vacuum(wave, chosen))
            fluxes.append(flux)
            ivars.append(ivar)
            masks.append(~valid)
            apertures.append(int(values[0]))
            beams.append(int(values[1]))
    if not waves:
        raise ReadError(name, "no aperture with a usable dispersion: " + "; ".join(problems))
    if problems:
        warnings.warn(f"{name}: {len(problems)} of {n_ap} apertures left out: "
                      + "; ".join(problems), ReadWarning, stacklevel=2)
    n_ap = len(waves)
    ident = str(head.get("OBJECT", "")).strip() or name
    meta = {"survey": [str(head.get("TELESCOP", "")).strip()] * n_ap,
            "object": [ident] * n_ap, "aperture": apertures, "beam": beams,
            "ivar_estimated": [sigma_band is None] * n_ap,
            **{k: [v] * n_ap for k, v in medium_meta(chosen, chosen_from, unit.to_string(),
                                                     unit_from).items()}}
    return SpectrumSet(wave=np.vstack(waves), flux=np.vstack(fluxes), ivar=np.vstack(ivars),
                       mask=np.vstack(masks), ids=[f"{ident}/{a}" for a in apertures],
                       meta=meta)
