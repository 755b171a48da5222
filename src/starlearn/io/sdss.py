"""SDSS, SEGUE, BOSS and eBOSS optical spectra: spec / spec-lite (DR8-DR17) and spSpec (DR6/DR7).

Data models:

* ``spec-PLATE-MJD-FIBER.fits`` (full and lite), SDSS-I/II reprocessed (run2d 26, 103, 104),
  SEGUE, BOSS and eBOSS:
  https://data.sdss.org/datamodel/files/BOSS_SPECTRO_REDUX/RUN2D/spectra/PLATE4/spec.html.
  HDU 1 (COADD) is a table with one row per pixel: ``loglam`` (log10 vacuum Angstrom),
  ``flux`` (1e-17 erg/s/cm^2/Angstrom), ``ivar``, ``and_mask``, ``or_mask`` ...; HDU 2 is
  the object summary (SPECOBJ for SDSS-I/II, SPALL for BOSS: PLATE, MJD, FIBERID, CLASS,
  SUBCLASS, Z, SN_MEDIAN_ALL ...); the full files add one table per exposure and camera.
  The COADD's first pixel is not ``COEFF0``: the ``loglam`` column is authoritative.
* ``spSpec-MJD-PLATE-FIBER.fit`` (DR1-DR7 spectro1d):
  https://classic.sdss.org/dr7/dm/flatFiles/spSpec.html. The primary HDU is a 5 x N image
  (ARRAY1..4 = SPECTRUM, CONTINUUM-SUBTRACTED SPECTRUM, ERROR (sigma), MASK; the fifth row
  is undocumented) on ``log10(lambda) = COEFF0 + COEFF1 i``; HDUs 1-6 are line, redshift
  and mask tables whose "wave" columns are line wavelengths, not the spectral axis.

SDSS wavelengths are vacuum and heliocentric (``VACUUM = T``; some releases write the
string 'T'). Every SDSS product says ``TELESCOP = 'SDSS 2.5-M'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.grid import C_KMS
from starlearn.io.fitsutil import (
    ReadError,
    as_hdulist,
    column,
    header_value,
    identify_hdulist,
    source_name,
)
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import keyword_medium, medium_meta, to_vacuum
from starlearn.spectra import SpectrumSet

__all__ = ["SPSPEC_CLASSES", "read_sdss_spec", "read_sdss_spspec", "sdss_spec_identify",
           "sdss_spspec_identify"]

_SUMMARY = {"PLATE": "plate", "MJD": "mjd", "FIBERID": "fiberid", "Z": "z", "Z_ERR": "z_err",
            "CLASS": "class", "SUBCLASS": "subclass", "SN_MEDIAN_ALL": "snr",
            "PLUG_RA": "ra", "PLUG_DEC": "dec", "ZWARNING": "zwarning",
            "ELODIE_TEFF": "elodie_teff", "ELODIE_LOGG": "elodie_logg",
            "ELODIE_FEH": "elodie_feh"}

SPSPEC_CLASSES = {0: "UNKNOWN", 1: "STAR", 2: "GALAXY", 3: "QSO", 4: "HIZ_QSO", 5: "SKY",
                  6: "STAR_LATE", 7: "GAL_EM"}
"""spSpec SPEC_CLN codes (DR7 spectro1d)."""

_SPSPEC_2D_BITS = (1 << 29) - 1
"""SPPIXMASK bits 0-28 (set by the 2-D pipeline: fibre and pixel problems); the 1-D
pipeline's bits above (e.g. emission-line flags) do not make a pixel bad."""


def _is_sdss(header: Any) -> bool:
    return str(header.get("TELESCOP", "")).strip().upper().startswith("SDSS")


def _medium(header: Any) -> tuple[str, str]:
    return keyword_medium(header, ("vacuum", "SDSS convention (vacuum)"))


def sdss_spec_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                       **kwargs: Any) -> bool:
    """An SDSS mark (TELESCOP 'SDSS 2.5-M', RUN2D/VERS2D, or a SPECOBJ/SPALL summary) and a
    one-row-per-pixel COADD table with loglam, flux and ivar."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None or len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            return False
        head = hdul[0].header
        marked = (_is_sdss(head) or "RUN2D" in head or "VERS2D" in head
                  or (len(hdul) > 2 and hdul[2].name in ("SPECOBJ", "SPALL")))
        if not marked:
            return False
        cols = {c.name.lower(): c for c in hdul[1].columns}
        return ({"loglam", "flux", "ivar"} <= set(cols) and cols["flux"].format.repeat == 1
                and hdul[1].header.get("NAXIS2", 0) > 1)


@register_reader("sdss-spec", identifier=sdss_spec_identify, priority=10)
def read_sdss_spec(source: Any, *, mask_bits: str = "and") -> SpectrumSet:
    """Read an SDSS/SEGUE/BOSS/eBOSS ``spec-*.fits`` file (full or lite, DR8-DR17).

    Parameters
    ----------
    source : path, file object or HDUList
    mask_bits : {"and", "or", "none"}
        Pixels with a non-zero ``and_mask`` (the default), ``and_mask | or_mask``, or none
        are bad (pixels with ivar = 0 always are).

    Returns
    -------
    SpectrumSet with one spectrum: vacuum wavelength (Angstrom, heliocentric), flux in
    1e-17 erg/s/cm^2/Angstrom, ivar; meta columns plate, mjd, fiberid, z, rv (= z c, km/s),
    class, subclass, snr (SN_MEDIAN_ALL where given), ra, dec (PLUG_RA/PLUG_DEC) and the
    wavelength provenance.
    """
    if mask_bits not in ("and", "or", "none"):
        raise ValueError(f"mask_bits must be 'and', 'or' or 'none', got {mask_bits!r}")
    name = source_name(source)
    with as_hdulist(source) as hdul:
        table = hdul[1].data
        where = "HDU 1 (COADD)"
        head = hdul[0].header
        medium = _medium(head)
        wave = to_vacuum(10.0 ** column(table, "loglam", name, where).astype(np.float64),
                         medium[0])
        flux = column(table, "flux", name, where).astype(np.float64)
        ivar = column(table, "ivar", name, where).astype(np.float64)
        names = {c.lower() for c in table.columns.names}
        bad = np.zeros(flux.shape, dtype=bool)
        if mask_bits in ("and", "or") and "and_mask" in names:
            bad |= column(table, "and_mask", name, where) != 0
        if mask_bits == "or" and "or_mask" in names:
            bad |= column(table, "or_mask", name, where) != 0
        meta: dict[str, list[Any]] = {"survey": ["sdss"]}
        if len(hdul) > 2 and isinstance(hdul[2], fits.BinTableHDU) and hdul[2].data is not None \
                and len(hdul[2].data):
            summary = hdul[2].data
            cols = {c.upper(): c for c in summary.columns.names}
            for key, col in _SUMMARY.items():
                if key in cols:
                    value = summary[cols[key]][0]
                    meta[col] = [value.strip() if isinstance(value, str) else value]
        for key, col in (("PLATEID", "plate"), ("MJD", "mjd"), ("FIBERID", "fiberid"),
                         ("PLUG_RA", "ra"), ("PLUG_DEC", "dec")):
            if key in head and col not in meta:
                meta[col] = [head[key]]
        if "z" in meta:
            meta["rv"] = [float(meta["z"][0]) * C_KMS]
        meta.update({k: [v] for k, v in medium_meta(medium[0], medium[1], "log10 Angstrom",
                                                    "SDSS data model (loglam)").items()})
    ident = "-".join(str(meta[k][0]) for k in ("plate", "mjd", "fiberid") if k in meta)
    return SpectrumSet(wave=wave, flux=flux, ivar=ivar, mask=bad, ids=[ident or name],
                       meta=meta)


# ---------------------------------------------------------------- spSpec (DR6/DR7)
def sdss_spspec_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                         **kwargs: Any) -> bool:
    """An SDSS spSpec file: TELESCOP 'SDSS 2.5-M', a 2-D primary image whose rows ARRAY1..
    name (SPECTRUM, ..., ERROR), COEFF0/COEFF1."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None:
            return False
        head = hdul[0].header
        return (_is_sdss(head) and head.get("NAXIS") == 2 and "COEFF0" in head
                and str(head.get("ARRAY1", "")).strip().upper() == "SPECTRUM"
                and str(head.get("ARRAY3", "")).strip().upper() == "ERROR")


@register_reader("sdss-spspec", identifier=sdss_spspec_identify, priority=10)
def read_sdss_spspec(source: Any, *, mask_bits: str = "2d") -> SpectrumSet:
    """Read an SDSS DR1-DR7 ``spSpec-*.fit`` file (spectro1d output).

    Parameters
    ----------
    source : path, file object or HDUList
    mask_bits : {"2d", "all", "none"}
        Pixels whose MASK row (ARRAY4, SPPIXMASK) has one of the 2-D pipeline's bits 0-28
        set are bad (the default); "all" counts every bit (also the 1-D pipeline's line
        flags); "none" none. Pixels with ERROR = 0 are always bad.

    Returns
    -------
    SpectrumSet with one spectrum: vacuum wavelength (Angstrom, heliocentric, from
    COEFF0/COEFF1), flux in 1e-17 erg/s/cm^2/Angstrom, ivar = 1 / ERROR^2; meta columns
    plate, mjd, fiberid, name, z, z_err, rv (= z c, km/s), class (from SPEC_CLN), objtype,
    ra, dec (RAOBJ/DECOBJ), snr (SN_G) and the wavelength provenance.
    """
    bits = {"2d": _SPSPEC_2D_BITS, "all": -1, "none": 0}
    if mask_bits not in bits:
        raise ValueError(f"mask_bits must be '2d', 'all' or 'none', got {mask_bits!r}")
    name = source_name(source)
    with as_hdulist(source) as hdul:
        head = hdul[0].header
        data = np.asarray(hdul[0].data, dtype=np.float64)
        rows = {str(head.get(f"ARRAY{i + 1}", "")).strip().upper(): i
                for i in range(data.shape[0])}
        for needed in ("SPECTRUM", "ERROR"):
            if needed not in rows:
                raise ReadError(name, f"primary image has no {needed} row (ARRAY1..4)")
        c0 = float(header_value(head, "COEFF0", name, "primary HDU"))
        c1 = float(header_value(head, "COEFF1", name, "primary HDU"))
        medium = _medium(head)
        wave = to_vacuum(10.0 ** (c0 + c1 * np.arange(data.shape[1])), medium[0])
        flux = data[rows["SPECTRUM"]]
        error = data[rows["ERROR"]]
        with np.errstate(divide="ignore"):
            ivar = np.where(error > 0, 1.0 / error**2, 0.0)
        bad = np.zeros(flux.shape, dtype=bool)
        if "MASK" in rows:
            bad = (data[rows["MASK"]].astype(np.int64) & bits[mask_bits]) != 0
        plate, mjd, fiber = head.get("PLATEID"), head.get("MJD"), head.get("FIBERID")
        z = float(head.get("Z", np.nan))
        meta: dict[str, list[Any]] = {
            "survey": ["sdss"], "plate": [plate], "mjd": [mjd], "fiberid": [fiber],
            "name": [str(head.get("NAME", "")).strip()], "z": [z],
            "z_err": [float(head.get("Z_ERR", np.nan))], "rv": [z * C_KMS],
            "class": [SPSPEC_CLASSES.get(int(head.get("SPEC_CLN", 0)), "UNKNOWN")],
            "objtype": [str(head.get("OBJTYPE", "")).strip()],
            "ra": [float(head.get("RAOBJ", np.nan))], "dec": [float(head.get("DECOBJ", np.nan))],
            "snr": [float(head.get("SN_G", np.nan))],
            **{k: [v] for k, v in medium_meta(medium[0], medium[1], "log10 Angstrom",
                                              "SDSS data model (COEFF0/COEFF1)").items()}}
    ident = "-".join(str(v) for v in (plate, mjd, fiber) if v is not None)
    return SpectrumSet(wave=wave, flux=flux, ivar=ivar, mask=bad, ids=[ident or name],
                       meta=meta)
