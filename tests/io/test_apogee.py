import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose, assert_array_equal

import starlearn.io as sio
from starlearn import PRESETS

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "fits-samples" / "apogee"
N = 8575


def grid_header(header: fits.Header) -> None:
    header.update({"CRVAL1": 4.179, "CDELT1": 6e-6, "CRPIX1": 1, "CTYPE1": "LOG-LINEAR"})


def aspcapstar_hdul() -> fits.HDUList:
    flux = fits.ImageHDU(np.linspace(0.9, 1.1, N).astype("f4"))
    err = fits.ImageHDU(np.full(N, 0.01, "f4"))
    err.data[:322] = 0  # no data before the blue chip
    model = fits.ImageHDU(np.ones(N, "f4"))
    for hdu in (flux, err, model):
        grid_header(hdu.header)
    param = np.array([[4750.0, 2.4, 0.1, -0.5, 0.1, 0.3, 0.2, 1.0, -9999.0]], "f4")
    x_h = np.full((1, 26), -9999.0, "f4")
    x_h[0, 17] = -0.45  # Fe
    x_h[0, 5] = -0.2  # Mg
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="APOGEE_ID", format="18A", array=["2M00000000+0000000"]),
        fits.Column(name="PARAM", format="9E", array=param),
        fits.Column(name="FPARAM", format="9E", array=param + 1),
        fits.Column(name="X_H", format="26E", array=x_h),
        fits.Column(name="ASPCAPFLAG", format="J", array=[0]),
        fits.Column(name="SNR", format="E", array=[123.0]),
        fits.Column(name="VHELIO", format="E", array=[-12.5]),
    ])
    return fits.HDUList([fits.PrimaryHDU(), flux, err, model, table])


def apstar_hdul(n_visits: int = 2) -> fits.HDUList:
    rows = 1 if n_visits == 1 else n_visits + 2
    primary = fits.PrimaryHDU()
    grid_header(primary.header)
    primary.header.update({"OBJID": "2M11111111+1111111", "SNR": 150.0, "VHELIO": 10.0,
                           "NVISITS": n_visits})
    flux = fits.ImageHDU(np.ones((rows, N)) * np.arange(1, rows + 1)[:, None])
    err = fits.ImageHDU(np.full((rows, N), 0.1))
    bits = np.zeros((rows, N), np.int64)
    bits[:, 1000] = 1  # BADPIX
    bits[:, 1001] = 1 << 9  # PERSIST_HIGH: not bad by default
    mask = fits.ImageHDU(bits)
    mask.header["BUNIT"] = "Pixel bitmask"
    visits = fits.BinTableHDU.from_columns([
        fits.Column(name="snr", format="D", array=np.arange(n_visits) + 50.0),
        fits.Column(name="vhelio", format="D", array=np.arange(n_visits) + 11.0)])
    return fits.HDUList([primary, flux, err, mask, *[fits.ImageHDU() for _ in range(5)],
                         visits])


def apvisit_hdul() -> fits.HDUList:
    primary = fits.PrimaryHDU()
    primary.header.update({"OBJID": "2M2", "SNR": 44.0, "VHELIO": -33.0, "MJD5": 55844})
    starts = [16470.0, 15860.0, 15140.0]  # red, green, blue: stored red first, decreasing
    wave = np.stack([s + 480 - 0.12 * np.arange(4096) for s in starts])
    flux = fits.ImageHDU(np.tile(np.arange(3)[:, None] + 1.0, (1, 4096)))
    err = fits.ImageHDU(np.full((3, 4096), 0.05))
    mask = fits.ImageHDU(np.zeros((3, 4096), np.int16))
    wave_hdu = fits.ImageHDU(wave)
    wave_hdu.header["BUNIT"] = "Wavelength (Ang)"
    return fits.HDUList([primary, flux, err, mask, wave_hdu])


def test_aspcapstar(tmp_path):
    path = tmp_path / "aspcapStar-test.fits"
    aspcapstar_hdul().writeto(path)
    assert sio.identify_format(path) == ["apogee-aspcapstar"]
    s = sio.read(path)
    assert PRESETS["apogee"].matches(s.wave)
    assert s.mask[0, :322].all() and not s.mask[0, 322:].any()
    assert_allclose(s.ivar[0, 400], 1e4, rtol=1e-5)
    assert_allclose(s.label("teff"), [4750.0])
    assert np.isnan(s.label("o_m")[0])  # -9999 becomes NaN
    assert_allclose(s.label("fe_h"), [-0.45])
    assert_allclose(s.label("mg_fe"), [0.25], atol=1e-6)
    assert np.isnan(s.label("si_fe")[0])
    assert s.meta["snr"][0] == 123.0 and s.meta["rv"][0] == -12.5
    assert s.ids[0] == "2M00000000+0000000"
    assert_allclose(sio.read(path, params="FPARAM").label("teff"), [4751.0])
    assert_allclose(sio.read(path, spectrum="model").flux[0, 500], 1.0)


def test_apstar_rows(tmp_path):
    path = tmp_path / "apStar-test.fits"
    apstar_hdul().writeto(path)
    assert sio.identify_format(path) == ["apogee-apstar"]
    combined = sio.read(path)
    assert len(combined) == 1 and combined.flux[0, 0] == 1.0
    assert combined.mask[0, 1000] and not combined.mask[0, 1001]
    visits = sio.read(path, rows="visits")
    assert_array_equal(visits.flux[:, 0], [3.0, 4.0])
    assert_allclose(visits.meta["vhelio"], [11.0, 12.0])
    assert_allclose(visits.meta["snr"], [50.0, 51.0])
    assert len(sio.read(path, rows="all")) == 4
    assert not sio.read(path, mask_bits=0).mask.any()
    single = tmp_path / "apStar-one.fits"
    apstar_hdul(n_visits=1).writeto(single)
    assert len(sio.read(single, rows="visits")) == 1


def test_apvisit_joins_chips_in_increasing_wavelength(tmp_path):
    path = tmp_path / "apVisit-test.fits"
    apvisit_hdul().writeto(path)
    assert sio.identify_format(path) == ["apogee-apvisit"]
    s = sio.read(path)
    assert s.n_pix == 3 * 4096
    assert np.all(np.diff(s.wave_of(0)) > 0)
    assert s.flux[0, 0] == 3.0 and s.flux[0, -1] == 1.0  # blue chip first after sorting
    assert s.meta["rv"][0] == -33.0


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")
def test_real_apogee_files():
    warnings.simplefilter("ignore")
    for path in sorted(SHARED.glob("aspcapStar-*.fits")):
        s = sio.read(path)
        assert PRESETS["apogee"].matches(s.wave)
        assert "teff" in s.label_names and 0 < s.meta["snr"][0] < 1000
    # PARAM of this cool dwarf is ASPCAP's -9999 (no calibrated value): NaN, not a number
    s = sio.read(SHARED / "aspcapStar-r6-l30e.2-2M00452143+1634446.fits")
    assert np.isnan(s.label("teff")[0]) and np.isnan(s.label("logg")[0])
    assert_allclose(s.meta["param_vmicro"][0], 0.2219545, atol=1e-6)
    s = sio.read(SHARED / "aspcapStar-r6-l30e.2-2M00452143+1634446.fits", params="FPARAM")
    assert_allclose(s.label("teff"), [2500.6], atol=0.1)
    assert_allclose(s.label("m_h"), [-2.2223], atol=1e-3)
    apstar = sio.read(SHARED / "apStar-dr17-2M17335483-2753043.fits", rows="visits")
    assert len(apstar) == 3
    assert_allclose(apstar.meta["vhelio"], [15.915, 15.650, 15.561], atol=1e-3)
    visit = sio.read(SHARED / "apVisit-r13-5095-55844-128.fits")
    wave = visit.wave_of(0)
    assert 15100 < wave[0] < 15200 and 16900 < wave[-1] < 17000
