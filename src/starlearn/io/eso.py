"""ESO spectra: Phase 3 science data products (1-D SCIENCE.SPECTRUM) and pipeline 1-D images.

* **Phase 3** (ESO Science Data Products Standard, GEN-SPE-ESO-33000-5335; the archive's
  1-D spectrum guide, http://archive.eso.org/cms/eso-data/help/1dspectra.html): an empty
  primary HDU with ``PRODCATG = 'SCIENCE.SPECTRUM'`` and one binary table (``SPECTRUM``, or
  ``PHASE3SPECTRUM`` for 4MOST L1 spectra, which follow the same layout) with one row of
  vector columns, told apart by their utypes ``TUTYPn``: ``...SpectralAxis.Value`` (WAVE),
  ``...FluxAxis.Value`` (FLUX), ``...FluxAxis.Accuracy.StatError`` (ERR or ERR_FLUX),
  optionally a quality column ``QUAL`` (0 = good). The wavelength unit is its ``TUNITn``
  (nm for X-shooter, UVES, HARPS products; Angstrom for 4MOST); the medium is the UCD
  ``TUCDn``: ``em.wl`` is vacuum, ``em.wl;obs.atmos`` air. ``SPECSYS`` gives the frame.
* **Pipeline 1-D images** (HARPS/HARPS-N DRS ``*_s1d_A.fits``, UVES ``red_sci_point``,
  FEROS ...): a primary 1-D image with CRVAL1/CDELT1 whose ``CTYPE1`` is often not
  standard (``'Angstrom'`` in HARPS s1d, ``'WAVELENGTH [Ang]'``: the unit written in the
  type) and no medium keyword; ESO's pipelines calibrate in air, and HARPS s1d spectra are
  barycentric (``HIERARCH ESO DRS BERV`` applied).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.io.fitsutil import ReadError, as_hdulist, identify_hdulist, source_name
from starlearn.io.generic import choose_medium, estimate_ivar, read_image_spectrum
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import check_wavelengths, medium_meta, to_vacuum
from starlearn.spectra import SpectrumSet
from starlearn.units import UnitProblem, to_angstrom, wavelength_unit

__all__ = ["eso_image_identify", "eso_phase3_identify", "read_eso_image", "read_eso_phase3"]

_ESO_AIR = ("air", "ESO pipeline convention (air)")


def _is_phase3_spectrum(header: Any) -> bool:
    return str(header.get("PRODCATG", "")).strip().upper().startswith("SCIENCE.SPECTRUM")


def _spectrum_table(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    return next((h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)
                 and _utype_columns(h).get("wave")), None)


def _utype_columns(hdu: fits.BinTableHDU) -> dict[str, str]:
    """Column names by role (wave, flux, error, quality) from the utypes TUTYPn, falling
    back to the standard names."""
    roles: dict[str, str] = {}
    head = hdu.header
    for i, col in enumerate(hdu.columns, start=1):
        utype = str(head.get(f"TUTYP{i}", "")).strip()
        prefix, _, rest = utype.partition(":") if ":" in utype else ("", "", utype)
        rest = rest.removeprefix("Spectrum.")
        if prefix.lower() not in ("", "spec", "spectrum"):
            continue  # eso:..., continuum:... columns are extras
        if rest == "Data.SpectralAxis.Value":
            roles.setdefault("wave", col.name)
        elif rest == "Data.FluxAxis.Value":
            roles.setdefault("flux", col.name)
        elif rest == "Data.FluxAxis.Accuracy.StatError":
            roles.setdefault("error", col.name)
        elif rest.startswith("Data.FluxAxis.Accuracy.Quality"):
            roles.setdefault("quality", col.name)
    upper = {c.upper(): c for c in hdu.columns.names}
    for role, names in (("wave", ("WAVE",)), ("flux", ("FLUX", "FLUX_REDUCED")),
                        ("error", ("ERR", "ERR_FLUX", "ERR_REDUCED")), ("quality", ("QUAL",))):
        if role not in roles:
            found = next((upper[n] for n in names if n in upper), None)
            if found:
                roles[role] = found
    return roles


def eso_phase3_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                        **kwargs: Any) -> bool:
    """An ESO Phase 3 / 4MOST L1 1-D spectrum: PRODCATG SCIENCE.SPECTRUM and a table with a
    spectral-axis column."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return (hdul is not None and _is_phase3_spectrum(hdul[0].header)
                and _spectrum_table(hdul) is not None)


@register_reader("eso-phase3", identifier=eso_phase3_identify, priority=10)
def read_eso_phase3(source: Any, *, medium: str = "auto") -> SpectrumSet:
    """Read an ESO Phase 3 SCIENCE.SPECTRUM product (X-shooter, UVES, HARPS, FEROS, ...,
    4MOST L1).

    Parameters
    ----------
    source : path, file object or HDUList
    medium : {"auto", "air", "vacuum"}
        "auto": the spectral column's UCD (``em.wl`` vacuum, ``em.wl;obs.atmos`` air),
        else ESO's air.

    Returns
    -------
    SpectrumSet with one spectrum per table row (one in every product seen), vacuum
    Angstrom, flux in the file's unit (``flux_unit`` in meta), ivar from the error column,
    pixels with non-zero QUAL masked; meta columns object, instrument, ra, dec, snr,
    specsys (the frame of the wavelengths), mjd, spec_res and the wavelength provenance.
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        head = hdul[0].header
        hdu = _spectrum_table(hdul)
        if hdu is None:
            raise ReadError(name, "no table with a spectral-axis column (WAVE)")
        roles = _utype_columns(hdu)
        if "flux" not in roles:
            raise ReadError(name, f"{hdu.name}: no flux column (columns: "
                                  f"{', '.join(hdu.columns.names)})")
        index = hdu.columns.names.index(roles["wave"]) + 1
        try:
            unit = wavelength_unit(hdu.columns[roles["wave"]].unit)
        except UnitProblem as err:
            raise ReadError(name, f"{hdu.name} column {roles['wave']}: {err}") from None
        if unit is None:
            raise ReadError(name, f"{hdu.name}: the wavelength column {roles['wave']} has no "
                                  "unit (TUNIT)")
        ucd = str(hdu.header.get(f"TUCD{index}", "")).strip().lower()
        convention = (("air", f"TUCD{index} = {ucd}") if "obs.atmos" in ucd else
                      ("vacuum", f"TUCD{index} = {ucd}") if ucd.startswith("em.wl") else _ESO_AIR)
        chosen = choose_medium(medium, {}, convention)
        data = hdu.data
        waves, fluxes, ivars, masks = [], [], [], []
        for row in range(len(data)):
            wave = to_angstrom(np.ravel(data[roles["wave"]][row]), unit)
            flux = np.ravel(data[roles["flux"]][row]).astype(np.float64)
            if "error" in roles:
                error = np.ravel(data[roles["error"]][row]).astype(np.float64)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ivar = np.where(error > 0, 1.0 / error**2, 0.0)
            else:
                ivar = estimate_ivar(flux)
            bad = (np.ravel(data[roles["quality"]][row]) != 0) if "quality" in roles else \
                np.zeros(flux.shape, bool)
            check_wavelengths(wave, name, f"unit from TUNIT of {roles['wave']}")
            order = np.argsort(wave, kind="stable")
            waves.append(to_vacuum(wave[order], chosen[0]))
            fluxes.append(flux[order])
            ivars.append(ivar[order])
            masks.append(bad[order])
        n = len(waves)
        ident = str(head.get("OBJECT", hdu.header.get("OBJECT", ""))).strip() or name
        meta = {"survey": [str(head.get("INSTRUME", "")).strip().lower() or "eso"] * n,
                "object": [ident] * n,
                "instrument": [str(head.get("INSTRUME", "")).strip()] * n,
                "ra": [float(head.get("RA", np.nan))] * n,
                "dec": [float(head.get("DEC", np.nan))] * n,
                "snr": [float(head.get("SNR", np.nan))] * n,
                "specsys": [str(head.get("SPECSYS", "")).strip()] * n,
                "mjd": [float(head.get("MJD-OBS", np.nan))] * n,
                "spec_res": [float(head.get("SPEC_RES", np.nan))] * n,
                "flux_unit": [str(hdu.columns[roles["flux"]].unit or "")] * n,
                **{k: [v] * n for k, v in medium_meta(chosen[0], chosen[1], unit.to_string(),
                                                      f"TUNIT{index}").items()}}
    return SpectrumSet(wave=waves[0] if n == 1 else np.vstack(waves), flux=np.vstack(fluxes),
                       ivar=np.vstack(ivars), mask=np.vstack(masks),
                       ids=[ident] if n == 1 else [f"{ident}/{i}" for i in range(n)], meta=meta)


def _is_eso(header: Any) -> bool:
    return (str(header.get("ORIGIN", "")).strip().upper().startswith("ESO")
            or str(header.get("TELESCOP", "")).strip().upper().startswith("ESO"))


def eso_image_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                       **kwargs: Any) -> bool:
    """An ESO pipeline 1-D spectrum image (ORIGIN or TELESCOP ESO, a 1-D image with
    CRVAL1 and a pixel step), not a Phase 3 product."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None:
            return False
        head = hdul[0].header
        return (_is_eso(head) and not _is_phase3_spectrum(head) and head.get("NAXIS") == 1
                and "CRVAL1" in head and ("CDELT1" in head or "CD1_1" in head))


@register_reader("eso-image", identifier=eso_image_identify, priority=10, medium="air")
def read_eso_image(source: Any, *, medium: str = "auto") -> SpectrumSet:
    """Read an ESO pipeline 1-D spectrum image (HARPS/HARPS-N DRS s1d, UVES, FEROS ...).

    Parameters
    ----------
    source : path, file object or HDUList
    medium : {"auto", "air", "vacuum"}
        "auto": a medium keyword where the header has one, else air (ESO's pipelines).

    Returns
    -------
    SpectrumSet with one spectrum (vacuum Angstrom; the unit from CUNIT1 or the one
    written in CTYPE1, else Angstrom, the unit of ESO's 1-D pipeline products); errors
    estimated from the data (``ivar_estimated``), as s1d files carry none; meta columns
    instrument and berv (km/s, the barycentric correction the DRS applied, where given).
    """
    with as_hdulist(source) as hdul:
        head = hdul[0].header
        extra = {"instrument": str(head.get("INSTRUME", "")).strip(),
                 "berv": float(head.get("HIERARCH ESO DRS BERV", np.nan))}
        return read_image_spectrum(hdul, medium=medium, convention_medium=_ESO_AIR,
                                   convention_unit=("Angstrom",
                                                    "ESO pipeline convention (Angstrom)"),
                                   meta=extra)
