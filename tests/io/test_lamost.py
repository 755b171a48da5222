from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose, assert_array_equal

import starlearn.io as sio
from starlearn.io import ReadError
from starlearn.io.lamost import read_lamost_lrs

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "fits-samples"


def lrs_image_hdul(n_pix: int = 300, seed: int = 0) -> fits.HDUList:
    """A small LAMOST DR1-DR7 style file: 5 x N primary image, COEFF0/COEFF1 keys."""
    rng = np.random.default_rng(seed)
    loglam = 3.5682 + 1e-4 * np.arange(n_pix)
    data = np.zeros((5, n_pix))
    data[0] = 100 + rng.normal(0, 1, n_pix)
    data[1] = 1.0
    data[2] = 10**loglam
    data[3, 10:13] = 4  # andmask: bad pixels
    data[4, 50] = 1  # ormask only
    hdu = fits.PrimaryHDU(data)
    hdu.header.update({"TELESCOP": "LAMOST", "COEFF0": 3.5682, "COEFF1": 1e-4, "CLASS": "STAR",
                       "SUBCLASS": "G5", "Z": 1e-4, "SN_G": 35.2, "OBSID": 123456,
                       "VACUUM": True})
    return fits.HDUList([hdu])


def lrs_table_hdul(n_pix: int = 300) -> fits.HDUList:
    """The later LAMOST layout: one-row binary table in HDU 1."""
    image = lrs_image_hdul(n_pix)[0]
    cols = [fits.Column(name=name, format=f"{n_pix}E", array=image.data[i][None, :])
            for i, name in enumerate(["FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK"])]
    primary = fits.PrimaryHDU()
    primary.header.update({k: image.header[k] for k in ("TELESCOP", "CLASS", "SUBCLASS", "Z",
                                                        "SN_G", "OBSID")})
    return fits.HDUList([primary, fits.BinTableHDU.from_columns(cols, name="COADD")])


def lrs_dr1_hdul(n_pix: int = 300) -> fits.HDUList:
    """LAMOST DR1: rows Flux Inverse Subcontinuum Andmask Ormask (no wavelength row)."""
    hdul = lrs_image_hdul(n_pix)
    hdul[0].data[2] = 1.0  # the continuum-divided flux, not wavelengths
    hdul[0].header["EXTEN0"] = "Flux Inverse Subcontinuum Andmask Ormask"
    return hdul


def lrs_table_dr9_hdul(n_pix: int = 300) -> fits.HDUList:
    """DR8 v2+/DR9+: the COADD table, and an empty primary with stale NAXIS1/NAXIS2."""
    hdul = lrs_table_hdul(n_pix)
    hdul[0].header.update({"NAXIS1": n_pix, "NAXIS2": 5, "COEFF0": 3.5682, "COEFF1": 1e-4,
                           "DATA_V": "LAMOST DR9", "SNRG": 44.0})
    del hdul[0].header["SN_G"]  # DR8+ writes SNRU ... SNRZ instead
    return hdul


def mrs_per_pixel_hdul(n_pix: int = 200) -> fits.HDUList:
    """Early MRS (DR6/DR7): one row per pixel with scalar columns, LOGLAM (unsorted)."""
    primary = fits.PrimaryHDU()
    primary.header.update({"TELESCOP": "LAMOST", "OBSID": 9, "FILENAME": "med-58000-x.fits"})
    hdus = [primary]
    for extname, start in [("COADD_B", 4950.0), ("COADD_R", 6300.0)]:
        loglam = np.log10(start) + 2e-5 * np.arange(n_pix)[::-1]
        cols = [fits.Column(name="LOGLAM", format="E", array=loglam),
                fits.Column(name="FLUX", format="E", array=np.arange(n_pix)[::-1] + 1.0),
                fits.Column(name="IVAR", format="E", array=np.ones(n_pix)),
                fits.Column(name="ORMASK", format="J", array=np.zeros(n_pix))]
        hdus.append(fits.BinTableHDU.from_columns(cols, name=extname))
    return fits.HDUList(hdus)


def mrs_hdul(n_pix: int = 200) -> fits.HDUList:
    primary = fits.PrimaryHDU()
    primary.header.update({"TELESCOP": "LAMOST", "OBSID": 7, "CLASS": "STAR"})
    hdus = [primary]
    for extname, start in [("COADD_B", 4950.0), ("COADD_R", 6300.0), ("R-84420148", 6300.0)]:
        loglam = np.log10(start) + 2e-5 * np.arange(n_pix)
        flux = np.full(n_pix, 2.0 if extname.startswith("R-") else 1.0)
        cols = [fits.Column(name="FLUX", format=f"{n_pix}E", array=flux[None]),
                fits.Column(name="IVAR", format=f"{n_pix}E", array=np.ones((1, n_pix))),
                fits.Column(name="LOGLAM", format=f"{n_pix}D", array=loglam[None]),
                fits.Column(name="ANDMASK", format=f"{n_pix}J", array=np.zeros((1, n_pix))),
                fits.Column(name="ORMASK", format=f"{n_pix}J", array=np.zeros((1, n_pix)))]
        hdus.append(fits.BinTableHDU.from_columns(cols, name=extname))
    return fits.HDUList(hdus)


@pytest.mark.parametrize("make", [lrs_image_hdul, lrs_table_hdul, lrs_dr1_hdul,
                                  lrs_table_dr9_hdul])
def test_lamost_lrs_read_four_ways(tmp_path, make):
    path = tmp_path / "spec-lrs.fits"
    make().writeto(path, output_verify="ignore")  # the DR9 primary's stale NAXISn
    readings = [sio.read(path, format="lamost-lrs"), sio.read(path)]
    with open(path, "rb") as f:
        readings.append(read_lamost_lrs(f))
    with fits.open(path) as hdul:
        readings.append(sio.read(hdul))
    for s in readings:
        assert len(s) == 1 and s.n_pix == 300
        assert_allclose(s.wave[[0, -1]], 10 ** (3.5682 + 1e-4 * np.array([0, 299])), rtol=1e-7)
        assert_array_equal(np.flatnonzero(s.mask[0]), [10, 11, 12])
        assert s.meta["subclass"][0] == "G5" and s.ids[0] == "123456"
        assert_allclose(s.meta["rv"][0], 1e-4 * 299792.458)
    assert sio.identify_format(path) == ["lamost-lrs"]
    assert readings[0].meta["file"][0] == str(path)


def test_lamost_meta_records_the_wavelength_provenance(tmp_path):
    path = tmp_path / "spec.fits"
    lrs_table_dr9_hdul().writeto(path, output_verify="ignore")
    s = sio.read(path)
    assert s.meta["medium_in_file"][0] == "vacuum"
    assert s.meta["medium_from"][0] == "LAMOST convention (vacuum)"  # no VACUUM key here
    assert s.meta["sn_g"][0] == 44.0 and s.meta["data_release"][0] == "LAMOST DR9"


def test_lamost_bad_wavelength_keys_are_named(tmp_path):
    for value in (0.0, -1e-4):
        path = tmp_path / f"coeff{value}.fits"
        hdul = lrs_image_hdul()
        hdul[0].header["COEFF1"] = value
        hdul.writeto(path)
        with pytest.raises(ReadError, match=f"coeff{value}.fits: COEFF1"):
            sio.read(path)


def test_lamost_mrs_of_every_table_form(tmp_path):
    """Early MRS tables (one row per pixel, LOGLAM descending) read sorted; an MRS file is
    never also an SDSS file (it was 'ambiguous format, matches lamost-mrs, sdss-spec')."""
    path = tmp_path / "med-58000-x.fits"
    mrs_per_pixel_hdul().writeto(path)
    assert sio.identify_format(path) == ["lamost-mrs"]
    s = sio.read(path)
    assert s.n_pix == 200 and np.all(np.diff(s.wave) > 0)
    assert_allclose(s.wave[0], 6300.0, rtol=1e-6)
    assert s.flux[0, 0] == 1.0
    both = sio.read(path, arm="both")
    assert both.n_pix == 400 and both.wave[0] < 5000 < both.wave[-1]


def test_lamost_gzip(tmp_path):
    path = tmp_path / "spec.fits.gz"
    lrs_image_hdul().writeto(path)
    s = sio.read(path)
    assert s.n_pix == 300 and s.meta["format"][0] == "lamost-lrs"


def test_lamost_mask_bits_option(tmp_path):
    path = tmp_path / "spec.fits"
    lrs_image_hdul().writeto(path)
    assert sio.read(path, mask_bits="or").mask.sum() == 4
    assert sio.read(path, mask_bits="none").mask.sum() == 0
    with pytest.raises(ValueError, match="mask_bits"):
        sio.read(path, mask_bits="xor")


def test_lamost_mrs_coadd_and_exposure(tmp_path):
    path = tmp_path / "med.fits"
    mrs_hdul().writeto(path)
    assert sio.identify_format(path) == ["lamost-mrs"]
    red = sio.read(path)
    assert_allclose(red.wave[0], 6300.0)
    assert red.flux[0, 0] == 1.0
    exposure = sio.read(path, exposure="84420148")
    assert exposure.flux[0, 0] == 2.0
    both = sio.read(path, arm="both")
    assert both.n_pix == 400 and np.all(np.diff(both.wave) > 0)
    with pytest.raises(ReadError, match="no HDU named R-1"):
        sio.read(path, exposure="1")


def test_lamost_specutils_loader(tmp_path):
    specutils = pytest.importorskip("specutils")
    import starlearn  # noqa: F401  (registers the loaders when specutils is imported)

    path = tmp_path / "spec.fits"
    lrs_image_hdul().writeto(path)
    spec = specutils.Spectrum.read(path, format="LAMOST-LRS")
    assert spec.spectral_axis.unit == u.AA
    assert_allclose(spec.spectral_axis.value[0], 10**3.5682)
    assert spec.mask.sum() == 3
    assert spec.meta["header"]["SUBCLASS"] == "G5"
    auto = specutils.Spectrum.read(path)
    assert_allclose(auto.flux.value, spec.flux.value)


def test_unreadable_and_unknown_files_name_the_file(tmp_path):
    text = tmp_path / "notes.fits"
    text.write_text("this is not a FITS file\n")
    with pytest.raises(ReadError, match="notes.fits: format not recognised"):
        sio.read(text)
    trunc = tmp_path / "trunc.fits"
    lrs_image_hdul().writeto(trunc)
    trunc.write_bytes(trunc.read_bytes()[:4000])
    with pytest.raises(ReadError, match="trunc.fits: truncated FITS file"):
        sio.read(trunc)
    blank = tmp_path / "blank.fits"
    hdul = lrs_image_hdul()
    hdul[0].data[1] = 0.0
    hdul.writeto(blank)
    with pytest.raises(ReadError, match="blank.fits: no usable pixel"):
        sio.read(blank)


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")
@pytest.mark.parametrize(("name", "subclass"), [("spec-55916-B5591606_sp01-001.fits", "K5"),
                                                ("spec-55919-B5591903_sp01-005.fits", "G5")])
def test_real_lamost_files(name, subclass):
    s = sio.read(SHARED / "lamost" / name)
    assert s.n_pix == 3909
    assert 3690 < s.wave[0] < 3705 and 9090 < s.wave[-1] < 9105
    if subclass:
        assert s.meta["subclass"][0] == subclass
    assert np.isfinite(s.meta["snr"][0])
