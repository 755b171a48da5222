"""Subaru PFS spectra: pfsObject / pfsSingle, pfsArm, and the Galactic Archaeology pfsGAObject.

Data model: https://github.com/Subaru-PFS/datamodel (datamodel.txt and
python/pfs/datamodel/), and https://github.com/Subaru-PFS/ga_datamodel for pfsGAObject.
PFS wavelengths are vacuum nanometres.

* **pfsObject** (combined spectrum of one object; pfsSingle has the same layout).
  Current layout: image HDUs ``FLUX`` (nJy), ``MASK``, ``COVAR`` (3 x N; row 0 the
  variance), ``SKY``, a ``WAVELENGTH`` image or the FLUX header's WCS, and ``FLUX_TABLE``
  (the merged, unresampled pixels: wavelength [nm], flux, error = sigma, mask). The 2016
  layout: ``FLUX`` with a WCS whose ``CRPIX1 = 0`` counts pixels from 0 (CRVAL1 = 350 nm at
  the first pixel), ``COVAR``, ``MASK``, and ``FLUXTBL`` (lambda [nm], flux, fluxVariance,
  mask).
* **pfsArm** (one arm, all fibres of a visit): ``FLUX``, ``MASK``, ``SKY`` and
  ``WAVELENGTH`` images of shape (n_fibres, n_pixels), wavelengths per fibre and pixel,
  ``COVAR`` (n_fibres, 3, n_pixels), ``CONFIG``; the current layout adds ``FIBERID``.
* **pfsGAObject**: a pfsObject (FLUX, MASK, WAVELENGTH, COVAR, FLUX_TABLE ...) with the
  GA pipeline's results: ``STPARAM`` (or STELLARPARAM/STELLARPARAMS) rows of (method,
  frame, param, unit, value, valueErr, flag) for v_los, T_eff, log_g, Fe_H (M_H), a_Fe
  (a_M), and ``ABUND``.
* **pfsConfig** files describe the fibre configuration and hold no spectrum; reading one
  is an error that says so.

Mask planes are named by ``MP_<NAME> = bit`` keys (in the primary header or the MASK
HDU); every set bit makes a pixel bad except ``REFLINE`` (a reference-line marker).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.io.fitsutil import ReadError, as_hdulist, column, identify_hdulist, source_name
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import check_wavelengths, medium_meta
from starlearn.spectra import SpectrumSet
from starlearn.units import to_angstrom, wavelength_unit

__all__ = ["pfs_arm_identify", "pfs_config_identify", "pfs_gaobject_identify",
           "pfs_object_identify", "read_pfs_arm", "read_pfs_config", "read_pfs_gaobject",
           "read_pfs_object"]

_VACUUM_NM = ("vacuum", "PFS data model (vacuum)")
_GA_TABLES = ("STPARAM", "STELLARPARAM", "STELLARPARAMS")
_GA_LABELS = {"t_eff": "teff", "teff": "teff", "log_g": "logg", "logg": "logg",
              "fe_h": "fe_h", "m_h": "m_h", "a_fe": "alpha_fe", "a_m": "alpha_m",
              "alpha_fe": "alpha_fe", "alpha_m": "alpha_m"}


def _names(hdul: fits.HDUList) -> set[str]:
    return {h.name.upper() for h in hdul}


def _is_image(hdul: fits.HDUList, extname: str) -> bool:
    return extname in _names(hdul) and not isinstance(hdul[extname], fits.BinTableHDU)


def _wave_meta(n: int) -> dict[str, list[Any]]:
    return {k: [v] * n for k, v in medium_meta(*_VACUUM_NM, "nm", "PFS data model (nm)").items()}


def _bad(mask: np.ndarray, *headers: Any) -> np.ndarray:
    """Bad pixels: any mask bit but REFLINE (its bit from an MP_REFLINE key)."""
    mask = np.asarray(mask).astype(np.int64)
    for header in headers:
        for key in ("MP_REFLINE", "HIERARCH MP_REFLINE"):
            if header is not None and key in header:
                return (mask & ~np.int64(1 << int(header[key]))) != 0
    return mask != 0


def _ivar_from_variance(variance: np.ndarray) -> np.ndarray:
    variance = np.asarray(variance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ivar = np.where(variance > 0, 1.0 / variance, 0.0)
    ivar[~np.isfinite(ivar)] = 0.0
    return ivar


def _placeholder_check(name: str, ivar: np.ndarray, flux: np.ndarray) -> None:
    if not np.any(ivar > 0) and np.all(np.nan_to_num(flux) == 0):
        raise ReadError(name, "every pixel has flux 0 and variance 0: a data-model placeholder "
                              "with no spectrum in it")


# ---------------------------------------------------------------- pfsObject
def pfs_object_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                        **kwargs: Any) -> bool:
    """PFS pfsObject/pfsSingle: a 1-D FLUX image with MASK and COVAR, and a FLUX_TABLE or
    (2016) FLUXTBL; not a pfsGAObject."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None:
            return False
        names = _names(hdul)
        if names & set(_GA_TABLES) or not _is_image(hdul, "FLUX") or "MASK" not in names:
            return False
        return hdul["FLUX"].header.get("NAXIS") == 1 and bool({"FLUX_TABLE", "FLUXTABLE",
                                                               "FLUXTBL"} & names)


def _image_wave(hdul: fits.HDUList, n_pix: int, name: str) -> np.ndarray:
    """Wavelengths (nm) of the FLUX image's pixels: the WAVELENGTH image, else the FLUX
    WCS (2016: CRPIX1 = 0 counts from 0; current: the PFS writer's convention
    lambda_i = CRVAL1 + CDELT1 (i + 2 - CRPIX1), i from 0, in CUNIT1)."""
    if _is_image(hdul, "WAVELENGTH"):
        return np.asarray(hdul["WAVELENGTH"].data, dtype=np.float64).ravel()
    head = hdul["FLUX"].header
    if "CRVAL1" not in head:
        raise ReadError(name, "FLUX has no wavelength WCS and there is no WAVELENGTH HDU")
    step = float(head.get("CD1_1", head.get("CDELT1", np.nan)))
    crpix = float(head.get("CRPIX1", 0.0))
    i = np.arange(n_pix)
    if str(head.get("CTYPE1", "")).strip().upper().startswith("WAVE"):
        unit = wavelength_unit(head.get("CUNIT1")) or wavelength_unit("nm")
        return to_angstrom(float(head["CRVAL1"]) + step * (i + 2 - crpix), unit) / 10.0
    return float(head["CRVAL1"]) + step * (i - crpix)


def _table_arrays(hdu: fits.BinTableHDU, name: str) -> tuple[np.ndarray, ...]:
    data = hdu.data
    cols = {c.lower() for c in data.columns.names}
    wave = column(data, "wavelength" if "wavelength" in cols else "lambda", name, hdu.name)
    flux = column(data, "flux", name, hdu.name).astype(np.float64)
    if "error" in cols:
        ivar = _ivar_from_variance(column(data, "error", name, hdu.name).astype(np.float64) ** 2)
    else:
        ivar = _ivar_from_variance(column(data, "fluxvariance", name, hdu.name))
    return np.asarray(wave, np.float64), flux, ivar, column(data, "mask", name, hdu.name)


def _object_arrays(hdul: fits.HDUList, name: str, table: bool | None) -> tuple[np.ndarray, ...]:
    names = _names(hdul)
    table_name = next((n for n in ("FLUX_TABLE", "FLUXTABLE", "FLUXTBL") if n in names), None)
    legacy = table_name == "FLUXTBL"
    use_table = legacy if table is None else table
    if use_table:
        if table_name is None:
            raise ReadError(name, "has no FLUX_TABLE")
        hdu = hdul[table_name]
        wave, flux, ivar, mask = _table_arrays(hdu, name)
        bad = _bad(mask, hdu.header, hdul["MASK"].header if "MASK" in names else None,
                   hdul[0].header)
    else:
        flux = np.asarray(hdul["FLUX"].data, dtype=np.float64).ravel()
        wave = _image_wave(hdul, flux.size, name)
        if "COVAR" in names:
            variance = np.atleast_2d(np.asarray(hdul["COVAR"].data, np.float64))[0]
        elif "VARIANCE" in names:
            variance = np.asarray(hdul["VARIANCE"].data, np.float64).ravel()
        else:
            raise ReadError(name, "has no COVAR or VARIANCE HDU for the flux errors")
        ivar = _ivar_from_variance(variance)
        bad = _bad(hdul["MASK"].data.ravel(), hdul["MASK"].header, hdul[0].header)
    return wave, flux, ivar, bad


def _finish_one(name: str, wave_nm: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                bad: np.ndarray, ident: str, meta: dict[str, list[Any]],
                labels: dict[str, float] | None = None) -> SpectrumSet:
    _placeholder_check(name, ivar, flux)
    wave = to_angstrom(wave_nm, wavelength_unit("nm"))
    finite = np.isfinite(wave)
    check_wavelengths(wave[finite], name, "PFS data model (nm)")
    wave, flux, ivar, bad = wave[finite], flux[finite], ivar[finite], bad[finite]
    order = np.argsort(wave, kind="stable")
    wave, flux, ivar, bad = wave[order], flux[order], ivar[order], bad[order]
    keep = np.concatenate([[True], np.diff(wave) > 0])
    names = list(labels) if labels else []
    return SpectrumSet(wave=wave[keep], flux=flux[keep], ivar=ivar[keep], mask=bad[keep],
                       labels=[[labels[k] for k in names]] if labels else None,
                       label_names=names, ids=[ident], meta={**meta, **_wave_meta(1)})


def _object_meta(hdul: fits.HDUList, name: str) -> tuple[str, dict[str, list[Any]]]:
    head = hdul[0].header
    target = hdul["TARGET"].header if "TARGET" in _names(hdul) else fits.Header()
    meta: dict[str, list[Any]] = {"survey": ["pfs"]}
    for key in ("OBJID", "CATID", "TRACT", "PATCH"):
        value = head.get(key, target.get(key))
        if value is not None:
            meta[key.lower()] = [value]
    return str(meta.get("objid", [name])[0]), meta


@register_reader("pfs-object", identifier=pfs_object_identify, priority=10)
def read_pfs_object(source: Any, *, table: bool | None = None) -> SpectrumSet:
    """Read a Subaru PFS pfsObject or pfsSingle file (2016 or current data model).

    Parameters
    ----------
    source : path, file object or HDUList
    table : bool, optional
        True reads the merged, unresampled pixels (FLUX_TABLE / 2016 FLUXTBL, explicit
        wavelengths), False the resampled FLUX/COVAR/MASK images. The default is the images
        for the current layout and the table for the 2016 one, whose FLUX image grid is
        off by half a pixel from its own table (measured: the image matches the table's
        flux best at lambda_i = 350 + 0.1 (i - 0.5) nm, not at the zero-based WCS reading
        350 + 0.1 i).

    Returns
    -------
    SpectrumSet with one spectrum: vacuum wavelength in Angstrom (converted from nm), flux
    in nJy, ivar in nJy^-2; meta columns objid, catid, tract, patch (when given).
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        wave, flux, ivar, bad = _object_arrays(hdul, name, table)
        ident, meta = _object_meta(hdul, name)
    return _finish_one(name, wave, flux, ivar, bad, ident, meta)


# ---------------------------------------------------------------- pfsGAObject
def pfs_gaobject_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                          **kwargs: Any) -> bool:
    """PFS pfsGAObject: FLUX and WAVELENGTH images and a stellar-parameter table."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None:
            return False
        names = _names(hdul)
        return bool(names & set(_GA_TABLES)) and _is_image(hdul, "FLUX")


def _ga_labels(hdul: fits.HDUList, name: str) -> tuple[dict[str, float], dict[str, float]]:
    """Labels and their errors from STPARAM (flagged values NaN); v_los goes to rv."""
    hdu = next(hdul[n] for n in _GA_TABLES if n in _names(hdul))
    labels: dict[str, float] = {}
    extra: dict[str, float] = {}
    data = hdu.data
    if data is None:
        return labels, extra
    cols = {c.lower(): c for c in data.columns.names}
    for row in data:
        param = str(row[cols["param"]]).strip().lower()
        value = float(row[cols["value"]])
        error = float(row[cols["valueerr"]]) if "valueerr" in cols else np.nan
        if "flag" in cols and bool(row[cols["flag"]]):
            value = error = np.nan
        if param == "v_los":
            extra["rv"], extra["rv_err"] = value, error
        elif param in _GA_LABELS:
            labels[_GA_LABELS[param]] = value
            extra[f"{_GA_LABELS[param]}_err"] = error
    return labels, extra


@register_reader("pfs-gaobject", identifier=pfs_gaobject_identify, priority=10)
def read_pfs_gaobject(source: Any, *, table: bool = False) -> SpectrumSet:
    """Read a PFS Galactic Archaeology pfsGAObject file: spectrum and GA pipeline labels.

    Parameters
    ----------
    source : path, file object or HDUList
    table : bool
        Read FLUX_TABLE instead of the FLUX/COVAR/MASK images.

    Returns
    -------
    SpectrumSet with one spectrum (vacuum Angstrom, nJy), labels from STPARAM (teff, logg,
    fe_h or m_h, alpha_fe or alpha_m; flagged values NaN) with their errors in meta
    (``<label>_err``), rv = v_los (km/s).
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        wave, flux, ivar, bad = _object_arrays(hdul, name, table)
        ident, meta = _object_meta(hdul, name)
        labels, extra = _ga_labels(hdul, name)
    meta.update({k: [v] for k, v in extra.items()})
    return _finish_one(name, wave, flux, ivar, bad, ident, meta, labels)


# ---------------------------------------------------------------- pfsArm
def pfs_arm_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                     **kwargs: Any) -> bool:
    """PFS pfsArm: 2-D FLUX, MASK and WAVELENGTH images (one row per fibre) and CONFIG."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or not all(_is_image(hdul, n) for n in ("FLUX", "MASK", "WAVELENGTH")):
            return False
        return (hdul["FLUX"].header.get("NAXIS") == 2
                and hdul["WAVELENGTH"].header.get("NAXIS") == 2 and "CONFIG" in _names(hdul))


@register_reader("pfs-arm", identifier=pfs_arm_identify, priority=10)
def read_pfs_arm(source: Any) -> SpectrumSet:
    """Read a Subaru PFS pfsArm file: one spectrum per fibre of one arm and visit.

    Returns
    -------
    SpectrumSet with one row per fibre on its own wavelengths (vacuum Angstrom), flux in
    the file's unit (counts or electrons), ivar from COVAR row 0; ids ``<visit>/<fiberId>``;
    meta columns fiber_id, visit, pfs_config_id.
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        names = _names(hdul)
        flux = np.atleast_2d(np.asarray(hdul["FLUX"].data, dtype=np.float64))
        wave_nm = np.atleast_2d(np.asarray(hdul["WAVELENGTH"].data, dtype=np.float64))
        mask = np.atleast_2d(np.asarray(hdul["MASK"].data))
        if "COVAR" in names:
            variance = np.asarray(hdul["COVAR"].data, dtype=np.float64)
            variance = variance[:, 0, :] if variance.ndim == 3 else np.atleast_2d(variance)
        else:
            raise ReadError(name, "has no COVAR HDU for the flux errors")
        if not flux.shape == wave_nm.shape == mask.shape == variance.shape:
            raise ReadError(name, f"FLUX {flux.shape}, WAVELENGTH {wave_nm.shape}, MASK "
                                  f"{mask.shape} and COVAR {variance.shape} differ")
        n = flux.shape[0]
        if "FIBERID" in names:
            fibers = np.asarray(hdul["FIBERID"].data).ravel().astype(int).tolist()
        else:
            fibers = list(range(1, n + 1))
        config = hdul["CONFIG"].data if "CONFIG" in names else None
        visit = int(config["visit"][0]) if config is not None and "visit" in \
            config.columns.names and len(config) else -1
        config_id = int(config["pfsConfigId"][0]) if config is not None and "pfsConfigId" in \
            config.columns.names and len(config) else -1
        ivar = _ivar_from_variance(variance)
        _placeholder_check(name, ivar, flux)
        bad = _bad(mask, hdul["MASK"].header, hdul[0].header)
    wave = to_angstrom(wave_nm, wavelength_unit("nm"))
    check_wavelengths(wave[np.isfinite(wave)], name, "PFS data model (nm)")
    if np.any(np.diff(wave, axis=1) < 0):
        order = np.argsort(wave, axis=1, kind="stable")
        wave, flux, ivar, bad = (np.take_along_axis(a, order, axis=1)
                                 for a in (wave, flux, ivar, bad))
    meta = {"survey": ["pfs"] * n, "fiber_id": fibers, "visit": [visit] * n,
            "pfs_config_id": [config_id] * n, **_wave_meta(n)}
    shared = n == 1 or bool(np.all(wave == wave[0]))  # e.g. a merged arm on one grid
    return SpectrumSet(wave=wave[0] if shared else wave, flux=flux, ivar=ivar, mask=bad,
                       ids=[f"{visit}/{f}" for f in fibers], meta=meta)


# ---------------------------------------------------------------- pfsConfig
def pfs_config_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                        **kwargs: Any) -> bool:
    """A PFS fibre configuration (pfsConfig / pfsDesign): a table of fiberId, objId, ra, dec
    and no spectrum."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 2 or "FLUX" in _names(hdul):
            return False
        table = hdul[1]
        return isinstance(table, fits.BinTableHDU) and {"fiberid", "objid", "ra", "dec"} <= {
            c.lower() for c in table.columns.names}


@register_reader("pfs-config", identifier=pfs_config_identify, priority=10)
def read_pfs_config(source: Any) -> SpectrumSet:
    """A PFS pfsConfig/pfsDesign file holds no spectrum: always raises ReadError saying
    what the file is (the fibre table that pfsArm and pfsObject files refer to)."""
    raise ReadError(source_name(source), "a PFS fibre configuration table (pfsConfig / "
                                         "pfsDesign: fiberId, objId, ra, dec), not a spectrum")
