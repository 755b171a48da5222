"""starlearn's readers as specutils loaders, for the formats specutils cannot read itself.

After ``import starlearn`` (or ``import starlearn.io``), ``specutils.Spectrum.read(path)``
identifies and reads these formats with the very code of :func:`starlearn.read`: the same
flux, vacuum wavelengths (Angstrom) and mask, the uncertainty as ``InverseVariance``, the
primary header in ``meta["header"]`` and starlearn's per-spectrum metadata (medium and
unit provenance, radial velocity ...) in ``meta["starlearn"]``:

=====================  ============================  =========================================
specutils format       starlearn format              returns
=====================  ============================  =========================================
LAMOST-LRS             lamost-lrs                    Spectrum
LAMOST-MRS             lamost-mrs                    Spectrum
GALAH-DR3              galah-dr3                     Spectrum (specutils' own GALAH loader
                                                     keeps SpectrumList.read)
GALAH-DR4              galah-dr4                     Spectrum
GALAH-DR4-allstar      galah-dr4-allstar             Spectrum
Gaia-XP-sampled        gaia-xp-sampled               Spectrum (2-D flux for many sources)
Gaia-XP-continuous     gaia-xp-continuous            Spectrum (2-D flux), GaiaXPy needed
DESI-joined            desi                          Spectrum (2-D flux, arms joined;
                                                     specutils' DESI loaders keep
                                                     SpectrumList.read, one per arm)
PFS-pfsObject          pfs-object                    Spectrum (files specutils'
                                                     Subaru-pfsObject does not claim)
PFS-pfsGAObject        pfs-gaobject                  Spectrum
PFS-pfsArm             pfs-arm                       SpectrumList (one per fibre)
ESO-Phase3             eso-phase3                    Spectrum
ESO-1D                 eso-image                     Spectrum
Ondrejov               ondrejov                      Spectrum
IRAF-multispec         iraf-multispec                SpectrumList (one per aperture)
=====================  ============================  =========================================

Registration waits for specutils: importing specutils costs about 2 s, so starlearn does
not import it; a hook registers the loaders the moment the user's program imports
specutils (or at once, when it already has). specutils has no entry point for third-party
loaders, so ``import starlearn`` is what makes them available. specutils is the optional
extra ``starlearn[specutils]``: without it nothing is registered and starlearn's own
readers work as ever.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from starlearn._extras import require

__all__ = ["LOADERS", "install", "register", "to_spectrum"]

LOADERS: tuple[tuple[str, str, str, bool], ...] = (
    # (specutils label, starlearn format, "Spectrum" or "SpectrumList", auto SpectrumList)
    ("LAMOST-LRS", "lamost-lrs", "Spectrum", True),
    ("LAMOST-MRS", "lamost-mrs", "Spectrum", True),
    ("GALAH-DR3", "galah-dr3", "Spectrum", False),
    ("GALAH-DR4", "galah-dr4", "Spectrum", True),
    ("GALAH-DR4-allstar", "galah-dr4-allstar", "Spectrum", True),
    ("Gaia-XP-sampled", "gaia-xp-sampled", "Spectrum", True),
    ("Gaia-XP-continuous", "gaia-xp-continuous", "Spectrum", True),
    ("DESI-joined", "desi", "Spectrum", False),
    ("PFS-pfsObject", "pfs-object", "Spectrum", True),
    ("PFS-pfsGAObject", "pfs-gaobject", "Spectrum", True),
    ("PFS-pfsArm", "pfs-arm", "SpectrumList", False),
    ("ESO-Phase3", "eso-phase3", "Spectrum", True),
    ("ESO-1D", "eso-image", "Spectrum", True),
    ("Ondrejov", "ondrejov", "Spectrum", True),
    ("IRAF-multispec", "iraf-multispec", "SpectrumList", False),
)
"""The loaders registered with specutils."""

_LOCK = threading.Lock()
_DONE = False


def _flux_unit(spectra: Any, header: Any) -> Any:
    import astropy.units as u

    for text in ([spectra.meta["flux_unit"][0]] if "flux_unit" in spectra.meta.colnames
                 else []) + [header.get("BUNIT", "") if header is not None else ""]:
        try:
            unit = u.Unit(str(text).strip(), parse_strict="raise")
            if str(text).strip():
                return unit
        except (ValueError, TypeError):
            continue
    return u.dimensionless_unscaled


def _header(source: Any) -> Any:
    from astropy.io import fits

    try:
        if isinstance(source, fits.HDUList):
            return source[0].header.copy()
        return fits.getheader(source, 0)
    except Exception:  # a text format (Gaia CSV/ECSV), or a file object already consumed
        return None


def to_spectrum(spectra: Any, index: int | Sequence[int] | None = None, *,
                header: Any = None) -> Any:
    """A specutils ``Spectrum`` of rows of a SpectrumSet (one row, or several sharing one
    wavelength grid as a 2-D flux): vacuum Angstrom, ``InverseVariance`` uncertainty in
    the flux unit, boolean mask (True = bad), ``meta["header"]`` and ``meta["starlearn"]``
    (the rows' meta as a dict of lists, and their ids)."""
    import astropy.units as u
    import numpy as np
    from astropy.nddata import InverseVariance

    require("specutils", extra="specutils", what="to_spectrum")
    from specutils import Spectrum

    rows = list(range(len(spectra))) if index is None else (
        [index] if isinstance(index, int) else list(index))
    if spectra.wave.ndim == 2 and len(rows) > 1 and not all(
            np.array_equal(spectra.wave[rows[0]], spectra.wave[r]) for r in rows):
        raise ValueError("to_spectrum: the rows have different wavelengths; make one "
                         "Spectrum per row (a SpectrumList)")
    unit = _flux_unit(spectra, header)
    one = len(rows) == 1
    flux = spectra.flux[rows[0]] if one else spectra.flux[rows]
    ivar = spectra.ivar[rows[0]] if one else spectra.ivar[rows]
    mask = spectra.mask[rows[0]] if one else spectra.mask[rows]
    meta = {"header": header,
            "starlearn": {"ids": [str(spectra.ids[r]) for r in rows],
                          **{c: [spectra.meta[c][r] for r in rows]
                             for c in spectra.meta.colnames}}}
    return Spectrum(flux=np.asarray(flux, np.float64) * unit,
                    spectral_axis=spectra.wave_of(rows[0]) * u.AA,
                    uncertainty=InverseVariance(np.asarray(ivar, np.float64) / unit**2),
                    mask=np.asarray(mask, bool), meta=meta)


def _make_loader(fmt: str, kind: str) -> Any:
    def loader(file_obj: Any, **kwargs: Any) -> Any:
        from specutils import SpectrumList

        from starlearn.io.registry import read

        spectra = read(file_obj, format=fmt, **kwargs)
        header = _header(file_obj)
        if kind == "SpectrumList":
            return SpectrumList([to_spectrum(spectra, i, header=header)
                                 for i in range(len(spectra))])
        return to_spectrum(spectra, header=header)

    loader.__doc__ = f"starlearn's '{fmt}' reader as a specutils loader (see starlearn.read)."
    return loader


def _identifier(fmt: str) -> Any:
    from starlearn.io.registry import format_info

    info = format_info(fmt)
    defer = None
    if fmt == "pfs-object":  # file names specutils' own Subaru-pfsObject loader claims
        from specutils.io.default_loaders.subaru_pfs_spec import identify_pfs_spec as defer

    def identify(origin: str, path: str | None, fileobj: Any, *args: Any,
                 **kwargs: Any) -> bool:
        if defer is not None and defer(origin, path, fileobj, *args, **kwargs):
            return False
        if info.fits is False:  # text formats: starlearn's identifiers take the path
            return bool(path) and bool(info.identifier(origin, path, None, path))
        return bool(info.identifier(origin, path, fileobj, *args, **kwargs))

    return identify


def register() -> None:
    """Register :data:`LOADERS` with specutils (idempotent; imports specutils)."""
    global _DONE
    with _LOCK:
        if _DONE:
            return
        require("specutils", extra="specutils", what="registering starlearn's specutils loaders")
        from specutils import Spectrum, SpectrumList
        from specutils.io.registers import data_loader

        for label, fmt, kind, autogenerate in LOADERS:
            dtype = Spectrum if kind == "Spectrum" else SpectrumList
            data_loader(label, identifier=_identifier(fmt), dtype=dtype,
                        extensions=["fits", "fits.gz", "fit", "csv", "ecsv", "xml"],
                        priority=10, autogenerate_spectrumlist=autogenerate)(
                _make_loader(fmt, kind))
        _DONE = True


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``specutils`` is imported, wraps its loader so that
    :func:`register` runs right after the package's own code."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "specutils":
            return None
        _remove_hook()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        register()

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package ...
        return getattr(self._loader, name)


_HOOK = _RegisterAfterImport()


def _remove_hook() -> None:
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def install() -> None:
    """Register the loaders now if specutils is imported, else when it is."""
    module = sys.modules.get("specutils")
    if module is not None and hasattr(module, "Spectrum"):
        register()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
