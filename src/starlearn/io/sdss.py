"""SDSS, SEGUE and BOSS optical spectra (``spec-PLATE-MJD-FIBER.fits``, DR8 and later).

Data model: https://data.sdss.org/datamodel/files/BOSS_SPECTRO_REDUX/RUN2D/spectra/PLATE4/spec.html
HDU 1 (COADD) is a binary table with one row per pixel: ``loglam`` (log10 vacuum Angstrom),
``flux`` (1e-17 erg/s/cm^2/A), ``ivar``, ``and_mask``, ``or_mask``...; HDU 2 holds the
spectro-photometric summary (PLATE, MJD, FIBERID, Z, CLASS, SUBCLASS, SN_MEDIAN_ALL).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.grid import C_KMS
from starlearn.io.fitsutil import as_hdulist, column, identify_hdulist, source_name
from starlearn.io.registry import register_reader
from starlearn.spectra import SpectrumSet

__all__ = ["read_sdss_spec", "sdss_spec_identify"]

_SUMMARY = {"PLATE": "plate", "MJD": "mjd", "FIBERID": "fiberid", "Z": "z", "Z_ERR": "z_err",
            "CLASS": "class", "SUBCLASS": "subclass", "SN_MEDIAN_ALL": "snr",
            "ELODIE_TEFF": "elodie_teff", "ELODIE_LOGG": "elodie_logg",
            "ELODIE_FEH": "elodie_feh"}


def sdss_spec_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                       **kwargs: Any) -> bool:
    """HDU 1 is a one-row-per-pixel table with loglam, flux and ivar columns."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            return False
        cols = {c.name.lower(): c for c in hdul[1].columns}
        return ({"loglam", "flux", "ivar"} <= set(cols) and cols["flux"].format.repeat == 1
                and hdul[1].header.get("NAXIS2", 0) > 1)


@register_reader("sdss-spec", identifier=sdss_spec_identify, priority=10)
def read_sdss_spec(source: Any, *, mask_bits: str = "and") -> SpectrumSet:
    """Read an SDSS/SEGUE/BOSS ``spec-*.fits`` file.

    Parameters
    ----------
    source : path, file object or HDUList
    mask_bits : {"and", "or", "none"}
        Pixels with a non-zero ``and_mask`` (the default), ``and_mask | or_mask``, or none
        are bad.

    Returns
    -------
    SpectrumSet with one spectrum: vacuum wavelength (Angstrom), flux in
    1e-17 erg/s/cm^2/A, ivar; meta columns plate, mjd, fiberid, z, rv (= z c, km/s),
    class, subclass, snr (SN_MEDIAN_ALL).
    """
    if mask_bits not in ("and", "or", "none"):
        raise ValueError(f"mask_bits must be 'and', 'or' or 'none', got {mask_bits!r}")
    name = source_name(source)
    with as_hdulist(source) as hdul:
        table = hdul[1].data
        where = "HDU 1 (COADD)"
        wave = 10.0 ** column(table, "loglam", name, where).astype(np.float64)
        flux = column(table, "flux", name, where).astype(np.float64)
        ivar = column(table, "ivar", name, where).astype(np.float64)
        names = {c.lower() for c in table.columns.names}
        bad = np.zeros(flux.shape, dtype=bool)
        if mask_bits in ("and", "or") and "and_mask" in names:
            bad |= column(table, "and_mask", name, where) != 0
        if mask_bits == "or" and "or_mask" in names:
            bad |= column(table, "or_mask", name, where) != 0
        meta: dict[str, list[Any]] = {"survey": ["sdss"]}
        if len(hdul) > 2 and isinstance(hdul[2], fits.BinTableHDU) and len(hdul[2].data):
            summary = hdul[2].data
            cols = {c.upper(): c for c in summary.columns.names}
            for key, col in _SUMMARY.items():
                if key in cols:
                    value = summary[cols[key]][0]
                    meta[col] = [value.strip() if isinstance(value, str) else value]
        head = hdul[0].header
        for key in ("PLATEID", "MJD", "FIBERID"):
            if key in head and key.lower().replace("plateid", "plate") not in meta:
                meta[key.lower().replace("plateid", "plate")] = [head[key]]
        if "z" in meta:
            meta["rv"] = [float(meta["z"][0]) * C_KMS]
    ident = "-".join(str(meta[k][0]) for k in ("plate", "mjd", "fiberid") if k in meta)
    return SpectrumSet(wave=wave, flux=flux, ivar=ivar, mask=bad, ids=[ident or name],
                       meta=meta)
