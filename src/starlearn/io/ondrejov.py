"""Ondřejov 2-m telescope (CCD700) spectra, also as specutils loaders.

The archive ships raw 1-D spectra (primary image, linear CRVAL1/CDELT1 in air Angstrom,
``TELESCOP = 'ZEISS-2m'``) and processed spectra as a binary table with columns
``spectral`` (air Angstrom) and ``flux`` (continuum-normalised). starlearn reads both with
its generic ``wcs1d`` and ``table1d`` readers (air converted to vacuum); importing this
module registers an ``Ondrejov`` loader with specutils 2.x, so that after
``import starlearn`` ``Spectrum.read(path, format="Ondrejov")`` works (vacuum wavelengths).
"""

from __future__ import annotations

from typing import Any

from astropy.io import fits

from starlearn.io.fitsutil import as_hdulist, identify_hdulist, source_name
from starlearn.io.generic import read_table1d, read_wcs1d

__all__ = ["ondrejov_identify"]


def _is_ondrejov(hdul: fits.HDUList) -> bool:
    head = hdul[0].header
    if "ZEISS-2M" in str(head.get("TELESCOP", "")).upper() and head.get("NAXIS") == 1:
        return True
    if len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU):
        names = [c.lower() for c in hdul[1].columns.names]
        return names[:2] == ["spectral", "flux"]
    return False


def ondrejov_identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                      **kwargs: Any) -> bool:
    """Raw CCD700 image (TELESCOP ZEISS-2m) or archive table (spectral, flux)."""
    with identify_hdulist(path, fileobj, args) as hdul:
        return hdul is not None and _is_ondrejov(hdul)


def _register_specutils() -> None:
    try:
        import astropy.units as u
        from astropy.nddata import InverseVariance
        from specutils import Spectrum
        from specutils.io.registers import data_loader
    except ImportError:  # specutils is optional
        return

    @data_loader("Ondrejov", identifier=ondrejov_identify, dtype=Spectrum,
                 extensions=["fits", "fits.gz", "fit"], priority=10)
    def ondrejov_loader(file_obj: Any, **kwargs: Any) -> Spectrum:
        """Ondřejov CCD700 spectrum (raw image or archive table), vacuum wavelengths."""
        name = source_name(file_obj)
        with as_hdulist(file_obj) as hdul:
            is_table = len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU)
            spectra = read_table1d(hdul) if is_table else read_wcs1d(hdul)
            header = hdul[0].header.copy()
        unit = u.adu if str(header.get("BUNIT", "")).strip().upper() == "ADU" \
            else u.dimensionless_unscaled
        return Spectrum(flux=spectra.flux[0] * unit, spectral_axis=spectra.wave * u.AA,
                        uncertainty=InverseVariance(spectra.ivar[0] / unit**2),
                        mask=spectra.mask[0], meta={"header": header, "file": name})


_register_specutils()
