"""Subaru PFS combined spectra (``pfsObject``; ``pfsSingle`` has the same layout).

Data model: https://github.com/Subaru-PFS/datamodel/blob/master/datamodel.txt. The
resampled spectrum is in image HDUs ``FLUX`` (nJy), ``MASK``, ``COVAR`` (row 0 = variance)
with the vacuum wavelength (nm) in ``WAVELENGTH``; the ``FLUX_TABLE`` extension holds the
merged, unresampled pixels (columns wavelength [nm, vacuum], flux, error, mask) and is
what specutils' ``Subaru-pfsObject`` loader reads. Mask bit ``MP_REFLINE`` (a reference
line flag) does not make a pixel bad.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits

from starlearn.io.fitsutil import ReadError, as_hdulist, column, identify_hdulist, source_name
from starlearn.io.registry import register_reader
from starlearn.spectra import SpectrumSet

__all__ = ["pfs_object_identify", "read_pfs_object"]


def _names(hdul: fits.HDUList) -> set[str]:
    return {h.name.upper() for h in hdul}


def pfs_object_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                        **kwargs: Any) -> bool:
    """PFS pfsObject/pfsSingle: FLUX and MASK image HDUs with WAVELENGTH, or a FLUX_TABLE."""
    with identify_hdulist(path, fileobj, args) as hdul:
        if hdul is None:
            return False
        names = _names(hdul)
        return ({"FLUX", "MASK", "WAVELENGTH"} <= names
                or ("FLUX_TABLE" in names and {"wavelength", "flux", "error"}
                    <= {c.lower() for c in hdul["FLUX_TABLE"].columns.names}))


def _good_bits(header: fits.Header, mask: np.ndarray) -> np.ndarray:
    refline = header.get("MP_REFLINE")
    if refline is None:
        return mask != 0
    return (mask & ~np.int64(1 << int(refline))) != 0


@register_reader("pfs-object", identifier=pfs_object_identify, priority=10)
def read_pfs_object(source: Any, *, table: bool = False) -> SpectrumSet:
    """Read a Subaru PFS pfsObject or pfsSingle file.

    Parameters
    ----------
    source : path, file object or HDUList
    table : bool
        Read the unresampled ``FLUX_TABLE`` instead of the resampled FLUX/COVAR images.

    Returns
    -------
    SpectrumSet with one spectrum: vacuum wavelength in Angstrom (converted from nm), flux
    in nJy, ivar in nJy^-2; meta columns objid, catid, tract, patch (when in the header).
    """
    name = source_name(source)
    with as_hdulist(source) as hdul:
        names = _names(hdul)
        head = hdul[0].header
        if table or not {"FLUX", "WAVELENGTH"} <= names:
            if "FLUX_TABLE" not in names:
                raise ReadError(name, "has neither FLUX/WAVELENGTH images nor FLUX_TABLE")
            hdu = hdul["FLUX_TABLE"]
            data = hdu.data
            wave = column(data, "wavelength", name, "FLUX_TABLE").astype(np.float64) * 10.0
            flux = column(data, "flux", name, "FLUX_TABLE").astype(np.float64)
            error = column(data, "error", name, "FLUX_TABLE").astype(np.float64)
            with np.errstate(divide="ignore"):
                ivar = 1.0 / error**2
            bad = _good_bits(hdu.header, column(data, "mask", name, "FLUX_TABLE")
                             .astype(np.int64))
        else:
            wave = np.asarray(hdul["WAVELENGTH"].data, dtype=np.float64).ravel() * 10.0
            flux = np.asarray(hdul["FLUX"].data, dtype=np.float64).ravel()
            if "COVAR" in names:
                variance = np.atleast_2d(np.asarray(hdul["COVAR"].data, np.float64))[0]
            elif "VARIANCE" in names:
                variance = np.asarray(hdul["VARIANCE"].data, np.float64).ravel()
            else:
                raise ReadError(name, "has no COVAR or VARIANCE HDU for the flux errors")
            with np.errstate(divide="ignore"):
                ivar = 1.0 / variance
            mask = np.asarray(hdul["MASK"].data).astype(np.int64).ravel()
            bad = _good_bits(hdul["MASK"].header, mask)
        ivar[~np.isfinite(ivar)] = 0.0
        meta: dict[str, list[Any]] = {"survey": ["pfs"]}
        for key in ("OBJID", "CATID", "TRACT", "PATCH"):
            if key in head:
                meta[key.lower()] = [head[key]]
    order = np.argsort(wave, kind="stable")
    wave, flux, ivar, bad = wave[order], flux[order], ivar[order], bad[order]
    keep = np.concatenate([[True], np.diff(wave) > 0])
    ident = str(meta.get("objid", [name])[0])
    return SpectrumSet(wave=wave[keep], flux=flux[keep], ivar=ivar[keep], mask=bad[keep],
                       ids=[ident], meta=meta)
