import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose

import starlearn.io as sio
from starlearn.io import ReadError


def pfs_hdul() -> fits.HDUList:
    """A current-layout pfsObject: FLUX, MASK (MP_ keys), COVAR, WAVELENGTH, FLUX_TABLE."""
    n = 300
    primary = fits.PrimaryHDU()
    primary.header.update({"OBJID": 42, "CATID": 1})
    mask = np.zeros(n, np.int32)
    mask[3] = 1
    mask[4] = 1 << 15
    mask_hdu = fits.ImageHDU(mask, name="MASK")
    mask_hdu.header["MP_REFLINE"] = 15
    covar = np.zeros((3, n))
    covar[0] = 4.0
    wave = np.linspace(710.0, 885.0, n)
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="wavelength", format="D", array=wave),
        fits.Column(name="flux", format="E", array=np.full(n, 10.0)),
        fits.Column(name="error", format="E", array=np.full(n, 2.0)),
        fits.Column(name="mask", format="K", array=mask)], name="FLUX_TABLE")
    return fits.HDUList([primary, fits.ImageHDU(np.full(n, 10.0), name="FLUX"), mask_hdu,
                         fits.ImageHDU(covar, name="COVAR"),
                         fits.ImageHDU(wave, name="WAVELENGTH"), table])


def test_pfs_object(tmp_path):
    path = tmp_path / "pfsObject-test.fits"
    pfs_hdul().writeto(path)
    assert sio.identify_format(path) == ["pfs-object"]
    s = sio.read(path)
    assert_allclose(s.wave[[0, -1]], [7100.0, 8850.0])
    assert s.mask[0, 3] and not s.mask[0, 4]  # REFLINE is a marker, not a bad pixel
    assert_allclose(s.ivar[0, 0], 0.25)
    assert s.ids[0] == "42"
    table = sio.read(path, table=True)
    assert_allclose(table.ivar[0, 0], 0.25)
    assert table.mask[0, 3] and not table.mask[0, 4]


def test_pfs_object_2016_wcs_counts_pixels_from_zero(tmp_path):
    """The 2016 datamodel: FLUX with CRVAL1 = 350 nm at pixel 0 (CRPIX1 = 0), FLUXTBL."""
    n = 100
    flux = fits.ImageHDU(np.ones(n, "f4"), name="FLUX")
    flux.header.update({"CRVAL1": 350.0, "CD1_1": 0.1, "CRPIX1": 0})
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="lambda", format="E", array=np.linspace(380.0, 389.9, n)),
        fits.Column(name="flux", format="E", array=np.ones(n)),
        fits.Column(name="fluxVariance", format="E", array=np.full(n, 0.01)),
        fits.Column(name="mask", format="J", array=np.zeros(n, np.int32))], name="FLUXTBL")
    hdul = fits.HDUList([fits.PrimaryHDU(), flux, table,
                         fits.ImageHDU(np.ones((3, n)), name="COVAR"),
                         fits.ImageHDU(np.zeros(n, np.int32), name="MASK")])
    path = tmp_path / "pfsObject-2016.fits"
    hdul.writeto(path)
    assert sio.identify_format(path) == ["pfs-object"]
    image = sio.read(path, table=False)
    assert_allclose(image.wave[[0, 1]], [3500.0, 3501.0])
    default = sio.read(path)  # the 2016 table, explicit wavelengths
    assert_allclose(default.wave[0], 3800.0, rtol=1e-6)
    assert_allclose(default.ivar, 100.0)


def pfs_arm_hdul(n_fibres: int = 3, n: int = 200) -> fits.HDUList:
    wave = np.stack([np.linspace(380.0, 650.0, n) + 0.01 * i for i in range(n_fibres)])
    covar = np.zeros((n_fibres, 3, n))
    covar[:, 0] = 9.0
    mask = np.zeros((n_fibres, n), np.int32)
    mask[1, 7] = 2
    config = fits.BinTableHDU.from_columns([
        fits.Column(name="pfsConfigId", format="K", array=[7]),
        fits.Column(name="visit", format="J", array=[11])], name="CONFIG")
    return fits.HDUList([fits.PrimaryHDU(),
                         fits.ImageHDU(np.ones((n_fibres, n)) * 5, name="FLUX"),
                         fits.ImageHDU(covar, name="COVAR"), fits.ImageHDU(mask, name="MASK"),
                         fits.ImageHDU(wave, name="WAVELENGTH"),
                         fits.ImageHDU(np.zeros((n_fibres, n)), name="SKY"), config])


def test_pfs_arm_gives_one_row_per_fibre(tmp_path):
    path = tmp_path / "pfsArm-000011-b1.fits"
    pfs_arm_hdul().writeto(path)
    assert sio.identify_format(path) == ["pfs-arm"]
    s = sio.read(path)
    assert len(s) == 3 and s.wave.shape == (3, 200)
    assert_allclose(s.wave[1, 0], 3800.1)
    assert s.mask[1, 7] and s.mask.sum() == 1
    assert list(s.ids) == ["11/1", "11/2", "11/3"] and s.meta["visit"][0] == 11
    assert_allclose(s.ivar[~s.mask], 1 / 9.0)


def test_pfs_config_and_placeholders_are_named(tmp_path):
    config = fits.BinTableHDU.from_columns([
        fits.Column(name=c, format="E", array=[1.0]) for c in ("fiberId", "objId", "ra", "dec")],
        name="CONFIG")
    path = tmp_path / "pfsConfig-0x1.fits"
    fits.HDUList([fits.PrimaryHDU(), config]).writeto(path)
    assert sio.identify_format(path) == ["pfs-config"]
    with pytest.raises(ReadError, match="pfsConfig-0x1.fits: a PFS fibre configuration"):
        sio.read(path)
    empty = pfs_hdul()
    for name in ("FLUX", "COVAR"):
        empty[name].data = np.zeros_like(empty[name].data)
    empty.writeto(tmp_path / "zero.fits")
    with pytest.raises(ReadError, match="placeholder"):
        sio.read(tmp_path / "zero.fits")


def test_pfs_gaobject_labels_from_stparam(tmp_path):
    hdul = pfs_hdul()
    rows = [("rvfit", "helio", "v_los", "km s-1", -120.0, 2.0, False),
            ("rvfit", "", "T_eff", "K", 5100.0, 80.0, False),
            ("rvfit", "", "log_g", "", 2.1, 0.2, False),
            ("rvfit", "", "Fe_H", "dex", -1.4, 0.1, False),
            ("rvfit", "", "a_Fe", "dex", 0.3, 0.1, True)]
    cols = list(zip(*rows, strict=True))
    stparam = fits.BinTableHDU.from_columns([
        fits.Column(name="method", format="5A", array=cols[0]),
        fits.Column(name="frame", format="5A", array=cols[1]),
        fits.Column(name="param", format="5A", array=cols[2]),
        fits.Column(name="unit", format="6A", array=cols[3]),
        fits.Column(name="value", format="E", array=cols[4]),
        fits.Column(name="valueErr", format="E", array=cols[5]),
        fits.Column(name="flag", format="L", array=cols[6])], name="STPARAM")
    hdul.append(stparam)
    path = tmp_path / "pfsGAObject.fits"
    hdul.writeto(path)
    assert sio.identify_format(path) == ["pfs-gaobject"]
    s = sio.read(path)
    assert_allclose(s.label("teff"), [5100.0])
    assert_allclose(s.label("fe_h"), [-1.4])
    assert np.isnan(s.label("alpha_fe")[0])  # flagged: not a measurement
    assert s.meta["rv"][0] == -120.0 and s.meta["teff_err"][0] == 80.0
