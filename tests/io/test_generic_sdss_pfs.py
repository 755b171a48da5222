from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose

import starlearn.io as sio
from starlearn import air_to_vacuum, vacuum_to_air
from starlearn.io import ReadError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "fits-samples"


def wcs1d_hdul(log: bool = False) -> fits.HDUList:
    rng = np.random.default_rng(0)
    hdu = fits.PrimaryHDU((1000 + rng.normal(0, 10, 500)).astype("f4"))
    if log:
        hdu.header.update({"CRVAL1": np.log10(6250.0), "CDELT1": 1e-5, "CRPIX1": 1,
                           "DC-FLAG": 1})
    else:
        hdu.header.update({"CRVAL1": 6265.0, "CDELT1": 0.25, "CRPIX1": 1.0,
                           "CTYPE1": "LINEAR", "OBJECT": "HD 1"})
    return fits.HDUList([hdu])


def test_wcs1d_linear_air_is_converted_to_vacuum(tmp_path):
    path = tmp_path / "oe000001.fits"
    wcs1d_hdul().writeto(path)
    assert sio.identify_format(path) == ["wcs1d"]
    s = sio.read(path)
    air = 6265.0 + 0.25 * np.arange(500)
    assert_allclose(s.wave, air_to_vacuum(air))
    assert s.ids[0] == "HD 1" and s.meta["medium_in_file"][0] == "air"
    assert s.meta["ivar_estimated"][0]
    # the estimated error matches the injected noise (sigma = 10) within 15%
    assert_allclose(np.median(1 / np.sqrt(s.ivar)), 10.0, rtol=0.15)
    assert_allclose(sio.read(path, medium="vacuum").wave, air)


def test_wcs1d_log_linear_and_header_medium(tmp_path):
    path = tmp_path / "log.fits"
    hdul = wcs1d_hdul(log=True)
    hdul[0].header["VACUUM"] = True
    hdul.writeto(path)
    s = sio.read(path)
    assert_allclose(s.wave[[0, -1]], 6250.0 * 10 ** (1e-5 * np.array([0, 499])))


TABLE1D_WAVE = np.linspace(6282.0, 6733.0, 300)


def table1d_hdul() -> fits.HDUList:
    """A generic table file: spectral axis (air Å), flux and error columns."""
    cols = [fits.Column(name="spectral", format="D", array=TABLE1D_WAVE),
            fits.Column(name="flux", format="D", array=np.ones(300)),
            fits.Column(name="error", format="D", array=np.full(300, 0.02))]
    return fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)])


def test_table1d_with_error_column(tmp_path):
    wave = TABLE1D_WAVE
    path = tmp_path / "processed.fits"
    table1d_hdul().writeto(path)
    assert sio.identify_format(path) == ["table1d"]
    s = sio.read(path)
    assert_allclose(vacuum_to_air(s.wave), wave, atol=1e-7)
    assert_allclose(s.ivar[0], 2500.0) and not s.meta["ivar_estimated"][0]


def test_ascii_two_and_three_columns(tmp_path):
    two = tmp_path / "spec.txt"
    two.write_text("# wave flux\n" + "\n".join(f"{6500 + i * 0.5} {1 + 0.01 * (i % 3)}"
                                               for i in range(100)))
    assert sio.identify_format(two) == ["ascii"]
    s = sio.read(two, medium="vacuum")
    assert s.n_pix == 100 and s.wave[0] == 6500.0
    three = tmp_path / "spec.csv"
    three.write_text("\n".join(f"{6500 + i},{1.0},{0.1}" for i in range(50)))
    s3 = sio.read(three)
    assert_allclose(s3.ivar[0], 100.0)
    assert_allclose(s3.wave[0], air_to_vacuum(6500.0))


def sdss_hdul() -> fits.HDUList:
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
        fits.Column(name="SN_MEDIAN_ALL", format="E", array=[31.0])])
    return fits.HDUList([fits.PrimaryHDU(), coadd, summary])


def test_sdss_spec(tmp_path):
    path = tmp_path / "spec-2011-53566-0007.fits"
    sdss_hdul().writeto(path)
    assert sio.identify_format(path) == ["sdss-spec", "table1d"]  # by priority
    s = sio.read(path)
    assert_allclose(s.wave[0], 10**3.5798, rtol=1e-6)
    assert s.mask[0, 5] and s.mask.sum() == 1
    assert s.ids[0] == "2011-53566-7" and s.meta["class"][0] == "STAR"
    assert_allclose(s.meta["rv"][0], -1e-4 * 299792.458, rtol=1e-5)
    assert s.meta["snr"][0] == 31.0


def pfs_hdul() -> fits.HDUList:
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
    return fits.HDUList([primary, fits.ImageHDU(np.full(n, 10.0), name="FLUX"), mask_hdu,
                         fits.ImageHDU(covar, name="COVAR"),
                         fits.ImageHDU(np.linspace(710.0, 885.0, n), name="WAVELENGTH")])


def test_pfs_object(tmp_path):
    path = tmp_path / "pfsObject-test.fits"
    pfs_hdul().writeto(path)
    assert sio.identify_format(path) == ["pfs-object"]
    s = sio.read(path)
    assert_allclose(s.wave[[0, -1]], [7100.0, 8850.0])
    assert s.mask[0, 3] and not s.mask[0, 4]
    assert_allclose(s.ivar[0, 0], 0.25) and s.ids[0] == "42"


def test_read_refuses_unknown_format_names(tmp_path):
    path = tmp_path / "x.fits"
    wcs1d_hdul().writeto(path)
    with pytest.raises(ValueError, match="unknown format 'lamost'"):
        sio.read(path, format="lamost")
    with pytest.raises(ReadError, match="no such file"):
        sio.read(tmp_path / "nothing.fits")


def test_every_format_is_listed():
    names = {f.name for f in sio.formats()}
    assert {"apogee-aspcapstar", "apogee-apstar", "apogee-apvisit", "lamost-lrs",
            "lamost-mrs", "sdss-spec", "pfs-object", "wcs1d", "table1d", "ascii"} <= names


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")
def test_real_ondrejov_files():
    raw = sio.read(SHARED / "ondrejov" / "oe270005.fits")
    air = vacuum_to_air(raw.wave)
    assert abs(air[0] - 6265.0) < 1 and abs(air[-1] - 6777.0) < 1
    emission = sio.read(SHARED / "ondrejov" / "gamma-cas-emission.fits")
    absorption = sio.read(SHARED / "ondrejov" / "alpha-lyr-absorption.fits")
    halpha = np.argmin(np.abs(emission.wave - air_to_vacuum(6562.8)))
    assert emission.flux[0, halpha] > 3.0  # gamma Cas: emission near 4x the continuum
    assert absorption.flux[0].min() < 0.65  # Vega: broad H-alpha absorption


def test_ondrejov_specutils_loader(tmp_path):
    specutils = pytest.importorskip("specutils")
    import starlearn  # noqa: F401  (registers the loaders)

    raw = wcs1d_hdul()
    raw[0].header["TELESCOP"] = "ZEISS-2m"
    raw.writeto(tmp_path / "oe.fits")
    spec = specutils.Spectrum.read(tmp_path / "oe.fits", format="Ondrejov")
    assert_allclose(spec.spectral_axis.value[0], air_to_vacuum(6265.0))
    wave = np.linspace(6282.0, 6733.0, 50)
    cols = [fits.Column(name="spectral", format="D", array=wave),
            fits.Column(name="flux", format="D", array=np.ones(50))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(
        tmp_path / "table.fits")
    table = specutils.Spectrum.read(tmp_path / "table.fits", format="Ondrejov")
    assert_allclose(table.spectral_axis.value, air_to_vacuum(wave))


def test_a_data_set_given_to_read_points_to_read_dataset(tmp_path):
    from starlearn.synth import generate

    generate("lamost", 3, seed=1).write(tmp_path / "set.h5")
    with pytest.raises(ReadError, match=r"set.h5: an HDF5 file.*read_dataset"):
        sio.read(tmp_path / "set.h5")
    assert len(sio.read_dataset(tmp_path / "set.h5")) == 3
