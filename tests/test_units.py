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


def test_quantity_to_angstrom_is_exact_for_decimal_units_and_refuses_velocity():
    from starlearn.units import quantity_to_angstrom

    assert quantity_to_angstrom([500.0, 1.0] * u.nm).tolist() == [5000.0, 10.0]
    assert quantity_to_angstrom([1.5, 1.6] * u.um).tolist() == [15000.0, 16000.0]
    with pytest.raises(UnitProblem, match="'wave' is in km / s"):
        quantity_to_angstrom([1.0] * u.km / u.s)


@pytest.mark.parametrize(("name", "unit"), [
    ("teff", u.K), ("logg", u.dex), ("fe_h", u.dex), ("m_h", u.dex), ("alpha_fe", u.dex),
    ("mg_fe", u.dex), ("c_h", u.dex), ("MG_FE", u.dex), ("teff_err", u.K),
    ("vsini", u.km / u.s), ("vmicro", u.km / u.s), ("rv", u.km / u.s),
    ("depth", None), ("snr", None), ("_err", None)])
def test_label_units(name, unit):
    from starlearn.units import label_unit

    assert label_unit(name) == unit


def test_flux_unit_and_unit_text_round_trip():
    from starlearn.units import flux_unit, unit_text

    assert flux_unit(None) == flux_unit("") == flux_unit("  ") == u.dimensionless_unscaled
    assert flux_unit("Jy") == u.Jy and flux_unit(u.mJy) == u.mJy
    flam = flux_unit("erg / (s cm2 Angstrom)")
    assert flux_unit(unit_text(flam)) == flam
    assert unit_text(u.dimensionless_unscaled) == "" and unit_text(None) == ""
    with pytest.raises(ValueError, match="'furlongs per' is not a unit"):
        flux_unit("furlongs per")
