import json

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from starlearn import PRESETS, Grid, air_to_vacuum, get_grid, vacuum_to_air
from starlearn.grid import find_preset


def test_log_uniform_by_pixels_and_by_sampling_resolution():
    g = Grid.log_uniform(4000.0, 5000.0, n_pix=501)
    assert_allclose(g.wave[[0, -1]], [4000.0, 5000.0], rtol=1e-12)
    assert_allclose(np.diff(np.log10(g.wave)), g.dlog10, rtol=1e-9)
    h = Grid.log_uniform(4000.0, 5000.0, sampling_r=10_000)
    step = h.wave[1:] / h.wave[:-1] - 1
    assert_allclose(step, 1e-4, rtol=2e-3)
    assert_allclose(h.velocity_step, 299792.458 * np.log(1 + 1e-4), rtol=2e-3)
    with pytest.raises(ValueError, match="exactly one"):
        Grid.log_uniform(4000.0, 5000.0)
    with pytest.raises(ValueError, match="0 < start < stop"):
        Grid.log_uniform(5000.0, 4000.0, n_pix=10)


def test_edges_bracket_centres():
    g = PRESETS["lamost"]
    e = g.edges
    assert e.size == g.n_pix + 1
    assert np.all(e[:-1] < g.wave) and np.all(g.wave < e[1:])


@pytest.mark.parametrize(
    ("name", "n_pix", "lo", "hi", "resolution"),
    [
        ("apogee", 8575, 15100.0, 17000.0, 22500),
        ("lamost", 3909, 3700.0, 9099.1, 1800),
        ("segue", 3841, 3800.1, 9200.3, 2000),
        ("pfs-mr", 4096, 7100.0, 8850.0, 5000),
        ("ondrejov-halpha", 2000, 6250.0, 6770.0, 13000),
    ],
)
def test_presets(name, n_pix, lo, hi, resolution):
    g = get_grid(name)
    assert g.n_pix == n_pix and g.resolution == resolution and g.name == name
    assert abs(g.start - lo) < 2.0 and abs(g.stop - hi) < 3.0


def test_apogee_grid_is_the_aspcapstar_grid():
    g = PRESETS["apogee"]
    assert_allclose(np.log10(g.wave), 4.179 + 6e-6 * np.arange(8575), rtol=1e-12)
    gap = g.gap_mask  # the DR13-DR17 detector ranges (the widest of all releases)
    assert gap[:246].all() and not gap[246:3274].any() and gap[3274:3585].all()
    assert not gap[3585:6080].any() and gap[6080:6344].all() and not gap[6344:8335].any()
    assert gap[8335:].all() and (~gap).sum() == 7514


def test_survey_presets_are_the_native_grids():
    """LAMOST: log10 = 3.5682 + 1e-4 i in every release; SDSS on the 1e-4 lattice."""
    lamost = PRESETS["lamost"]
    assert_allclose(np.log10(lamost.wave), 3.5682 + 1e-4 * np.arange(3909), rtol=1e-12)
    cut = 10 ** (3.5682 + 1e-4 * np.arange(3899))  # a real file cut at the red end
    assert find_preset(cut) is lamost and lamost.offset_of(cut) == 0
    assert lamost.offset_of(cut * 1.00001) is None
    segue = np.log10(PRESETS["segue"].wave) / 1e-4
    assert_allclose(segue, np.round(segue), atol=1e-6)


def test_grid_dict_round_trip_through_json():
    g = PRESETS["apogee"]
    back = Grid.from_dict(json.loads(json.dumps(g.to_dict())))
    assert back == g
    assert get_grid(g.to_dict()) == g
    assert g.matches(back.wave) and not g.matches(back.wave[:-1])
    with pytest.raises(ValueError, match="unknown grid preset 'gaia'"):
        get_grid("gaia")


def test_air_vacuum_conversion():
    # H-alpha: 6562.80 A in air is 6564.61 A in vacuum (NIST).
    assert_allclose(air_to_vacuum(6562.80), 6564.61, atol=0.01)
    # The APOGEE Mg I line 15740.716 A (air) is 15745.017 A in vacuum.
    assert_allclose(air_to_vacuum(15740.716), 15745.02, atol=0.02)
    wave = np.linspace(3000.0, 25000.0, 1000)
    assert_allclose(vacuum_to_air(air_to_vacuum(wave)), wave, atol=1e-8)
    assert np.all(air_to_vacuum(wave) > wave)
    assert_allclose(air_to_vacuum(1500.0), 1500.0)


def test_air_vacuum_conversion_has_no_jump_at_2000_angstrom():
    """The switch from vacuum (below) to air (above) 2,000 A jumped 0.65 A; now it is
    continuous, monotonic, exact to Morton (2000) above 2,000 A and invertible everywhere."""
    vac = np.linspace(1800.0, 2200.0, 400_001)             # 0.001 A steps
    air = vacuum_to_air(vac)
    step = np.diff(air)
    assert step.min() > 0.98e-3 and step.max() < 1.02e-3    # no jump, no fold
    above = vac >= 2000.0
    s2 = (1e4 / vac[above]) ** 2
    n = 1 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)
    assert_allclose(air[above], vac[above] / n, rtol=1e-15)
    assert_array_equal(air[vac <= 1900.0], vac[vac <= 1900.0])
    assert_allclose(air_to_vacuum(air), vac, atol=1e-8)
