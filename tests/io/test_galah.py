import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose

import starlearn.io as sio
from starlearn import air_to_vacuum
from starlearn.io.galah import join_cameras

STARTS = {1: 4713.5, 2: 5649.0, 3: 6477.3, 4: 7585.1}


def _wcs(header: fits.Header, start: float) -> None:
    header.update({"CRVAL1": start, "CDELT1": 0.05, "CRPIX1": 1.0, "CTYPE1": "LINEAR",
                   "CUNIT1": "Angstroms"})


def dr3_hdul(ccd: int = 3, n: int = 400) -> fits.HDUList:
    flux = fits.PrimaryHDU(np.full(n, 1000.0, "f4"))
    flux.header.update({"TELESCOP": "Anglo-Australian Telescope", "INSTRUME": "HERMES-2dF",
                        "ORIGIN": "GALAH DR3", "OBJECT": "131123003001096", "BARYEFF": -0.9})
    sigma = fits.ImageHDU(np.full(n, 0.02, "f4"), name="input_sigma")
    others = [fits.ImageHDU(np.ones(n, "f4"), name=x)
              for x in ("no_sky_subspectrum", "no_sky_sigma")]
    normalised = fits.ImageHDU(np.full(n, 0.9, "f4"), name="normalised spectra")
    for hdu in (flux, sigma, *others):
        _wcs(hdu.header, STARTS[ccd])
    _wcs(normalised.header, STARTS[ccd] - 1.0)  # shifted to rest
    return fits.HDUList([flux, sigma, *others, normalised])


def dr4_hdul(ccd: int = 3, n: int = 400) -> fits.HDUList:
    names = ("normalized", "relative_error", "sky", "teluric", "scattered", "cross_talk",
             "resolution_profile")
    primary = fits.PrimaryHDU(np.full(n, 2000.0, "f4"))
    primary.header.update({"INSTRUME": "HERMES-2dF", "PIPE_VER": "6.0", "RVCOM": -18.7,
                           "RV": -19.0, "SNR": 50.0})
    hdus = [primary] + [fits.ImageHDU(np.full(n, 0.01 if x == "relative_error" else 0.95,
                                              "f4"), name=x) for x in names]
    for hdu in hdus:
        _wcs(hdu.header, STARTS[ccd])
    return fits.HDUList(hdus)


def test_galah_dr3_normalised_and_flux(tmp_path):
    path = tmp_path / "1311230030010963.fits"
    dr3_hdul().writeto(path)
    assert sio.identify_format(path) == ["galah-dr3"]
    s = sio.read(path)
    assert_allclose(s.wave[0], air_to_vacuum(6476.3))  # HDU 4's own WCS, air -> vacuum
    assert_allclose(s.flux[0], 0.9)
    assert_allclose(s.ivar[0], 1 / (0.9 * 0.02) ** 2,
                                                        rtol=1e-5)
    assert s.ids[0] == "131123003001096/3" and s.meta["rv"][0] == 0.0
    flux = sio.read(path, spectrum="flux")
    # input_sigma is relative: sigma = 0.02 x 1000 counts
    assert_allclose(flux.ivar[0], 1 / 20.0**2, rtol=1e-5)
    assert np.isnan(flux.meta["rv"][0])
    assert s.meta["medium_from"][0] == "GALAH convention (air)"


def test_galah_dr4_reduction(tmp_path):
    path = tmp_path / "2101150001010013.fits"
    dr4_hdul().writeto(path)
    assert sio.identify_format(path) == ["galah-dr4"]
    s = sio.read(path)
    assert_allclose(s.flux[0], 0.95)
    assert s.meta["rv"][0] == -18.7
    assert_allclose(s.ivar[0], 1 / (0.95 * 0.01) ** 2, rtol=1e-5)


def test_galah_cameras_join(tmp_path):
    for ccd in (1, 2, 3, 4):
        dr3_hdul(ccd).writeto(tmp_path / f"131123003001096{ccd}.fits")
    star = sio.read(tmp_path / "1311230030010962.fits", cameras="all")
    assert len(star) == 1 and star.n_pix == 1600 and star.meta["cameras"][0] == "1234"
    assert np.all(np.diff(star.wave) > 0) and star.ids[0] == "131123003001096"
    cameras = sio.read_many([tmp_path / f"131123003001096{c}.fits" for c in (3, 1, 4, 2)])[0]
    joined = join_cameras(cameras[0] if len(cameras) == 1 else
                          type(cameras[0]).concat(cameras))
    np.testing.assert_array_equal(joined.flux, star.flux)
    (tmp_path / "1311230030010964.fits").unlink()
    with pytest.raises(sio.ReadError, match="missing 1311230030010964.fits"):
        sio.read(tmp_path / "1311230030010962.fits", cameras="all")


def test_galah_allstar_fit_spectrum(tmp_path):
    n = 300
    wave = np.linspace(4700.0, 4720.0, n)
    mob = np.ones(n, bool)
    mob[:10] = False
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="wave", format="D", array=wave),
        fits.Column(name="sob", format="D", array=np.full(n, 0.97)),
        fits.Column(name="uob", format="D", array=np.full(n, 0.01)),
        fits.Column(name="smod", format="D", array=np.full(n, 0.98)),
        fits.Column(name="mob", format="L", array=mob)])
    path = tmp_path / "150411003101372_allstar_fit_spectrum.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    assert sio.identify_format(path) == ["galah-dr4-allstar"]
    s = sio.read(path)
    assert s.mask[0, :10].all() and not s.mask[0, 10:].any()
    assert s.ids[0] == "150411003101372" and np.all(np.diff(s.wave) > 0)
    assert_allclose(sio.read(path, spectrum="model").flux[0, 20], 0.98)
