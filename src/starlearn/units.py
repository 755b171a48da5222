"""Units: of the spectral axis (parsing what files write, converting to Angstrom), of
flux, and of stellar labels.

Survey files spell wavelength units many ways (``Angstrom``, ``angstroms``, ``Ang``, ``A``,
``nm``, ``um``, ``micron``, ``m``, ``0.1 nm``) and some give none. starlearn never assumes
a unit silently: :func:`wavelength_unit` turns a spelling into an :class:`astropy.units.Unit`
of length, refuses velocity, frequency, energy and pixel axes with a clear reason, and
returns None for an empty spelling so that the caller can say which convention it applies
instead (and record it).

Note that in the FITS unit standard ``A`` is the ampere; in the header of a spectrum it is
always meant as Angstrom, and is read so here.

Flux has no fixed unit in starlearn: :func:`flux_unit` parses what a caller or a file gives
(none = dimensionless, i.e. relative or continuum-normalised flux). Labels have one unit
per kind, in :data:`LABEL_UNITS` and :func:`label_unit` (``teff`` in K, ``logg`` and
abundances in dex, velocities in km/s), and a physical range, in :data:`PHYSICAL_RANGES`
and :func:`physical_range`.
"""

from __future__ import annotations

import re
from typing import Any

import astropy.units as u
import numpy as np

__all__ = ["ANGSTROM", "LABEL_UNITS", "PHYSICAL_RANGES", "UnitProblem", "angstrom_factor",
           "flux_unit", "label_unit", "physical_range", "quantity_to_angstrom", "to_angstrom",
           "unit_text", "wavelength_unit"]

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


def quantity_to_angstrom(values: Any, what: str = "wave") -> np.ndarray:
    """An astropy Quantity of length (any unit) as float64 Angstrom.

    Parameters
    ----------
    values : astropy.units.Quantity
        Wavelengths in a unit of length (``nm``, ``um``, ``Angstrom``, ``m`` ...).
    what : str
        The name of the argument, for the error message.

    Raises
    ------
    UnitProblem
        The unit is not one of length (a velocity, frequency, energy or pixel axis); the
        message names ``what`` and the unit.

    Examples
    --------
    >>> quantity_to_angstrom([500.0, 1600.0] * u.nm).tolist()
    [5000.0, 16000.0]
    >>> quantity_to_angstrom([1.0, 2.0] * u.km / u.s)
    Traceback (most recent call last):
    ...
    starlearn.units.UnitProblem: 'wave' is in km / s (speed/velocity), not a wavelength: ...
    """
    unit = values.unit
    if unit.physical_type != "length":
        raise UnitProblem(f"'{what}' is in {unit} ({unit.physical_type}), not a wavelength: "
                          "give a Quantity of length (Angstrom, nm, um ...); velocity, "
                          "frequency and energy axes are not converted")
    return np.asarray(values.value, dtype=np.float64) * angstrom_factor(unit)


def angstrom_factor(unit: u.UnitBase) -> float:
    """Angstrom per ``unit`` (a unit of length), rounded to 15 significant digits, so that
    decimal units convert exactly: astropy's factor for nm is 9.999999999999998, this one
    is 10.0 (500 nm is 5000.0 Angstrom, not 4999.999999999999).

    Examples
    --------
    >>> angstrom_factor(u.nm), angstrom_factor(u.um), angstrom_factor(u.AA)
    (10.0, 10000.0, 1.0)
    """
    return float(f"{float(unit.to(u.AA)):.15g}")


def flux_unit(value: Any) -> u.UnitBase:
    """The flux unit ``value`` stands for: an astropy unit, its string, or None / ``""``
    for dimensionless (relative or continuum-normalised) flux.

    Raises
    ------
    ValueError
        ``value`` is not a unit astropy parses (the message names it).

    Examples
    --------
    >>> flux_unit(None), flux_unit("erg / (s cm2 Angstrom)")
    (Unit(dimensionless), Unit("erg / (Angstrom s cm2)"))
    """
    if value is None:
        return u.dimensionless_unscaled
    if isinstance(value, u.UnitBase):
        return value
    text = str(value).strip()
    if not text:
        return u.dimensionless_unscaled
    try:
        return u.Unit(text, parse_strict="raise")
    except ValueError:
        raise ValueError(f"flux_unit: '{text}' is not a unit astropy understands") from None


def unit_text(unit: u.UnitBase | None) -> str:
    """``unit`` as the string files store (``""`` for None and for dimensionless), which
    :func:`flux_unit` and ``astropy.units.Unit`` read back.

    Examples
    --------
    >>> unit_text(u.km / u.s), unit_text(u.dimensionless_unscaled), unit_text(None)
    ('km / s', '', '')
    """
    if unit is None or unit == u.dimensionless_unscaled:
        return ""
    return unit.to_string()


LABEL_UNITS: dict[str, u.UnitBase] = {
    "teff": u.K,
    "logg": u.dex,  # log10 of the surface gravity in cm s**-2
    "m_h": u.dex, "fe_h": u.dex, "alpha_fe": u.dex, "alpha_m": u.dex,
    "vmicro": u.km / u.s, "vmacro": u.km / u.s, "vsini": u.km / u.s,
    "vbroad": u.km / u.s, "rv": u.km / u.s, "vrad": u.km / u.s,
}
"""Units of the label names starlearn knows by name; abundances ``<x>_h`` and ``<x>_fe``
(``mg_fe``, ``c_h`` ...) are in dex too, see :func:`label_unit`."""

_ABUNDANCE = re.compile(r"^[a-z]{1,2}_(h|fe|m)$")


def label_unit(name: str) -> u.UnitBase | None:
    """The unit of the label ``name``, or None for a label starlearn does not know.

    ``teff`` is in K; ``logg`` in dex (cgs); ``m_h``, ``fe_h``, ``alpha_fe`` and every
    abundance ``<x>_h``, ``<x>_fe`` or ``<x>_m`` in dex; ``vmicro``, ``vmacro``, ``vsini``,
    ``vbroad``, ``rv`` and ``vrad`` in km/s. An uncertainty ``<label>_err`` has the unit of
    its label. Names are matched in lower case.

    Examples
    --------
    >>> label_unit("teff"), label_unit("mg_fe"), label_unit("vsini"), label_unit("depth")
    (Unit("K"), Unit("dex"), Unit("km / s"), None)
    """
    key = str(name).strip().lower()
    key = key.removesuffix("_err")
    if key in LABEL_UNITS:
        return LABEL_UNITS[key]
    if _ABUNDANCE.match(key):
        return u.dex
    return None


PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "teff": (2_000.0, 60_000.0),  # K: from late M dwarfs to the hottest O stars
    "logg": (-1.0, 7.0),  # dex (cgs): from the most luminous supergiants to hot subdwarfs
    "fe_h": (-5.0, 1.5), "m_h": (-5.0, 1.5),  # dex: below the most metal-poor stars known
    "alpha_fe": (-1.0, 1.5), "alpha_m": (-1.0, 1.5),  # dex
    "vmicro": (0.0, 20.0), "vmacro": (0.0, 100.0),  # km/s: broadening is not negative
    "vsini": (0.0, 600.0), "vbroad": (0.0, 600.0),  # km/s: up to critical rotation
    "rv": (-2_000.0, 2_000.0), "vrad": (-2_000.0, 2_000.0),  # km/s: hypervelocity stars
}
"""The values a stellar label can physically take (in the units of :data:`LABEL_UNITS`):
a prediction outside them is not a star, whatever the model says. Abundance ratios
``<x>_fe``, ``<x>_m`` lie in -3 .. +5 dex (carbon-enhanced metal-poor stars reach
[C/Fe] ~ +4) and ``<x>_h`` in -7 .. +2 dex; see :func:`physical_range`."""


def physical_range(name: str) -> tuple[float, float] | None:
    """The (low, high) physical range of the label ``name`` in its unit
    (:func:`label_unit`), or None for a label starlearn does not know.

    Examples
    --------
    >>> physical_range("teff"), physical_range("mg_fe"), physical_range("depth")
    ((2000.0, 60000.0), (-3.0, 5.0), None)
    """
    key = str(name).strip().lower().removesuffix("_err")
    if key in PHYSICAL_RANGES:
        return PHYSICAL_RANGES[key]
    if _ABUNDANCE.match(key):
        return (-7.0, 2.0) if key.endswith("_h") else (-3.0, 5.0)
    return None
