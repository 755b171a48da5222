import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from numpy.testing import assert_allclose

import starlearn.io as sio
from starlearn.io.gaia import XP_SAMPLING_NM

RNG = np.random.default_rng(0)
FLUX = RNG.uniform(1e-17, 2e-16, (2, 343))
ERROR = FLUX * 0.05


def _paren(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.7E}" for v in values) + ")"


def test_raw_csv_with_parenthesised_arrays(tmp_path):
    path = tmp_path / "XP_SAMPLED_RAW.csv"
    lines = ["source_id,solution_id,ra,dec,flux,flux_error"]
    for i in range(2):
        lines.append(f'{100 + i},4545469030156206081,10.0,-20.0,"{_paren(FLUX[i])}",'
                     f'"{_paren(ERROR[i])}"')
    path.write_text("\n".join(lines) + "\n")
    assert sio.identify_format(path) == ["gaia-xp-sampled"]
    s = sio.read(path)
    assert len(s) == 2 and list(s.ids) == ["100", "101"]
    assert_allclose(s.wave, XP_SAMPLING_NM * 10)
    assert_allclose(s.flux, FLUX, rtol=1e-6)
    assert_allclose(s.ivar, 1 / ERROR**2, rtol=1e-5)
    assert s.meta["solution_id"][0] == "4545469030156206081"


@pytest.mark.parametrize("kind", ["fits", "votable"])
def test_raw_fits_and_votable_with_vector_columns(tmp_path, kind):
    table = Table({"source_id": np.array([7, 8], dtype=np.int64), "flux": FLUX,
                   "flux_error": ERROR})
    path = tmp_path / ("xp.fits" if kind == "fits" else "xp.xml")
    table.write(path, format="fits" if kind == "fits" else "votable")
    assert sio.identify_format(path) == ["gaia-xp-sampled"]
    s = sio.read(path)
    assert list(s.ids) == ["7", "8"]
    assert_allclose(s.flux, FLUX, rtol=1e-6)


def test_datalink_ecsv_one_row_per_wavelength(tmp_path):
    table = Table({"wavelength": XP_SAMPLING_NM, "flux": FLUX[0], "flux_error": ERROR[0]})
    table["wavelength"].unit = "nm"
    table.meta["source_id"] = 5937083312263887616
    path = tmp_path / "XP_SAMPLED-Gaia DR3 5937083312263887616.ecsv"
    table.write(path, format="ascii.ecsv")
    assert sio.identify_format(path) == ["gaia-xp-sampled"]
    s = sio.read(path)
    assert s.ids[0] == "5937083312263887616"
    assert_allclose(s.flux[0], FLUX[0])
    assert s.meta["medium_in_file"][0] == "vacuum"


def test_raw_arrays_on_another_grid_need_their_sampling(tmp_path):
    table = Table({"source_id": [1], "flux": FLUX[:1, :100], "flux_error": ERROR[:1, :100]})
    path = tmp_path / "xp.fits"
    table.write(path)
    with pytest.raises(sio.ReadError, match="pass sampling"):
        sio.read(path)
    s = sio.read(path, sampling=np.linspace(400, 600, 100))
    assert_allclose(s.wave[[0, -1]], [4000.0, 6000.0])


def test_continuous_without_gaiaxpy_names_the_extra(tmp_path, monkeypatch):
    table = Table({"source_id": [1], "bp_coefficients": np.ones((1, 55)),
                   "rp_coefficients": np.ones((1, 55))})
    path = tmp_path / "XP_CONTINUOUS_RAW.fits"
    table.write(path)
    assert sio.identify_format(path) == ["gaia-xp-continuous"]
    monkeypatch.setitem(sys.modules, "gaiaxpy", None)  # as if not installed
    with pytest.raises(sio.ReadError, match=r"starlearn\[gaia\]"):
        sio.read(path)


def test_a_table_of_wavelength_and_flux_without_gaia_marks_is_not_gaia(tmp_path):
    table = Table({"wavelength": XP_SAMPLING_NM, "flux": FLUX[0], "flux_error": ERROR[0]})
    path = tmp_path / "spectrum.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(table)]).writeto(path)
    assert "gaia-xp-sampled" not in sio.identify_format(path)
