from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose

import starlearn.io as sio

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "fits-samples"


def sdss_hdul(vacuum: object = True) -> fits.HDUList:
    """spec-lite of SDSS-I/II: COADD one row per pixel, SPECOBJ summary."""
    loglam = 3.5798 + 1e-4 * np.arange(400)
    and_mask = np.zeros(400, np.int32)
    and_mask[5] = 1 << 25
    coadd = fits.BinTableHDU.from_columns([
        fits.Column(name="flux", format="E", array=np.full(400, 5.0)),
        fits.Column(name="loglam", format="E", array=loglam),
        fits.Column(name="ivar", format="E", array=np.full(400, 4.0)),
        fits.Column(name="and_mask", format="J", array=and_mask),
        fits.Column(name="or_mask", format="J", array=np.zeros(400, np.int32))],
        name="COADD")
    summary = fits.BinTableHDU.from_columns([
        fits.Column(name="PLATE", format="J", array=[2011]),
        fits.Column(name="MJD", format="J", array=[53566]),
        fits.Column(name="FIBERID", format="J", array=[7]),
        fits.Column(name="Z", format="E", array=[-1e-4]),
        fits.Column(name="CLASS", format="6A", array=["STAR"]),
        fits.Column(name="SN_MEDIAN_ALL", format="E", array=[31.0])], name="SPECOBJ")
    primary = fits.PrimaryHDU()
    primary.header.update({"TELESCOP": "SDSS 2.5-M", "VACUUM": vacuum, "PLUG_RA": 10.5})
    return fits.HDUList([primary, coadd, summary])


@pytest.mark.parametrize("vacuum", [True, "T"])
def test_sdss_spec(tmp_path, vacuum):
    path = tmp_path / "spec-2011-53566-0007.fits"
    sdss_hdul(vacuum).writeto(path)
    assert sio.identify_format(path) == ["sdss-spec"]
    s = sio.read(path)
    assert_allclose(s.wave[0], 10**3.5798, rtol=1e-6)
    assert s.mask[0, 5] and s.mask.sum() == 1
    assert s.ids[0] == "2011-53566-7" and s.meta["class"][0] == "STAR"
    assert_allclose(s.meta["rv"][0], -1e-4 * 299792.458, rtol=1e-5)
    assert s.meta["snr"][0] == 31.0 and s.meta["ra"][0] == 10.5
    assert s.meta["medium_in_file"][0] == "vacuum" and s.meta["medium_from"][0] == "VACUUM = T"


def test_a_table_with_loglam_but_no_sdss_mark_is_not_sdss(tmp_path):
    hdul = sdss_hdul()
    del hdul[0].header["TELESCOP"]
    hdul[2].name = "OTHER"
    path = tmp_path / "other.fits"
    hdul.writeto(path)
    assert "sdss-spec" not in sio.identify_format(path)


def spspec_hdul() -> fits.HDUList:
    """DR7 spSpec: 5 x N image, ARRAY1..4, COEFF0/COEFF1, header redshift and class."""
    n = 300
    data = np.zeros((5, n), "f4")
    data[0] = 20.0
    data[2] = 2.0
    data[2, 10] = 0.0  # no error: bad
    data[3, 20] = 1 << 23  # BRIGHTSKY: bad
    data[3, 30] = 1 << 30  # a 1-D pipeline line flag: not bad
    hdu = fits.PrimaryHDU(data)
    hdu.header.update({"TELESCOP": "SDSS 2.5-M", "COEFF0": 3.5794, "COEFF1": 1e-4,
                       "VACUUM": True, "ARRAY1": "SPECTRUM",
                       "ARRAY2": "CONTINUUM-SUBTRACTED SPECTRUM", "ARRAY3": "ERROR",
                       "ARRAY4": "MASK", "PLATEID": 266, "MJD": 51630, "FIBERID": 637,
                       "Z": 1e-3, "SPEC_CLN": 1, "RAOBJ": 147.3, "DECOBJ": 0.17})
    return fits.HDUList([hdu])


def test_sdss_spspec(tmp_path):
    path = tmp_path / "spSpec-51630-0266-637.fit"
    spspec_hdul().writeto(path)
    assert sio.identify_format(path) == ["sdss-spspec"]
    s = sio.read(path)
    assert_allclose(s.wave[[0, -1]], 10 ** (3.5794 + 1e-4 * np.array([0, 299])))
    assert_allclose(s.ivar[0, 0], 0.25)
    assert s.mask[0, [10, 20]].all() and not s.mask[0, 30] and s.mask.sum() == 2
    assert s.ids[0] == "266-51630-637" and s.meta["class"][0] == "STAR"
    assert_allclose(s.meta["rv"][0], 1e-3 * 299792.458)
    assert sio.read(path, mask_bits="all").mask[0, 30]


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")
def test_real_spspec_and_boss_files():
    dr7 = sio.read(SHARED / "sdss-spspec-dr7" / "spSpec-51630-0266-637.fit")
    assert dr7.meta["class"][0] == "GALAXY" and abs(dr7.meta["z"][0] - 0.0880) < 1e-3
    boss = sio.read(SHARED / "sdss-spec-dr9" / "spec-3851-55302-0530.fits")
    assert boss.ids[0] == "3851-55302-530"
    # BOSS coadds start 16+ pixels above COEFF0: the loglam column decides
    assert boss.wave[0] > 10 ** (3.5537 + 10e-4)
