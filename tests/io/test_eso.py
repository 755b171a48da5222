import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose

import starlearn.io as sio
from starlearn import air_to_vacuum


def phase3_hdul(ucd: str = "em.wl", unit: str = "nm", extname: str = "SPECTRUM",
                quality: bool = False) -> fits.HDUList:
    n = 200
    wave = np.linspace(500.0, 520.0, n) if unit == "nm" else np.linspace(5000.0, 5200.0, n)
    cols = [fits.Column(name="WAVE", format=f"{n}D", unit=unit, array=wave[None]),
            fits.Column(name="FLUX", format=f"{n}E", unit="erg cm**(-2) s**(-1) angstrom**(-1)",
                        array=np.full((1, n), 3.0)),
            fits.Column(name="ERR_FLUX", format=f"{n}E", array=np.full((1, n), 0.5))]
    if quality:
        qual = np.zeros((1, n), np.int32)
        qual[0, 4] = 1
        cols.append(fits.Column(name="QUAL", format=f"{n}J", array=qual))
    table = fits.BinTableHDU.from_columns(cols, name=extname)
    table.header.update({"TUTYP1": "spec:Data.SpectralAxis.Value", "TUCD1": ucd,
                         "TUTYP2": "spec:Data.FluxAxis.Value",
                         "TUTYP3": "spec:Data.FluxAxis.Accuracy.StatError"})
    primary = fits.PrimaryHDU()
    primary.header.update({"ORIGIN": "ESO", "PRODCATG": "SCIENCE.SPECTRUM",
                           "INSTRUME": "UVES", "OBJECT": "HD 1", "SPECSYS": "BARYCENT",
                           "SNR": 80.0})
    return fits.HDUList([primary, table])


@pytest.mark.parametrize(("ucd", "medium"), [("em.wl", "vacuum"), ("em.wl;obs.atmos", "air")])
def test_eso_phase3_medium_from_the_ucd(tmp_path, ucd, medium):
    path = tmp_path / "ADP.fits"
    phase3_hdul(ucd).writeto(path)
    assert sio.identify_format(path) == ["eso-phase3"]
    s = sio.read(path)
    expected = 5000.0 if medium == "vacuum" else float(air_to_vacuum(5000.0))
    assert_allclose(s.wave[0], expected)
    assert_allclose(s.ivar[0], 4.0)
    assert s.meta["medium_in_file"][0] == medium and s.meta["specsys"][0] == "BARYCENT"


def test_4most_l1_layout_and_quality(tmp_path):
    path = tmp_path / "4most.fits"
    phase3_hdul(unit="Angstrom", extname="PHASE3SPECTRUM", quality=True).writeto(path)
    s = sio.read(path)
    assert_allclose(s.wave[0], 5000.0)
    assert s.mask[0, 4] and s.mask.sum() == 1


def test_eso_pipeline_image(tmp_path):
    hdu = fits.PrimaryHDU(np.full(300, 1.0, "f4") + np.random.default_rng(1).normal(0, 0.01,
                                                                                     300))
    hdu.header.update({"TELESCOP": "ESO-3P6", "INSTRUME": "HARPS", "CRVAL1": 5000.0,
                       "CDELT1": 0.01, "CRPIX1": 1.0, "CTYPE1": "Angstrom",
                       "HIERARCH ESO DRS BERV": 15.3})
    path = tmp_path / "HARPS_s1d_A.fits"
    fits.HDUList([hdu]).writeto(path)
    assert sio.identify_format(path) == ["eso-image"]
    s = sio.read(path)
    assert_allclose(s.wave[0], air_to_vacuum(5000.0))  # ESO pipelines calibrate in air
    assert s.meta["medium_from"][0] == "ESO pipeline convention (air)"
    assert s.meta["wave_unit_from"][0] == "CTYPE1" and s.meta["berv"][0] == 15.3
