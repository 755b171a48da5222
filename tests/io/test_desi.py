import numpy as np
from astropy.io import fits
from numpy.testing import assert_allclose

import starlearn.io as sio
from starlearn.io.desi import join_arms


def desi_hdul(n_target: int = 3) -> fits.HDUList:
    """A coadd: three arms on one 0.8 Å lattice that overlap by 5 and 10 pixels."""
    fibermap = fits.BinTableHDU.from_columns([
        fits.Column(name="TARGETID", format="K", array=np.arange(n_target) + 1000),
        fits.Column(name="TARGET_RA", format="D", array=np.full(n_target, 10.0)),
        fits.Column(name="TARGET_DEC", format="D", array=np.full(n_target, -5.0))],
        name="FIBERMAP")
    hdus = [fits.PrimaryHDU(), fibermap]
    for arm, start, n in (("B", 3600.0, 100), ("R", 3600.0 + 95 * 0.8, 100),
                          ("Z", 3600.0 + 185 * 0.8, 100)):
        wave = start + 0.8 * np.arange(n)
        level = {"B": 1.0, "R": 3.0, "Z": 5.0}[arm]
        mask = np.zeros((n_target, n), np.int32)
        if arm == "R":
            mask[0, 0] = 4  # a cosmic in R's first pixel (an overlap pixel)
        hdus += [fits.ImageHDU(wave, name=f"{arm}_WAVELENGTH"),
                 fits.ImageHDU(np.full((n_target, n), level), name=f"{arm}_FLUX"),
                 fits.ImageHDU(np.ones((n_target, n)), name=f"{arm}_IVAR"),
                 fits.ImageHDU(mask, name=f"{arm}_MASK")]
        hdus[-4].header["BUNIT"] = "Angstrom"
    return fits.HDUList(hdus)


def test_desi_coadd_joins_arms_per_target(tmp_path):
    path = tmp_path / "coadd-sv3-dark-1.fits"
    desi_hdul().writeto(path)
    assert sio.identify_format(path) == ["desi"]
    s = sio.read(path)
    assert len(s) == 3 and s.n_pix == 285 and list(s.ids) == ["1000", "1001", "1002"]
    assert_allclose(np.diff(s.wave), 0.8, rtol=1e-9)
    overlap = 96  # B's pixel 96 is R's pixel 1: ivar-weighted mean, ivar summed
    assert_allclose(s.flux[1, overlap], 2.0)
    assert_allclose(s.ivar[1, overlap], 2.0)
    assert_allclose(s.flux[0, 95], 1.0)
    assert_allclose(s.ivar[0, 95], 1.0)  # R masked
    assert s.meta["ra"][0] == 10.0 and s.meta["targetid"][2] == 1002
    assert sio.read(path, arms="Z").n_pix == 100


def test_join_arms_refuses_misaligned_arms():
    w = np.arange(10.0)
    ones = np.ones((1, 10))
    try:
        join_arms([w, w + 5.3], [ones, ones], [ones, ones], [ones == 0, ones == 0])
    except ValueError as err:
        assert "lattice" in str(err)
    else:
        raise AssertionError("misaligned arms were joined")
