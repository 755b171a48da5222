"""Units of the spectral axis: parsing what files write, converting to Angstrom.

Survey files spell wavelength units many ways (``Angstrom``, ``angstroms``, ``Ang``, ``A``,
``nm``, ``um``, ``micron``, ``m``, ``0.1 nm``) and some give none. starlearn never assumes
a unit silently: :func:`wavelength_unit` turns a spelling into an :class:`astropy.units.Unit`
of length, refuses velocity, frequency, energy and pixel axes with a clear reason, and
returns None for an empty spelling so that the caller can say which convention it applies
instead (and record it).

Note that in the FITS unit standard ``A`` is the ampere; in the header of a spectrum it is
always meant as Angstrom, and is read so here.
"""

from __future__ import annotations

import re
from typing import Any

import astropy.units as u
import numpy as np

__all__ = ["ANGSTROM", "UnitProblem", "to_angstrom", "wavelength_unit"]

ANGSTROM = u.AA
"""The unit of every wavelength inside starlearn (vacuum Angstrom)."""

_ALIASES = {
    "a": u.AA, "aa": u.AA, "ang": u.AA, "angs": u.AA, "angstrom": u.AA, "angstroms": u.AA,
    "angstroem": u.AA, "å": u.AA, "0.1nm": u.AA, "1e-10m": u.AA, "10**-10m": u.AA,
    "nm": u.nm, "nanometer": u.nm, "nanometers": u.nm, "nanometre": u.nm, "nanometres": u.nm,
    "um": u.um, "µm": u.um, "μm": u.um, "micron": u.um, "microns": u.um,
    "micrometer": u.um, "micrometers": u.um, "micrometre": u.um, "micrometres": u.um,
    "m": u.m, "meter": u.m, "meters": u.m, "metre": u.m, "metres": u.m,
    "cm": u.cm, "mm": u.mm,
}


class UnitProblem(ValueError):
    """A unit that is not one of wavelength (velocity, frequency, pixels, unparsable)."""


def wavelength_unit(text: Any) -> u.UnitBase | None:
    """The wavelength unit a file writes, as an astropy unit of length.

    Parameters
    ----------
    text : str, astropy unit or None
        The unit as written (``CUNIT1``, ``TUNITn``, ``units=`` of IRAF's WAT1_001, a
        column's unit). Case, surrounding brackets and a trailing "s" are forgiven.

    Returns
    -------
    astropy unit of length, or None when ``text`` is empty (no unit given).

    Raises
    ------
    UnitProblem
        For a unit of velocity, frequency, energy or wavenumber, for pixels, and for a
        spelling that is not a unit at all.

    Examples
    --------
    >>> wavelength_unit("Angstroms"), wavelength_unit("nm"), wavelength_unit(None)
    (Unit("Angstrom"), Unit("nm"), None)
    >>> wavelength_unit("[MICRONS]")
    Unit("um")
    >>> wavelength_unit("km/s")
    Traceback (most recent call last):
    ...
    starlearn.units.UnitProblem: the spectral axis is in km / s (speed/velocity), not ...
    """
    if text is None:
        return None
    if isinstance(text, u.UnitBase):
        unit = text
    else:
        spelled = str(text).strip().strip("[]()").strip()
        if not spelled:
            return None
        key = re.sub(r"\s+", "", spelled.lower())
        if key in _ALIASES:
            return _ALIASES[key]
        if key in ("pixel", "pixels", "pix", "channel", "channels"):
            raise UnitProblem(f"the spectral axis is in pixels ('{spelled}'), not wavelength: "
                              "the file has no dispersion solution")
        try:
            unit = u.Unit(spelled, parse_strict="raise")
        except ValueError:
            raise UnitProblem(f"'{spelled}' is not a unit starlearn knows for a wavelength "
                              "axis") from None
    if unit.physical_type == "length":
        return unit
    kind = str(unit.physical_type)
    if kind in ("speed", "velocity", "frequency", "energy", "wavenumber") or kind.startswith(
            ("speed", "frequency", "energy")):
        raise UnitProblem(f"the spectral axis is in {unit} ({kind}), not wavelength: "
                          "velocity, frequency and energy axes are not read")
    raise UnitProblem(f"'{unit}' ({kind}) is not a unit of wavelength")


def to_angstrom(values: Any, unit: u.UnitBase) -> np.ndarray:
    """``values`` in ``unit`` (a unit of length) as float64 Angstrom.

    Examples
    --------
    >>> to_angstrom([500.0, 656.28], wavelength_unit("nm"))
    array([5000. , 6562.8])
    >>> to_angstrom([1.5, 1.7], wavelength_unit("um"))
    array([15000., 17000.])
    """
    return np.asarray(values, dtype=np.float64) * float(unit.to(u.AA))
