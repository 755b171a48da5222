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
                           "CTYPE1": "LINEAR", "CUNIT1": "Angstrom", "OBJECT": "HD 1"})
    return fits.HDUList([hdu])


def test_wcs1d_linear_air_is_converted_to_vacuum(tmp_path):
    path = tmp_path / "oe000001.fits"
    wcs1d_hdul().writeto(path)
    assert sio.identify_format(path) == ["wcs1d"]
    s = sio.read(path)
    air = 6265.0 + 0.25 * np.arange(500)
    assert_allclose(s.wave, air_to_vacuum(air))
    assert s.ids[0] == "HD 1" and s.meta["medium_in_file"][0] == "air"
    assert s.meta["medium_from"][0].startswith("assumed: air")
    assert s.meta["wave_unit_from"][0] == "CUNIT1"
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
    cols = [fits.Column(name="spectral", format="D", array=TABLE1D_WAVE, unit="Angstrom"),
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
    assert_allclose(s.ivar[0], 2500.0)
    assert not s.meta["ivar_estimated"][0]


def test_ascii_two_and_three_columns(tmp_path):
    two = tmp_path / "spec.txt"
    two.write_text("# wave [Angstrom] flux\n" + "\n".join(f"{6500 + i * 0.5} {1 + 0.01 * (i % 3)}"
                                               for i in range(100)))
    assert sio.identify_format(two) == ["ascii"]
    s = sio.read(two, medium="vacuum")
    assert s.n_pix == 100 and s.wave[0] == 6500.0
    three = tmp_path / "spec.csv"
    three.write_text("\n".join(f"{6500 + i},{1.0},{0.1}" for i in range(50)))
    with pytest.raises(ReadError, match="spec.csv: a text spectrum without a wavelength unit"):
        sio.read(three)
    s3 = sio.read(three, wave_unit="Angstrom")
    assert_allclose(s3.ivar[0], 100.0)
    assert_allclose(s3.wave[0], air_to_vacuum(6500.0))


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
            "lamost-mrs", "sdss-spec", "sdss-spspec", "pfs-object", "pfs-arm", "pfs-gaobject",
            "pfs-config", "galah-dr3", "galah-dr4", "galah-dr4-allstar", "gaia-xp-sampled",
            "gaia-xp-continuous", "desi", "eso-phase3", "eso-image", "iraf-multispec",
            "ondrejov", "wcs1d", "table1d", "ascii"} <= names


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
    del raw[0].header["CUNIT1"]
    raw[0].header["WAT1_001"] = "wtype=linear label=Wavelength units=angstroms"
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


def test_read_reads_a_data_set_as_read_dataset_does(tmp_path):
    """One door: sl.read identifies a starlearn data set by its content and gives what
    SpectrumSet.read and read_dataset give."""
    from starlearn import SpectrumSet
    from starlearn.synth import generate

    from .test_dataset import assert_sets_equal

    generate("lamost", 3, seed=1).write(tmp_path / "set.h5")
    assert sio.identify_format(tmp_path / "set.h5") == ["starlearn-h5"]
    got = sio.read(tmp_path / "set.h5")
    assert_sets_equal(got, sio.read_dataset(tmp_path / "set.h5"))
    assert_sets_equal(got, SpectrumSet.read(tmp_path / "set.h5"))
    assert len(got) == 3


def _image(header: dict, n: int = 200, data=None) -> fits.HDUList:
    hdu = fits.PrimaryHDU(np.ones(n, "f4") if data is None else data)
    hdu.header.update(header)
    return fits.HDUList([hdu])


@pytest.mark.parametrize(("header", "first", "step"), [
    # CD1_1 wins over CDELT1 (the standard's rule), CRPIX1 counts from 1
    ({"CRVAL1": 5000.0, "CD1_1": 0.5, "CDELT1": 9.0, "CRPIX1": 1, "CUNIT1": "Angstrom"},
     5000.0, 0.5),
    ({"CRVAL1": 500.0, "CDELT1": 0.05, "CRPIX1": 11, "CUNIT1": "nm"}, 4995.0, 0.5),
    ({"CRVAL1": 0.5, "CDELT1": 5e-5, "CRPIX1": 1, "CUNIT1": "um", "CTYPE1": "AWAV"},
     5000.0, 0.5),
    # unit written into a non-standard CTYPE (HARPS s1d, UVES)
    ({"CRVAL1": 5000.0, "CDELT1": 0.5, "CRPIX1": 1, "CTYPE1": "Angstrom"}, 5000.0, 0.5),
    ({"CRVAL1": 5000.0, "CDELT1": 0.5, "CRPIX1": 1, "CTYPE1": "WAVELENGTH [Ang]"},
     5000.0, 0.5),
    # the standard's default unit for WAVE is the metre
    ({"CRVAL1": 5e-7, "CDELT1": 5e-11, "CRPIX1": 1, "CTYPE1": "WAVE"}, 5000.0, 0.5),
])
def test_wcs1d_axis_follows_the_fits_standard(tmp_path, header, first, step):
    path = tmp_path / "w.fits"
    _image(header).writeto(path)
    s = sio.read(path, medium="vacuum")
    assert_allclose(s.wave[0], first, rtol=1e-9)
    assert_allclose(s.wave[1] - s.wave[0], step, rtol=1e-6)


def test_wcs1d_wave_log_and_medium_from_ctype(tmp_path):
    path = tmp_path / "log.fits"
    _image({"CTYPE1": "AWAV-LOG", "CRVAL1": 5000.0, "CDELT1": 0.5, "CRPIX1": 1,
            "CUNIT1": "Angstrom"}).writeto(path)
    s = sio.read(path)
    w = 5000.0 * np.exp(0.5 * np.arange(200) / 5000.0)  # lambda_r exp(w / lambda_r)
    assert_allclose(s.wave, air_to_vacuum(w))
    assert s.meta["medium_from"][0] == "CTYPE1 = AWAV"


@pytest.mark.parametrize(("header", "problem"), [
    ({"CTYPE1": "VRAD", "CRVAL1": 0.0, "CDELT1": 1.0, "CUNIT1": "km/s"}, "not wavelength"),
    ({"CTYPE1": "FREQ", "CRVAL1": 1e9, "CDELT1": 1e5}, "not wavelength"),
    ({"CTYPE1": "PIXEL", "CRVAL1": 1.0, "CDELT1": 1.0}, "pixels"),
    ({"CRVAL1": 5000.0, "CDELT1": 0.5}, "the wavelength unit is not given"),
    ({"CRVAL1": 5000.0, "CDELT1": 0.5, "CUNIT1": "km/s"}, "not wavelength"),
    # 500 nm written as 500 Angstrom
    ({"CRVAL1": 500.0, "CDELT1": 0.05, "CUNIT1": "Angstrom"}, "the unit is likely wrong"),
])
def test_wcs1d_refuses_what_it_cannot_know(tmp_path, header, problem):
    path = tmp_path / "bad.fits"
    _image(header).writeto(path)
    with pytest.raises(ReadError, match=f"bad.fits: .*{problem}"):
        sio.read(path)


def test_iraf_single_aperture_bands_give_the_sigma(tmp_path):
    """IRAF equispec 3-D output: band 1 the spectrum, band 4 the sigma."""
    data = np.ones((4, 1, 100), "f4")
    data[0] *= 50.0
    data[3] *= 2.0
    path = tmp_path / "bands.fits"
    _image({"CRVAL1": 6000.0, "CDELT1": 1.0, "CRPIX1": 1, "DC-FLAG": 0,
            "WAT0_001": "system=equispec",
            "BANDID1": "spectrum - background fit, weights variance, clean yes",
            "BANDID4": "sigma - background fit, weights variance, clean yes"},
           data=data).writeto(path)
    assert sio.identify_format(path) == ["wcs1d"]
    s = sio.read(path)
    assert_allclose(s.flux[0], 50.0)
    assert_allclose(s.ivar[0], 0.25)
    assert s.meta["wave_unit_from"][0] == "IRAF default (Angstrom)"


def test_table_without_a_wavelength_unit_is_refused(tmp_path):
    path = tmp_path / "t.fits"
    cols = [fits.Column(name="wave", format="D", array=np.linspace(5000, 5100, 50)),
            fits.Column(name="flux", format="D", array=np.ones(50))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    with pytest.raises(ReadError, match="t.fits: HDU 1: the wavelength column 'wave' has no"):
        sio.read(path)
    assert_allclose(sio.read(path, wave_unit="nm", medium="vacuum").wave[0], 50000.0)


def test_estimated_errors_follow_der_snr_on_correlated_noise():
    """Noise correlated between neighbouring pixels (as resampling leaves it): first
    differences see 0.71 of it; DER_SNR (pixels two apart) all of it."""
    from starlearn.io.generic import der_snr_noise, estimate_ivar

    rng = np.random.default_rng(3)
    white = rng.normal(0, 1, 20_000)
    correlated = np.convolve(white, [0.5, 0.5], mode="same")  # sigma 1/sqrt(2)
    flux = 100.0 + correlated
    sigma = np.median(1 / np.sqrt(estimate_ivar(flux)))
    assert_allclose(sigma, np.std(correlated), rtol=0.05)
    assert_allclose(der_snr_noise(flux), np.std(correlated), rtol=0.05)
    diffs = np.diff(flux)
    first_difference = 1.4826 * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2)
    assert first_difference < 0.75 * np.std(correlated)  # what the old estimate saw


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")
@pytest.mark.parametrize("name", ["oe270005.fits", "gamma-cas-emission.fits",
                                  "alpha-lyr-absorption.fits"])
def test_real_ondrejov_errors_agree_with_der_snr(name):
    s = sio.read(SHARED / "ondrejov" / name)
    assert s.meta["ivar_estimated"][0]
    flux = s.flux[0].astype(float)
    ours = np.median(flux * np.sqrt(s.ivar[0]))
    der_snr = np.median(flux) / (1.482602 / np.sqrt(6) * np.median(
        np.abs(2 * flux[2:-2] - flux[:-4] - flux[4:])))
    assert abs(ours / der_snr - 1) < 0.2


def test_spectrum_in_an_image_extension_and_vector_tables(tmp_path):
    """Archives that keep the 1-D image in HDU 1 behind an empty primary, and tables of
    one row of vector columns, read as the generic formats."""
    image = fits.ImageHDU(np.ones(100, "f4"))
    image.header.update({"CRVAL1": 600.0, "CDELT1": 0.1, "CRPIX1": 1, "CUNIT1": "nm"})
    path = tmp_path / "ext.fits"
    fits.HDUList([fits.PrimaryHDU(), image]).writeto(path)
    assert sio.identify_format(path) == ["wcs1d"]
    assert_allclose(sio.read(path, medium="vacuum").wave[[0, -1]], [6000.0, 6099.0])
    cols = [fits.Column(name="WAVE", format="100D", unit="Angstrom",
                        array=np.linspace(5000, 5099, 100)[None]),
            fits.Column(name="FLUX", format="100E", array=np.ones((1, 100))),
            fits.Column(name="ERR", format="100E", array=np.full((1, 100), 0.1))]
    path = tmp_path / "vec.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    assert sio.identify_format(path) == ["table1d"]
    s = sio.read(path, medium="vacuum")
    assert s.n_pix == 100
    assert_allclose(s.ivar[0], 100.0)
