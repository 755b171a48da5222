"""GALAH spectra (AAT/HERMES): DR3 and DR4 per-camera files and DR4 allstar fit spectra.

HERMES records each star with four cameras (CCDs), one file each, named
``<sobject_id><ccd>.fits`` (ccd 1 blue ~4,715-4,900 Å, 2 green ~5,650-5,875 Å, 3 red
~6,480-6,735 Å, 4 near-infrared ~7,585-7,885 Å; ``SPECTID`` BL, GN, RD, RR). Data models:

* **DR3** (https://docs.datacentral.org.au/galah/dr3/galah-dr3-spectra/, reduction 5.3,
  ``ORIGIN = 'GALAH DR3'``): HDU 0 the sky-subtracted flux (counts, barycentric, not
  corrected for the star's velocity), HDU 1 ``input_sigma`` its **relative** error
  (sigma / flux), HDUs 2-3 the spectrum without sky subtraction, HDU 4 the normalised
  spectrum, shifted to the rest frame, on its own linear WCS.
* **DR4 reduction** (v6.0, https://galah-survey.github.io/dr4/the_spectra): 8 image HDUs
  on one linear WCS: flux (counts), ``normalized``, ``relative_error``, sky, telluric,
  scattered light, cross-talk, resolution profile; barycentric (``DOPCOR``); the star's
  velocity in ``RVCOM`` (km/s).
* **DR4 allstar fit spectra** (``<sobject_id>_allstar_fit_spectrum.fits``): one table with
  columns ``wave`` (rest frame), ``sob`` (normalised observed flux), ``uob`` (its sigma),
  ``smod`` (the fitted model) and ``mob`` (True where the pixel was used in the fit), the
  four cameras concatenated.

GALAH wavelengths are **air** (the survey's convention; the files carry no keyword) in
Angstrom (``CUNIT1``); the readers return vacuum. :func:`join_cameras` (or
``sl.read(path, cameras="all")``) joins a star's four cameras into one spectrum.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.io.fitsutil import ReadError, as_hdulist, identify_hdulist, source_name
from starlearn.io.registry import register_reader
from starlearn.io.spectral_axis import check_wavelengths, medium_meta, spectral_axis, to_vacuum
from starlearn.spectra import SpectrumSet

__all__ = ["CAMERAS", "galah_allstar_identify", "galah_dr3_identify", "galah_dr4_identify",
           "join_cameras", "read_galah_allstar", "read_galah_dr3", "read_galah_dr4"]

CAMERAS = {"BL": 1, "GN": 2, "RD": 3, "RR": 4}
"""HERMES spectrograph IDs (header SPECTID) and the GALAH camera (CCD) numbers."""

_AIR = ("air", "GALAH convention (air)")
_FILE = re.compile(r"^(\d{15})([1-4])\.fits(\.gz)?$")
_ALLSTAR_COLUMNS = {"wave", "sob", "uob", "smod", "mob"}


def _is_hermes(header: Any) -> bool:
    return "HERMES" in str(header.get("INSTRUME", "")).upper()


def _names(hdul: fits.HDUList) -> list[str]:
    return [h.name.lower() for h in hdul]


def galah_dr3_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                       **kwargs: Any) -> bool:
    """A GALAH DR3 per-camera file: HERMES, HDU 1 'input_sigma', HDU 4 the normalised
    spectrum."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return (hdul is not None and len(hdul) >= 5 and _is_hermes(hdul[0].header)
                and _names(hdul)[1] == "input_sigma")


def galah_dr4_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                       **kwargs: Any) -> bool:
    """A GALAH DR4 reduction per-camera file: HERMES, 'normalized' and 'relative_error'
    image HDUs."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return (hdul is not None and _is_hermes(hdul[0].header)
                and {"normalized", "relative_error"} <= set(_names(hdul)))


def galah_allstar_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                           **kwargs: Any) -> bool:
    """A GALAH DR4 allstar fit spectrum: a table with wave, sob, uob, smod, mob."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return (hdul is not None and len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU)
                and _ALLSTAR_COLUMNS <= {c.lower() for c in hdul[1].columns.names})


def _camera(header: Any, name: str) -> tuple[str, int]:
    """(sobject_id, camera) from the file name, else the header (OBJECT, SPECTID)."""
    match = _FILE.match(os.path.basename(name))
    if match:
        return match.group(1), int(match.group(2))
    camera = CAMERAS.get(str(header.get("SPECTID", "")).strip().upper(), 0)
    return str(header.get("OBJECT", "")).strip(), camera


def _hdu_spectrum(hdu: Any, name: str, where: str) -> tuple[np.ndarray, np.ndarray, str, str]:
    flux = np.asarray(hdu.data, dtype=np.float64).ravel()
    axis = spectral_axis(hdu.header, flux.size, name=name, where=where)
    check_wavelengths(axis.wave, name, f"{where}, unit from {axis.unit_from}")
    return axis.wave, flux, axis.unit, axis.unit_from


def _relative_ivar(flux: np.ndarray, relative: np.ndarray) -> np.ndarray:
    sigma = np.abs(flux) * np.asarray(relative, dtype=np.float64).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        ivar = 1.0 / sigma**2
    ivar[~np.isfinite(ivar) | ~(relative > 0)] = 0.0
    return ivar


def _one(name: str, wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray, ident: str,
         unit: tuple[str, str], meta: dict[str, Any], mask: np.ndarray | None = None
         ) -> SpectrumSet:
    row = {"survey": "galah", **meta, **medium_meta(_AIR[0], _AIR[1], *unit)}
    order = np.argsort(wave, kind="stable")
    return SpectrumSet(wave=to_vacuum(wave[order], "air"), flux=flux[order], ivar=ivar[order],
                       mask=None if mask is None else mask[order], ids=[ident],
                       meta={k: [v] for k, v in row.items()})


def _siblings(name: str) -> list[str]:
    match = _FILE.match(os.path.basename(name))
    if not os.path.isfile(name) or match is None:
        raise ReadError(name, "cameras='all' needs the path of a file named "
                              "<sobject_id><ccd>.fits (its siblings are read with it)")
    folder = os.path.dirname(name)
    suffix = match.group(3) or ""
    paths = [os.path.join(folder, f"{match.group(1)}{ccd}.fits{suffix}") for ccd in (1, 2, 3, 4)]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise ReadError(name, f"cameras='all': missing {', '.join(map(os.path.basename, missing))}")
    return paths


def _all_cameras(spectrum: str, cameras: str) -> bool:
    """Check the per-camera readers' options; True when the four cameras are asked for."""
    if spectrum not in ("normalised", "normalized", "flux"):
        raise ValueError(f"spectrum must be 'normalised' or 'flux', got {spectrum!r}")
    if cameras not in ("one", "all"):
        raise ValueError(f"cameras must be 'one' or 'all', got {cameras!r}")
    return cameras == "all"


def _joined(reader: Any, name: str, spectrum: str) -> SpectrumSet:
    """A star's four cameras (the siblings of ``name``) read with ``reader`` and joined."""
    return join_cameras(SpectrumSet.concat([reader(p, spectrum=spectrum)
                                            for p in _siblings(name)]))


@register_reader("galah-dr3", identifier=galah_dr3_identify, priority=10, medium="air")
def read_galah_dr3(source: Any, *, spectrum: str = "normalised",
                   cameras: str = "one") -> SpectrumSet:
    """Read a GALAH DR3 per-camera spectrum.

    Parameters
    ----------
    source : path, file object or HDUList
    spectrum : {"normalised", "flux"}
        The normalised spectrum in the rest frame (HDU 4, the default) or the
        sky-subtracted flux in counts (HDU 0, barycentric; the star's velocity is not in the
        file: ``rv`` is NaN). Errors are ``input_sigma`` (relative) times the spectrum.
    cameras : {"one", "all"}
        This camera only, or the star's four cameras (the sibling files
        ``<sobject_id>1..4.fits`` in the same folder) joined by :func:`join_cameras`.

    Returns
    -------
    SpectrumSet with one spectrum (vacuum Angstrom; air in the file), id
    ``<sobject_id>/<ccd>`` (``<sobject_id>`` when joined); meta columns sobject_id, camera,
    rv (0 for the rest-frame normalised spectrum), baryeff (km/s), snr.
    """
    name = source_name(source)
    if _all_cameras(spectrum, cameras):
        return _joined(read_galah_dr3, name, spectrum)
    with as_hdulist(source) as hdul:
        head = hdul[0].header
        sobject_id, camera = _camera(head, name)
        relative = np.asarray(hdul[1].data, dtype=np.float64).ravel()
        hdu, where = (hdul[0], "HDU 0") if spectrum == "flux" else (hdul[4], "HDU 4")
        wave, flux, unit, unit_from = _hdu_spectrum(hdu, name, where)
        if relative.size != flux.size:
            raise ReadError(name, f"input_sigma has {relative.size} pixels, {where} {flux.size}")
        meta = {"sobject_id": sobject_id, "camera": camera,
                "rv": np.nan if spectrum == "flux" else 0.0,
                "baryeff": float(head.get("BARYEFF", np.nan)),
                "snr": float(np.nanmedian(1 / relative[relative > 0])) if np.any(
                    relative > 0) else np.nan}
        return _one(name, wave, flux, _relative_ivar(flux, relative),
                    f"{sobject_id}/{camera}", (unit, unit_from), meta)


@register_reader("galah-dr4", identifier=galah_dr4_identify, priority=10, medium="air")
def read_galah_dr4(source: Any, *, spectrum: str = "normalised",
                   cameras: str = "one") -> SpectrumSet:
    """Read a GALAH DR4 reduction (v6.0) per-camera spectrum.

    Parameters
    ----------
    source : path, file object or HDUList
    spectrum : {"normalised", "flux"}
        The ``normalized`` spectrum (the default) or the flux in counts; both barycentric,
        on the same grid; errors ``relative_error`` times the spectrum.
    cameras : {"one", "all"}
        As for :func:`read_galah_dr3`.

    Returns
    -------
    SpectrumSet with one spectrum (vacuum Angstrom); meta columns sobject_id, camera,
    rv (RVCOM, km/s, the star's velocity against the barycentric frame of the spectrum),
    rv_camera (RV of this camera), baryeff, snr, gaia_id, tmass_id, ra, dec.
    """
    name = source_name(source)
    if _all_cameras(spectrum, cameras):
        return _joined(read_galah_dr4, name, spectrum)
    with as_hdulist(source) as hdul:
        head = hdul[0].header
        sobject_id, camera = _camera(head, name)
        names = _names(hdul)
        hdu = hdul[0] if spectrum == "flux" else hdul[names.index("normalized")]
        wave, flux, unit, unit_from = _hdu_spectrum(hdu, name, hdu.name)
        relative = np.asarray(hdul[names.index("relative_error")].data, np.float64).ravel()
        meta = {"sobject_id": sobject_id, "camera": camera,
                "rv": float(head.get("RVCOM", np.nan)), "rv_camera": float(head.get("RV", np.nan)),
                "baryeff": float(head.get("BARYEFF", np.nan)),
                "snr": float(head.get("SNR", np.nan)),
                "gaia_id": str(head.get("GAIA_ID", "")).strip(),
                "tmass_id": str(head.get("2MASS_ID", "")).strip(),
                "ra": float(head.get("RA_ICRS", np.nan)),
                "dec": float(head.get("DEC_ICRS", np.nan))}
        return _one(name, wave, flux, _relative_ivar(flux, relative),
                    f"{sobject_id}/{camera}", (unit, unit_from), meta)


@register_reader("galah-dr4-allstar", identifier=galah_allstar_identify, priority=10,
                 medium="air")
def read_galah_allstar(source: Any, *, spectrum: str = "observed") -> SpectrumSet:
    """Read a GALAH DR4 ``*_allstar_fit_spectrum.fits`` table (the four cameras in one).

    Parameters
    ----------
    source : path, file object or HDUList
    spectrum : {"observed", "model"}
        The normalised observed spectrum (``sob``, errors ``uob``) or the fitted model
        (``smod``, with the observed errors).

    Returns
    -------
    SpectrumSet with one spectrum (vacuum Angstrom; the file's air wavelengths in the rest
    frame, rv 0), pixels not used in the fit (``mob`` False) masked; id the sobject_id of
    the file name.
    """
    if spectrum not in ("observed", "model"):
        raise ValueError(f"spectrum must be 'observed' or 'model', got {spectrum!r}")
    name = source_name(source)
    with as_hdulist(source) as hdul:
        table = hdul[1].data
        cols = {c.lower(): c for c in table.columns.names}
        wave = np.asarray(table[cols["wave"]], dtype=np.float64)
        check_wavelengths(wave, name, "GALAH data model (Angstrom)")
        flux = np.asarray(table[cols["smod" if spectrum == "model" else "sob"]], np.float64)
        sigma = np.asarray(table[cols["uob"]], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ivar = np.where(sigma > 0, 1.0 / sigma**2, 0.0)
        mask = ~np.asarray(table[cols["mob"]], dtype=bool)
    sobject_id = os.path.basename(name).split("_")[0]
    return _one(name, wave, flux, ivar, sobject_id,
                ("Angstrom", "GALAH data model (Angstrom)"),
                {"sobject_id": sobject_id, "camera": 0, "rv": 0.0}, mask=mask)


def join_cameras(spectra: SpectrumSet) -> SpectrumSet:
    """Join each star's camera spectra (rows with one ``sobject_id``) into one spectrum.

    GALAH's cameras do not overlap in wavelength, so a star's spectrum is its cameras
    concatenated in increasing wavelength; nothing is resampled. Stars keep the order of
    their first row; each needs the same number of pixels in all (e.g. four 4,096-pixel
    cameras).

    Parameters
    ----------
    spectra : SpectrumSet
        Rows from the GALAH readers (meta ``sobject_id`` and ``camera``).

    Returns
    -------
    SpectrumSet with one row per star, id the sobject_id, meta ``cameras`` (e.g. "1234").
    """
    if "sobject_id" not in spectra.meta.colnames:
        raise ValueError("join_cameras: the spectra have no meta column 'sobject_id'")
    stars = list(dict.fromkeys(str(s) for s in spectra.meta["sobject_id"]))
    rows = []
    for star in stars:
        index = np.flatnonzero(np.asarray(spectra.meta["sobject_id"]).astype(str) == star)
        waves = [spectra.wave_of(int(i)) for i in index]
        order = index[np.argsort([w[0] for w in waves])]
        wave = np.concatenate([spectra.wave_of(int(i)) for i in order])
        if np.any(np.diff(wave) <= 0):
            raise ValueError(f"join_cameras: star {star}: the cameras overlap in wavelength")
        rows.append((star, order, wave))
    sizes = {r[2].size for r in rows}
    if len(sizes) > 1:
        raise ValueError(f"join_cameras: the stars have different pixel counts {sorted(sizes)} "
                         "(a camera missing?)")
    meta = {c: [spectra.meta[c][int(r[1][0])] for r in rows] for c in spectra.meta.colnames
            if c not in ("camera", "rv_camera")}
    meta["cameras"] = ["".join(str(spectra.meta["camera"][int(i)]) for i in r[1]) for r in rows]
    wave = rows[0][2] if len(rows) == 1 else np.vstack([r[2] for r in rows])
    return SpectrumSet(wave=wave, flux=np.vstack([spectra.flux[r[1]].ravel() for r in rows]),
                       ivar=np.vstack([spectra.ivar[r[1]].ravel() for r in rows]),
                       mask=np.vstack([spectra.mask[r[1]].ravel() for r in rows]),
                       ids=[r[0] for r in rows], meta=meta)
