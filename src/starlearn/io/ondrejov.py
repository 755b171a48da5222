"""Ondřejov 2-m telescope (CCD700 coudé spectrograph) spectra.

The archive ships raw 1-D spectra (primary image, ``TELESCOP = 'ZEISS-2m'``, linear
CRVAL1/CDELT1 with IRAF's ``WAT1_001 ... units=angstroms``, air wavelengths, counts) and
processed spectra as a binary table of exactly two columns, ``spectral`` (air Angstrom,
no TUNIT) and ``flux`` (continuum-normalised), e.g. the spectra of Podsztavek et al.'s
emission-line-star work. Both are air by the archive's convention (arc-lamp calibration);
the tables' Angstrom is the archive's documented unit. The readers return vacuum Angstrom.
"""

from __future__ import annotations

from typing import Any

from astropy.io import fits

from starlearn.io.fitsutil import as_hdulist, identify_hdulist
from starlearn.io.generic import read_image_spectrum, read_table_columns
from starlearn.io.registry import register_reader
from starlearn.spectra import SpectrumSet

__all__ = ["ondrejov_identify", "read_ondrejov"]

_CONVENTION = "Ondřejov archive convention"


def _is_table(hdul: fits.HDUList) -> bool:
    if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
        return False
    return [c.lower() for c in hdul[1].columns.names] == ["spectral", "flux"]


def _is_raw(hdul: fits.HDUList) -> bool:
    head = hdul[0].header
    return "ZEISS-2M" in str(head.get("TELESCOP", "")).upper() and head.get("NAXIS") == 1


def ondrejov_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                      **kwargs: Any) -> bool:
    """Raw CCD700 image (TELESCOP ZEISS-2m) or archive table (columns spectral, flux and
    no others)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return hdul is not None and (_is_raw(hdul) or _is_table(hdul))


@register_reader("ondrejov", identifier=ondrejov_identify, priority=10, medium="air")
def read_ondrejov(source: Any, *, medium: str = "auto") -> SpectrumSet:
    """Read an Ondřejov CCD700 spectrum: a raw image or an archive table.

    Parameters
    ----------
    source : path, file object or HDUList
    medium : {"auto", "air", "vacuum"}
        "auto": the header's VACUUM/AIRORVAC where present, else air (the archive's
        convention).

    Returns
    -------
    SpectrumSet with one spectrum in vacuum Angstrom; raw images in ADU, tables
    continuum-normalised; errors estimated from the data (``ivar_estimated``), as neither
    form carries them.
    """
    with as_hdulist(source) as hdul:
        if _is_table(hdul):
            return read_table_columns(hdul, medium=medium,
                                      convention_unit=("Angstrom", _CONVENTION),
                                      convention_medium=("air", _CONVENTION))
        return read_image_spectrum(hdul, medium=medium, convention_medium=("air", _CONVENTION))
