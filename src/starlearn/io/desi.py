"""DESI spectra: coadd and spectra files (one row per target, or per exposure).

Data model (desidatamodel, DESI_SPECTRO_REDUX/SPECPROD/healpix/SURVEY/PROGRAM/PIXGROUP/
PIXNUM/coadd-SURVEY-PROGRAM-PIXNUM.rst and spectra-*.rst): ``FIBERMAP`` (one row per
spectrum: TARGETID, TARGET_RA, TARGET_DEC, ...), then for each camera arm B, R, Z the
HDUs ``<ARM>_WAVELENGTH`` (1-D, vacuum Angstrom), ``<ARM>_FLUX`` (n_spectra x n_wave,
1e-17 erg/s/cm^2/Angstrom), ``<ARM>_IVAR``, ``<ARM>_MASK`` (non-zero = bad) and
``<ARM>_RESOLUTION``; a camera-combined file has one ``BRZ`` arm instead. The arms overlap
(B to 5,800 Å, R 5,760-7,620 Å, Z from 7,520 Å) on one 0.8 Å lattice.

The arms are joined as desispec's ``coadd_cameras`` does: in the overlaps, where the arms
share pixels, flux is the inverse-variance weighted mean of the good pixels, ivar the sum;
nothing is resampled. Arms that do not share the lattice are refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.io.fitsutil import ReadError, as_hdulist, identify_hdulist, source_name
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import check_wavelengths, medium_meta
from starlearn.spectra import SpectrumSet

__all__ = ["desi_identify", "join_arms", "read_desi"]

_ARMS = ("B", "R", "Z", "BRZ")
_ALIGN = 1e-4  # Angstrom: pixels of two arms closer than this are one pixel
_FIBERMAP = {"TARGET_RA": "ra", "TARGET_DEC": "dec", "EXPID": "expid", "NIGHT": "night",
             "TILEID": "tileid", "FIBER": "fiber", "MJD": "mjd", "OBJTYPE": "objtype",
             "COADD_FIBERSTATUS": "fiberstatus", "FIBERSTATUS": "fiberstatus",
             "REF_ID": "ref_id"}


def _arms(hdul: fits.HDUList) -> list[str]:
    names = {h.name.upper() for h in hdul}
    return [a for a in _ARMS if {f"{a}_WAVELENGTH", f"{a}_FLUX", f"{a}_IVAR"} <= names]


def desi_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                  **kwargs: Any) -> bool:
    """A DESI coadd or spectra file: a FIBERMAP table and <arm>_WAVELENGTH/FLUX/IVAR HDUs."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return (hdul is not None and "FIBERMAP" in {h.name.upper() for h in hdul}
                and bool(_arms(hdul)))


def join_arms(waves: list[np.ndarray], fluxes: list[np.ndarray], ivars: list[np.ndarray],
              masks: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Join camera arms (each: wave (n_wave,), flux/ivar/mask (n_spectra, n_wave)) on their
    common lattice: wavelengths of the arms in order, with overlapping pixels (equal within
    1e-4 Å) combined by inverse-variance weighting of their good pixels.

    Returns
    -------
    wave (n,), flux, ivar, mask (n_spectra, n); a pixel is bad where no arm has a good one.
    """
    order = np.argsort([w.mean() for w in waves])
    wave = np.asarray(waves[order[0]], dtype=np.float64)
    for k in order[1:]:
        extra = waves[k][waves[k] > wave[-1] + _ALIGN]
        wave = np.concatenate([wave, extra])
    n_spec = fluxes[0].shape[0]
    weighted = np.zeros((n_spec, wave.size))
    total = np.zeros((n_spec, wave.size))
    for k in order:
        index = np.searchsorted(wave, waves[k] - _ALIGN)
        index = np.clip(index, 0, wave.size - 1)
        if not np.all(np.abs(wave[index] - waves[k]) < _ALIGN):
            raise ValueError("the arms' wavelengths are not on one lattice; they cannot be "
                             "joined without resampling")
        good_ivar = np.where(masks[k], 0.0, np.asarray(ivars[k], dtype=np.float64))
        np.add.at(weighted.T, index, (good_ivar * fluxes[k]).T)
        np.add.at(total.T, index, good_ivar.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        flux = np.where(total > 0, weighted / total, 0.0)
    return wave, flux, total, total <= 0


@register_reader("desi", identifier=desi_identify, priority=10)
def read_desi(source: Any, *, arms: str = "joined") -> SpectrumSet:
    """Read a DESI coadd or spectra file: one row per target (coadd) or per exposure.

    Parameters
    ----------
    source : path, file object or HDUList
    arms : {"joined", "B", "R", "Z"}
        The three arms joined into one spectrum (the default; see :func:`join_arms`), or
        one arm.

    Returns
    -------
    SpectrumSet with one row per FIBERMAP row on one wavelength grid (vacuum Angstrom),
    flux in 1e-17 erg/s/cm^2/Angstrom; ids the TARGETIDs (``<targetid>/<expid>`` in
    spectra files, where a target has several rows); meta columns targetid, ra, dec
    (TARGET_RA/DEC) and, where given, expid, night, tileid, fiber, fiberstatus.
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        present = _arms(hdul)
        chosen = present if arms == "joined" else [arms]
        if arms != "joined" and arms not in present:
            raise ReadError(name, f"has no arm {arms!r} (arms: {', '.join(present)})")
        if arms not in ("joined", "B", "R", "Z"):
            raise ValueError(f"arms must be 'joined', 'B', 'R' or 'Z', got {arms!r}")
        waves, fluxes, ivars, masks = [], [], [], []
        for arm in chosen:
            wave = np.asarray(hdul[f"{arm}_WAVELENGTH"].data, dtype=np.float64).ravel()
            flux = np.atleast_2d(np.asarray(hdul[f"{arm}_FLUX"].data, dtype=np.float64))
            ivar = np.atleast_2d(np.asarray(hdul[f"{arm}_IVAR"].data, dtype=np.float64))
            mask = (np.atleast_2d(np.asarray(hdul[f"{arm}_MASK"].data)) != 0
                    if f"{arm}_MASK" in {h.name.upper() for h in hdul}
                    else np.zeros(flux.shape, bool))
            if not (flux.shape == ivar.shape == mask.shape and flux.shape[1] == wave.size):
                raise ReadError(name, f"arm {arm}: WAVELENGTH {wave.shape}, FLUX {flux.shape}, "
                                      f"IVAR {ivar.shape} and MASK {mask.shape} do not agree")
            unit = str(hdul[f"{arm}_WAVELENGTH"].header.get("BUNIT", "Angstrom")).strip()
            if unit.lower() not in ("angstrom", "angstroms", "a"):
                raise ReadError(name, f"{arm}_WAVELENGTH is in '{unit}', not Angstrom")
            waves.append(wave)
            fluxes.append(flux)
            ivars.append(ivar)
            masks.append(mask)
        try:
            wave, flux, ivar, mask = join_arms(waves, fluxes, ivars, masks)
        except ValueError as err:
            raise ReadError(name, str(err)) from None
        check_wavelengths(wave, name, "DESI data model (Angstrom)")
        fibermap = hdul["FIBERMAP"].data
        n = flux.shape[0]
        if fibermap is None or len(fibermap) != n:
            raise ReadError(name, f"FIBERMAP has {0 if fibermap is None else len(fibermap)} "
                                  f"rows for {n} spectra")
        cols = {c.upper(): c for c in fibermap.columns.names}
        targetid = [int(t) for t in fibermap[cols["TARGETID"]]] if "TARGETID" in cols \
            else list(range(n))
        meta: dict[str, list[Any]] = {"survey": ["desi"] * n, "targetid": targetid}
        for key, col in _FIBERMAP.items():
            if key in cols and col not in meta:
                values = fibermap[cols[key]]
                meta[col] = [v.strip() if isinstance(v, str) else v for v in values.tolist()]
        head = hdul[0].header
        for key in ("SURVEY", "PROGRAM", "SPGRP", "SPGRPVAL"):
            if key in head:
                meta[key.lower()] = [head[key]] * n
        meta.update({k: [v] * n for k, v in medium_meta(
            "vacuum", "DESI data model (vacuum)", "Angstrom", "DESI data model (BUNIT)").items()})
    repeated = len(set(targetid)) < n
    ids = [f"{t}/{e}" for t, e in zip(targetid, meta.get("expid", range(n)), strict=True)] \
        if repeated else [str(t) for t in targetid]
    return SpectrumSet(wave=wave, flux=flux, ivar=ivar, mask=mask, ids=ids, meta=meta)
