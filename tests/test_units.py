import astropy.units as u
import numpy as np
import pytest

from starlearn.units import UnitProblem, to_angstrom, wavelength_unit


@pytest.mark.parametrize(("text", "unit"), [
    ("Angstrom", u.AA), ("angstroms", u.AA), ("Angstroms", u.AA), ("Ang", u.AA), ("A", u.AA),
    ("AA", u.AA), ("0.1 nm", u.AA), ("nm", u.nm), ("nanometers", u.nm), ("um", u.um),
    ("micron", u.um), ("microns", u.um), ("m", u.m), ("[Angstrom]", u.AA), (u.nm, u.nm),
    ("10**-10 m", u.AA)])
def test_wavelength_units_as_files_spell_them(text, unit):
    assert wavelength_unit(text) == unit


@pytest.mark.parametrize(("text", "problem"), [
    ("km/s", "velocity"), ("Hz", "frequency"), ("keV", "energy"), ("pixel", "pixels"),
    ("furlongs", "not a unit"), ("erg/s", "not a unit of wavelength")])
def test_units_that_are_not_wavelengths_are_refused(text, problem):
    with pytest.raises(UnitProblem, match=problem):
        wavelength_unit(text)


def test_no_unit_is_none_and_conversion_is_exact():
    assert wavelength_unit(None) is None and wavelength_unit("  ") is None
    np.testing.assert_allclose(to_angstrom([500.0, 1.0], u.nm), [5000.0, 10.0])
    np.testing.assert_allclose(to_angstrom(1.6, u.um), 16000.0)
